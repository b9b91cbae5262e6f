//! The provider's request as a parser sees it, and the JSON file form `telehook run` reads.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::RequestError;

/// A webhook request in the contract's shape.
///
/// Header names are lower-cased here, once, so that every parser sees the same names whatever
/// the provider or a proxy sent (HTTP/2 does the same); the query is decoded from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The method in upper case.
    pub method: String,
    /// The path and query as requested.
    pub path_with_query: String,
    /// The query, decoded as form-urlencoded pairs.
    pub query: Vec<(String, String)>,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The URL the provider called, scheme and authority included when the host knows them
    /// (see [`WebhookRequest::with_url`]); the path and query until then.
    pub url: String,
    /// What follows the webhook URL's token in the path, without its leading `/`.
    pub route_suffix: String,
    /// When the host received the request: the only clock a parser gets.
    pub received_at: SystemTime,
}

impl WebhookRequest {
    /// Builds the contract request from the parts of an HTTP request, received now; its URL
    /// is the path and query until [`WebhookRequest::with_url`] gives the whole one.
    pub fn new(
        method: &str,
        path_with_query: &str,
        headers: impl IntoIterator<Item = (String, String)>,
        body: Vec<u8>,
    ) -> Self {
        let query = path_with_query
            .split_once('?')
            .map(|(_, query)| {
                form_urlencoded::parse(query.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Self {
            method: method.to_ascii_uppercase(),
            path_with_query: path_with_query.to_owned(),
            query,
            headers,
            body,
            url: path_with_query.to_owned(),
            route_suffix: String::new(),
            received_at: SystemTime::now(),
        }
    }

    /// The same request as called at `url` (scheme, authority, path and query), which
    /// parsers that verify a signature over the URL sign over.
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The same request with what followed the webhook URL's token in its path.
    #[must_use]
    pub fn with_route_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.route_suffix = suffix.into();
        self
    }

    /// The same request as received at `at`, for a replay of a captured request.
    #[must_use]
    pub fn received_at(mut self, at: SystemTime) -> Self {
        self.received_at = at;
        self
    }

    /// [`WebhookRequest::received_at`] in milliseconds since the Unix epoch, as parsers get it
    /// (0 for a time before the epoch).
    pub fn received_at_ms(&self) -> u64 {
        self.received_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            })
    }

    /// Reads the JSON request file of `telehook run`:
    /// `{"method", "url", "headers": {"Name": "value"}, "body": "text"}`, with `body_base64`
    /// instead of `body` for binary bodies. `url` is a path and query, or the whole URL the
    /// provider called (`https://hooks.example.com/hooks/...`); optional `route_suffix` and
    /// `received_at` (RFC 3339) give what the server would, for a replay of a capture, and
    /// `source` says where a sample was taken from (a documentation page, an SDK's test),
    /// which the request itself does not carry.
    pub fn from_json(json: &str) -> Result<Self, RequestError> {
        let file: RequestFile = serde_json::from_str(json).map_err(RequestError::Json)?;
        let body = match (file.body, file.body_base64) {
            (Some(_), Some(_)) => return Err(RequestError::TwoBodies),
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(RequestError::Base64)?,
            (None, None) => Vec::new(),
        };
        let path_with_query = path_of(&file.url)
            .ok_or_else(|| RequestError::RelativeUrl(file.url.clone()))?
            .to_owned();
        let mut request =
            Self::new(&file.method, &path_with_query, file.headers, body).with_url(file.url);
        if let Some(suffix) = file.route_suffix {
            request = request.with_route_suffix(suffix);
        }
        if let Some(at) = file.received_at {
            request = request
                .received_at(humantime::parse_rfc3339_weak(&at).map_err(RequestError::ReceivedAt)?);
        }
        Ok(request)
    }

    /// The body as text for logs, with invalid UTF-8 replaced.
    pub fn body_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    method: String,
    url: String,
    #[serde(default, deserialize_with = "ordered_headers")]
    headers: Vec<(String, String)>,
    body: Option<String>,
    body_base64: Option<String>,
    route_suffix: Option<String>,
    received_at: Option<String>,
    /// Where the sample comes from; read so that it is allowed, and otherwise ignored.
    #[serde(rename = "source")]
    _source: Option<String>,
}

/// The path and query of a request file's `url`: the path itself, or what follows the
/// authority of an absolute `http(s)://` URL (`/` when nothing does).
fn path_of(url: &str) -> Option<&str> {
    if url.starts_with('/') {
        return Some(url);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let start = rest.find(['/', '?']).unwrap_or(rest.len());
    match &rest[start..] {
        "" => Some("/"),
        path if path.starts_with('?') => None,
        path => Some(path),
    }
}

/// Headers are a JSON object in the file; keep the order they were written in.
fn ordered_headers<'de, D>(deserializer: D) -> Result<Vec<(String, String)>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    map.into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(value) => Ok((name, value)),
            other => Err(serde::de::Error::custom(format!(
                "header `{name}` must be a string, not {other}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_file_is_normalised() {
        let request = WebhookRequest::from_json(
            r#"{"method": "get", "url": "/h?zd_echo=a%20b&x=1",
                "headers": {"X-Signature": "s", "Content-Type": "text/plain"}}"#,
        )
        .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.query,
            vec![("zd_echo".into(), "a b".into()), ("x".into(), "1".into())]
        );
        assert_eq!(
            request.headers,
            vec![
                ("x-signature".into(), "s".into()),
                ("content-type".into(), "text/plain".into())
            ]
        );
        assert!(request.body.is_empty());
    }

    #[test]
    fn a_whole_url_gives_the_path_and_is_kept_for_the_parser() {
        let request = WebhookRequest::from_json(
            r#"{"method": "POST", "url": "https://hooks.example.com/hooks/a/b/t/events/call?x=1",
                "route_suffix": "events/call", "received_at": "2026-12-01T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(request.path_with_query, "/hooks/a/b/t/events/call?x=1");
        assert_eq!(
            request.url,
            "https://hooks.example.com/hooks/a/b/t/events/call?x=1"
        );
        assert_eq!(request.query, vec![("x".into(), "1".into())]);
        assert_eq!(request.route_suffix, "events/call");
        assert_eq!(request.received_at_ms(), 1_796_119_200_000);
    }

    #[test]
    fn binary_body_comes_from_base64() {
        let request =
            WebhookRequest::from_json(r#"{"method": "POST", "url": "/", "body_base64": "/wA="}"#)
                .unwrap();
        assert_eq!(request.body, vec![0xff, 0x00]);
    }

    #[test]
    fn bad_request_files_say_what_is_wrong() {
        let err = |json| WebhookRequest::from_json(json).unwrap_err().to_string();
        assert!(err(r#"{"method": "POST"}"#).contains("missing field `url`"));
        assert!(
            err(r#"{"method": "POST", "url": "/", "bdy": ""}"#).contains("unknown field `bdy`")
        );
        assert!(
            err(r#"{"method": "POST", "url": "/", "body": "", "body_base64": ""}"#)
                .contains("not both")
        );
        assert!(err(r#"{"method": "POST", "url": "hooks/x"}"#).contains("starting with `/`"));
        assert!(
            err(r#"{"method": "POST", "url": "/", "received_at": "soon"}"#).contains("RFC 3339")
        );
        assert!(
            err(r#"{"method": "POST", "url": "/", "headers": {"a": 1}}"#)
                .contains("header `a` must be a string")
        );
    }
}
