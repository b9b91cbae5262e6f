//! `/hooks/{tenant}/{integration}/{token}`: where providers send their webhooks. The URLs
//! handed out before integration ids were per tenant, `/hooks/{integration}/{token}`, are
//! still served.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::body::read;
use crate::storage::IntegrationKey;
use telehook::WebhookRequest;
use telehook::outcome::HttpResponse;

/// Runs the integration's parser on the request and answers with what it decided.
pub async fn webhook(
    State(state): State<AppState>,
    Path((tenant, integration, token)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = IntegrationKey::new(&tenant, &integration);
    let request = match request(&state, &integration, method, uri, headers, body).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    into_http(state.service.webhook(&key, &token, request).await.response)
}

/// The same at an old URL, which names no tenant.
pub async fn webhook_without_tenant(
    State(state): State<AppState>,
    Path((integration, token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match request(&state, &integration, method, uri, headers, body).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let answer = state
        .service
        .webhook_without_tenant(&integration, &token, request)
        .await;
    into_http(answer.response)
}

/// The request as the parser sees it, or the refusal of its body.
async fn request(
    state: &AppState,
    integration: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<WebhookRequest, Response> {
    let body = match read(
        &headers,
        body,
        state.limits.max_body_bytes,
        state.limits.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(err) => {
            tracing::info!(integration, "webhook body refused: {}", err.1);
            return Err(err.into_response());
        }
    };
    let path_with_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let headers = headers.iter().map(|(name, value)| {
        (
            name.as_str().to_owned(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )
    });
    Ok(WebhookRequest::new(
        method.as_str(),
        &path_with_query,
        headers,
        body.to_vec(),
    ))
}

/// The parser's response as sent: validation already bounded the status, names and values.
fn into_http(response: HttpResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut http = (status, response.body).into_response();
    let headers = http.headers_mut();
    headers.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in response.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(name, "dropped a response header the validator let through"),
        }
    }
    http
}
