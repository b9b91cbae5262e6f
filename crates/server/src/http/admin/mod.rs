//! The admin API: JSON over HTTP with bearer tokens. The admin token manages everything; a
//! tenant's token manages that tenant's integrations only, and another tenant's look to it as
//! if they did not exist.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use telehook::{InvokeError, WebhookRequest};

use super::AppState;
use super::body::{ApiError, discard, read};
use crate::limits::IntegrationLimits;
use crate::service::{Principal, ServiceError};
use crate::storage::{Binding, Integration};
use crate::{lanes, tokens};

mod calls;
mod delivery;

/// The largest JSON body the admin API reads.
const MAX_JSON_BYTES: usize = 1 << 20;

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> axum::Router<AppState> {
    let integration = "/tenants/{tenant}/integrations/{integration}";
    axum::Router::new()
        .route("/whoami", get(whoami))
        .route("/tenants", post(create_tenant).get(list_tenants))
        .route("/tenants/{tenant}", axum::routing::delete(delete_tenant))
        .route("/events", get(event_feed))
        .route("/events/consumed", get(show_consumed).put(confirm_consumed))
        .route("/endpoints", post(delivery::create).get(delivery::list))
        .route(
            "/endpoints/{endpoint}",
            get(delivery::show).delete(delivery::delete),
        )
        .route("/endpoints/{endpoint}/enable", post(delivery::enable))
        .route("/endpoints/{endpoint}/failures", get(delivery::failures))
        .route(
            "/endpoints/{endpoint}/failures/replay",
            post(delivery::replay),
        )
        .route(
            "/tenants/{tenant}/stream-tokens",
            post(delivery::mint_stream_token),
        )
        .route(
            "/tenants/{tenant}/integrations",
            post(create_integration).get(list_integrations),
        )
        .route(
            integration,
            get(show_integration).delete(delete_integration),
        )
        .route(
            &format!("{integration}/versions"),
            post(upload_version).get(list_versions),
        )
        .route(
            &format!("{integration}/versions/{{version}}/activate"),
            post(activate),
        )
        .route(
            &format!("{integration}/versions/{{version}}/test"),
            post(test_version),
        )
        .route(&format!("{integration}/rollback"), post(rollback))
        .route(
            &format!("{integration}/settings"),
            get(show_settings).patch(update_settings),
        )
        .route(
            &format!("{integration}/bindings"),
            get(show_bindings).put(replace_bindings),
        )
        .route(
            &format!("{integration}/limits"),
            get(show_limits).put(replace_limits),
        )
        .route(&format!("{integration}/health"), get(show_health))
        .route(&format!("{integration}/health/reset"), post(reset_health))
        .route(&format!("{integration}/webhook"), get(show_webhook))
        .route(
            &format!("{integration}/webhook/regenerate"),
            post(regenerate_webhook),
        )
        .route(&format!("{integration}/events"), get(list_events))
        .route(&format!("{integration}/calls"), get(calls::list))
        .route(&format!("{integration}/calls/{{call}}"), get(calls::show))
        .route(&format!("{integration}/invocations"), get(list_invocations))
        .route(&format!("{integration}/activity"), get(show_activity))
}

/// `/metrics` in Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.service.metrics(),
    )
        .into_response()
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let status = match &err {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Component(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("admin API: {err}");
        }
        ApiError(status, err.to_string())
    }
}

/// The caller, from `Authorization: Bearer TOKEN`.
struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer TOKEN`".into(),
            )
        })?;
        Ok(Self(principal(state, token).await?))
    }
}

/// The token of the request's `Authorization: Bearer TOKEN`, if it has one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Who a bearer token belongs to; an unknown token is a `401`.
pub(super) async fn principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    state
        .service
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()))
}

/// The integration named in the path, resolved for the caller: another tenant's integration
/// answers "not found", as if it did not exist.
struct Owned(Integration);

impl FromRequestParts<AppState> for Owned {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|err| ApiError(StatusCode::BAD_REQUEST, err.body_text()))?;
        match (params.get("tenant"), params.get("integration")) {
            (Some(tenant), Some(integration)) => Ok(Self(
                state
                    .service
                    .integration_for(&principal, tenant, integration)
                    .await?,
            )),
            _ => Err(ApiError(
                StatusCode::NOT_FOUND,
                "no integration in the path".into(),
            )),
        }
    }
}

impl Caller {
    fn admin(&self, action: &'static str) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            Principal::Tenant(_) => Err(ServiceError::Forbidden(action).into()),
        }
    }
}

/// Reads a JSON body, naming what is wrong with it (unknown fields included) as a 400.
async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read(headers, body, MAX_JSON_BYTES, state.config.body_timeout).await?;
    parse_json(&bytes)
}

/// A JSON body already read, or a 400 naming what is wrong with it.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError(StatusCode::BAD_REQUEST, format!("invalid JSON body: {err}")))
}

/// Ids appear in URLs: lower-case letters, digits, `-` and `_`, 1 to 64 characters.
fn check_id(kind: &str, id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{kind} id `{id}` must be 1 to 64 of a-z, 0-9, `-` and `_`"),
        ))
    }
}

fn created(value: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn ok(value: Value) -> ApiResult {
    Ok(Json(value).into_response())
}

/// `GET /admin/whoami`: whom the token belongs to, so that a console shows only what it may
/// manage.
async fn whoami(Caller(principal): Caller) -> ApiResult {
    ok(match principal {
        Principal::Admin => json!({ "role": "admin" }),
        Principal::Tenant(tenant) => json!({ "role": "tenant", "tenant": tenant }),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
    name: Option<String>,
}

async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    caller.admin("create tenants")?;
    let new: NewTenant = json_body(&state, &headers, body).await?;
    check_id("tenant", &new.id)?;
    let token = tokens::generate().map_err(ServiceError::from)?;
    let name = new.name.unwrap_or_else(|| new.id.clone());
    let tenant = state
        .service
        .storage()
        .create_tenant(&new.id, &name, &tokens::hash(&token))
        .await
        .map_err(ServiceError::from)?;
    created(json!({
        "id": tenant.id,
        "name": tenant.name,
        "created_at": tenant.created_at,
        "token": token,
    }))
}

async fn list_tenants(State(state): State<AppState>, caller: Caller) -> ApiResult {
    caller.admin("list tenants")?;
    let tenants = state
        .service
        .storage()
        .tenants()
        .await
        .map_err(ServiceError::from)?;
    ok(json!(tenants))
}

async fn delete_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult {
    caller.admin("delete tenants")?;
    state.service.delete_tenant(&tenant).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn integration_json(state: &AppState, integration: &Integration) -> Value {
    json!({
        "id": integration.id,
        "tenant_id": integration.tenant_id,
        "name": integration.name,
        "active_version": integration.active_version,
        "created_at": integration.created_at,
        "webhook_url": state.service.webhook_url(integration),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIntegration {
    id: String,
    name: Option<String>,
}

async fn create_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    state.service.authorize_tenant(&caller.0, &tenant)?;
    let new: NewIntegration = json_body(&state, &headers, body).await?;
    check_id("integration", &new.id)?;
    let token = tokens::generate().map_err(ServiceError::from)?;
    let name = new.name.unwrap_or_else(|| new.id.clone());
    let integration = state
        .service
        .storage()
        .create_integration(&tenant, &new.id, &name, &token)
        .await
        .map_err(ServiceError::from)?;
    created(integration_json(&state, &integration))
}

async fn list_integrations(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult {
    state.service.authorize_tenant(&caller.0, &tenant)?;
    let integrations = state
        .service
        .storage()
        .integrations(&tenant)
        .await
        .map_err(ServiceError::from)?;
    ok(Value::Array(
        integrations
            .iter()
            .map(|integration| integration_json(&state, integration))
            .collect(),
    ))
}

async fn show_integration(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(integration_json(&state, &integration))
}

async fn delete_integration(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    state.service.delete_integration(&integration.key()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn upload_version(
    State(state): State<AppState>,
    Owned(integration): Owned,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let limit = state.service.limits().component_bytes;
    let turn = match state.service.upload_turn(&integration.tenant_id) {
        Ok(turn) => turn,
        Err(busy) => {
            discard(body, limit, state.config.body_timeout).await;
            return Err(busy.into());
        }
    };
    let bytes = read(&headers, body, limit, state.config.body_timeout).await?;
    let version = state
        .service
        .upload_version(&integration.key(), bytes.to_vec(), turn)
        .await?;
    created(json!({
        "version": version.version,
        "sha256": version.sha256,
        "size": version.size,
        "uploaded_at": version.uploaded_at,
        "check": "ok",
    }))
}

async fn list_versions(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let versions = state
        .service
        .storage()
        .versions(&integration.key())
        .await
        .map_err(ServiceError::from)?;
    ok(Value::Array(
        versions
            .iter()
            .map(|version| {
                json!({
                    "version": version.version,
                    "sha256": version.sha256,
                    "size": version.size,
                    "uploaded_at": version.uploaded_at,
                    "check": "ok",
                    "active": integration.active_version == Some(version.version),
                })
            })
            .collect(),
    ))
}

async fn activate(
    State(state): State<AppState>,
    Owned(integration): Owned,
    Path((_, _, version)): Path<(String, String, u32)>,
) -> ApiResult {
    state.service.activate(&integration.key(), version).await?;
    ok(json!({ "active_version": version }))
}

async fn rollback(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let version = state.service.rollback(&integration.key()).await?;
    ok(json!({ "active_version": version }))
}

/// Runs a stored version on a sample request (the `telehook run` request file) with the
/// integration's settings, without activating it or dispatching anything: a trial before an
/// activation. The answer carries the parser's log either way, and an invalid result's
/// violations field by field, since those are what the admin fixes the parser by.
async fn test_version(
    State(state): State<AppState>,
    Owned(integration): Owned,
    Path((_, _, version)): Path<(String, String, u32)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read(&headers, body, MAX_JSON_BYTES, state.config.body_timeout).await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "the body is not UTF-8".into()))?;
    let request = WebhookRequest::from_json(&text)
        .map_err(|err| ApiError(StatusCode::BAD_REQUEST, err.to_string()))?;
    let parser = state
        .service
        .load_version(&integration.key(), version)
        .await?;
    let settings = std::sync::Arc::new(state.service.settings(&integration.key()).await?);
    // A trial is never urgent, and the version on trial may be the one that loops forever.
    let invocation = lanes::in_background(move || parser.invoke(&request, settings))
        .await
        .map_err(|err| ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let duration_us = u64::try_from(invocation.elapsed.as_micros()).unwrap_or(u64::MAX);
    match invocation.result {
        Ok(outcome) => ok(json!({
            "outcome": outcome,
            "log": invocation.log,
            "duration_us": duration_us,
        })),
        Err(err) => {
            let violations: Vec<Value> = match &err {
                InvokeError::Invalid(violations) => violations
                    .0
                    .iter()
                    .map(|violation| json!({ "field": violation.field, "message": violation.rule }))
                    .collect(),
                _ => Vec::new(),
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": err.to_string(),
                    "kind": err.kind(),
                    "violations": violations,
                    "log": invocation.log,
                    "duration_us": duration_us,
                })),
            )
                .into_response())
        }
    }
}

async fn show_settings(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let settings = state.service.settings(&integration.key()).await?;
    ok(json!({ "keys": settings.keys().collect::<Vec<_>>() }))
}

/// `{"key": "value"}` sets a key, `{"key": null}` removes it; other keys are left alone.
async fn update_settings(
    State(state): State<AppState>,
    Owned(integration): Owned,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let changes: BTreeMap<String, Option<String>> = json_body(&state, &headers, body).await?;
    if let Some(key) = changes.keys().find(|key| key.is_empty() || key.len() > 128) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("setting key `{key}` must be 1 to 128 bytes"),
        ));
    }
    let changes: Vec<_> = changes.into_iter().collect();
    state
        .service
        .update_settings(&integration.key(), &changes)
        .await?;
    let settings = state.service.settings(&integration.key()).await?;
    ok(json!({ "keys": settings.keys().collect::<Vec<_>>() }))
}

async fn show_bindings(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let bindings = state
        .service
        .storage()
        .bindings(&integration.key())
        .await
        .map_err(ServiceError::from)?;
    ok(json!(bindings))
}

async fn replace_bindings(
    State(state): State<AppState>,
    Owned(integration): Owned,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bindings: Vec<Binding> = json_body(&state, &headers, body).await?;
    let mut seen = std::collections::HashSet::new();
    for binding in &bindings {
        if binding.extension.is_empty() || binding.user_id.is_empty() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "every binding needs a non-empty `extension` and `user_id`".into(),
            ));
        }
        if !seen.insert(&binding.extension) {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("extension `{}` is bound twice", binding.extension),
            ));
        }
    }
    state
        .service
        .replace_bindings(&integration.key(), &bindings)
        .await?;
    ok(json!(bindings))
}

async fn show_limits(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let (own, effective) = state.service.integration_limits(&integration.key()).await?;
    ok(json!({ "own": own, "effective": effective }))
}

/// Replaces the integration's own limits; omitted fields return to the host's defaults.
async fn replace_limits(
    State(state): State<AppState>,
    Owned(integration): Owned,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let own: IntegrationLimits = json_body(&state, &headers, body).await?;
    let effective = state
        .service
        .set_integration_limits(&integration.key(), &own)
        .await?;
    ok(json!({ "own": own, "effective": effective }))
}

async fn show_health(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(json!(state.service.health(&integration.key()).await?))
}

/// Closes the circuit breaker: the admin's word that the parser may be called again.
async fn reset_health(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(json!(state.service.reset_health(&integration.key()).await?))
}

async fn show_webhook(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(json!({ "url": state.service.webhook_url(&integration) }))
}

async fn regenerate_webhook(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    let integration = state.service.regenerate_token(&integration).await?;
    ok(json!({ "url": state.service.webhook_url(&integration) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
    limit: Option<u32>,
}

impl EventsQuery {
    /// 100 unless asked, at most 1,000.
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).min(1000)
    }
}

async fn list_events(
    State(state): State<AppState>,
    Owned(integration): Owned,
    Query(query): Query<EventsQuery>,
) -> ApiResult {
    let events = state
        .service
        .storage()
        .events(&integration.key(), query.after, query.limit())
        .await
        .map_err(ServiceError::from)?;
    ok(json!(events))
}

/// Every tenant's events, oldest first: the feed the platform consumes.
async fn event_feed(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<EventsQuery>,
) -> ApiResult {
    caller.admin("read every tenant's events")?;
    let events = state
        .service
        .storage()
        .all_events(query.after, query.limit())
        .await
        .map_err(ServiceError::from)?;
    ok(json!(events))
}

async fn show_consumed(State(state): State<AppState>, caller: Caller) -> ApiResult {
    caller.admin("read the platform's cursor")?;
    let seq = state
        .service
        .storage()
        .consumed()
        .await
        .map_err(ServiceError::from)?;
    ok(json!({ "seq": seq }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Consumed {
    seq: i64,
}

/// The platform's word that it has durably taken every event up to `seq`.
async fn confirm_consumed(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    caller.admin("confirm events taken")?;
    let consumed: Consumed = json_body(&state, &headers, body).await?;
    ok(json!(state.service.confirm_consumed(consumed.seq).await?))
}

async fn list_invocations(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(json!(state.service.recent_invocations(&integration.key())))
}

/// `GET .../activity`: the last half hour of requests by outcome and parser latency, in
/// buckets, for a chart; the totals since start are `/metrics`.
async fn show_activity(State(state): State<AppState>, Owned(integration): Owned) -> ApiResult {
    ok(json!({
        "bucket_secs": crate::metrics::activity::BUCKET_SECS,
        "buckets": state.service.activity(&integration.key()),
    }))
}
