//! The provider's request as a parser sees it, and the JSON file form `telehook run` reads.

use std::borrow::Cow;

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
}

impl WebhookRequest {
    /// Builds the contract request from the parts of an HTTP request.
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
        }
    }

    /// Reads the JSON request file of `telehook run`:
    /// `{"method", "url", "headers": {"Name": "value"}, "body": "text"}`, with `body_base64`
    /// instead of `body` for binary bodies.
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
        if !file.url.starts_with('/') {
            return Err(RequestError::RelativeUrl(file.url));
        }
        Ok(Self::new(&file.method, &file.url, file.headers, body))
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
        assert!(err(r#"{"method": "POST", "url": "http://x/"}"#).contains("must start with `/`"));
        assert!(
            err(r#"{"method": "POST", "url": "/", "headers": {"a": 1}}"#)
                .contains("header `a` must be a string")
        );
    }
}
