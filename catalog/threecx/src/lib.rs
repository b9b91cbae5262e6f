//! A parser for 3CX's server-side CRM integration (<https://www.3cx.com/docs/crm-template-xml-description/>).
//!
//! 3CX sends no call-event webhooks of its own. What it does call is the CRM template an admin
//! uploads, and this crate ships one (`telehook.xml`) with two scenarios:
//!
//! - contact lookup, `GET <url>/lookup?number=...` when a call comes in: answered
//!   `{"contacts":[]}` ("no contact"), no event, as a lookup is not once per call;
//! - call journaling (`ReportCall`), `POST <url>/journal` with a flat JSON object of strings
//!   once the call has ended: one `notify-end` and its call record.
//!
//! | `call_type` | direction | src → dst | ext | disposition |
//! |---|---|---|---|---|
//! | `Inbound` | in | `number` → `agent` | src = `agent` | answered |
//! | `Missed` | in | `number` → `agent`, else `queue` | | no-answer |
//! | `Outbound` | out | `agent` → `number` | dst = `agent` | answered |
//! | `Notanswered`/`Unanswered` | out | `agent` → `number` | dst = `agent` | no-answer |
//!
//! Journaling has no call id, so the call is named `3cx:<number>:<start_utc>`, the same for
//! the one request per call. Variables 3CX leaves unfilled arrive as their `[Name]` text and
//! count as absent. 3CX signs nothing: the template authenticates with HTTP Basic, checked
//! in constant time against `basic_user`/`basic_password`.

use serde_json::{Map, Value, json};
use telehook_guest::prelude::*;

/// The setting: the user the template sends in its Basic `Authorization`.
const BASIC_USER: &str = "basic_user";
/// The setting: the password the template sends in its Basic `Authorization`.
const BASIC_PASSWORD: &str = "basic_password";
/// The optional setting: `false` when `[Agent]` holds a name rather than the extension.
const AGENT_IS_EXTENSION: &str = "agent_is_extension";

/// The route suffix of the lookup scenario in `telehook.xml`.
const LOOKUP: &str = "lookup";
/// The most opaque `call` data the host stores.
const MAX_CALL_DATA_BYTES: usize = 8 * 1024;

struct ThreeCx;

impl Parser for ThreeCx {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        check_basic_auth(&request)?;
        if request.route_suffix.trim_matches('/') == LOOKUP || request.is_method("GET") {
            log::info("contact lookup: telehook keeps no contacts, answered \"no contact\"");
            return Ok(ParseResult::with_response(Response::json(
                200,
                &json!({"contacts": []}),
            )));
        }
        let journal = request.json::<Map<String, Value>>().map_err(|err| {
            ParseError::new(format!(
                "the journal is not a JSON object (the template's ReportCall must post \
                 RequestEncoding=\"Json\"): {}",
                err.message
            ))
        })?;
        let journal = Journal(journal);
        Ok(journal
            .result()
            .and_response(Response::json(200, &json!({}))))
    }
}

/// Checks `Authorization: Basic base64(user:password)` against the settings; both parts are
/// compared in constant time, and the header is never logged.
fn check_basic_auth(request: &Request) -> Result<(), ParseError> {
    let user = settings::require(BASIC_USER)?;
    let password = settings::require(BASIC_PASSWORD)?;
    let header = request.header("authorization").ok_or_else(|| {
        ParseError::unauthorized(
            "the `Authorization` header is missing: the 3CX template must use \
             <Authentication Type=\"Basic\">",
        )
    })?;
    let (scheme, encoded) = header.trim().split_once(' ').unwrap_or((header, ""));
    let credentials = crypto::base64_decode(encoded.trim())
        .filter(|_| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((got_user, got_password)) =
        credentials.as_deref().and_then(|text| text.split_once(':'))
    else {
        return Err(ParseError::unauthorized(
            "the `Authorization` header is not `Basic base64(user:password)`",
        ));
    };
    let user_ok = crypto::constant_time_eq(got_user.as_bytes(), user.as_bytes());
    let password_ok = crypto::constant_time_eq(got_password.as_bytes(), password.as_bytes());
    if user_ok & password_ok {
        Ok(())
    } else {
        Err(ParseError::unauthorized(
            "the Basic credentials do not match the settings `basic_user` and `basic_password`",
        ))
    }
}

/// The body of the `ReportCall` scenario: the template's keys, each a 3CX variable.
struct Journal(Map<String, Value>);

impl Journal {
    /// A variable's value: absent when missing, empty, or left unfilled as `[Variable]`.
    fn get(&self, key: &str) -> Option<String> {
        let text = match self.0.get(key)? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            _ => return None,
        };
        let unfilled = text.starts_with('[') && text.ends_with(']');
        (!text.is_empty() && !unfilled).then_some(text)
    }

    /// The agent as an extension the host accepts, unless the admin said it holds a name.
    fn agent(&self) -> Option<String> {
        let is_extension = settings::get(AGENT_IS_EXTENSION).is_none_or(|v| {
            !matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no")
        });
        self.get("agent")
            .filter(|_| is_extension)
            .map(|agent| phone::number(&agent))
            .filter(|agent| phone::check(agent).is_ok())
    }

    /// The end of the call and its record, or nothing (logged) for a call type it cannot map.
    fn result(&self) -> ParseResult {
        let call_type = self.get("call_type").unwrap_or_default();
        let (direction, disposition) = match call_type.to_ascii_lowercase().as_str() {
            "inbound" => (Direction::In, Disposition::Answered),
            "missed" => (Direction::In, Disposition::NoAnswer),
            "outbound" => (Direction::Out, Disposition::Answered),
            "notanswered" | "unanswered" => (Direction::Out, Disposition::NoAnswer),
            _ => {
                log::info(&format!(
                    "ignoring a journal entry with call_type {call_type:?}: not a call type \
                     3CX journals"
                ));
                return ParseResult::empty();
            }
        };
        let Some(event) = self.event(direction) else {
            log::warn(&format!(
                "a {call_type} journal entry names no usable agent or queue: no event"
            ));
            return ParseResult::empty();
        };
        let event = event.with_disposition(disposition);
        let duration = match disposition {
            Disposition::Answered => self.talk_seconds(),
            _ => 0,
        };
        let record = CallRecord::of_event(&event, duration, self.call_data());
        ParseResult::with_event(event).and_call_record(record)
    }

    /// The `notify-end` of the parties; `None` without an operator to name.
    fn event(&self, direction: Direction) -> Option<TelephonyEvent> {
        let client = phone::number(&self.get("number").unwrap_or_default());
        if let Err(why) = phone::check(&client) {
            log::warn(&format!("unusable number {client:?}: {why}"));
            return None;
        }
        let agent = self.agent();
        let event = match direction {
            Direction::In => {
                let queue = self.get("queue").filter(|q| phone::check(q).is_ok());
                let operator = agent.clone().or(queue)?;
                let event = TelephonyEvent::new(EventType::NotifyEnd, direction, client, operator);
                let answered = self
                    .get("call_type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("inbound"));
                match agent.filter(|_| answered) {
                    Some(agent) => event.with_src_phone_ext(agent),
                    None => event,
                }
            }
            _ => {
                let agent = agent?;
                TelephonyEvent::new(EventType::NotifyEnd, direction, agent.clone(), client)
                    .with_dst_phone_ext(agent)
            }
        };
        Some(match self.call_id() {
            Some(call_id) => event.with_call_id(call_id),
            None => event,
        })
    }

    /// Journaling carries no call id; the number and the start time name the call, as the
    /// Zammad 3CX integration does.
    fn call_id(&self) -> Option<String> {
        let start = self.get("start_utc")?;
        Some(format!(
            "3cx:{}:{start}",
            self.get("number").unwrap_or_default()
        ))
    }

    /// The conversation: end − established when both are set, else `duration_s`, else
    /// `duration` (`hh:mm:ss`); 0 when none can be read.
    fn talk_seconds(&self) -> u32 {
        let at = |key| self.get(key).as_deref().and_then(time::unix_secs);
        if let (Some(established), Some(end)) = (at("established_utc"), at("end_utc")) {
            return u32::try_from((end - established).max(0)).unwrap_or(u32::MAX);
        }
        let seconds = self
            .get("duration_s")
            .and_then(|s| s.split('.').next().and_then(|s| s.parse().ok()))
            .or_else(|| self.get("duration").as_deref().and_then(hms_seconds));
        seconds.unwrap_or_else(|| {
            log::warn("an answered call without a readable duration: duration 0");
            0
        })
    }

    /// The record's opaque data: the journal entry itself (trimmed to the host's bound).
    fn call_data(&self) -> String {
        let whole = Value::Object(self.0.clone()).to_string();
        if whole.len() <= MAX_CALL_DATA_BYTES {
            return whole;
        }
        let known = [
            "call_type",
            "number",
            "agent",
            "queue",
            "start_utc",
            "end_utc",
        ];
        let subset: Map<String, Value> = known
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), Value::String(self.get(key)?))))
            .collect();
        Value::Object(subset).to_string()
    }
}

/// `hh:mm:ss` (3CX's `[Duration]`) in seconds.
fn hms_seconds(text: &str) -> Option<u32> {
    let mut total = 0u32;
    for part in text.split(':') {
        let part: u32 = part.split('.').next()?.parse().ok()?;
        total = total.checked_mul(60)?.checked_add(part)?;
    }
    Some(total)
}

telehook_guest::export_parser!(ThreeCx);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    /// `base64("telehook:s3cr3t")`.
    const AUTH: &str = "Basic dGVsZWhvb2s6czNjcjN0";

    fn harness() -> Harness {
        Harness::new()
            .setting(BASIC_USER, "telehook")
            .setting(BASIC_PASSWORD, "s3cr3t")
    }

    fn journal(body: serde_json::Value) -> TestRequest {
        TestRequest::post("https://hooks.example.com/hooks/acme/t0k3n/journal")
            .route_suffix("journal")
            .header("authorization", AUTH)
            .json(&body)
    }

    #[test]
    fn utc_times_and_durations_are_read() {
        assert_eq!(time::unix_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(time::unix_secs("2026-03-11T14:28:52Z"), Some(1_773_239_332));
        assert_eq!(
            time::unix_secs("2024-02-29 23:59:59.123"),
            Some(1_709_251_199)
        );
        assert_eq!(time::unix_secs("11.03.2026 15:28"), None);
        assert_eq!(hms_seconds("01:02:03"), Some(3_723));
    }

    #[test]
    fn unfilled_variables_count_as_absent() {
        let outcome = harness()
            .parse::<ThreeCx>(journal(json!({
                "call_type": "Missed", "number": "+4930123456", "agent": "[Agent]",
                "queue": "800", "start_utc": "[CallStartTimeUTC]",
            })))
            .outcome();
        let event = outcome.event.expect("an end");
        assert_eq!(event.dst_phone.as_deref(), Some("800"));
        assert_eq!((event.call_id, event.src_phone_ext), (None, None));
        assert_eq!(event.disposition, Disposition::NoAnswer);
    }

    #[test]
    fn an_agent_that_is_a_name_is_not_an_extension() {
        let body = json!({"call_type": "Inbound", "number": "+4930123456", "agent": "101",
                          "queue": "800", "duration_s": "95"});
        let event = harness()
            .setting(AGENT_IS_EXTENSION, "false")
            .parse::<ThreeCx>(journal(body))
            .outcome()
            .event
            .expect("an end");
        assert_eq!(
            (event.dst_phone.as_deref(), event.src_phone_ext),
            (Some("800"), None)
        );
    }

    #[test]
    fn wrong_or_malformed_credentials_are_refused() {
        let body = json!({"call_type": "Inbound"});
        for header in [
            "Basic dGVsZWhvb2s6d3Jvbmc=",
            "Bearer dGVsZWhvb2s6czNjcjN0",
            "Basic %%%",
        ] {
            let request = TestRequest::post("https://hooks.example.com/h")
                .header("authorization", header)
                .json(&body);
            let refusal = harness().parse::<ThreeCx>(request).refusal();
            assert_eq!(refusal.status, Some(401), "{header}");
        }
    }

    #[test]
    fn an_unknown_call_type_is_acknowledged_without_an_event() {
        let parsed = harness().parse::<ThreeCx>(journal(json!({"call_type": "Chat"})));
        assert_eq!(parsed.log.len(), 1);
        let outcome = parsed.outcome();
        assert_eq!((outcome.event, outcome.call_record), (None, None));
        assert_eq!(outcome.response.expect("a reply").body, b"{}");
    }
}
