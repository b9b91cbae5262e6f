//! Reading the provider's request.
//!
//! Providers and proxies disagree on header-name case, so every name lookup here ignores ASCII
//! case. Bodies are parsed on demand: a parser pays only for the format its provider uses.
//! Providers that let the admin choose `GET` or `POST` (Twilio, Plivo, Exotel) send the same
//! parameters in the query or in a form body; [`Request::params`] reads either.

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

    /// The request's parameters wherever the provider put them: the form body's fields first,
    /// then the query's, so that one parser serves a callback configured as `GET` or `POST`.
    pub fn params(&self) -> Form {
        let mut pairs = self.form().pairs;
        pairs.extend(self.query.iter().cloned());
        Form { pairs }
    }

    /// The receive time in whole Unix seconds, the clock signatures' timestamps are checked
    /// against.
    pub fn received_at_secs(&self) -> i64 {
        i64::try_from(self.received_at_ms / 1000).unwrap_or(i64::MAX)
    }

    /// Refuses a request whose signed timestamp (Unix seconds) is more than `tolerance_secs`
    /// away from the receive time, either way: a replayed capture is stale, and a timestamp
    /// from the future is forged. `403`, naming both times.
    pub fn require_fresh(
        &self,
        timestamp_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), ParseError> {
        let now = self.received_at_secs();
        if now.abs_diff(timestamp_secs) > tolerance_secs.unsigned_abs() {
            return Err(ParseError::forbidden(format!(
                "the request's timestamp {timestamp_secs} is more than {tolerance_secs} s from \
                 its receive time {now}: stale or replayed"
            )));
        }
        Ok(())
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

    /// Fields from pairs a parser gathered itself (a multipart body, JSON flattened to text),
    /// to read them with the same helpers.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The first value of a field, absent when the provider sent it empty or blank (many send
    /// every field and leave the unknown ones empty).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.trim().is_empty())
    }

    /// A whole number of seconds (a duration); 0 when the field is absent or empty, an error
    /// naming the field when it is not a number.
    pub fn seconds(&self, name: &str) -> Result<u32, ParseError> {
        match self.non_empty(name).map(str::trim) {
            None => Ok(0),
            Some(value) => value.parse().map_err(|_| {
                ParseError::new(format!("`{name}` is not a number of seconds: {value:?}"))
            }),
        }
    }

    /// A number field as the platform takes it ([`phone::number`](crate::phone::number): a SIP
    /// URI's user part, `anonymous` for a withheld caller), refused with the host's own rule
    /// when the host would refuse it.
    pub fn phone(&self, name: &str) -> Result<String, ParseError> {
        let number = crate::phone::number(self.get(name).unwrap_or_default());
        crate::phone::check(&number)
            .map_err(|rule| ParseError::new(format!("the `{name}` number {number:?} {rule}")))?;
        Ok(number)
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

    /// The fields nested under `name` in PHP's bracket notation, with the prefix taken off:
    /// Bitrix24 posts `data[CALL_ID]=...&auth[application_token]=...`, so
    /// `form.section("data").get("CALL_ID")` reads the first, and deeper levels stay
    /// bracketed (`data[A][B]` is `A[B]` in the section, its own `section("A")`).
    pub fn section(&self, name: &str) -> Form {
        let pairs = self
            .pairs
            .iter()
            .filter_map(|(key, value)| {
                let rest = key.strip_prefix(name)?.strip_prefix('[')?;
                let (inner, deeper) = rest.split_once(']')?;
                Some((format!("{inner}{deeper}"), value.clone()))
            })
            .collect();
        Form { pairs }
    }

    /// A field that carries a JSON document (Mango Office posts its events as `json=...`),
    /// deserialized into any serde type; the error names the field.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, ParseError> {
        serde_json::from_str(self.require(name)?).map_err(|err| {
            ParseError::new(format!(
                "the form field `{name}` is not the expected JSON: {err}"
            ))
        })
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
    fn fields_give_numbers_phones_and_seconds() {
        let form = Form::from_pairs(vec![
            ("from".into(), "sip:+79161234567@pbx".into()),
            ("to".into(), "  ".into()),
            ("bad".into(), "+7916;ext=1".into()),
            ("duration".into(), "42".into()),
            ("ring".into(), "".into()),
            ("talk".into(), "4s".into()),
        ]);
        assert_eq!(form.phone("from").expect("a number"), "+79161234567");
        assert_eq!(form.phone("to").expect("withheld"), "anonymous");
        let bad = form.phone("bad").unwrap_err();
        assert!(
            bad.message.starts_with("the `bad` number"),
            "{}",
            bad.message
        );
        assert_eq!(form.non_empty("to"), None);
        assert_eq!(form.seconds("duration").expect("a number"), 42);
        assert_eq!(form.seconds("ring").expect("empty"), 0);
        assert_eq!(form.seconds("absent").expect("absent"), 0);
        assert_eq!(
            form.seconds("talk").unwrap_err().message,
            "`talk` is not a number of seconds: \"4s\""
        );
    }

    #[test]
    fn params_come_from_the_form_then_the_query() {
        let request = request(&[], "CallSid=CA1&a=2");
        let params = request.params();
        assert_eq!(params.get("CallSid"), Some("CA1"));
        assert_eq!(params.get("a"), Some("2"));
        assert_eq!(params.get("zd_echo"), Some("42"));
    }

    #[test]
    fn php_sections_strip_their_prefix() {
        let form = Form::parse(
            b"event=ONEXTERNALCALLSTART&data%5BCALL_ID%5D=ext.1&data%5BPHONE%5D%5B0%5D=%2B7&auth%5Bapplication_token%5D=t0k&database=x",
        );
        let data = form.section("data");
        assert_eq!(data.get("CALL_ID"), Some("ext.1"));
        assert_eq!(data.section("PHONE").get("0"), Some("+7"));
        assert_eq!(form.section("auth").get("application_token"), Some("t0k"));
        assert_eq!(form.section("data").get("database"), None);
        assert_eq!(form.section("dat").pairs().len(), 0);
    }

    #[test]
    fn a_json_field_is_read_or_named_in_the_error() {
        let form = Form::parse(b"vpbx_api_key=k&json=%7B%22call_state%22%3A%22Appeared%22%7D");
        let event: serde_json::Value = form.json("json").expect("JSON");
        assert_eq!(event["call_state"], "Appeared");
        let err = Form::parse(b"json=%7Bnot")
            .json::<serde_json::Value>("json")
            .unwrap_err();
        assert!(
            err.message
                .starts_with("the form field `json` is not the expected JSON")
        );
        let err = Form::parse(b"")
            .json::<serde_json::Value>("json")
            .unwrap_err();
        assert_eq!(err.message, "the form field `json` is missing");
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let request = request(&[], "");
        let now = request.received_at_secs();
        assert_eq!(now, 1_796_119_200);
        assert!(request.require_fresh(now - 300, 300).is_ok());
        assert!(request.require_fresh(now + 300, 300).is_ok());
        let stale = request.require_fresh(now - 301, 300).unwrap_err();
        assert_eq!(stale.status, Some(403));
        assert!(request.require_fresh(now + 301, 300).is_err());
    }

    #[test]
    fn json_body_errors_say_what_was_wrong() {
        let request = request(&[], "{not json");
        let err = request.json::<serde_json::Value>().unwrap_err();
        assert!(err.message.starts_with("the body is not the expected JSON"));
    }
}
