//! A parser for onlinePBX's webhooks ("Веб-хуки", <https://kb.onlinepbx.ru>, pageId 27591028).
//!
//! onlinePBX posts one request per call event to the URL set in "Профиль > Веб-хуки", for the
//! events the admin ticked: `call_start`, `call_answered`, `call_end` and `call_missed`. The
//! knowledge base prints the bodies as JSON objects of strings; a third-party test posts them
//! as form fields, so both are read (see [`fields_of`]). Numbers come as strings (`"135"`).
//!
//! | `event` | event | direction | src → dst | ext | disposition | record |
//! |---|---|---|---|---|---|---|
//! | `call_start` | start | from `direction` | `caller` → `callee` | see below | unknown | – |
//! | `call_answered` | answer | from `direction` | `caller` → `callee` | see below | unknown | – |
//! | `call_end` | end | from `direction` | `caller` → `callee` | see below | [`disposition`] | `dialog_duration`, `download_url` or `uuid` |
//! | `call_missed` | end | in | `caller` → `gateway` | – | no-answer | 0 s, `uuid` |
//!
//! `direction` `outbound` is `out` (the operator's extension `caller` is `dst_phone_ext`), or
//! `internal` when `callee` is an extension too; `inbound` is `in` (`callee` is
//! `src_phone_ext` when it is an extension). `uuid` is the call id.
//!
//! onlinePBX documents no signature, token or handshake for webhooks. Beyond the integration's
//! URL token, two optional settings narrow who can post: `shared_token` (the value of a
//! `?token=` the admin appends to the webhook URL; wrong or missing is `401`) and
//! `pbx_domain` (the account's PBX domain; a notification from another is `403`).

use serde_json::Value;
use telehook_guest::prelude::*;

/// The setting holding a secret the admin appends to the webhook URL as `?token=...`.
const SHARED_TOKEN: &str = "shared_token";
/// The setting holding the account's PBX domain (`example.onpbx.ru`), the body's `domain`.
const PBX_DOMAIN: &str = "pbx_domain";
/// The query parameter that carries the shared token.
const TOKEN_PARAM: &str = "token";
/// The longest number taken for an extension: onlinePBX's are short (`505`, `145` in its
/// samples), the company's lines and clients' numbers are full numbers (`74991111282`).
const MAX_EXTENSION_DIGITS: usize = 5;

struct OnlinePbx;

impl Parser for OnlinePbx {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        check_token(&request)?;
        if request.body.iter().all(u8::is_ascii_whitespace) {
            log::info("a request without a body (a check of the URL?): answered 200");
            return Ok(ParseResult::empty());
        }
        let fields = fields_of(&request)?;
        check_domain(&fields)?;
        let call_id = require(&fields, "uuid")?;
        match require(&fields, "event")? {
            "call_start" => Ok(ParseResult::with_event(
                Call::of(&fields)?.event(EventType::NotifyStart, call_id),
            )),
            "call_answered" => Ok(ParseResult::with_event(
                Call::of(&fields)?.event(EventType::NotifyAnswer, call_id),
            )),
            "call_end" => ended(&fields, call_id),
            "call_missed" => missed(&fields, call_id),
            other => {
                log::info(&format!(
                    "ignoring the event `{other}`: not one of onlinePBX's four call webhooks"
                ));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// Refuses a request without the `?token=` the `shared_token` setting asks for, when it is set.
fn check_token(request: &Request) -> Result<(), ParseError> {
    let Some(expected) = settings::get(SHARED_TOKEN).filter(|token| !token.is_empty()) else {
        return Ok(());
    };
    match request.query_param(TOKEN_PARAM) {
        None => Err(ParseError::unauthorized(format!(
            "the request's URL has no `{TOKEN_PARAM}` parameter, which the `{SHARED_TOKEN}` \
             setting asks for: end the webhook URL in onlinePBX with `?{TOKEN_PARAM}=` and \
             that setting's value"
        ))),
        Some(sent) if crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ParseError::unauthorized(format!(
            "the URL's `{TOKEN_PARAM}` is not the `{SHARED_TOKEN}` setting's value"
        ))),
    }
}

/// Refuses a notification from another PBX than the `pbx_domain` setting names, when it is set.
fn check_domain(fields: &Form) -> Result<(), ParseError> {
    let Some(expected) = settings::get(PBX_DOMAIN).filter(|domain| !domain.trim().is_empty())
    else {
        return Ok(());
    };
    let sent = fields.get("domain").unwrap_or_default().trim();
    if sent.eq_ignore_ascii_case(expected.trim()) {
        return Ok(());
    }
    Err(ParseError::forbidden(format!(
        "the notification comes from the PBX domain {sent:?}, not {:?} (the `{PBX_DOMAIN}` \
         setting)",
        expected.trim()
    )))
}

/// `call_end`: how the call ended, and its record with the conversation's length.
fn ended(fields: &Form, call_id: &str) -> Result<ParseResult, ParseError> {
    let talk = seconds(fields, "dialog_duration")?;
    let disposition = disposition(
        talk,
        fields.get("hangup_cause").unwrap_or_default(),
        fields.get("hangup_by").unwrap_or_default(),
    );
    let event = Call::of(fields)?
        .event(EventType::NotifyEnd, call_id)
        .with_disposition(disposition);
    let duration = if disposition == Disposition::Answered {
        talk
    } else {
        0
    };
    // `download_url` is not in the official samples; third-party handlers read it and say it
    // may be empty. Without it the call's `uuid` finds the recording in the HTTP API's history.
    let call = fields.non_empty("download_url").unwrap_or(call_id);
    let record = CallRecord::of_event(&event, duration, call);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// `call_missed`: an incoming call nobody answered. It names neither a direction nor a callee,
/// so the company line that was called (`gateway`) is the called number. Its record may repeat
/// the one of a `call_end` of the same call; the host keeps a call's first record.
fn missed(fields: &Form, call_id: &str) -> Result<ParseResult, ParseError> {
    let client = phone(fields.get("caller").unwrap_or_default(), "caller")?;
    let line = phone(require(fields, "gateway")?, "gateway")?;
    let event = TelephonyEvent::new(EventType::NotifyEnd, Direction::In, client, line)
        .with_call_id(call_id)
        .with_disposition(Disposition::NoAnswer);
    let record = CallRecord::of_event(&event, 0, call_id);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// How a `call_end` ended. onlinePBX runs on FreeSWITCH, and `hangup_cause` is FreeSWITCH's
/// cause name (the official samples show `NORMAL_CLEARING`; the full list is in the
/// third-party client `azabroflovski/onlinepbx`, `src/typings/index.ts`). A conversation
/// (`dialog_duration` > 0) is an answered call whatever the cause; otherwise:
///
/// | `hangup_cause` | platform |
/// |---|---|
/// | `USER_BUSY` (busy), `CALL_REJECTED` (declined) | busy |
/// | `ORIGINATOR_CANCEL` (the caller gave up), `LOSE_RACE`, `PICKED_OFF` (another phone took it) | cancel |
/// | `NORMAL_CLEARING`, `NORMAL_UNSPECIFIED` with `hangup_by` = `caller` | cancel |
/// | `NO_ANSWER`, `NO_USER_RESPONSE`, `ALLOTTED_TIMEOUT`, `PROGRESS_TIMEOUT`, `SUBSCRIBER_ABSENT`, `USER_NOT_REGISTERED`, `UNALLOCATED_NUMBER`, `NORMAL_TEMPORARY_FAILURE`, congestion, barring, protocol errors and every other cause | no-answer |
///
/// (FreeSWITCH also ends calls the callee hung up on while ringing with `NORMAL_CLEARING`,
/// which is why the cause alone does not say "answered".)
fn disposition(talk_seconds: u32, cause: &str, hangup_by: &str) -> Disposition {
    if talk_seconds > 0 {
        return Disposition::Answered;
    }
    match cause.trim().to_ascii_uppercase().as_str() {
        "USER_BUSY" | "CALL_REJECTED" => Disposition::Busy,
        "ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF" => Disposition::Cancel,
        "NORMAL_CLEARING" | "NORMAL_UNSPECIFIED" if hangup_by.eq_ignore_ascii_case("caller") => {
            Disposition::Cancel
        }
        _ => Disposition::NoAnswer,
    }
}

/// Who called whom, in the contract's terms.
struct Call {
    direction: Direction,
    src: String,
    dst: String,
    /// The operator's extension: the callee of an incoming call, the caller of an outgoing one.
    ext: Option<String>,
}

impl Call {
    /// The parties of a `call_start`, `call_answered` or `call_end`, from `direction`, `caller`
    /// and `callee`.
    fn of(fields: &Form) -> Result<Self, ParseError> {
        let caller = phone(fields.get("caller").unwrap_or_default(), "caller")?;
        let callee = phone(require(fields, "callee")?, "callee")?;
        let direction = match fields.get("direction").unwrap_or_default() {
            "outbound" | "outgoing" if is_extension(&callee) => Direction::Internal,
            "outbound" | "outgoing" => Direction::Out,
            "inbound" | "incoming" => Direction::In,
            "internal" | "local" => Direction::Internal,
            other => {
                let guessed = guess(&caller, &callee);
                log::info(&format!(
                    "`direction` {other:?} is not a documented value: {guessed:?} from the numbers"
                ));
                guessed
            }
        };
        let ext = match direction {
            Direction::In => Some(&callee),
            Direction::Out => Some(&caller),
            Direction::Internal => None,
        }
        .filter(|number| is_extension(number))
        .cloned();
        Ok(Self {
            direction,
            src: caller,
            dst: callee,
            ext,
        })
    }

    fn event(self, kind: EventType, call_id: &str) -> TelephonyEvent {
        let event =
            TelephonyEvent::new(kind, self.direction, self.src, self.dst).with_call_id(call_id);
        let ext = self.ext.unwrap_or_default();
        match self.direction {
            Direction::In => event.with_src_phone_ext(ext),
            Direction::Out => event.with_dst_phone_ext(ext),
            Direction::Internal => event,
        }
    }
}

/// The direction the numbers suggest when `direction` does not say: two extensions talk
/// internally, an extension calling out is outgoing, anything else comes in.
fn guess(caller: &str, callee: &str) -> Direction {
    match (is_extension(caller), is_extension(callee)) {
        (true, true) => Direction::Internal,
        (true, false) => Direction::Out,
        _ => Direction::In,
    }
}

/// Whether a number is an extension of the PBX rather than a full phone number.
fn is_extension(number: &str) -> bool {
    (1..=MAX_EXTENSION_DIGITS).contains(&number.len())
        && number.bytes().all(|byte| byte.is_ascii_digit())
}

/// A number as the host wants it (`anonymous` for a withheld caller); the error names the field.
fn phone(raw: &str, field: &str) -> Result<String, ParseError> {
    let number = phone::number(raw);
    phone::check(&number)
        .map_err(|err| ParseError::new(format!("`{field}` is not a usable number: {err}")))?;
    Ok(number)
}

/// A whole number of seconds, sent as a string (`"135"`) or a number.
fn seconds(fields: &Form, name: &str) -> Result<u32, ParseError> {
    let text = require(fields, name)?;
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(format!("`{name}` is not a number of seconds: {text:?}")))
}

/// A notification's fields, whichever way it was encoded: a JSON object when the content type
/// says JSON or the body starts with `{`, else form fields. JSON numbers and booleans become
/// their text, so that `"135"` and `135` read alike.
fn fields_of(request: &Request) -> Result<Form, ParseError> {
    let json = request
        .header("content-type")
        .is_some_and(|kind| kind.to_ascii_lowercase().contains("json"))
        || request.body.trim_ascii_start().starts_with(b"{");
    if !json {
        return Ok(request.form());
    }
    let object: serde_json::Map<String, Value> = request.json()?;
    let pairs = object
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(text) => text,
                other => other.to_string(),
            };
            Some((key, text))
        })
        .collect();
    Ok(Form::from_pairs(pairs))
}

/// A field the notification must carry with a value: unlike [`Form::require`], an empty one
/// is refused too, and the error says so.
fn require<'a>(fields: &'a Form, name: &str) -> Result<&'a str, ParseError> {
    fields
        .non_empty(name)
        .ok_or_else(|| ParseError::new(format!("the field `{name}` is missing or empty")))
}

telehook_guest::export_parser!(OnlinePbx);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telehook_guest::testing::{Harness, TestRequest};

    use super::*;

    const URL: &str = "https://hooks.example.com/hooks/t0k3n?token=s3cret";

    fn harness() -> Harness {
        Harness::new()
            .setting(SHARED_TOKEN, "s3cret")
            .setting(PBX_DOMAIN, "acme.onpbx.ru")
    }

    fn end(fields: serde_json::Value) -> ParseResult {
        let mut body = json!({
            "domain": "acme.onpbx.ru", "event": "call_end", "direction": "inbound",
            "uuid": "u-1", "caller": "79161234567", "callee": "101", "gateway": "74991111282",
            "date": "1528884937", "call_duration": "20", "dialog_duration": "0",
            "hangup_cause": "NORMAL_CLEARING", "hangup_by": "callee"
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), fields.as_object()) {
            body.extend(extra.clone());
        }
        harness()
            .parse::<OnlinePbx>(TestRequest::post(URL).json(&body))
            .outcome()
    }

    #[test]
    fn answered_means_a_conversation_not_a_normal_clearing() {
        let cleared = end(json!({}));
        assert_eq!(
            cleared.event.expect("an event").disposition,
            Disposition::NoAnswer
        );
        let gave_up = end(json!({"hangup_by": "caller"}));
        assert_eq!(
            gave_up.call_record.expect("a record").disposition,
            Disposition::Cancel
        );
        let talked = end(json!({"dialog_duration": 135, "download_url": "https://r/1.mp3"}));
        let record = talked.call_record.expect("a record");
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!(
            (record.duration, record.call.as_str()),
            (135, "https://r/1.mp3")
        );
        assert_eq!(record.src_phone_ext.as_deref(), Some("101"));
    }

    #[test]
    fn busy_and_declined_are_busy() {
        for cause in ["USER_BUSY", "CALL_REJECTED"] {
            assert_eq!(disposition(0, cause, "callee"), Disposition::Busy);
        }
        assert_eq!(disposition(0, "PICKED_OFF", ""), Disposition::Cancel);
        assert_eq!(
            disposition(0, "UNALLOCATED_NUMBER", ""),
            Disposition::NoAnswer
        );
        assert_eq!(disposition(3, "USER_BUSY", ""), Disposition::Answered);
    }

    #[test]
    fn an_undocumented_direction_is_guessed_from_the_numbers() {
        let outcome = end(json!({"direction": "", "caller": "505", "callee": "79111117960"}));
        let event = outcome.event.expect("an event");
        assert_eq!(event.direction, Some(Direction::Out));
        assert_eq!(event.dst_phone_ext.as_deref(), Some("505"));
        assert_eq!(guess("101", "102"), Direction::Internal);
        assert_eq!(guess("79161234567", "101"), Direction::In);
    }

    #[test]
    fn the_token_and_the_domain_are_checked_only_when_set() {
        let body = json!({"domain": "other.onpbx.ru", "event": "call_missed", "uuid": "u-2",
                          "caller": "79221111123", "gateway": "73431111137"});
        let wrong_domain = harness()
            .parse::<OnlinePbx>(TestRequest::post(URL).json(&body))
            .refusal();
        assert_eq!(wrong_domain.status, Some(403));
        let no_token = harness()
            .parse::<OnlinePbx>(TestRequest::post("https://hooks.example.com/h").json(&body))
            .refusal();
        assert_eq!(no_token.status, Some(401));
        let open = Harness::new()
            .parse::<OnlinePbx>(TestRequest::post("https://hooks.example.com/h").json(&body))
            .outcome();
        assert_eq!(open.call_record.expect("a record").duration, 0);
    }

    #[test]
    fn a_json_body_that_is_not_an_object_is_a_400() {
        let refused = harness()
            .parse::<OnlinePbx>(
                TestRequest::post(URL)
                    .header("content-type", "application/json")
                    .body("[1]"),
            )
            .refusal();
        assert_eq!(refused.status, None);
        assert!(
            refused
                .message
                .starts_with("the body is not the expected JSON")
        );
    }
}
