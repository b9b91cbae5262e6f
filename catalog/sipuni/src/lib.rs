//! A parser for Sipuni's call-event HTTP notifications («События на АТС», «Отправка событий
//! HTTP»: <https://doc.sipuni.com/articles/626-636-640--otpravka-sobytij-http>).
//!
//! Sipuni calls one URL for every event of every call, by `GET` or `POST`, with URL-encoded
//! UTF-8 parameters, so the parser reads the form body and the query alike. `event` says what
//! happened and `call_id` names the whole call on every event:
//!
//! | `event` | meaning | result |
//! |---|---|---|
//! | `1` | the call starts, or one more operator's phone rings | `notify-start`, direction from `src_type`/`dst_type` |
//! | `3` | answered (carries no numbers) | `notify-answer` naming only its call |
//! | `2` | the call is over, with `status` | `notify-end` and its call record |
//! | `4` | one leg hung up while the call goes on (transfer, other group members) | nothing |
//!
//! `src_type`/`dst_type` are `1` for an external number and `2` for an internal one: `1 → *`
//! is `in`, `2 → 1` is `out`, `2 → 2` is `internal`. Operators are the short numbers
//! (`short_src_num`/`short_dst_num`), or the long ones without the account prefix. The record's
//! `call` is `call_record_link`.
//!
//! Every accepted request is answered `200 {"success": true}`: without that reply Sipuni may
//! suspend delivery. Sipuni signs nothing; the optional `shared_token` setting makes the parser
//! refuse requests whose `token` parameter (which the admin appends to the URL) differs.

use serde_json::json;
use telehook_guest::prelude::*;

/// The optional setting: the token the admin appends to the URL as `?token=...`.
const SHARED_TOKEN: &str = "shared_token";
/// The optional setting: the Sipuni account number that prefixes long internal numbers.
const ACCOUNT_PREFIX: &str = "account_prefix";
/// The parameter that carries the shared token.
const TOKEN_PARAM: &str = "token";

/// `src_type`/`dst_type` of an external (city) number.
const EXTERNAL: &str = "1";
/// `src_type`/`dst_type` of an internal number (an extension).
const INTERNAL: &str = "2";

struct Sipuni;

impl Parser for Sipuni {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let params = request.params();
        check_token(&params)?;
        let kind = params.get("event").ok_or_else(|| {
            ParseError::new("the parameter `event` is missing: not a Sipuni call event")
        })?;
        let result = match kind {
            "1" => started(&params, call_id(&params)?),
            "3" => ParseResult::with_event(TelephonyEvent::of_call(
                EventType::NotifyAnswer,
                call_id(&params)?,
            )),
            "2" => ended(&params, call_id(&params)?),
            "4" => {
                log::info(&format!(
                    "event=4 of call {}: one leg hung up while the call goes on, not its end",
                    call_id(&params)?
                ));
                ParseResult::empty()
            }
            other => {
                log::info(&format!(
                    "ignoring event={other}: not a call event Sipuni documents"
                ));
                ParseResult::empty()
            }
        };
        Ok(result.and_response(success()))
    }
}

/// The reply Sipuni requires from every notification it sends, else it may stop sending.
fn success() -> Response {
    Response::json(200, &json!({"success": true}))
}

/// Sipuni has no signature; when `shared_token` is set, the `token` parameter must equal it.
fn check_token(params: &Form) -> Result<(), ParseError> {
    let Some(expected) = settings::get(SHARED_TOKEN).filter(|token| !token.is_empty()) else {
        return Ok(());
    };
    let Some(token) = params.get(TOKEN_PARAM) else {
        return Err(ParseError::unauthorized(
            "the parameter `token` is missing: the URL in Sipuni must end in ?token=<shared_token>",
        ));
    };
    if crypto::constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ParseError::unauthorized(
            "the parameter `token` does not match the setting `shared_token`",
        ))
    }
}

/// The whole call's id, on every event; a notification without it is not Sipuni's.
fn call_id(params: &Form) -> Result<&str, ParseError> {
    params
        .get("call_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::new("the parameter `call_id` is missing"))
}

/// `event=1`: a start, or one more ringing operator of the same call.
fn started(params: &Form, call_id: &str) -> ParseResult {
    match Parties::of(params) {
        Some(parties) => {
            ParseResult::with_event(parties.event(EventType::NotifyStart).with_call_id(call_id))
        }
        None => {
            log::warn(&format!(
                "event=1 of call {call_id}: no usable src_type/dst_type and numbers, no event"
            ));
            ParseResult::empty()
        }
    }
}

/// `event=2`: the end of the call and its record; without numbers both name only the call.
fn ended(params: &Form, call_id: &str) -> ParseResult {
    let disposition = disposition(params.get("status").unwrap_or_default());
    let event = match Parties::of(params) {
        Some(parties) => parties.event(EventType::NotifyEnd).with_call_id(call_id),
        None => TelephonyEvent::of_call(EventType::NotifyEnd, call_id),
    }
    .with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => talk_seconds(params),
        _ => 0,
    };
    let call = params
        .get("call_record_link")
        .filter(|link| !link.is_empty())
        .unwrap_or(call_id);
    let record = CallRecord::of_event(&event, duration, call);
    ParseResult::with_event(event).and_call_record(record)
}

/// Sipuni's `status` on `event=2` (the wording of its integrations' `switch`es):
///
/// | `status` | meaning | disposition |
/// |---|---|---|
/// | `ANSWER` | answered | answered |
/// | `BUSY` | busy | busy |
/// | `NOANSWER` | not answered | no-answer |
/// | `CANCEL` | the caller gave up | cancel |
/// | `CONGESTION` | network overloaded | no-answer |
/// | `CHANUNAVAIL` | channel unavailable (SIP peer not registered) | no-answer |
/// | anything else | undocumented | no-answer |
fn disposition(status: &str) -> Disposition {
    match status.to_ascii_uppercase().as_str() {
        "ANSWER" => Disposition::Answered,
        "BUSY" => Disposition::Busy,
        "CANCEL" => Disposition::Cancel,
        _ => Disposition::NoAnswer,
    }
}

/// The conversation: `timestamp − call_answer_timestamp`. Sipuni sometimes sends an answer
/// time before the start (a published capture), so the answer counts from the start at the
/// earliest; 0 when no answer time came.
fn talk_seconds(params: &Form) -> u32 {
    let seconds = |name| params.get(name).and_then(|value| value.parse::<i64>().ok());
    let (Some(end), Some(answer)) = (seconds("timestamp"), seconds("call_answer_timestamp")) else {
        log::warn("an answered call without timestamp/call_answer_timestamp: duration 0");
        return 0;
    };
    if answer <= 0 {
        return 0;
    }
    let answer = answer.max(seconds("call_start_timestamp").unwrap_or(answer));
    u32::try_from(end.saturating_sub(answer).max(0)).unwrap_or(u32::MAX)
}

/// Who called whom, from `src_type`/`dst_type` and the numbers.
struct Parties {
    direction: Direction,
    src: String,
    dst: String,
    /// The operator's extension, for `in` (receiving) and `out` (calling) calls.
    ext: Option<String>,
}

impl Parties {
    /// `None` when the types are missing or unknown, or a number is missing or unusable.
    fn of(params: &Form) -> Option<Self> {
        let src_type = params.get("src_type")?;
        let dst_type = params.get("dst_type")?;
        let parties = match (src_type, dst_type) {
            (EXTERNAL, _) => {
                let operator = operator(params, "dst", dst_type == INTERNAL)?;
                Self {
                    direction: Direction::In,
                    src: external(params, "src"),
                    ext: (dst_type == INTERNAL).then(|| operator.clone()),
                    dst: operator,
                }
            }
            (INTERNAL, EXTERNAL) => {
                let operator = operator(params, "src", true)?;
                Self {
                    direction: Direction::Out,
                    ext: Some(operator.clone()),
                    src: operator,
                    dst: external(params, "dst"),
                }
            }
            (INTERNAL, INTERNAL) => Self {
                direction: Direction::Internal,
                src: operator(params, "src", true)?,
                dst: operator(params, "dst", true)?,
                ext: None,
            },
            _ => return None,
        };
        for phone in [&parties.src, &parties.dst] {
            if let Err(why) = phone::check(phone) {
                log::warn(&format!("unusable number {phone:?}: {why}"));
                return None;
            }
        }
        Some(parties)
    }

    /// The event of these parties, with the extension where the direction allows it.
    fn event(self, kind: EventType) -> TelephonyEvent {
        let event = TelephonyEvent::new(kind, self.direction, self.src, self.dst);
        match (self.direction, self.ext) {
            (Direction::In, Some(ext)) => event.with_src_phone_ext(ext),
            (Direction::Out, Some(ext)) => event.with_dst_phone_ext(ext),
            _ => event,
        }
    }
}

/// The client's side (`src` or `dst`): the full number, withheld callers as `anonymous`.
fn external(params: &Form, side: &str) -> String {
    let full = params.get(&format!("{side}_num")).filter(|n| !n.is_empty());
    let short = params.get(&format!("short_{side}_num"));
    phone::number(without_id_suffix(full.or(short).unwrap_or_default()))
}

/// An operator's side (`src` or `dst`): the short number, else the long one, of an internal
/// number without the account prefix (`070196201` is extension `201` of account `070196`).
fn operator(params: &Form, side: &str, internal: bool) -> Option<String> {
    if let Some(short) = params
        .get(&format!("short_{side}_num"))
        .filter(|n| !n.is_empty())
    {
        return Some(phone::number(without_id_suffix(short)));
    }
    let long = params
        .get(&format!("{side}_num"))
        .filter(|n| !n.is_empty())?;
    let prefix = settings::get(ACCOUNT_PREFIX)
        .or_else(|| params.get("user_id").map(str::to_owned))
        .filter(|_| internal)
        .unwrap_or_default();
    let short = long
        .strip_prefix(prefix.as_str())
        .filter(|rest| !prefix.is_empty() && !rest.is_empty())
        .unwrap_or(long);
    Some(phone::number(without_id_suffix(short)))
}

/// Sipuni appends the scheme's id to some numbers (`998783337125_id265648`); the number is
/// what comes before it.
fn without_id_suffix(number: &str) -> &str {
    match number.rsplit_once("_id") {
        Some((head, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => number,
    }
}

telehook_guest::export_parser!(Sipuni);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const URL: &str = "https://hooks.example.com/hooks/acme/t0k3n";

    fn get(query: &str) -> TestRequest {
        TestRequest::get(&format!("{URL}?{query}"))
    }

    #[test]
    fn every_accepted_request_gets_the_success_reply() {
        for query in [
            "event=4&call_id=1.1",
            "event=9&call_id=1.1",
            "event=3&call_id=1.1",
        ] {
            let outcome = Harness::new().parse::<Sipuni>(get(query)).outcome();
            let response = outcome.response.expect("a reply");
            assert_eq!(
                (response.status, response.body),
                (200, br#"{"success":true}"#.to_vec())
            );
        }
    }

    #[test]
    fn long_internal_numbers_lose_the_account_prefix() {
        let query = "event=1&call_id=7.1&src_type=2&src_num=070196201&dst_type=1&dst_num=998948867473&user_id=070196";
        let event = Harness::new().parse::<Sipuni>(get(query)).outcome().event;
        let event = event.expect("a start");
        assert_eq!(event.src_phone.as_deref(), Some("201"));
        assert_eq!(event.dst_phone_ext.as_deref(), Some("201"));
        let internal =
            "event=1&call_id=7.2&src_type=2&src_num=01831597&dst_type=2&dst_num=01831598";
        let event = Harness::new()
            .setting(ACCOUNT_PREFIX, "018315")
            .parse::<Sipuni>(get(internal))
            .outcome()
            .event
            .expect("a start");
        assert_eq!(event.direction, Some(Direction::Internal));
        assert_eq!(
            (event.src_phone.as_deref(), event.dst_phone.as_deref()),
            (Some("97"), Some("98"))
        );
    }

    #[test]
    fn a_broken_answer_time_counts_from_the_start() {
        let query = "event=2&call_id=1.2&status=ANSWER&call_start_timestamp=100&call_answer_timestamp=90&timestamp=130";
        let record = Harness::new()
            .parse::<Sipuni>(get(query))
            .outcome()
            .call_record;
        let record = record.expect("a record");
        assert_eq!((record.duration, record.call.as_str()), (30, "1.2"));
        let unanswered =
            "event=2&call_id=1.3&status=NOANSWER&call_answer_timestamp=100&timestamp=130";
        let record = Harness::new()
            .parse::<Sipuni>(get(unanswered))
            .outcome()
            .call_record;
        assert_eq!(record.expect("a record").duration, 0);
    }

    #[test]
    fn the_shared_token_is_optional_and_checked_when_set() {
        let harness = Harness::new().setting(SHARED_TOKEN, "s3cret");
        let wrong = harness.parse::<Sipuni>(get("token=s3cre&event=3&call_id=1.1"));
        assert_eq!(wrong.refusal().status, Some(401));
        let posted = TestRequest::post(&format!("{URL}?token=s3cret"))
            .form(&[("event", "3"), ("call_id", "1.1")]);
        assert!(harness.parse::<Sipuni>(posted).outcome().event.is_some());
        let open = Harness::new().parse::<Sipuni>(get("event=3&call_id=1.1"));
        assert!(open.outcome().event.is_some());
    }

    #[test]
    fn a_request_without_event_or_call_id_is_refused() {
        let none = Harness::new()
            .parse::<Sipuni>(TestRequest::get(URL))
            .refusal();
        assert_eq!(none.status, None);
        let no_call = Harness::new()
            .parse::<Sipuni>(get("event=2&status=ANSWER"))
            .refusal();
        assert_eq!(no_call.message, "the parameter `call_id` is missing");
    }
}
