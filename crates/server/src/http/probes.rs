//! `/healthz` and `/readyz`: what an orchestrator or a load balancer asks before it sends
//! traffic. Neither needs a token, and neither says more than whether, and why not.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Liveness: the process serves HTTP. Restarting it would not help anything else.
pub async fn live() -> Response {
    Json(json!({ "status": "live" })).into_response()
}

/// Readiness: a webhook sent now would be stored durably. `503` with the reason while the
/// database does not answer or the event log cannot commit, so that providers' retries go to
/// another instance instead of being refused here.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.service.trouble().await {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(trouble) => {
            tracing::warn!("not ready: {trouble}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": trouble })),
            )
                .into_response()
        }
    }
}
