//! Testing a parser natively, with `cargo test`, before building it for WebAssembly.
//!
//! On the host the two things the sandbox grants a parser, [`settings`](crate::settings) and
//! the [`log`](crate::log), come from a [`Harness`] instead: it sets the settings, runs the
//! parser, and hands back what it returned together with what it logged. [`Parsed::outcome`]
//! also applies the host's validation, so a test fails on a result the host would refuse.
//!
//! ```
//! use telehook_guest::prelude::*;
//! use telehook_guest::testing::{Harness, TestRequest};
//!
//! struct Token;
//!
//! impl Parser for Token {
//!     fn parse(request: Request) -> Result<ParseResult, ParseError> {
//!         let token = settings::require("token")?;
//!         if request.query_param("token") != Some(token.as_str()) {
//!             log::warn("wrong token");
//!             return Err(ParseError::unauthorized("wrong token"));
//!         }
//!         Ok(ParseResult::empty())
//!     }
//! }
//!
//! let harness = Harness::new().setting("token", "s3cret");
//! let refused = harness.parse::<Token>(TestRequest::get("https://hooks.example.com/h?token=x"));
//! assert_eq!(refused.refusal().status, Some(401));
//! let parsed = harness.parse::<Token>(TestRequest::get("https://hooks.example.com/h?token=s3cret"));
//! assert!(parsed.log.is_empty());
//! assert_eq!(parsed.outcome(), ParseResult::empty());
//! ```

use std::cell::RefCell;

use crate::log::LogLevel;
use crate::{ParseError, ParseResult, Parser, Request};

thread_local! {
    /// The harness running a parse on this thread, if any.
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct Session {
    settings: Vec<(String, String)>,
    log: Vec<LogLine>,
    redacted: Vec<String>,
}

/// One line the parser logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// How much it matters.
    pub level: LogLevel,
    /// What it says.
    pub message: String,
}

/// Runs parsers natively with the integration settings a test gives.
#[derive(Debug, Clone, Default)]
pub struct Harness {
    settings: Vec<(String, String)>,
}

impl Harness {
    /// A harness with no settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an integration setting, as an admin would.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// Runs parser `P` on one request, as the host would, and returns what it returned and
    /// logged.
    pub fn parse<P: Parser>(&self, request: impl Into<Request>) -> Parsed {
        let previous = SESSION.replace(Some(Session {
            settings: self.settings.clone(),
            ..Session::default()
        }));
        let result = P::parse(request.into());
        let session = SESSION.replace(previous).unwrap_or_default();
        Parsed {
            result,
            log: session.log,
            redacted: session.redacted,
        }
    }
}

/// What one parse returned, and the lines it logged on the way.
#[derive(Debug, Clone)]
#[must_use]
pub struct Parsed {
    /// The parser's result, as it returned it.
    pub result: Result<ParseResult, ParseError>,
    /// Every line it logged, in order.
    pub log: Vec<LogLine>,
    /// The values it asked the host never to show ([`log::redact`](crate::log::redact)).
    pub redacted: Vec<String>,
}

impl Parsed {
    /// The result, after checking it against the host's rules; panics, with the refusal or the
    /// broken rules and the log, when the host would not accept it.
    #[track_caller]
    pub fn outcome(self) -> ParseResult {
        match self.result {
            Ok(result) => {
                if let Err(violations) = result.validate() {
                    panic!(
                        "the host would refuse this result: {violations}\nlog: {:#?}",
                        self.log
                    );
                }
                result
            }
            Err(err) => panic!(
                "the parser refused the request ({:?}): {}\nlog: {:#?}",
                err.status, err.message, self.log
            ),
        }
    }

    /// The refusal; panics when the parser accepted the request.
    #[track_caller]
    pub fn refusal(self) -> ParseError {
        match self.result {
            Err(err) => err,
            Ok(result) => panic!("the parser accepted the request: {result:?}"),
        }
    }
}

/// A request to feed a parser in a test, built as the host builds one from an HTTP request.
#[derive(Debug, Clone)]
pub struct TestRequest {
    request: Request,
}

impl TestRequest {
    /// A request with `method` to `url` (absolute, with scheme and host): the query is decoded
    /// from the URL, and it was received at 2026-12-01T10:00:00Z unless
    /// [`received_at_ms`](Self::received_at_ms) says otherwise.
    pub fn new(method: &str, url: &str) -> Self {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path_with_query = after_scheme
            .find('/')
            .map_or("/", |start| &after_scheme[start..]);
        let query = path_with_query
            .split_once('?')
            .map(|(_, query)| {
                form_urlencoded::parse(query.as_bytes())
                    .map(|(key, value)| (key.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            request: Request {
                method: method.to_ascii_uppercase(),
                path_with_query: path_with_query.to_owned(),
                query,
                headers: Vec::new(),
                body: Vec::new(),
                url: url.to_owned(),
                route_suffix: String::new(),
                received_at_ms: 1_796_119_200_000,
            },
        }
    }

    /// A `GET` to `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` to `url`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header; the host hands parsers lower-case names.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Sets a form-urlencoded body from its fields, with its content type.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Sets a JSON body, with its content type.
    pub fn json(self, body: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Sets what follows the webhook URL's token (contract 0.2's `route-suffix`).
    pub fn route_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.request.route_suffix = suffix.into();
        self
    }

    /// Sets the receive time, in Unix milliseconds.
    pub fn received_at_ms(mut self, ms: u64) -> Self {
        self.request.received_at_ms = ms;
        self
    }
}

impl From<TestRequest> for Request {
    fn from(test: TestRequest) -> Self {
        test.request
    }
}

/// The running harness's setting; none outside a harness.
pub(crate) fn setting(key: &str) -> Option<String> {
    SESSION.with_borrow(|session| {
        session.as_ref().and_then(|session| {
            session
                .settings
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        })
    })
}

/// Records a value to hide for the running harness.
pub(crate) fn redact(secret: &str) {
    SESSION.with_borrow_mut(|session| {
        if let Some(session) = session {
            session.redacted.push(secret.to_owned());
        }
    });
}

/// Records a line for the running harness; outside one, prints it to stderr.
pub(crate) fn log(level: LogLevel, message: &str) {
    SESSION.with_borrow_mut(|session| match session {
        Some(session) => session.log.push(LogLine {
            level,
            message: message.to_owned(),
        }),
        None => eprintln!("parser {level:?}: {message}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{log as parser_log, settings};

    struct Echo;

    impl Parser for Echo {
        fn parse(request: Request) -> Result<ParseResult, ParseError> {
            parser_log::info(&format!("{} {}", request.method, request.path_with_query));
            parser_log::redact("hidden-value");
            let key = settings::require("key")?;
            Ok(ParseResult::with_response(crate::Response::text(200, key)))
        }
    }

    #[test]
    fn a_harness_grants_settings_and_keeps_the_log() {
        let parsed = Harness::new()
            .setting("key", "v1")
            .parse::<Echo>(TestRequest::post("https://h.example.com/a/b?x=1").form(&[("a", "1")]));
        assert_eq!(parsed.log.len(), 1);
        assert_eq!(parsed.log[0].message, "POST /a/b?x=1");
        assert_eq!(parsed.redacted, ["hidden-value"]);
        assert_eq!(parsed.outcome().response.expect("a response").body, b"v1");
        let missing = Harness::new().parse::<Echo>(TestRequest::get("https://h.example.com/"));
        let refusal = missing.refusal();
        assert_eq!(refusal.message, "the integration setting `key` is not set");
        assert_eq!(refusal.setting.as_deref(), Some("key"));
        assert_eq!(settings::get("key"), None, "nothing leaks out of a harness");
    }

    #[test]
    fn test_requests_are_built_as_the_host_builds_them() {
        let request: Request = TestRequest::get("https://h.example.com/hook?zd_echo=42&a=%2B1")
            .header("Signature", "abc")
            .into();
        assert_eq!(request.path_with_query, "/hook?zd_echo=42&a=%2B1");
        assert_eq!(request.query_param("a"), Some("+1"));
        assert_eq!(request.headers[0].0, "signature");
        assert_eq!(request.received_at_secs(), 1_796_119_200);
    }
}
