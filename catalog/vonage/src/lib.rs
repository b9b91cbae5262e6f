//! A parser for the Vonage (Nexmo) Voice API webhooks
//! (<https://developer.vonage.com/voice/voice-api/webhook-reference>).
//!
//! A Vonage application calls two URLs, and both may point at telehook:
//!
//! - the **answer URL** (`GET` with query parameters by default, or `POST` JSON), when a call is
//!   answered by the platform, which must reply with an NCCO: a JSON array of call-control
//!   actions. Point it at the integration's URL followed by `/answer`; the parser replies with
//!   the NCCO of the `answer_ncco` setting, after filling in `{{from}}`, `{{to}}`, `{{uuid}}` and
//!   `{{conversation_uuid}}`, and reports no event (the event URL reports the call);
//! - the **event URL** (`POST` JSON by default, or `GET`), for every change of every leg of the
//!   call: `status` = `started`, `ringing`, `answered`, `completed`, `busy`, `cancelled`,
//!   `unanswered`, `timeout`, `rejected`, `failed`, and events without a call status (`record`,
//!   `input`, `transfer`, `human`/`machine`, `disconnected`, errors).
//!
//! Every request is signed: `Authorization: Bearer <JWT>`, HS256 under the account's signature
//! secret, whose `payload_hash` claim is the SHA-256 (hex) of the body, or for a `GET` of the
//! query parameters as a compact JSON object in their order, and whose `iat` is checked against
//! the receive time (300 s). A request that is unsigned, forged or tampered with is refused 401,
//! a stale one 403.
//!
//! How events map (`call_id` = `conversation_uuid`, which all legs of a call share; `uuid` is
//! one leg):
//!
//! | `status` | event | disposition | call record |
//! |---|---|---|---|
//! | `started`, `ringing` | start | unknown | — |
//! | `answered` | answer | unknown | — |
//! | `completed` | end | answered (no-answer when `duration` is 0) | `duration` |
//! | `busy` | end | busy | 0 |
//! | `cancelled` | end | cancel | 0 |
//! | `unanswered`, `timeout`, `rejected`, `failed` | end | no-answer | 0 |
//! | `record` (no status) | — | answered | recording length, `recording_url` |
//!
//! Direction is the leg's own: `inbound` is `in` (`from` = the client, `to` = the Vonage
//! number), `outbound` is `out` (`from` = the Vonage number or caller id, `to` = the client). An
//! event without a direction or readable numbers names only its call.

use serde_json::{Map, Value};
use telehook_guest::crypto::jwt;
use telehook_guest::prelude::*;

/// The setting holding the account's signature secret (Dashboard → API settings), the HS256 key.
const SIGNATURE_SECRET: &str = "signature_secret";
/// Optional: the account's API key, which the JWT's `api_key` claim must name.
const API_KEY: &str = "api_key";
/// Optional: the Vonage application's id, which the JWT's `application_id` claim must name.
const APPLICATION_ID: &str = "application_id";
/// The NCCO (a JSON array of actions) the answer URL replies with.
const ANSWER_NCCO: &str = "answer_ncco";
/// What follows the webhook URL's token on the answer URL.
const ANSWER_ROUTE: &str = "answer";
/// How far `iat` may be from the receive time: Vonage documents no window, so the contract's
/// default.
const TOKEN_TOLERANCE_SECS: i64 = 300;
/// The request fields an `answer_ncco` may insert into its strings, as `{{name}}`.
const PLACEHOLDERS: [&str; 4] = ["from", "to", "uuid", "conversation_uuid"];

/// Statuses of events that change nothing the platform records: answering-machine detection
/// (`human`, `machine`), a closed WebSocket (`disconnected`), an `input` action's result and a
/// leg's `transfer` to another conversation.
const IGNORED_STATUSES: [&str; 5] = ["human", "machine", "disconnected", "input", "transfer"];

/// A request's parameters: the JSON body's object, or the query's pairs as strings.
type Fields = Map<String, Value>;

struct Vonage;

impl Parser for Vonage {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let claims = verify_token(&request)?;
        let fields = verify_payload(&request, &claims)?;
        if is_answer(&request, &fields) {
            return answer(&fields);
        }
        match text(&fields, "status") {
            Some(status) => status_event(status, &fields),
            None => other_event(&fields),
        }
    }
}

/// The signed-webhook JWT: present, HS256 under the signature secret, for the configured
/// account and application, and fresh. Returns its claims.
fn verify_token(request: &Request) -> Result<Fields, ParseError> {
    let secret = settings::require(SIGNATURE_SECRET)?;
    let token = bearer(request)?;
    let now = request.received_at_secs();
    let claims = jwt::verify_hs256(token, secret.as_bytes(), now, 0).map_err(|err| {
        ParseError::unauthorized(format!("the JWT in the Authorization header: {err}"))
    })?;
    require_claim(&claims, "api_key", API_KEY)?;
    require_claim(&claims, "application_id", APPLICATION_ID)?;
    let iat = claims
        .get("iat")
        .and_then(|iat| {
            iat.as_i64()
                .or_else(|| iat.as_f64().map(|secs| secs as i64))
        })
        .ok_or_else(|| {
            ParseError::unauthorized("the JWT has no `iat` claim: its age cannot be checked")
        })?;
    request
        .require_fresh(iat, TOKEN_TOLERANCE_SECS)
        .map_err(|err| ParseError::forbidden(format!("the JWT's `iat`: {}", err.message)))?;
    Ok(claims)
}

/// The token of `Authorization: Bearer <JWT>` (a bare token is taken as it is).
fn bearer(request: &Request) -> Result<&str, ParseError> {
    let value = request.header("authorization").ok_or_else(|| {
        ParseError::unauthorized(
            "the Authorization header is missing: Vonage signs each webhook with a JWT there \
             (signed callbacks)",
        )
    })?;
    match value.trim().split_once(' ') {
        None => Ok(value.trim()),
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        Some((scheme, _)) => Err(ParseError::unauthorized(format!(
            "the Authorization header is `{scheme} ...`, not `Bearer <JWT>`"
        ))),
    }
}

/// Refuses a token whose `claim` differs from the optional `setting`: signed with the same
/// secret for another account or application.
fn require_claim(claims: &Fields, claim: &str, setting: &str) -> Result<(), ParseError> {
    let Some(expected) = settings::get(setting).filter(|value| !value.is_empty()) else {
        return Ok(());
    };
    match claims.get(claim).and_then(Value::as_str) {
        Some(actual) if actual == expected => Ok(()),
        Some(actual) => Err(ParseError::unauthorized(format!(
            "the JWT's `{claim}` claim is `{actual}`, not `{expected}` (the `{setting}` setting)"
        ))),
        None => Err(ParseError::unauthorized(format!(
            "the JWT has no `{claim}` claim to compare with the `{setting}` setting"
        ))),
    }
}

/// Checks the `payload_hash` claim and returns the request's fields. Vonage hashes "an object
/// of the search/query parameters for GET or the request body POST", as compact JSON in the
/// order sent: the raw body is compared first, then its compact re-serialisation (a body a
/// proxy re-indented), and for a request without a body the query as such an object.
fn verify_payload(request: &Request, claims: &Fields) -> Result<Fields, ParseError> {
    let expected = claims
        .get("payload_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ParseError::unauthorized("the JWT has no `payload_hash` claim to check the body with")
        })?
        .to_ascii_lowercase();
    let hashes_to = |bytes: &[u8]| {
        let actual = crypto::hex_encode(&crypto::sha256(bytes));
        crypto::constant_time_eq(actual.as_bytes(), expected.as_bytes())
    };
    let fields = read_fields(request);
    let genuine = (!request.body.is_empty() && hashes_to(&request.body))
        || fields.as_ref().is_ok_and(|fields| {
            let compact = Value::Object(fields.clone()).to_string();
            hashes_to(compact.as_bytes())
        });
    if !genuine {
        return Err(ParseError::unauthorized(
            "the payload does not match the JWT's `payload_hash` claim: changed after signing",
        ));
    }
    fields
}

/// The JSON object of a `POST`, or the query parameters of a `GET` (as strings, in order).
fn read_fields(request: &Request) -> Result<Fields, ParseError> {
    if request.body.is_empty() {
        let pairs = request.query.iter();
        return Ok(pairs
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect());
    }
    match request.json::<Value>()? {
        Value::Object(fields) => Ok(fields),
        _ => Err(ParseError::new("the body is JSON but not an object")),
    }
}

/// The answer URL's request: by its route, or a fallback-URL request that repeats one
/// (`original_request.type` = `answer`).
fn is_answer(request: &Request, fields: &Fields) -> bool {
    let fallback = fields
        .get("original_request")
        .and_then(|original| original.get("type"))
        .and_then(Value::as_str);
    request
        .route_suffix
        .trim_matches('/')
        .eq_ignore_ascii_case(ANSWER_ROUTE)
        || fallback == Some(ANSWER_ROUTE)
}

/// Replies with the configured NCCO. Vonage hangs up on anything but a JSON array of actions,
/// so a missing or malformed setting is refused (and logged) rather than answered.
fn answer(fields: &Fields) -> Result<ParseResult, ParseError> {
    let setting = settings::require(ANSWER_NCCO)?;
    let mut ncco: Value = serde_json::from_str(&setting).map_err(|err| {
        ParseError::new(format!("the `{ANSWER_NCCO}` setting is not JSON: {err}"))
    })?;
    let actions = ncco.as_array().filter(|actions| {
        !actions.is_empty()
            && actions
                .iter()
                .all(|action| action.get("action").is_some_and(Value::is_string))
    });
    if actions.is_none() {
        return Err(ParseError::new(format!(
            "the `{ANSWER_NCCO}` setting is not an NCCO: a JSON array of objects with an `action`"
        )));
    }
    fill_placeholders(&mut ncco, fields);
    Ok(ParseResult::with_response(Response::json(200, &ncco)))
}

/// Replaces `{{from}}`, `{{to}}`, `{{uuid}}` and `{{conversation_uuid}}` in every string of
/// the NCCO with the answer request's values (a Client SDK caller's `from_user` for `from`).
fn fill_placeholders(ncco: &mut Value, fields: &Fields) {
    match ncco {
        Value::String(string) if string.contains("{{") => {
            for name in PLACEHOLDERS {
                let value = match name {
                    "from" => caller(fields),
                    _ => text(fields, name),
                };
                *string = string.replace(&format!("{{{{{name}}}}}"), value.unwrap_or_default());
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| fill_placeholders(item, fields)),
        Value::Object(members) => members
            .values_mut()
            .for_each(|member| fill_placeholders(member, fields)),
        _ => {}
    }
}

/// What a call status means to the platform, with Vonage's wording for each.
enum Step {
    /// A call event without an outcome.
    Progress(EventType),
    /// "The call is over, this event also includes summary data": answered when it lasted.
    Completed,
    /// A leg that ended before it was answered.
    Failed(Disposition),
}

/// The step a call `status` is; `None` for the statuses the platform has no event for.
fn step(status: &str) -> Option<Step> {
    Some(match status {
        // "Indicates that the call has been created"; "The destination is reachable and
        // ringing": both start the call, the host keeps the first.
        "started" | "ringing" => Step::Progress(EventType::NotifyStart),
        // "The call was answered".
        "answered" => Step::Progress(EventType::NotifyAnswer),
        "completed" => Step::Completed,
        // "The destination is on the line with another caller" (SIP 486).
        "busy" => Step::Failed(Disposition::Busy),
        // "An outgoing call is cancelled by the originator before being answered".
        "cancelled" => Step::Failed(Disposition::Cancel),
        // "Either the recipient is unreachable or the recipient declined the call" (SIP 480);
        // "the duration of the ringing phase exceeds the specified `ringing_timeout`";
        // "The call was rejected by Vonage before it was connected" (SIP 603);
        // "The outgoing call could not be connected" (`detail` says why, e.g. `cannot_route`).
        "unanswered" | "timeout" | "rejected" | "failed" => Step::Failed(Disposition::NoAnswer),
        _ => return None,
    })
}

/// An event with a call `status`.
fn status_event(status: &str, fields: &Fields) -> Result<ParseResult, ParseError> {
    let Some(step) = step(status) else {
        let conversation = text(fields, "conversation_uuid").unwrap_or("an unnamed conversation");
        if IGNORED_STATUSES.contains(&status) {
            log::info(&format!(
                "ignoring the `{status}` event of {conversation}: nothing the platform records"
            ));
        } else {
            log::warn(&format!(
                "ignoring the `{status}` event of {conversation}: a status this parser does not know"
            ));
        }
        return Ok(ParseResult::empty());
    };
    let call_id = conversation(fields)?;
    let (disposition, duration) = match step {
        Step::Progress(kind) => return Ok(ParseResult::with_event(event(kind, fields, call_id))),
        Step::Completed => {
            let duration = duration(fields)?;
            let disposition = match duration {
                0 => Disposition::NoAnswer,
                _ => Disposition::Answered,
            };
            (disposition, duration)
        }
        Step::Failed(disposition) => (disposition, 0),
    };
    let event = event(EventType::NotifyEnd, fields, call_id).with_disposition(disposition);
    let record = CallRecord::of_event(&event, duration, leg_ids(fields, call_id));
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// The event, with the leg's direction and numbers when it has them, else naming only its
/// call.
fn event(kind: EventType, fields: &Fields, call_id: &str) -> TelephonyEvent {
    match parties(fields) {
        Some((direction, src, dst)) => {
            TelephonyEvent::new(kind, direction, src, dst).with_call_id(call_id)
        }
        None => TelephonyEvent::of_call(kind, call_id),
    }
}

/// The leg's direction, calling and called numbers: `from` → `to` both ways, as `from` is the
/// client on an inbound leg and the Vonage number (caller id) on an outbound one.
fn parties(fields: &Fields) -> Option<(Direction, String, String)> {
    let direction = match text(fields, "direction")? {
        "inbound" => Direction::In,
        "outbound" => Direction::Out,
        _ => return None,
    };
    let src = phone::number(caller(fields)?);
    let dst = phone::number(text(fields, "to")?);
    if let Err(why) = phone::check(&src).and_then(|()| phone::check(&dst)) {
        log::warn(&format!(
            "the numbers `{src}` → `{dst}` are not phones the host accepts ({why}): the event names only its call"
        ));
        return None;
    }
    Some((direction, src, dst))
}

/// The call's `duration` in seconds, a string in the documentation and a number in the SDKs;
/// 0 when absent.
fn duration(fields: &Fields) -> Result<u32, ParseError> {
    let raw = match fields.get("duration") {
        None | Some(Value::Null) => return Ok(0),
        Some(raw) => raw,
    };
    let seconds = match raw {
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => raw.as_f64(),
    };
    seconds
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(|secs| secs.round().min(f64::from(u32::MAX)) as u32)
        .ok_or_else(|| ParseError::new(format!("`duration` is not a number of seconds: {raw}")))
}

/// A record's `call`: the conversation and the leg, the ids Vonage's Voice API and reports
/// know the call by.
fn leg_ids(fields: &Fields, call_id: &str) -> String {
    let mut ids = Map::new();
    ids.insert("conversation_uuid".into(), call_id.into());
    if let Some(uuid) = text(fields, "uuid").or_else(|| text(fields, "call_uuid")) {
        ids.insert("uuid".into(), uuid.into());
    }
    Value::Object(ids).to_string()
}

/// An event without a call status, told apart by its fields.
fn other_event(fields: &Fields) -> Result<ParseResult, ParseError> {
    if let Some(url) = text(fields, "recording_url") {
        return recording(fields, url);
    }
    let conversation = text(fields, "conversation_uuid").unwrap_or("an unnamed conversation");
    if let Some(reason) = text(fields, "reason") {
        // Errors, such as an NCCO Vonage could not run: the admin needs to see them.
        log::warn(&format!(
            "Vonage reports an error in {conversation}: {reason}"
        ));
        return Ok(ParseResult::empty());
    }
    if let Some(to) = text(fields, "conversation_uuid_to") {
        let from = text(fields, "conversation_uuid_from").unwrap_or("a conversation");
        log::info(&format!(
            "ignoring a transfer from {from} to {to}: the leg's later events name {to}"
        ));
    } else if fields.contains_key("dtmf") || fields.contains_key("speech") {
        log::info(&format!(
            "ignoring an input result in {conversation}: nothing the platform records"
        ));
    } else {
        log::info(&format!(
            "ignoring a notification without a call status in {conversation}"
        ));
    }
    Ok(ParseResult::empty())
}

/// A `record` action's recording: the call's record, its length the recording's, answered
/// since only a connected call is recorded. The host keeps the first record of a call, so a
/// recording that arrives after `completed` stays in the event log only.
fn recording(fields: &Fields, url: &str) -> Result<ParseResult, ParseError> {
    let call_id = conversation(fields)?;
    let start = text(fields, "start_time").and_then(vonage_time_ms);
    let end = text(fields, "end_time").and_then(vonage_time_ms);
    let duration = match (start, end) {
        (Some(start), Some(end)) if end >= start => {
            u32::try_from((end - start + 500) / 1000).unwrap_or(u32::MAX)
        }
        _ => 0,
    };
    let record = CallRecord::of_call(call_id, Disposition::Answered, duration, url);
    Ok(ParseResult::with_call_record(record))
}

/// Milliseconds since the Unix epoch of an ISO 8601 time as Vonage writes them,
/// `2020-01-01T12:00:00.000Z` (a `+hh:mm` offset is understood too). Only the `T` form is
/// Vonage's: a time with a space instead is not read, and the recording then lasts 0 s.
fn vonage_time_ms(text: &str) -> Option<i64> {
    if text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    time::unix_ms(text)
}

/// The `conversation_uuid` every call event carries.
fn conversation(fields: &Fields) -> Result<&str, ParseError> {
    text(fields, "conversation_uuid")
        .ok_or_else(|| ParseError::new("the event has no `conversation_uuid`"))
}

/// The caller: `from`, or `from_user` for a Client SDK user (Vonage sends one or the other).
fn caller(fields: &Fields) -> Option<&str> {
    text(fields, "from").or_else(|| text(fields, "from_user"))
}

/// A non-empty string field.
fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

telehook_guest::export_parser!(Vonage);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use telehook_guest::testing::{Harness, TestRequest};

    const SECRET: &str = "telehook-test-signature-secret-0123456789";
    const URL: &str = "https://hooks.example.com/hooks/acme/vonage/t0k3n";
    /// `TestRequest`'s receive time, 2026-12-01T10:00:00Z.
    const NOW: i64 = 1_796_119_200;
    const CONVERSATION: &str = "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab";

    // vonage-ruby-sdk test/vonage/test.rb: sample_webhook_token, sample_valid_signature_secret
    // and sample_invalid_signature_secret (the body it signs is not published).
    const RUBY_TOKEN: &str = concat!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE1ODc0OTQ5NjIsImp0aSI6ImM1YmE4ZjI0LTFhMTQ",
        "tNGMxMC1iZmRmLTNmYmU4Y2U1MTFiNSIsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6ImQ2YzBlNzRiNTg",
        "1N2RmMjBlM2I3ZTUxYjMwYzBjMmE0MGVjNzNhNzc4NzliNmYwNzRkZGM3YTIzMTdkZDAzMWIiLCJhcGlfa2V5Ijo",
        "iYTFiMmMzZCIsImFwcGxpY2F0aW9uX2lkIjoiYWFhYWFhYWEtYmJiYi1jY2NjLWRkZGQtMDEyMzQ1Njc4OWFiIn0",
        ".JQRKi1d0SQitmjPINfTWMpt3XZkGsLbD7EjCdXoNSbk"
    );
    const RUBY_SECRET: &str = "ZYtdTtGV3BCFN7tWmOWr1md66XsquMggr4W2cTtXtcPgfnI0Xw";
    const RUBY_INVALID_SECRET: &str = "ZYtdTtGV3BCFN7tWmOWr1md66XsquMggr4W2cTtXtcPgf55555";
    const RUBY_IAT: i64 = 1_587_494_962;

    fn token(header: &str, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            crypto::base64url_encode(header.as_bytes()),
            crypto::base64url_encode(claims.to_string().as_bytes())
        );
        let signature = crypto::hmac_sha256(SECRET.as_bytes(), signed.as_bytes());
        format!("{signed}.{}", crypto::base64url_encode(&signature))
    }

    /// A Vonage token signing `hashed` now.
    fn signed_over(hashed: &str) -> String {
        let hash = crypto::hex_encode(&crypto::sha256(hashed.as_bytes()));
        let claims =
            json!({"iat": NOW, "iss": "Vonage", "payload_hash": hash, "api_key": "a1b2c3d"});
        format!(
            "Bearer {}",
            token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims)
        )
    }

    fn post(body: &str) -> TestRequest {
        with_token(body, &signed_over(body))
    }

    fn with_token(body: &str, authorization: &str) -> TestRequest {
        TestRequest::post(URL)
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .body(body)
    }

    fn harness() -> Harness {
        Harness::new().setting(SIGNATURE_SECRET, SECRET)
    }

    #[test]
    fn the_ruby_sdk_token_verifies_with_its_secret_only() {
        let claims = jwt::verify_hs256(RUBY_TOKEN, RUBY_SECRET.as_bytes(), RUBY_IAT, 0)
            .expect("the SDK's token is valid under its secret");
        assert_eq!(claims["api_key"], "a1b2c3d");
        assert_eq!(
            claims["payload_hash"],
            "d6c0e74b5857df20e3b7e51b30c0c2a40ec73a77879b6f074ddc7a2317dd031b"
        );
        let request = |secret: &str, api_key: &str| {
            Harness::new()
                .setting(SIGNATURE_SECRET, secret)
                .setting(API_KEY, api_key)
                .parse::<Vonage>(
                    TestRequest::post(URL)
                        .header("authorization", format!("Bearer {RUBY_TOKEN}"))
                        .body("{}")
                        .received_at_ms(RUBY_IAT as u64 * 1000),
                )
                .refusal()
        };
        // The signature, the claims and `iat` pass; only the unpublished body cannot match.
        let genuine = request(RUBY_SECRET, "a1b2c3d");
        assert_eq!(genuine.status, Some(401));
        assert!(
            genuine.message.contains("payload_hash"),
            "{}",
            genuine.message
        );
        let forged = request(RUBY_INVALID_SECRET, "a1b2c3d");
        assert!(forged.message.ends_with("the token's signature is wrong"));
        let other_account = request(RUBY_SECRET, "f00f00");
        assert_eq!(
            other_account.message,
            "the JWT's `api_key` claim is `a1b2c3d`, not `f00f00` (the `api_key` setting)"
        );
    }

    #[test]
    fn tokens_without_hs256_or_a_payload_hash_are_refused() {
        let body = r#"{"status":"started"}"#;
        let none = token(r#"{"alg":"none"}"#, &json!({"iat": NOW}));
        let refused = harness()
            .parse::<Vonage>(with_token(body, &format!("Bearer {none}")))
            .refusal();
        assert!(refused.message.ends_with("signed with `none`, not HS256"));
        let unhashed = token(r#"{"alg":"HS256"}"#, &json!({"iat": NOW}));
        let refused = harness()
            .parse::<Vonage>(with_token(body, &unhashed))
            .refusal();
        assert_eq!(refused.status, Some(401));
        assert!(refused.message.contains("no `payload_hash` claim"));
    }

    #[test]
    fn a_reindented_body_matches_the_hash_of_its_compact_form() {
        let compact = format!(
            r#"{{"from":"442079460000","to":"447700900000","conversation_uuid":"{CONVERSATION}","status":"ringing","direction":"outbound"}}"#
        );
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&compact).expect("JSON"))
                .expect("JSON");
        let request = with_token(&pretty, &signed_over(&compact));
        let event = harness()
            .parse::<Vonage>(request)
            .outcome()
            .event
            .expect("an event");
        assert_eq!(
            (event.event, event.direction, event.src_phone.as_deref()),
            (
                EventType::NotifyStart,
                Some(Direction::Out),
                Some("442079460000")
            )
        );
    }

    #[test]
    fn a_get_event_is_hashed_as_its_query_in_order() {
        let query = format!(
            "from=447700900000&to=442079460000&uuid=u-1&conversation_uuid={CONVERSATION}&status=answered&direction=inbound"
        );
        let hashed = format!(
            r#"{{"from":"447700900000","to":"442079460000","uuid":"u-1","conversation_uuid":"{CONVERSATION}","status":"answered","direction":"inbound"}}"#
        );
        let request = TestRequest::get(&format!("{URL}?{query}"))
            .header("authorization", signed_over(&hashed));
        let event = harness()
            .parse::<Vonage>(request)
            .outcome()
            .event
            .expect("an event");
        assert_eq!(event.event, EventType::NotifyAnswer);
        assert_eq!(event.disposition, Disposition::Unknown);
        assert_eq!(
            (
                event.direction,
                event.dst_phone.as_deref(),
                event.call_id.as_deref()
            ),
            (
                Some(Direction::In),
                Some("442079460000"),
                Some(CONVERSATION)
            )
        );
    }

    #[test]
    fn completed_is_answered_only_when_it_lasted() {
        let completed = |duration: &str| {
            let body = format!(
                r#"{{"conversation_uuid":"{CONVERSATION}","uuid":"u-1","status":"completed","duration":{duration}}}"#
            );
            harness().parse::<Vonage>(post(&body)).outcome()
        };
        let short = completed("0");
        let record = short.call_record.expect("a record");
        assert_eq!(
            (record.disposition, record.duration),
            (Disposition::NoAnswer, 0)
        );
        // No direction or numbers: both name only their call.
        let event = short.event.expect("an event");
        assert_eq!((event.direction, event.src_phone), (None, None));
        assert_eq!(event.call_id.as_deref(), Some(CONVERSATION));
        let long = completed("17").call_record.expect("a record");
        assert_eq!(
            (long.disposition, long.duration),
            (Disposition::Answered, 17)
        );
        assert_eq!(
            long.call,
            format!(r#"{{"conversation_uuid":"{CONVERSATION}","uuid":"u-1"}}"#)
        );
        let refused = harness().parse::<Vonage>(post(&format!(
            r#"{{"conversation_uuid":"{CONVERSATION}","status":"completed","duration":"two"}}"#
        )));
        assert_eq!(refused.refusal().status, None);
    }

    #[test]
    fn the_answer_ncco_is_required_filled_in_and_checked() {
        let body = format!(
            r#"{{"from":"447700900000","to":"442079460000","uuid":"u-1","conversation_uuid":"{CONVERSATION}"}}"#
        );
        let answer = |ncco: Option<&str>| {
            let harness = match ncco {
                Some(ncco) => harness().setting(ANSWER_NCCO, ncco),
                None => harness(),
            };
            harness.parse::<Vonage>(post(&body).route_suffix("answer"))
        };
        let missing = answer(None).refusal();
        assert_eq!(
            missing.message,
            "the integration setting `answer_ncco` is not set"
        );
        let object = answer(Some(r#"{"action":"talk","text":"hi"}"#)).refusal();
        assert!(
            object.message.contains("is not an NCCO"),
            "{}",
            object.message
        );
        let ncco =
            r#"[{"action":"talk","text":"{{from}} called {{to}} in {{conversation_uuid}}"}]"#;
        let result = answer(Some(ncco)).outcome();
        assert_eq!(result.event, None);
        let response = result.response.expect("the NCCO");
        assert_eq!(response.status, 200);
        assert_eq!(
            String::from_utf8(response.body).expect("UTF-8"),
            format!(
                r#"[{{"action":"talk","text":"447700900000 called 442079460000 in {CONVERSATION}"}}]"#
            )
        );
    }

    #[test]
    fn a_recording_lasts_from_its_start_to_its_end() {
        assert_eq!(vonage_time_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            vonage_time_ms("2020-01-01T12:00:00.000Z"),
            Some(1_577_880_000_000)
        );
        assert_eq!(
            vonage_time_ms("2020-01-01T13:00:00.5+01:00"),
            Some(1_577_880_000_500)
        );
        assert_eq!(vonage_time_ms("2020-01-01 12:00:00"), None);
        let body = format!(
            r#"{{"start_time":"2024-02-29T23:59:30.000Z","end_time":"2024-03-01T00:00:35.400Z","recording_url":"https://api.nexmo.com/v1/files/r-1","conversation_uuid":"{CONVERSATION}"}}"#
        );
        let record = harness()
            .parse::<Vonage>(post(&body))
            .outcome()
            .call_record
            .expect("a record");
        assert_eq!(record.call_id.as_deref(), Some(CONVERSATION));
        assert_eq!(
            (record.duration, record.call.as_str()),
            (65, "https://api.nexmo.com/v1/files/r-1")
        );
    }
}
