//! A parser for Exotel's call callbacks (<https://developer.exotel.com/>).
//!
//! Exotel has no single call webhook. A CRM hears of calls through three URLs the admin types
//! in, and this parser serves all three at one telehook URL:
//!
//! - the **Passthru applet** of a call flow: a `GET` with the call as query parameters
//!   (`CallSid`, `CallFrom`, `CallTo`, `CallType`, `DialCallStatus`, `DialWhomNumber`,
//!   `DialCallDuration`, `RecordingUrl`, ...);
//! - the **Connect applet's agent pass-through**: a `GET` per agent attempt, with `EventType`
//!   `Dial`, `Ringing`, `Answered` or `Terminal` and `Status` `busy` / `free`;
//! - the **StatusCallback** of a Voice v1 API call (`Calls/connect`): a `POST`, JSON or form,
//!   with `EventType` `answered` or `terminal`, `Status`, `From`, `To`,
//!   `ConversationDuration`, `RecordingUrl` and `Legs`.
//!
//! Parameters are read with [`Request::params`], so a callback works as `GET` or `POST`.
//!
//! | callback | event | direction | src → dst | disposition |
//! |---|---|---|---|---|
//! | Passthru at the flow's start | start | in | `CallFrom` → `CallTo` (the ExoPhone) | unknown |
//! | Passthru after the Connect applet | end + record | in | `CallFrom` → `DialWhomNumber` or `CallTo` | from `CallType` × `DialCallStatus` |
//! | agent `Dial` / `Ringing` | start | in | `CallFrom` → `DialWhomNumber` (the agent) | unknown |
//! | agent `Answered` | answer | in | `CallFrom` → `DialWhomNumber` | unknown |
//! | agent `Terminal` / `Status=free` | none (one attempt ended, not the call) | | | |
//! | StatusCallback `answered` | answer | out | `From` (the agent) → `To` (the client) | unknown |
//! | StatusCallback `terminal` | end + record | out | `From` → `To` | from `Status` and the talk time |
//!
//! `CallSid` is the call id everywhere: Exotel gives no per-leg ids in these callbacks.
//!
//! Exotel signs nothing, so the parser requires a shared key (setting `url_key`) in the URL:
//! `?key=...`, or the first segment after the webhook URL's token (`.../t0k3n/KEY/end`), and
//! refuses a request without it (`401`). What follows the key in the route suffix tells a
//! Passthru at the start of a flow (`start`) from one after the Connect applet (`end`).

use serde_json::Value;
use telehook_guest::prelude::*;

/// The shared key every callback URL must carry (Exotel has no request signature).
const URL_KEY: &str = "url_key";
/// Optional country calling code (`91`) that turns Exotel's national numbers into E.164.
const COUNTRY_CODE: &str = "country_code";
/// The query parameter that carries the shared key.
const KEY_PARAM: &str = "key";

struct Exotel;

impl Parser for Exotel {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let stage = authenticate(&request)?;
        let numbers = Numbers {
            country_code: settings::get(COUNTRY_CODE).filter(|code| !code.is_empty()),
        };
        if is_json(&request) {
            let body: Value = request.json()?;
            return status_callback(&json_fields(&body), &leg_statuses(&body), &numbers);
        }
        let fields = trimmed(request.params().pairs().iter().cloned());
        if fields.non_empty("CallType").is_some() {
            passthru(&fields, stage, &numbers)
        } else if request.is_method("POST") {
            status_callback(&fields, &[], &numbers)
        } else if is_agent_pass_through(&fields) {
            agent_pass_through(&fields, &numbers)
        } else {
            passthru(&fields, stage, &numbers)
        }
    }
}

/// Where in the call flow a Passthru applet sits, as the route suffix after the key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing said: guessed from `CallType` and `DialCallStatus`.
    Unsaid,
    /// `start`: the call has just landed.
    Start,
    /// `end`: after the Connect (or Voicemail) applet, the call is over.
    End,
}

/// Checks the shared key, in constant time, and returns the Passthru stage the URL names.
///
/// The key comes from `?key=` when present, and the whole route suffix is then the stage;
/// otherwise from the route suffix's first segment, and the rest is the stage.
fn authenticate(request: &Request) -> Result<Stage, ParseError> {
    let expected = settings::require(URL_KEY)?;
    let suffix = request.route_suffix.trim_matches('/');
    let (given, stage) = match request.query_param(KEY_PARAM) {
        Some(key) => (key, suffix),
        None => suffix.split_once('/').unwrap_or((suffix, "")),
    };
    if given.is_empty() {
        return Err(ParseError::unauthorized(
            "the shared key is missing: expected `?key=` or a route suffix after the webhook \
             URL's token",
        ));
    }
    if !crypto::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        log::warn("refusing the request: wrong shared key");
        return Err(ParseError::unauthorized(
            "the shared key (`?key=` or the route suffix's first segment) is wrong",
        ));
    }
    match stage {
        "" => Ok(Stage::Unsaid),
        "start" => Ok(Stage::Start),
        "end" => Ok(Stage::End),
        other => Err(ParseError::new(format!(
            "unknown route suffix `{other}` after the key: expected `start`, `end` or nothing"
        ))),
    }
}

/// Whether the body is JSON: a StatusCallback requested with
/// `StatusCallbackContentType=application/json`.
fn is_json(request: &Request) -> bool {
    request
        .header("content-type")
        .is_some_and(|kind| kind.to_ascii_lowercase().contains("json"))
        || request.body.trim_ascii_start().starts_with(b"{")
}

/// The agent pass-through (a `GET`) carries `EventType` (capitalised) or `Status` `busy` /
/// `free`; the Passthru applet carries neither, and a StatusCallback comes as a `POST`.
fn is_agent_pass_through(fields: &Form) -> bool {
    fields.non_empty("EventType").is_some()
        || matches!(fields.non_empty("Status"), Some("busy" | "free"))
}

/// A Passthru applet's request: the start of the call, or its end with the record.
fn passthru(fields: &Form, stage: Stage, numbers: &Numbers) -> Result<ParseResult, ParseError> {
    let call_id = require(fields, "CallSid")?;
    let call_type = fields.non_empty("CallType");
    let dial_status = fields.non_empty("DialCallStatus");
    let ended = match stage {
        Stage::Start => false,
        Stage::End => true,
        Stage::Unsaid => {
            call_type.is_some_and(|kind| kind != "call-attempt") || dial_status.is_some()
        }
    };
    let client = first(fields, &["CallFrom", "From"]);
    let exophone = first(fields, &["CallTo", "To"]);
    if !ended {
        let event = incoming(EventType::NotifyStart, call_id, client, exophone, numbers);
        return Ok(ParseResult::with_event(event));
    }
    let disposition = flow_disposition(call_type, dial_status);
    let operator = fields.non_empty("DialWhomNumber").or(exophone);
    let event = incoming(EventType::NotifyEnd, call_id, client, operator, numbers)
        .with_disposition(disposition);
    // "The duration of the call (when the call was connected to an agent)" (E1); it also
    // counts the agent's ringing (E2), but it is the only length a Passthru gets.
    let duration = match disposition {
        Disposition::Answered => fields.seconds("DialCallDuration")?,
        _ => 0,
    };
    let call = fields.non_empty("RecordingUrl").unwrap_or(call_id);
    let record = CallRecord::of_event(&event, duration, call);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// How a flow call ended: Exotel's `CallType` (E1's "Scenario → value" table), refined by
/// `DialCallStatus` (`completed`, `no-answer`, `busy`, `failed`, `canceled`) as frappe/crm's
/// Exotel handler does.
fn flow_disposition(call_type: Option<&str>, dial_status: Option<&str>) -> Disposition {
    match (
        call_type.unwrap_or_default(),
        dial_status.unwrap_or_default(),
    ) {
        // "Call conversation happened".
        ("completed", _) => Disposition::Answered,
        // The agent's line was busy.
        (_, "busy") => Disposition::Busy,
        // "Client hung up during connect applet".
        ("client-hangup", _) | (_, "canceled") => Disposition::Cancel,
        // "Connect applet, no agent picked up" (`no-answer`, `failed`), "Went to voicemail
        // applet", "IVR only, no connect applet".
        ("incomplete" | "voicemail" | "call-attempt", _) => Disposition::NoAnswer,
        (other, dial) => {
            log::warn(&format!(
                "unknown CallType `{other}` (DialCallStatus `{dial}`): reported as not answered"
            ));
            Disposition::NoAnswer
        }
    }
}

/// One agent attempt of the Connect applet: its ringing starts the call for that agent, its
/// answer answers it; its end (`Terminal`, `Status=free`) is not the end of the call, which
/// may go on to the next agent.
fn agent_pass_through(fields: &Form, numbers: &Numbers) -> Result<ParseResult, ParseError> {
    let call_id = require(fields, "CallSid")?;
    let event_type = match (fields.non_empty("EventType"), fields.non_empty("Status")) {
        (Some(event_type), _) => event_type.to_ascii_lowercase(),
        (None, Some("busy")) => "dial".to_owned(),
        (None, _) => "terminal".to_owned(),
    };
    let kind = match event_type.as_str() {
        "dial" | "ringing" => EventType::NotifyStart,
        "answered" => EventType::NotifyAnswer,
        other => {
            log::info(&format!(
                "agent pass-through `{other}` of call {call_id}: one agent attempt ended, not the \
                 call; nothing to report"
            ));
            return Ok(ParseResult::empty());
        }
    };
    let client = first(fields, &["CallFrom", "From"]);
    let agent = fields.non_empty("DialWhomNumber");
    Ok(ParseResult::with_event(incoming(
        kind, call_id, client, agent, numbers,
    )))
}

/// An event of a flow call, which Exotel reports for calls that reached an ExoPhone: the
/// client calls in. (`Direction` says `outbound-dial` once the Connect applet dials an agent,
/// so it does not tell who called whom.) Without both numbers the event names only its call.
fn incoming(
    kind: EventType,
    call_id: &str,
    client: Option<&str>,
    operator: Option<&str>,
    numbers: &Numbers,
) -> TelephonyEvent {
    match (client, operator) {
        (Some(client), Some(operator)) => TelephonyEvent::new(
            kind,
            Direction::In,
            numbers.phone(client),
            numbers.phone(operator),
        )
        .with_call_id(call_id),
        _ => TelephonyEvent::of_call(kind, call_id),
    }
}

/// A StatusCallback of an API call. Each `EventType` is sent once per call and Exotel retries
/// a failed delivery up to twice, so `CallSid:EventType` is the delivery id.
fn status_callback(
    fields: &Form,
    legs: &[String],
    numbers: &Numbers,
) -> Result<ParseResult, ParseError> {
    let call_id = require(fields, "CallSid")?;
    // The default payload, without `StatusCallbackEvents`, is the terminal one.
    let event_type = fields
        .get("EventType")
        .unwrap_or("terminal")
        .to_ascii_lowercase();
    let result = match event_type.as_str() {
        "answered" => {
            ParseResult::with_event(api_event(EventType::NotifyAnswer, fields, call_id, numbers))
        }
        "terminal" => terminal(fields, legs, call_id, numbers)?,
        other => {
            log::info(&format!(
                "StatusCallback `{other}` of call {call_id}: not a call event"
            ));
            ParseResult::empty()
        }
    };
    Ok(result.with_delivery_id(format!("{call_id}:{event_type}")))
}

/// The end of an API call, with its record: the talk time is `ConversationDuration`, "the
/// time From and To phone numbers were on call".
fn terminal(
    fields: &Form,
    legs: &[String],
    call_id: &str,
    numbers: &Numbers,
) -> Result<ParseResult, ParseError> {
    let talked = match fields.non_empty("ConversationDuration") {
        Some(_) => Some(fields.seconds("ConversationDuration")?),
        None => None,
    };
    let disposition = api_disposition(fields.non_empty("Status").unwrap_or_default(), talked, legs);
    let event =
        api_event(EventType::NotifyEnd, fields, call_id, numbers).with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => talked.unwrap_or_default(),
        _ => 0,
    };
    if disposition == Disposition::Answered && talked.is_none() {
        log::info(&format!(
            "call {call_id}: no ConversationDuration (the default payload), so the talk time is \
             reported as 0; ask for StatusCallbackEvents to get it"
        ));
    }
    let call = fields.non_empty("RecordingUrl").unwrap_or(call_id);
    let record = CallRecord::of_event(&event, duration, call);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// How an API call ended. `Status` is the "overall call status": `completed`, `failed`,
/// `busy` or `no-answer`. `completed` only says the first leg (the agent) completed, so the
/// call counts as answered when the two were on call (`ConversationDuration` > 0) or the
/// second leg (the client) completed; otherwise the client leg's status says why not. The
/// default payload has neither, and then `completed` is taken at its word.
fn api_disposition(status: &str, talked: Option<u32>, legs: &[String]) -> Disposition {
    let client_leg = legs.get(1).map(String::as_str);
    match status {
        "completed" => match (talked, client_leg) {
            (Some(secs), _) if secs > 0 => Disposition::Answered,
            (_, Some("completed")) | (None, None) => Disposition::Answered,
            (_, Some("busy")) => Disposition::Busy,
            _ => Disposition::NoAnswer,
        },
        "busy" => Disposition::Busy,
        "no-answer" | "failed" => Disposition::NoAnswer,
        // Not in the StatusCallback's list, but one of Exotel's call statuses (E2).
        "canceled" => Disposition::Cancel,
        other => {
            log::warn(&format!(
                "unknown StatusCallback Status `{other}`: reported as not answered"
            ));
            Disposition::NoAnswer
        }
    }
}

/// An event of an API call. `Calls/connect` rings `From` (the agent, "attempted to be called
/// first") and then `To` (the client): the operator calls the client. An account-wide
/// callback may also report an `inbound` call, where `From` is the caller.
fn api_event(kind: EventType, fields: &Form, call_id: &str, numbers: &Numbers) -> TelephonyEvent {
    let direction = match fields.non_empty("Direction") {
        Some("inbound") => Direction::In,
        _ => Direction::Out,
    };
    match (fields.non_empty("From"), fields.non_empty("To")) {
        (Some(from), Some(to)) => {
            TelephonyEvent::new(kind, direction, numbers.phone(from), numbers.phone(to))
                .with_call_id(call_id)
        }
        _ => TelephonyEvent::of_call(kind, call_id),
    }
}

/// The `Status` of each entry of a JSON StatusCallback's `Legs` (the form encoding of `Legs`
/// is not documented).
fn leg_statuses(body: &Value) -> Vec<String> {
    body["Legs"]
        .as_array()
        .map(|legs| {
            legs.iter()
                .map(|leg| leg["Status"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Exotel's parameters by name, from a query or form, or from a JSON body's top level, each
/// value trimmed. Exotel sends empty fields (`DialWhomNumber=`) for what it does not know, so
/// they are read with [`Form::non_empty`], which takes an empty field for an absent one.
fn trimmed(pairs: impl IntoIterator<Item = (String, String)>) -> Form {
    Form::from_pairs(
        pairs
            .into_iter()
            .map(|(name, value)| (name, value.trim().to_owned()))
            .collect(),
    )
}

/// The top-level strings, numbers and booleans of a JSON object, as text.
fn json_fields(body: &Value) -> Form {
    trimmed(
        body.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => return None,
                };
                Some((name.clone(), text))
            }),
    )
}

/// The first of several names that has a value (`CallFrom`, then the legacy `From`).
fn first<'a>(fields: &'a Form, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| fields.non_empty(name))
}

/// A parameter the callback must carry with a value, named as Exotel's in the error.
fn require<'a>(fields: &'a Form, name: &str) -> Result<&'a str, ParseError> {
    fields.non_empty(name).ok_or_else(|| {
        ParseError::new(format!("the Exotel parameter `{name}` is missing or empty"))
    })
}

/// How numbers are reported: as Exotel sends them (`07799828555`, even `8039513882` without
/// the trunk `0`), or in E.164 when the `country_code` setting is set.
struct Numbers {
    country_code: Option<String>,
}

impl Numbers {
    fn phone(&self, raw: &str) -> String {
        match &self.country_code {
            Some(code) => phone::e164(raw, code).unwrap_or_else(|| phone::number(raw)),
            None => phone::number(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const HOOK: &str = "https://hooks.example.com/hooks/acme/t0k3n";

    fn harness() -> Harness {
        Harness::new().setting(URL_KEY, "k3y")
    }

    #[test]
    fn the_key_is_taken_from_the_query_or_the_route_suffix() {
        let query = TestRequest::get(&format!(
            "{HOOK}/start?key=k3y&CallSid=c1&CallFrom=0987654321&CallTo=08039513882"
        ))
        .route_suffix("start");
        assert!(harness().parse::<Exotel>(query).result.is_ok());
        let suffix =
            TestRequest::get(&format!("{HOOK}/k3y/start?CallSid=c1")).route_suffix("k3y/start");
        assert!(harness().parse::<Exotel>(suffix).result.is_ok());
        let forgotten = TestRequest::get(&format!("{HOOK}/start?CallSid=c1")).route_suffix("start");
        assert_eq!(
            harness().parse::<Exotel>(forgotten).refusal().status,
            Some(401)
        );
        let unknown =
            TestRequest::get(&format!("{HOOK}/k3y/middle?CallSid=c1")).route_suffix("k3y/middle");
        assert_eq!(harness().parse::<Exotel>(unknown).refusal().status, None);
    }

    #[test]
    fn a_near_miss_key_and_a_missing_setting_are_refused() {
        let near = TestRequest::get(&format!("{HOOK}?key=k3y0&CallSid=c1"));
        let refusal = harness().parse::<Exotel>(near).refusal();
        assert_eq!(refusal.status, Some(401));
        let unset = Harness::new().parse::<Exotel>(TestRequest::get(&format!("{HOOK}?key=k3y")));
        assert_eq!(
            unset.refusal().message,
            "the integration setting `url_key` is not set"
        );
    }

    #[test]
    fn without_a_stage_the_call_type_tells_start_from_end() {
        let start = harness().parse::<Exotel>(TestRequest::get(&format!(
            "{HOOK}?key=k3y&CallSid=c1&CallFrom=09876543210&CallTo=08039513882&CallType=call-attempt"
        )));
        let start = start.outcome();
        assert_eq!(start.event.expect("event").event, EventType::NotifyStart);
        assert!(start.call_record.is_none());
        let end = harness().parse::<Exotel>(TestRequest::get(&format!(
            "{HOOK}?key=k3y&CallSid=c1&CallFrom=09876543210&CallTo=08039513882&CallType=completed&DialCallDuration=40&DialWhomNumber=09123456789"
        )));
        let record = end.outcome().call_record.expect("record");
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!((record.duration, record.call.as_str()), (40, "c1"));
        assert_eq!(record.dst_phone.as_deref(), Some("09123456789"));
    }

    #[test]
    fn flow_dispositions_follow_call_type_and_dial_call_status() {
        let cases = [
            (Some("completed"), Some("completed"), Disposition::Answered),
            (Some("incomplete"), Some("busy"), Disposition::Busy),
            (Some("client-hangup"), Some("canceled"), Disposition::Cancel),
            (Some("incomplete"), Some("no-answer"), Disposition::NoAnswer),
            (Some("incomplete"), Some("failed"), Disposition::NoAnswer),
            (Some("voicemail"), None, Disposition::NoAnswer),
            (Some("call-attempt"), None, Disposition::NoAnswer),
        ];
        for (call_type, dial, expected) in cases {
            assert_eq!(
                flow_disposition(call_type, dial),
                expected,
                "{call_type:?} {dial:?}"
            );
        }
    }

    #[test]
    fn api_calls_count_as_answered_only_when_the_client_talked() {
        let legs = |statuses: &[&str]| statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            api_disposition("completed", Some(32), &[]),
            Disposition::Answered
        );
        assert_eq!(
            api_disposition("completed", Some(0), &[]),
            Disposition::NoAnswer
        );
        assert_eq!(
            api_disposition("completed", Some(0), &legs(&["completed", "busy"])),
            Disposition::Busy
        );
        assert_eq!(
            api_disposition("completed", None, &legs(&["completed", "completed"])),
            Disposition::Answered
        );
        assert_eq!(
            api_disposition("completed", None, &[]),
            Disposition::Answered
        );
        assert_eq!(api_disposition("failed", None, &[]), Disposition::NoAnswer);
    }

    #[test]
    fn a_form_status_callback_reports_an_outgoing_call_and_its_delivery() {
        let request = TestRequest::post(&format!("{HOOK}?key=k3y")).form(&[
            ("CallSid", "c9"),
            ("EventType", "terminal"),
            ("Status", "busy"),
            ("From", "09876543210"),
            ("To", "09123456789"),
            ("ConversationDuration", "0"),
        ]);
        let outcome = harness()
            .setting(COUNTRY_CODE, "91")
            .parse::<Exotel>(request)
            .outcome();
        let event = outcome.event.expect("event");
        assert_eq!(event.direction, Some(Direction::Out));
        assert_eq!(event.disposition, Disposition::Busy);
        assert_eq!(event.src_phone.as_deref(), Some("+919876543210"));
        assert_eq!(outcome.call_record.expect("record").duration, 0);
        assert_eq!(outcome.delivery_id.as_deref(), Some("c9:terminal"));
    }

    #[test]
    fn a_passthru_posted_as_a_form_is_still_a_passthru() {
        let request = TestRequest::post(&format!("{HOOK}/end?key=k3y"))
            .route_suffix("end")
            .form(&[
                ("CallSid", "c2"),
                ("CallFrom", "09876543210"),
                ("CallTo", "08039513882"),
                ("CallType", "client-hangup"),
            ]);
        let outcome = harness().parse::<Exotel>(request).outcome();
        assert_eq!(
            outcome.event.expect("event").disposition,
            Disposition::Cancel
        );
        assert_eq!(outcome.delivery_id, None);
    }

    #[test]
    fn an_agent_attempt_ending_reports_nothing() {
        let request = TestRequest::get(&format!(
            "{HOOK}?key=k3y&CallSid=c1&CallFrom=09876543210&DialWhomNumber=09123456789&Status=free"
        ));
        let parsed = harness().parse::<Exotel>(request);
        assert_eq!(parsed.log.len(), 1);
        assert_eq!(parsed.outcome(), ParseResult::empty());
    }
}

telehook_guest::export_parser!(Exotel);
