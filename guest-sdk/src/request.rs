//! Reading the provider's request.
//!
//! Providers and proxies disagree on header-name case, so every name lookup here ignores ASCII
//! case. Bodies are parsed on demand: a parser pays only for the format its provider uses.

use serde::de::DeserializeOwned;

use crate::{ParseError, Request};

impl Request {
    /// The first value of a header, whatever the case of its name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The first value of a query parameter (exact name match, as query names are
    /// case-sensitive).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The path without its query string.
    pub fn path(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(path, _)| path)
    }

    /// Whether the request used this HTTP method, ignoring case.
    pub fn is_method(&self, method: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
    }

    /// The body as UTF-8 text.
    pub fn body_text(&self) -> Result<&str, ParseError> {
        std::str::from_utf8(&self.body)
            .map_err(|err| ParseError::new(format!("the body is not UTF-8 text: {err}")))
    }

    /// The body decoded as `application/x-www-form-urlencoded`, the format most PBXs post.
    pub fn form(&self) -> Form {
        Form::parse(&self.body)
    }

    /// The body deserialized from JSON into any serde type (or `serde_json::Value`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ParseError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| ParseError::new(format!("the body is not the expected JSON: {err}")))
    }
}

/// Decoded `application/x-www-form-urlencoded` pairs, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes a form body; malformed escapes are kept literally rather than rejected, as
    /// browsers and PBXs do.
    pub fn parse(body: &[u8]) -> Self {
        let pairs = form_urlencoded::parse(body)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Self { pairs }
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of a field the provider always sends, naming it in the error when it is
    /// missing.
    pub fn require(&self, name: &str) -> Result<&str, ParseError> {
        self.get(name)
            .ok_or_else(|| ParseError::new(format!("the form field `{name}` is missing")))
    }

    /// Every pair, in the order they were sent (signature schemes often need them all).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".into(),
            path_with_query: "/hook?zd_echo=42&a=1".into(),
            query: vec![("zd_echo".into(), "42".into()), ("a".into(), "1".into())],
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            url: "https://hooks.example.com/hook?zd_echo=42&a=1".into(),
            route_suffix: String::new(),
            received_at_ms: 1_796_119_200_000,
        }
    }

    #[test]
    fn header_lookup_ignores_case() {
        let request = request(&[("signature", "abc")], "");
        assert_eq!(request.header("Signature"), Some("abc"));
        assert_eq!(request.header("SIGNATURE"), Some("abc"));
        assert_eq!(request.header("x-other"), None);
    }

    #[test]
    fn query_and_path_are_split() {
        let request = request(&[], "");
        assert_eq!(request.query_param("zd_echo"), Some("42"));
        assert_eq!(request.query_param("ZD_ECHO"), None);
        assert_eq!(request.path(), "/hook");
    }

    #[test]
    fn form_body_is_decoded_in_order() {
        let request = request(&[], "cmd=event&phone=%2B7916&ext=101&phone=dup");
        let form = request.form();
        assert_eq!(form.get("phone"), Some("+7916"));
        assert_eq!(form.pairs().len(), 4);
        assert_eq!(
            form.require("type").unwrap_err().message,
            "the form field `type` is missing"
        );
    }

    #[test]
    fn json_body_errors_say_what_was_wrong() {
        let request = request(&[], "{not json");
        let err = request.json::<serde_json::Value>().unwrap_err();
        assert!(err.message.starts_with("the body is not the expected JSON"));
    }
}
