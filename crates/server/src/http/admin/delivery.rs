//! Delivery in the admin API: the endpoints call updates are forwarded to (create, list,
//! show, delete, enable), their failures and the replay of dead letters, and the stream tokens
//! the platform mints for a browser.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, AppState, Caller, MAX_JSON_BYTES, created, json_body, ok, parse_json};
use crate::http::body::read;
use crate::service::NewEndpoint;

/// The body of `POST /admin/endpoints`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndpointBody {
    url: String,
    tenant: Option<String>,
    secret: Option<String>,
    after: Option<i64>,
}

/// `POST /admin/endpoints`: `{"url", "tenant"?, "secret"?, "after"?}`; answers the endpoint
/// with its `secret`, which is not shown again.
pub(super) async fn create(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let body: EndpointBody = json_body(&state, &headers, body).await?;
    let endpoint = state
        .service
        .create_endpoint(
            &principal,
            NewEndpoint {
                url: body.url,
                tenant_id: body.tenant,
                secret: body.secret,
                after: body.after,
            },
        )
        .await?;
    let mut shown = json!(endpoint);
    shown["secret"] = json!(endpoint.secret.reveal());
    created(shown)
}

/// `GET /admin/endpoints`.
pub(super) async fn list(State(state): State<AppState>, Caller(principal): Caller) -> ApiResult {
    let endpoints = state.service.endpoints_for(&principal).await?;
    ok(json!(endpoints))
}

/// `GET /admin/endpoints/{endpoint}`.
pub(super) async fn show(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(json!(state.service.endpoint_for(&principal, &id).await?))
}

/// `DELETE /admin/endpoints/{endpoint}`.
pub(super) async fn delete(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    state.service.delete_endpoint(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/endpoints/{endpoint}/enable`.
pub(super) async fn enable(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(json!(state.service.enable_endpoint(&principal, &id).await?))
}

/// `?dead=true`: only the dead letters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FailuresQuery {
    dead: Option<bool>,
}

/// `GET /admin/endpoints/{endpoint}/failures`: the updates it has failed to take, retrying
/// (`next_attempt_at` set) and dead (`null`), oldest first.
pub(super) async fn failures(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(query): Query<FailuresQuery>,
) -> ApiResult {
    let mut failures = state.service.failures(&principal, &id).await?;
    if query.dead == Some(true) {
        failures.retain(|failure| failure.is_dead());
    }
    ok(json!(failures))
}

/// The optional body of a replay: `{"position": N}` for one dead letter.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    position: Option<i64>,
}

/// `POST /admin/endpoints/{endpoint}/failures/replay`: delivers the dead letters again (all,
/// or the one at `position`), each with a fresh schedule; answers `{"replayed": N}`.
pub(super) async fn replay(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read(&headers, body, MAX_JSON_BYTES, state.config.body_timeout).await?;
    let body: ReplayBody = if bytes.is_empty() {
        ReplayBody::default()
    } else {
        parse_json(&bytes)?
    };
    let replayed = state.service.replay(&principal, &id, body.position).await?;
    ok(json!({ "replayed": replayed }))
}

/// The body of `POST /admin/tenants/{tenant}/stream-tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamTokenBody {
    user: String,
    /// 3600 unless asked.
    ttl_secs: Option<u64>,
}

/// `POST /admin/tenants/{tenant}/stream-tokens`: `{"user", "ttl_secs"?}`; answers the token,
/// its expiry and the stream's path with it.
pub(super) async fn mint_stream_token(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let body: StreamTokenBody = json_body(&state, &headers, body).await?;
    let ttl = Duration::from_secs(body.ttl_secs.unwrap_or(3600));
    let (token, expires_at) = state
        .service
        .mint_stream_token(&principal, &tenant, &body.user, ttl)?;
    created(json!({
        "token": token,
        "expires_at": humantime::format_rfc3339_seconds(expires_at).to_string(),
        "stream": format!("/stream/calls?token={token}"),
    }))
}
