//! `/hooks/{tenant}/{integration}/{token}[/{suffix}]`: where providers send their webhooks,
//! with whatever a provider appends to the URL it was given passed on as the route suffix. The
//! URLs handed out before integration ids were per tenant, `/hooks/{integration}/{token}`, are
//! still served.
//!
//! The parser is told the URL the provider called (for signatures over it, as Twilio's and
//! Plivo's): the configured public URL's scheme and authority when there is one, else
//! `x-forwarded-proto` and `x-forwarded-host` from a proxy, else the request's own authority
//! (HTTP/2's `:authority`, which also reaches the parser as `host`) or `host` header. A forged
//! forwarded header can only make a signature check fail: it changes the URL verified, not the
//! signature.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use serde::Deserialize;
use telehook::WebhookRequest;
use telehook::outcome::HttpResponse;

use super::AppState;
use super::body::read;
use crate::storage::IntegrationKey;

/// The parts of a webhook URL's path.
#[derive(Deserialize)]
pub struct HookPath {
    tenant: String,
    integration: String,
    token: String,
    /// What follows the token, if anything.
    #[serde(default)]
    suffix: String,
}

/// Runs the integration's parser on the request and answers with what it decided.
pub async fn webhook(
    State(state): State<AppState>,
    Path(path): Path<HookPath>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = IntegrationKey::new(&path.tenant, &path.integration);
    let request = match request(&state, &path.integration, method, uri, headers, body).await {
        Ok(request) => request.with_route_suffix(path.suffix),
        Err(refusal) => return refusal,
    };
    into_http(
        state
            .service
            .webhook(&key, &path.token, request)
            .await
            .response,
    )
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
        state.config.max_body_bytes,
        state.config.body_timeout,
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
    let url = external_url(
        state.config.public_url.as_deref(),
        &uri,
        &headers,
        &path_with_query,
    );
    let mut fields: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(authority) = uri
        .authority()
        .filter(|_| !headers.contains_key(header::HOST))
    {
        fields.push((header::HOST.as_str().to_owned(), authority.to_string()));
    }
    Ok(WebhookRequest::new(method.as_str(), &path_with_query, fields, body.to_vec()).with_url(url))
}

/// The URL the provider called: see the module's documentation for where each part comes
/// from. Only the path and query when nothing names the authority.
fn external_url(
    public_url: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    path_with_query: &str,
) -> String {
    if let Some(base) = public_url {
        return format!("{}{path_with_query}", base.trim_end_matches('/'));
    }
    let forwarded = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let authority = forwarded("x-forwarded-host")
        .or_else(|| uri.authority().map(ToString::to_string))
        .or_else(|| forwarded(header::HOST.as_str()));
    let Some(authority) = authority else {
        return path_with_query.to_owned();
    };
    let scheme = forwarded("x-forwarded-proto")
        .or_else(|| uri.scheme_str().map(str::to_owned))
        .unwrap_or_else(|| "http".to_owned());
    format!("{scheme}://{authority}{path_with_query}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn the_external_url_comes_from_the_public_url_then_a_proxy_then_the_request() {
        let path = "/hooks/a/b/t?x=1";
        let uri: Uri = path.parse().expect("a path");
        let host = headers(&[("host", "10.0.0.5:8700")]);
        assert_eq!(
            external_url(Some("https://hooks.example.com/"), &uri, &host, path),
            "https://hooks.example.com/hooks/a/b/t?x=1"
        );
        let proxied = headers(&[
            ("host", "10.0.0.5:8700"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "hooks.example.com, proxy.internal"),
        ]);
        assert_eq!(
            external_url(None, &uri, &proxied, path),
            "https://hooks.example.com/hooks/a/b/t?x=1"
        );
        assert_eq!(
            external_url(None, &uri, &host, path),
            "http://10.0.0.5:8700/hooks/a/b/t?x=1"
        );
        let http2: Uri = "https://hooks.example.com/hooks/a/b/t?x=1"
            .parse()
            .expect("an absolute URI");
        assert_eq!(
            external_url(None, &http2, &HeaderMap::new(), path),
            "https://hooks.example.com/hooks/a/b/t?x=1"
        );
        assert_eq!(external_url(None, &uri, &HeaderMap::new(), path), path);
    }
}
