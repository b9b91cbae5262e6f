//! The calls of an integration, for admins and the platform: a listing with filters, paged
//! newest first, and one call with its events.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, AppState, Owned, ok};
use crate::calls::CallState;
use crate::http::body::ApiError;
use crate::service::ServiceError;
use crate::storage::CallFilter;

/// `?user=&state=&since=&until=&before=&limit=`: every part optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallsQuery {
    /// Only calls that notify this user.
    user: Option<String>,
    /// `ringing`, `answered` or `ended`.
    state: Option<CallState>,
    /// Only calls begun at or after this time (RFC 3339, UTC).
    since: Option<String>,
    /// Only calls begun before this time (RFC 3339, UTC).
    until: Option<String>,
    /// The `next` of the page before: the calls begun before that one.
    before: Option<String>,
    /// 50 unless asked, at most 500.
    limit: Option<u32>,
}

/// A time from a query, in the form stored times take, so that they compare as text.
fn time(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|text| {
            humantime::parse_rfc3339_weak(&text)
                .map(|time| humantime::format_rfc3339_millis(time).to_string())
                .map_err(|err| {
                    ServiceError::BadRequest(format!(
                        "`{name}` must be an RFC 3339 time in UTC such as 2026-12-01T10:00:00Z, \
                         not `{text}`: {err}"
                    ))
                    .into()
                })
        })
        .transpose()
}

/// `GET .../calls`: `{"calls": [...], "next": ID}`, the most recently begun first; `next` is
/// set when the page is full, and passed as `before` gets the next page.
pub(super) async fn list(
    State(state): State<AppState>,
    Owned(integration): Owned,
    Query(query): Query<CallsQuery>,
) -> ApiResult {
    let filter = CallFilter {
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        user: query.user,
        state: query.state,
        before: query.before,
        limit: query.limit.unwrap_or(50).clamp(1, 500),
    };
    let calls = state
        .service
        .storage()
        .calls(&integration.key(), &filter)
        .await
        .map_err(ServiceError::from)?;
    let full = calls.len() == filter.limit as usize;
    let next = calls.last().filter(|_| full).map(|call| call.id.clone());
    ok(json!({ "calls": calls, "next": next }))
}

/// `GET .../calls/{call}`: `{"call": {...}, "events": [...]}`, the events oldest first (those
/// the log still holds).
pub(super) async fn show(
    State(state): State<AppState>,
    Owned(integration): Owned,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> ApiResult {
    let id = params.get("call").map(String::as_str).unwrap_or_default();
    let (call, events) = state
        .service
        .storage()
        .call(&integration.key(), id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound(format!("call `{id}`")))?;
    ok(json!({ "call": call, "events": events }))
}
