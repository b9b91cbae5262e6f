//! `GET /stream/calls`: the live stream of call updates, as Server-Sent Events.
//!
//! Each update is an event `call.updated` whose `id:` is its position and whose `data:` is the
//! update's JSON (see [`crate::delivery::CallUpdate::body`]). A client that reconnects with
//! `Last-Event-ID` (a browser's `EventSource` does so by itself) resumes exactly after that
//! position; a first connection starts after `?after=POSITION`, or with what comes next. A
//! comment every keep-alive interval keeps proxies from closing an idle stream, and
//! `X-Accel-Buffering: no` keeps nginx from holding events back; nothing on the way
//! compresses it.
//!
//! Authorised by the admin token (everything, or `?tenant=` and `?user=`), a tenant's token
//! (its own, or `?user=`), both as `Authorization: Bearer`, or a stream token in `?token=`
//! (one user's; see [`crate::delivery::stream_token`]).

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;
use tokio::sync::watch;

use super::body::ApiError;
use super::{AppState, admin};
use crate::delivery::{Feed, UPDATE_TYPE};
use crate::service::{ServiceError, StreamAccess};

/// `?tenant=&user=&after=&token=`: every part optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    tenant: Option<String>,
    user: Option<String>,
    after: Option<i64>,
    token: Option<String>,
}

/// `GET /stream/calls`.
pub(super) async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers, query.token).await?;
    let filter = state
        .service
        .stream_filter(&access, query.tenant, query.user)?;
    let after = match resume_point(&headers)? {
        Some(after) => after,
        None => match query.after {
            Some(after) => after,
            None => state.service.latest_update().await?,
        },
    };
    let feed = state.service.feed(filter, after);
    let sse = Sse::new(events(
        feed,
        state.service.stream_clients(),
        state.closing.clone(),
    ))
    .keep_alive(KeepAlive::new().interval(state.config.stream_keep_alive));
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Who opens the stream: a bearer token, else a stream token.
async fn access(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<String>,
) -> Result<StreamAccess, ApiError> {
    match (admin::bearer(headers), token) {
        (Some(bearer), _) => Ok(StreamAccess::Principal(
            admin::principal(state, bearer).await?,
        )),
        (None, Some(token)) => Ok(StreamAccess::Token(token)),
        (None, None) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer TOKEN` or `?token=STREAM_TOKEN`".into(),
        )),
    }
}

/// The position a reconnecting client last saw, from `Last-Event-ID`.
fn resume_point(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .map(Some)
        .ok_or_else(|| {
            ServiceError::BadRequest(
                "`Last-Event-ID` must be the position of an update this stream sent".into(),
            )
            .into()
        })
}

/// Counts a stream client while it is connected.
struct Connected(Gauge);

impl Connected {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The feed's updates as events; the stream ends when the feed fails or the host shuts
/// down, and the client reconnects with the last id it saw.
fn events(
    feed: Feed,
    clients: Gauge,
    closing: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (feed, closing, Connected::new(clients)),
        |(mut feed, mut closing, connected)| async move {
            let next = tokio::select! {
                next = feed.next() => next,
                _ = closing.wait_for(|closing| *closing) => return None,
            };
            match next {
                Ok(update) => {
                    let event = Event::default()
                        .event(UPDATE_TYPE)
                        .id(update.position.to_string())
                        .data(&update.body);
                    Some((Ok(event), (feed, closing, connected)))
                }
                Err(err) => {
                    tracing::warn!("a call stream ended: {err}");
                    None
                }
            }
        },
    )
}
