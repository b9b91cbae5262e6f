//! A parser for Telnyx Voice API (Call Control) webhooks, API version 2
//! (<https://developers.telnyx.com/docs/voice/programmable-voice/receiving-webhooks>).
//!
//! Telnyx POSTs every call event of a Voice API application to one URL as JSON,
//! `{"data": {"event_type", "id", "occurred_at", "payload": {...}}, "meta": {...}}`, signed
//! with Ed25519: `telnyx-signature-ed25519` is base64 of the signature of
//! `telnyx-timestamp + "|" + raw body` under the account's public key, and the timestamp must be
//! within 300 s of the receive time (telnyx-python `lib/webhook_verification.py`, telnyx-node
//! `src/lib/webhooks.ts`). A missing or wrong signature is refused `401`, a stale one `403`.
//!
//! The call id is `call_session_id`, shared by the legs of one call (an inbound leg and the
//! legs transferred or dialled with `link_to` from it), never the per-leg `call_leg_id` or
//! `call_control_id`. `data.id`, the event's id, is the delivery id that Telnyx's retries
//! repeat (`meta.attempt` changes between them, so the bodies differ).
//!
//! | event_type | event | direction | src → dst | disposition / record |
//! |---|---|---|---|---|
//! | `call.initiated` | start | `incoming` → in, `outgoing` → out | `from` → `to` | unknown |
//! | `call.bridged` (default, `answer_on=bridged`) | answer, call only | – | – | unknown |
//! | `call.answered` (only with `answer_on=answered`) | answer, call only | – | – | unknown |
//! | `call.hangup` | end, call only | – | – | from `hangup_cause` ([`hangup_disposition`]) |
//! | `call.recording.saved` | record, call only | – | – | answered, recording length, [`recording_reference`] |
//!
//! Every other event (`call.speak.ended`, `call.dtmf.received`, ...) is verified and answered
//! with the default `200` and no event. Telnyx has no extensions, so no `*_phone_ext` is set.

use serde::Deserialize;
use serde_json::Value;
use telehook_guest::prelude::*;

/// The setting holding the account's Ed25519 public key, base64 of 32 bytes, from Mission
/// Control ("Keys & Credentials → Public Key").
const PUBLIC_KEY: &str = "public_key";
/// The optional setting overriding the replay window, in seconds.
const TOLERANCE_SECONDS: &str = "tolerance_seconds";
/// The optional setting choosing which event is the answer: `bridged` (default) or `answered`.
const ANSWER_ON: &str = "answer_on";

/// The SDKs' `TIMESTAMP_TOLERANCE_SECONDS`.
const DEFAULT_TOLERANCE_SECS: i64 = 300;
const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

struct Telnyx;

impl Parser for Telnyx {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if !request.is_method("POST") {
            return Err(ParseError::new(format!(
                "a {} request: Telnyx webhooks are read from a POST body; set the Voice API \
                 application's webhook method to POST (how a GET delivery is signed is not \
                 documented)",
                request.method
            )));
        }
        verify(&request)?;
        let envelope: Envelope = request.json()?;
        let event = envelope.data;
        Ok(translate(&event)?.with_delivery_id(event.id))
    }
}

/// The webhook envelope; `meta` (attempt, delivered_to) is not needed.
#[derive(Deserialize)]
struct Envelope {
    data: Event,
}

/// `data`: the payload stays untyped until the event type says what it holds.
#[derive(Deserialize)]
struct Event {
    event_type: String,
    id: String,
    #[serde(default)]
    payload: Value,
}

/// The payload fields of the call events this parser reads (telnyx-python `types/call_*.py`).
#[derive(Deserialize, Default)]
struct Payload {
    call_session_id: Option<String>,
    direction: Option<String>,
    from: Option<String>,
    to: Option<String>,
    hangup_cause: Option<String>,
    sip_hangup_cause: Option<String>,
    recording_id: Option<String>,
    recording_started_at: Option<String>,
    recording_ended_at: Option<String>,
    recording_urls: Option<Urls>,
    public_recording_urls: Option<Urls>,
}

/// `recording_urls` (valid 10 minutes) and `public_recording_urls` (persistent, opt-in).
#[derive(Deserialize, Default)]
struct Urls {
    mp3: Option<String>,
    wav: Option<String>,
}

/// Which event reports the answer; see the README for when to choose which.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AnswerOn {
    /// `call.bridged`: two legs were connected, i.e. a person took the call.
    Bridged,
    /// `call.answered` as well: a leg was answered, by the far end of an outgoing call or by
    /// the application itself on an incoming one.
    Answered,
}

/// Checks the signature over `telnyx-timestamp|body`, then the timestamp's freshness, so
/// that a forged request is told apart (`401`) from a genuine but replayed one (`403`).
fn verify(request: &Request) -> Result<(), ParseError> {
    let key = public_key()?;
    let signature = request.header(SIGNATURE_HEADER).ok_or_else(|| {
        ParseError::unauthorized(format!(
            "the `{SIGNATURE_HEADER}` header is missing: the request is not signed by Telnyx"
        ))
    })?;
    let timestamp = request.header(TIMESTAMP_HEADER).ok_or_else(|| {
        ParseError::unauthorized(format!(
            "the `{TIMESTAMP_HEADER}` header is missing: the signature cannot be checked"
        ))
    })?;
    let signature = crypto::base64_decode(signature.trim()).ok_or_else(|| {
        ParseError::unauthorized(format!("the `{SIGNATURE_HEADER}` header is not base64"))
    })?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + request.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(&request.body);
    if !crypto::ed25519_verify(&key, &signed, &signature) {
        log::warn("refusing a webhook whose Ed25519 signature does not verify");
        return Err(ParseError::unauthorized(format!(
            "the `{SIGNATURE_HEADER}` signature does not verify over `{TIMESTAMP_HEADER}|body` \
             with the `{PUBLIC_KEY}` setting: forged, altered, or signed with another key"
        )));
    }
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| {
        ParseError::unauthorized(format!(
            "the `{TIMESTAMP_HEADER}` header is not Unix seconds: {timestamp:?}"
        ))
    })?;
    request.require_fresh(timestamp, tolerance()?)
}

/// The public key setting, decoded; a key that is not 32 bytes is a configuration error.
fn public_key() -> Result<Vec<u8>, ParseError> {
    let text = settings::require(PUBLIC_KEY)?;
    crypto::base64_decode(text.trim())
        .filter(|key| key.len() == 32)
        .ok_or_else(|| {
            ParseError::new(format!(
                "the integration setting `{PUBLIC_KEY}` is not the base64 of a 32-byte Ed25519 \
                 public key (Mission Control: Keys & Credentials, Public Key)"
            ))
        })
}

fn tolerance() -> Result<i64, ParseError> {
    let Some(text) = settings::get(TOLERANCE_SECONDS).filter(|text| !text.trim().is_empty()) else {
        return Ok(DEFAULT_TOLERANCE_SECS);
    };
    text.trim()
        .parse()
        .ok()
        .filter(|secs| *secs > 0)
        .ok_or_else(|| {
            ParseError::new(format!(
                "the integration setting `{TOLERANCE_SECONDS}` is not a positive number of \
                 seconds: {text:?}"
            ))
        })
}

fn answer_on() -> Result<AnswerOn, ParseError> {
    match settings::get(ANSWER_ON).as_deref().map(str::trim) {
        None | Some("" | "bridged") => Ok(AnswerOn::Bridged),
        Some("answered") => Ok(AnswerOn::Answered),
        Some(other) => Err(ParseError::new(format!(
            "the integration setting `{ANSWER_ON}` is {other:?}; it must be `bridged` or \
             `answered`"
        ))),
    }
}

/// Turns a verified event into the platform's outcome.
fn translate(event: &Event) -> Result<ParseResult, ParseError> {
    let kind = event.event_type.as_str();
    let handled = matches!(
        kind,
        "call.initiated"
            | "call.answered"
            | "call.bridged"
            | "call.hangup"
            | "call.recording.saved"
    );
    if !handled {
        log::info(&format!(
            "`{kind}` carries nothing the platform has an event for; acknowledged"
        ));
        return Ok(ParseResult::empty());
    }
    let payload = Payload::deserialize(&event.payload).map_err(|err| {
        ParseError::new(format!(
            "the `{kind}` payload is not the expected JSON: {err}"
        ))
    })?;
    let session = payload
        .call_session_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::new(format!("the `{kind}` payload has no call_session_id")))?;
    match kind {
        "call.initiated" => started(&payload, session),
        "call.hangup" => Ok(ParseResult::with_event(
            TelephonyEvent::of_call(EventType::NotifyEnd, session).with_disposition(
                hangup_disposition(
                    payload.hangup_cause.as_deref(),
                    payload.sip_hangup_cause.as_deref(),
                ),
            ),
        )),
        "call.recording.saved" => recorded(&payload, session),
        "call.answered" if answer_on()? == AnswerOn::Bridged => {
            log::info(
                "`call.answered` is not taken as the answer (`answer_on` is `bridged`): on an \
                 incoming leg it only says that the application answered",
            );
            Ok(ParseResult::empty())
        }
        _ => Ok(ParseResult::with_event(TelephonyEvent::of_call(
            EventType::NotifyAnswer,
            session,
        ))),
    }
}

/// `call.initiated`: an incoming call (client → the Telnyx number) or an outgoing leg
/// (our number → the client).
fn started(payload: &Payload, session: &str) -> Result<ParseResult, ParseError> {
    let direction = match payload.direction.as_deref() {
        Some("incoming") => Direction::In,
        Some("outgoing") => Direction::Out,
        other => {
            return Err(ParseError::new(format!(
                "`call.initiated` has direction {other:?}, not `incoming` or `outgoing`"
            )));
        }
    };
    let src = party(payload.from.as_deref(), "from")?;
    let dst = party(payload.to.as_deref(), "to")?;
    let event =
        TelephonyEvent::new(EventType::NotifyStart, direction, src, dst).with_call_id(session);
    Ok(ParseResult::with_event(event))
}

/// A `from`/`to` value (a number or a SIP URI) as the platform's phone.
fn party(raw: Option<&str>, field: &str) -> Result<String, ParseError> {
    let raw = raw.ok_or_else(|| ParseError::new(format!("`call.initiated` has no `{field}`")))?;
    let number = phone::number(raw);
    phone::check(&number).map_err(|err| {
        ParseError::new(format!(
            "`call.initiated` `{field}` {raw:?} is not a phone: {err}"
        ))
    })?;
    Ok(number)
}

/// How a leg ended, from Telnyx's `hangup_cause` (telnyx-python `types/call_hangup.py`: "The
/// reason the call was ended (`call_rejected`, `normal_clearing`, `originator_cancel`,
/// `timeout`, `time_limit`, `user_busy`, `not_found`, `no_answer` or `unspecified`)"):
///
/// | hangup_cause | disposition | why |
/// |---|---|---|
/// | `normal_clearing` | answered | a normal hang-up of a leg that was up |
/// | `time_limit` | answered | the leg was up until it hit its time limit |
/// | `originator_cancel` | cancel | the caller gave up before the answer (SIP 487) |
/// | `user_busy` | busy | SIP 486 |
/// | `call_rejected` | busy | the callee declined (the docs pair it with SIP 603) |
/// | `no_answer`, `timeout` | no-answer | it rang out |
/// | `not_found` | no-answer | unreachable (SIP 404) |
/// | `unspecified`, or a cause not documented | from `sip_hangup_cause` ([`sip_disposition`]) |
fn hangup_disposition(cause: Option<&str>, sip_cause: Option<&str>) -> Disposition {
    match cause {
        Some("normal_clearing" | "time_limit") => Disposition::Answered,
        Some("originator_cancel") => Disposition::Cancel,
        Some("user_busy" | "call_rejected") => Disposition::Busy,
        Some("no_answer" | "timeout" | "not_found") => Disposition::NoAnswer,
        Some("unspecified") | None => sip_disposition(sip_cause),
        Some(other) => {
            log::warn(&format!(
                "undocumented hangup_cause {other:?}; judged by sip_hangup_cause"
            ));
            sip_disposition(sip_cause)
        }
    }
}

/// The disposition a SIP final response code gives: 486/600/603 busy or declined, 487
/// cancelled, any other 4xx–6xx not reached. Without a failure code (Telnyx sends
/// `unspecified` "if the SIP response is unavailable (in inbound calls for example)") the
/// end says nothing: `unknown`, which the host makes `answered` when the call had an answer.
fn sip_disposition(sip_cause: Option<&str>) -> Disposition {
    match sip_cause.and_then(|code| code.trim().parse::<u16>().ok()) {
        Some(486 | 600 | 603) => Disposition::Busy,
        Some(487) => Disposition::Cancel,
        Some(400..=699) => Disposition::NoAnswer,
        _ => Disposition::Unknown,
    }
}

/// `call.recording.saved`: the record of an answered call, as long as its recording.
fn recorded(payload: &Payload, session: &str) -> Result<ParseResult, ParseError> {
    let call = recording_reference(payload).ok_or_else(|| {
        ParseError::new("`call.recording.saved` has neither a recording URL nor a recording_id")
    })?;
    let duration = recording_seconds(payload);
    let record = CallRecord::of_call(session, Disposition::Answered, duration, call);
    Ok(ParseResult::with_call_record(record))
}

/// What the record keeps to find the recording again: a public URL (persistent, when the
/// account has them enabled), else the `recording_id` (`GET /v2/recordings/{id}` gives a fresh
/// link), else the temporary URL, which expires ten minutes after the event.
fn recording_reference(payload: &Payload) -> Option<String> {
    let urls = |urls: &Option<Urls>| {
        urls.as_ref()
            .and_then(|urls| urls.mp3.clone().or_else(|| urls.wav.clone()))
            .filter(|url| !url.is_empty())
    };
    if let Some(url) = urls(&payload.public_recording_urls) {
        return Some(url);
    }
    if let Some(id) = payload.recording_id.clone().filter(|id| !id.is_empty()) {
        return Some(id);
    }
    let url = urls(&payload.recording_urls)?;
    log::warn(
        "the record keeps `recording_urls`, which expire 10 minutes after the event: enable \
         public recording URLs to keep a lasting link",
    );
    Some(url)
}

/// `recording_ended_at - recording_started_at`, rounded to whole seconds; 0 when either is
/// missing or unreadable.
fn recording_seconds(payload: &Payload) -> u32 {
    let at = |text: &Option<String>| text.as_deref().and_then(time::unix_ms);
    match (
        at(&payload.recording_started_at),
        at(&payload.recording_ended_at),
    ) {
        (Some(start), Some(end)) => {
            u32::try_from((end - start).max(0).saturating_add(500) / 1000).unwrap_or(u32::MAX)
        }
        _ => {
            log::warn("the recording's start or end time is missing or unreadable; duration 0");
            0
        }
    }
}

telehook_guest::export_parser!(Telnyx);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    /// RFC 8032 §7.1 TEST 1's public key (not a Telnyx key) and the research's vector.
    const KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const TIMESTAMP: &str = "1700000000";
    const SIGNATURE: &str =
        "IkZDR9Cy0DGpQuUiLMDkbAwb06pHthB8CFquZv+Ke+tS+yKEDnrX6HKa5+JJLinEK3PB4RZ1LL1FiV3LKZ0XBg==";
    const BODY: &str = r#"{"data":{"record_type":"event","event_type":"call.hangup","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2018-02-02T22:25:27.521992Z","payload":{"call_control_id":"v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg","connection_id":"7267xxxxxxxxxxxxxx","call_leg_id":"428c31b6-7af4-4bcb-b7f5-5013ef9657c1","call_session_id":"428c31b6-7af4-4bcb-b7f5-5013ef9657c1","client_state":"aGF2ZSBhIG5pY2UgZGF5ID1d","from":"+35319605860","to":"+35319605860","start_time":"2018-02-02T22:20:27.521992Z","state":"hangup","hangup_cause":"call_rejected","hangup_source":"caller","sip_hangup_cause":"603"}}}"#;
    const RECEIVED_MS: u64 = 1_700_000_100_000;

    fn signed(timestamp: &str, signature: &str, received_ms: u64) -> TestRequest {
        TestRequest::post("https://hooks.example.com/hooks/acme/telnyx/t0k3n")
            .header("content-type", "application/json")
            .header("telnyx-timestamp", timestamp)
            .header("telnyx-signature-ed25519", signature)
            .body(BODY)
            .received_at_ms(received_ms)
    }

    fn harness() -> Harness {
        Harness::new().setting(PUBLIC_KEY, KEY)
    }

    #[test]
    fn the_vector_verifies_and_names_the_session_and_the_delivery() {
        let outcome = harness()
            .parse::<Telnyx>(signed(TIMESTAMP, SIGNATURE, RECEIVED_MS))
            .outcome();
        let event = outcome.event.expect("an end");
        assert_eq!(event.event, EventType::NotifyEnd);
        assert_eq!(event.disposition, Disposition::Busy);
        assert_eq!(
            event.call_id.as_deref(),
            Some("428c31b6-7af4-4bcb-b7f5-5013ef9657c1")
        );
        assert_eq!(
            outcome.delivery_id.as_deref(),
            Some("0ccc7b54-4df3-4bca-a65a-3da1ecc777f0")
        );
    }

    #[test]
    fn the_window_is_symmetric_and_configurable() {
        let late = harness().parse::<Telnyx>(signed(TIMESTAMP, SIGNATURE, 1_700_000_301_000));
        assert_eq!(late.refusal().status, Some(403));
        let early = harness().parse::<Telnyx>(signed(TIMESTAMP, SIGNATURE, 1_699_999_699_000));
        assert_eq!(early.refusal().status, Some(403));
        let wide = harness().setting(TOLERANCE_SECONDS, "600");
        let _ = wide
            .parse::<Telnyx>(signed(TIMESTAMP, SIGNATURE, 1_700_000_301_000))
            .outcome();
    }

    #[test]
    fn a_changed_timestamp_or_a_bad_header_is_unauthorized() {
        let moved = harness().parse::<Telnyx>(signed("1700000001", SIGNATURE, RECEIVED_MS));
        assert_eq!(moved.refusal().status, Some(401));
        let garbled = harness().parse::<Telnyx>(signed(TIMESTAMP, "not base64!", RECEIVED_MS));
        assert_eq!(
            garbled.refusal().message,
            "the `telnyx-signature-ed25519` header is not base64"
        );
        let short = harness().parse::<Telnyx>(signed(TIMESTAMP, "AAAA", RECEIVED_MS));
        assert_eq!(short.refusal().status, Some(401));
    }

    #[test]
    fn a_bad_key_setting_is_a_configuration_error() {
        let parsed = Harness::new()
            .setting(PUBLIC_KEY, "aGk=")
            .parse::<Telnyx>(signed(TIMESTAMP, SIGNATURE, RECEIVED_MS));
        let refusal = parsed.refusal();
        assert_eq!(refusal.status, None);
        assert!(refusal.message.contains("32-byte"), "{}", refusal.message);
    }

    /// The mapping without the signature, for settings the samples do not vary.
    struct Unsigned;

    impl Parser for Unsigned {
        fn parse(request: Request) -> Result<ParseResult, ParseError> {
            translate(&request.json::<Envelope>()?.data)
        }
    }

    #[test]
    fn answer_on_chooses_the_event_that_answers() {
        let answered = TestRequest::post("https://hooks.example.com/h").json(&serde_json::json!({
            "data": {"event_type": "call.answered", "id": "e-1",
                     "payload": {"call_session_id": "s-1", "from": "+1", "to": "+2"}}
        }));
        let by_default = harness().parse::<Unsigned>(answered.clone()).outcome();
        assert_eq!(by_default.event, None);
        let outcome = harness()
            .setting(ANSWER_ON, "answered")
            .parse::<Unsigned>(answered.clone())
            .outcome();
        assert_eq!(
            outcome.event,
            Some(TelephonyEvent::of_call(EventType::NotifyAnswer, "s-1"))
        );
        let wrong = harness()
            .setting(ANSWER_ON, "ringing")
            .parse::<Unsigned>(answered);
        assert!(wrong.refusal().message.contains("`bridged` or `answered`"));
    }

    #[test]
    fn hangup_causes_map_deliberately() {
        use Disposition::*;
        let cases = [
            ("normal_clearing", "unspecified", Answered),
            ("time_limit", "unspecified", Answered),
            ("originator_cancel", "487", Cancel),
            ("user_busy", "486", Busy),
            ("call_rejected", "603", Busy),
            ("no_answer", "480", NoAnswer),
            ("timeout", "408", NoAnswer),
            ("not_found", "404", NoAnswer),
            ("unspecified", "486", Busy),
            ("unspecified", "487", Cancel),
            ("unspecified", "503", NoAnswer),
            ("unspecified", "unspecified", Unknown),
            ("something_new", "200", Unknown),
        ];
        for (cause, sip, expected) in cases {
            assert_eq!(
                hangup_disposition(Some(cause), Some(sip)),
                expected,
                "{cause}/{sip}"
            );
        }
    }

    #[test]
    fn times_are_read_with_fractions_and_offsets() {
        assert_eq!(time::unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            time::unix_ms("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            time::unix_ms("2023-11-15T00:13:20.521992+02:00"),
            Some(1_700_000_000_521)
        );
        assert_eq!(
            time::unix_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(time::unix_ms("yesterday"), None);
        assert_eq!(time::unix_ms("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn recordings_prefer_a_lasting_reference() {
        let payload = |json: Value| Payload::deserialize(&json).expect("payload");
        let both = payload(serde_json::json!({
            "recording_id": "rec-1",
            "recording_urls": {"mp3": "https://s3.example/tmp.mp3"},
            "public_recording_urls": {}
        }));
        assert_eq!(recording_reference(&both).as_deref(), Some("rec-1"));
        let only_temporary = payload(serde_json::json!({
            "recording_urls": {"wav": "https://s3.example/tmp.wav"}
        }));
        assert_eq!(
            recording_reference(&only_temporary).as_deref(),
            Some("https://s3.example/tmp.wav")
        );
        assert_eq!(recording_reference(&Payload::default()), None);
    }
}
