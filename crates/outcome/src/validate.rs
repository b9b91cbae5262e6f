//! The rules every parser result must follow before anything is dispatched or sent.
//!
//! A parser is tenant code: whatever it returns is checked here, and a result that breaks any
//! rule is refused whole, with every broken rule listed by field. The rules:
//!
//! | field | rule |
//! |---|---|
//! | `direction`, `src_phone`, `dst_phone` | required, unless `call_id` names the call: then any may be left out, and the host completes them from the call's earlier events |
//! | `src_phone`, `dst_phone` | 1 to [`MAX_PHONE_LEN`] characters from [`PHONE_CHARS`]; no space at either end |
//! | `src_phone_ext`, `dst_phone_ext` | absent, or 1 to [`MAX_EXTENSION_LEN`] characters from [`PHONE_CHARS`] (empty is refused: leave it out) |
//! | `src_phone_ext` | only when `direction` is `in` |
//! | `dst_phone_ext` | only when `direction` is `out` |
//! | `call_id`, `delivery_id` | absent, or 1 to [`MAX_CALL_ID_LEN`] bytes without control characters |
//! | `call_record.duration` | at most [`MAX_DURATION_SECONDS`] |
//! | `call_record.call` | 1 to [`MAX_CALL_DATA_BYTES`] bytes |
//! | `response.status` | 200 to 599 (a 1xx cannot be a final answer); no body with 204 or 304 |
//! | `response.headers` | at most [`MAX_RESPONSE_HEADERS`]; names are RFC 9110 tokens of at most [`MAX_HEADER_NAME_LEN`] bytes and not one the host owns ([`HOST_OWNED_HEADERS`]); values are at most [`MAX_HEADER_VALUE_LEN`] bytes of visible ASCII, space or tab (so no CR/LF injection) |
//! | `response.body` | at most [`MAX_RESPONSE_BODY_BYTES`] bytes |

use std::fmt;

use serde::Serialize;

use crate::outcome::{CallRecord, Direction, HttpResponse, Outcome, Parties, TelephonyEvent};

/// The longest phone number, extension-free: E.164 has 15 digits; SIP URIs need more.
pub const MAX_PHONE_LEN: usize = 64;
/// The longest extension.
pub const MAX_EXTENSION_LEN: usize = 32;
/// Characters allowed in phone numbers and extensions besides ASCII letters and digits:
/// enough for E.164, formatted numbers, `*`/`#` service codes and `sip:101@pbx` URIs.
pub const PHONE_CHARS: &str = "+*#@.:_-()/ ";
/// The longest call id (Twilio's are 34 bytes, UUIDs 36).
pub const MAX_CALL_ID_LEN: usize = 256;
/// The longest call a record may describe: a week.
pub const MAX_DURATION_SECONDS: u32 = 7 * 24 * 60 * 60;
/// The largest opaque `call` value of a call record.
pub const MAX_CALL_DATA_BYTES: usize = 8 * 1024;
/// The most headers a response may carry.
pub const MAX_RESPONSE_HEADERS: usize = 32;
/// The longest response header name.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// The longest response header value.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// The largest response body.
pub const MAX_RESPONSE_BODY_BYTES: usize = 64 * 1024;
/// Framing and connection headers: the host sets them, so a parser must not.
pub const HOST_OWNED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One broken rule: the offending field's path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field, e.g. `event.src_phone` or `response.headers[2].value`.
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

/// Every rule a result breaks; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, violation) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", violation.field, violation.rule)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Checks a parser's result against every rule above.
pub fn validate(outcome: &Outcome) -> Result<(), Violations> {
    let mut check = Checker::default();
    if let Some(event) = &outcome.event {
        check.event(event);
    }
    if let Some(record) = &outcome.call_record {
        check.call_record(record);
    }
    if let Some(response) = &outcome.response {
        check.response(response);
    }
    if let Some(delivery_id) = &outcome.delivery_id {
        check.id("delivery_id".into(), delivery_id);
    }
    if check.violations.is_empty() {
        Ok(())
    } else {
        Err(Violations(check.violations))
    }
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.violations.push(Violation {
            field: field.into(),
            rule: rule.into(),
        });
    }

    fn event(&mut self, event: &TelephonyEvent) {
        self.parties("event", &event.parties());
    }

    fn call_record(&mut self, record: &CallRecord) {
        self.parties("call_record", &record.parties());
        if record.duration > MAX_DURATION_SECONDS {
            self.fail(
                "call_record.duration",
                format!(
                    "{} seconds is longer than the limit of {MAX_DURATION_SECONDS}",
                    record.duration
                ),
            );
        }
        if record.call.is_empty() {
            self.fail("call_record.call", "must not be empty");
        } else if record.call.len() > MAX_CALL_DATA_BYTES {
            self.fail(
                "call_record.call",
                too_long(record.call.len(), MAX_CALL_DATA_BYTES),
            );
        }
    }

    fn parties(&mut self, part: &str, parties: &Parties<'_>) {
        if parties.call_id.is_none() {
            for (field, absent) in [
                ("direction", parties.direction.is_none()),
                ("src_phone", parties.src_phone.is_none()),
                ("dst_phone", parties.dst_phone.is_none()),
            ] {
                if absent {
                    self.fail(
                        format!("{part}.{field}"),
                        "required: only an event with a call_id may leave it out, to be \
                         completed from its call",
                    );
                }
            }
        }
        for (field, phone) in [
            ("src_phone", parties.src_phone),
            ("dst_phone", parties.dst_phone),
        ] {
            if let Some(phone) = phone {
                self.phone(format!("{part}.{field}"), phone, MAX_PHONE_LEN);
            }
        }
        if let Some(ext) = parties.src_phone_ext {
            let field = format!("{part}.src_phone_ext");
            self.extension(&field, ext);
            if parties.direction != Some(Direction::In) {
                self.fail(field, "only allowed when direction is `in`");
            }
        }
        if let Some(ext) = parties.dst_phone_ext {
            let field = format!("{part}.dst_phone_ext");
            self.extension(&field, ext);
            if parties.direction != Some(Direction::Out) {
                self.fail(field, "only allowed when direction is `out`");
            }
        }
        if let Some(call_id) = parties.call_id {
            self.id(format!("{part}.call_id"), call_id);
        }
    }

    /// An id the host keys on (a call's, a delivery's): printable, bounded, never empty.
    fn id(&mut self, field: String, id: &str) {
        if id.is_empty() {
            self.fail(field, "must not be empty (leave it out instead)");
        } else if id.len() > MAX_CALL_ID_LEN {
            self.fail(field, too_long(id.len(), MAX_CALL_ID_LEN));
        } else if id.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
        }
    }

    fn extension(&mut self, field: &str, ext: &str) {
        if ext.is_empty() {
            self.fail(field, "must not be empty (leave it out instead)");
        } else {
            self.phone(field.to_owned(), ext, MAX_EXTENSION_LEN);
        }
    }

    fn phone(&mut self, field: String, phone: &str, max_len: usize) {
        if let Err(rule) = check_phone(phone, max_len) {
            self.fail(field, rule);
        }
    }

    fn response(&mut self, response: &HttpResponse) {
        if !(200..=599).contains(&response.status) {
            self.fail(
                "response.status",
                format!(
                    "{} is not a final HTTP status (200 to 599)",
                    response.status
                ),
            );
        } else if matches!(response.status, 204 | 304) && !response.body.is_empty() {
            self.fail(
                "response.body",
                format!("must be empty with status {}", response.status),
            );
        }
        if response.headers.len() > MAX_RESPONSE_HEADERS {
            self.fail(
                "response.headers",
                format!(
                    "{} headers is more than the limit of {MAX_RESPONSE_HEADERS}",
                    response.headers.len()
                ),
            );
        }
        for (index, (name, value)) in response.headers.iter().enumerate() {
            self.header_name(index, name);
            self.header_value(index, value);
        }
        if response.body.len() > MAX_RESPONSE_BODY_BYTES {
            self.fail(
                "response.body",
                too_long(response.body.len(), MAX_RESPONSE_BODY_BYTES),
            );
        }
    }

    fn header_name(&mut self, index: usize, name: &str) {
        let field = format!("response.headers[{index}].name");
        if name.is_empty() {
            self.fail(field, "must not be empty");
        } else if name.len() > MAX_HEADER_NAME_LEN {
            self.fail(field, too_long(name.len(), MAX_HEADER_NAME_LEN));
        } else if let Some(bad) = name.chars().find(|&c| !is_token_char(c)) {
            self.fail(
                field,
                format!("contains {bad:?}, which is not allowed in a header name"),
            );
        } else if HOST_OWNED_HEADERS
            .iter()
            .any(|owned| owned.eq_ignore_ascii_case(name))
        {
            self.fail(
                field,
                format!("`{name}` is set by the host, not by parsers"),
            );
        }
    }

    fn header_value(&mut self, index: usize, value: &str) {
        let field = format!("response.headers[{index}].value");
        if value.len() > MAX_HEADER_VALUE_LEN {
            self.fail(field, too_long(value.len(), MAX_HEADER_VALUE_LEN));
        } else if let Some(bad) = value
            .chars()
            .find(|&c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
        {
            self.fail(
                field,
                format!("contains {bad:?}; allowed are visible ASCII, space and tab (no CR/LF)"),
            );
        }
    }
}

/// The rule for a phone number or an extension of at most `max_len` bytes
/// ([`MAX_PHONE_LEN`], [`MAX_EXTENSION_LEN`]); the error says what is wrong. Public so that the
/// guest SDK checks numbers with the host's own words.
pub fn check_phone(phone: &str, max_len: usize) -> Result<(), String> {
    if phone.is_empty() {
        Err("must not be empty".into())
    } else if phone.len() > max_len {
        Err(too_long(phone.len(), max_len))
    } else if let Some(bad) = phone
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && !PHONE_CHARS.contains(c))
    {
        Err(format!(
            "contains {bad:?}; allowed are ASCII letters, digits and {PHONE_CHARS:?}"
        ))
    } else if phone.starts_with(' ') || phone.ends_with(' ') {
        Err("must not start or end with a space".into())
    } else {
        Ok(())
    }
}

fn too_long(len: usize, max: usize) -> String {
    format!("{len} bytes is longer than the limit of {max}")
}

/// RFC 9110 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Disposition, EventType};

    fn event(direction: Direction) -> TelephonyEvent {
        TelephonyEvent {
            event: EventType::NotifyStart,
            direction: Some(direction),
            disposition: Disposition::Unknown,
            src_phone: Some("+79161234567".into()),
            src_phone_ext: None,
            dst_phone: Some("101".into()),
            dst_phone_ext: None,
            call_id: Some("1700000000.123".into()),
        }
    }

    fn with_event(event: TelephonyEvent) -> Outcome {
        Outcome {
            event: Some(event),
            call_record: None,
            response: None,
            delivery_id: None,
        }
    }

    fn with_response(response: HttpResponse) -> Outcome {
        Outcome {
            event: None,
            call_record: None,
            response: Some(response),
            delivery_id: None,
        }
    }

    fn fields(outcome: &Outcome) -> Vec<String> {
        validate(outcome)
            .unwrap_err()
            .0
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_delivery_id_is_an_id() {
        for (id, rule) in [
            ("", "must not be empty (leave it out instead)"),
            ("a\u{7}b", "must not contain control characters"),
        ] {
            let outcome = Outcome {
                delivery_id: Some(id.into()),
                ..Outcome::default()
            };
            let broken = validate(&outcome).expect_err("refused");
            assert_eq!(
                (broken.0[0].field.as_str(), broken.0[0].rule.as_str()),
                ("delivery_id", rule)
            );
        }
        let outcome = Outcome {
            delivery_id: Some("RE5b1d7e1f".into()),
            ..Outcome::default()
        };
        assert_eq!(validate(&outcome), Ok(()));
    }

    #[test]
    fn well_formed_results_pass() {
        let empty = Outcome {
            event: None,
            call_record: None,
            response: None,
            delivery_id: None,
        };
        assert_eq!(validate(&empty), Ok(()));
        let mut incoming = event(Direction::In);
        incoming.src_phone_ext = Some("101".into());
        incoming.src_phone = Some("sip:+7 (916) 123-45-67@pbx.example".into());
        assert_eq!(validate(&with_event(incoming)), Ok(()));
    }

    #[test]
    fn every_broken_rule_is_listed_by_field() {
        let mut bad = event(Direction::Internal);
        bad.src_phone = Some(String::new());
        bad.dst_phone = Some("1".repeat(MAX_PHONE_LEN + 1));
        bad.src_phone_ext = Some("7".into());
        bad.dst_phone_ext = Some(String::new());
        bad.call_id = Some("a\nb".into());
        let violations = validate(&with_event(bad)).unwrap_err();
        let listed: Vec<_> = violations
            .0
            .iter()
            .map(|v| (v.field.as_str(), v.rule.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("event.src_phone", "must not be empty"),
                ("event.dst_phone", "65 bytes is longer than the limit of 64"),
                ("event.src_phone_ext", "only allowed when direction is `in`"),
                (
                    "event.dst_phone_ext",
                    "must not be empty (leave it out instead)"
                ),
                (
                    "event.dst_phone_ext",
                    "only allowed when direction is `out`"
                ),
                ("event.call_id", "must not contain control characters"),
            ]
        );
        assert!(
            violations
                .to_string()
                .starts_with("event.src_phone: must not be empty; ")
        );
    }

    #[test]
    fn only_an_event_with_a_call_id_may_name_only_its_call() {
        let mut partial = event(Direction::In);
        partial.event = EventType::NotifyEnd;
        partial.direction = None;
        partial.src_phone = None;
        partial.dst_phone = None;
        assert_eq!(validate(&with_event(partial.clone())), Ok(()));
        partial.call_id = None;
        assert_eq!(
            fields(&with_event(partial)),
            ["event.direction", "event.src_phone", "event.dst_phone"]
        );
    }

    #[test]
    fn extensions_follow_the_direction() {
        let mut outgoing = event(Direction::Out);
        outgoing.dst_phone_ext = Some("101".into());
        assert_eq!(validate(&with_event(outgoing.clone())), Ok(()));
        outgoing.src_phone_ext = Some("102".into());
        assert_eq!(fields(&with_event(outgoing)), ["event.src_phone_ext"]);
    }

    #[test]
    fn phones_refuse_odd_characters_and_padding() {
        let mut bad = event(Direction::In);
        bad.src_phone = Some("+7916<script>".into());
        bad.dst_phone = Some(" 101".into());
        let violations = validate(&with_event(bad)).unwrap_err();
        assert!(violations.0[0].rule.starts_with("contains '<'"));
        assert_eq!(violations.0[1].rule, "must not start or end with a space");
    }

    #[test]
    fn call_records_bound_duration_and_call_data() {
        let record = CallRecord {
            call_id: None,
            direction: Some(Direction::Out),
            disposition: Disposition::Answered,
            src_phone: Some("101".into()),
            src_phone_ext: None,
            dst_phone: Some("+79161234567".into()),
            dst_phone_ext: Some("101".into()),
            duration: MAX_DURATION_SECONDS + 1,
            call: String::new(),
        };
        let outcome = Outcome {
            event: None,
            call_record: Some(record),
            response: None,
            delivery_id: None,
        };
        assert_eq!(
            fields(&outcome),
            ["call_record.duration", "call_record.call"]
        );
    }

    #[test]
    fn response_headers_cannot_inject_or_take_over_framing() {
        let response = HttpResponse {
            status: 200,
            headers: vec![
                ("x-ok".into(), "fine value\twith tab".into()),
                ("x-evil".into(), "a\r\nset-cookie: b".into()),
                ("bad name".into(), "v".into()),
                ("Content-Length".into(), "0".into()),
                (String::new(), "v".into()),
            ],
            body: vec![],
        };
        assert_eq!(
            fields(&with_response(response)),
            [
                "response.headers[1].value",
                "response.headers[2].name",
                "response.headers[3].name",
                "response.headers[4].name",
            ]
        );
    }

    #[test]
    fn response_status_and_body_are_bounded() {
        let informational = HttpResponse {
            status: 101,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(fields(&with_response(informational)), ["response.status"]);
        let no_content_with_body = HttpResponse {
            status: 204,
            headers: vec![],
            body: b"x".to_vec(),
        };
        assert_eq!(
            fields(&with_response(no_content_with_body)),
            ["response.body"]
        );
        let huge = HttpResponse {
            status: 200,
            headers: vec![("x".into(), "y".into()); MAX_RESPONSE_HEADERS + 1],
            body: vec![b'a'; MAX_RESPONSE_BODY_BYTES + 1],
        };
        assert_eq!(
            fields(&with_response(huge)),
            ["response.headers", "response.body"]
        );
    }
}
