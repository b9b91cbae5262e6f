//! A parser for DIDWW's call notifications (<https://doc.didww.com/call-events/>).
//!
//! DIDWW is a DID and SIP-trunk carrier with several push mechanisms. This parser is built for
//! its **Call Events API**: one JSON event per `POST` (`application/vnd.api+json`, optionally
//! gzipped), `type` + `id` + `attributes`:
//!
//! | `type` | event | direction | src → dst | disposition |
//! |---|---|---|---|---|
//! | `incoming-call-start-event` | start | in | `src_number` → `did_number` | unknown |
//! | `incoming-call-connect-event` | answer | in | `src_number` → `did_number` | unknown |
//! | `incoming-call-end-event` | end + record | in | `src_number` → `did_number` | answered / no-answer |
//! | `outbound-call-start-event` | start | out | `src_number` → `dst_number` | unknown |
//! | `outbound-call-connect-event` | answer | out | `src_number` → `dst_number` | unknown |
//! | `outbound-call-end-event` | end + record | out | `src_number` → `dst_number` | answered / no-answer |
//!
//! The call id is the top-level `id`, the same in the start, connect and end events of a call;
//! `attributes.call_id` names leg B (Voice IN) or the PBX's SIP Call-ID (Voice OUT). An end
//! event carries no disconnect code, so an unanswered call is `no-answer`, never busy or
//! cancelled. Call Events are not signed: the endpoint's Basic credentials or custom header,
//! as configured in DIDWW's panel, are checked in constant time.
//!
//! Also recognised, authenticated and acknowledged without an event (see the README):
//! **CDR streaming** batches (several CDRs per request, which a parse result cannot carry), and
//! **phone.systems** webhooks (DIDWW's cloud PBX), whose `X-PS-Signature` (HMAC-SHA256 over
//! `t.body`, 5 minutes either way) is verified and whose `X-PS-Event-Id` is the delivery id,
//! but whose event data this parser does not map.

mod gzip;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use telehook_guest::prelude::*;

/// Basic authentication of the Call Events endpoint, as set in DIDWW's panel.
const BASIC_USERNAME: &str = "basic_username";
const BASIC_PASSWORD: &str = "basic_password";
/// A custom header of the Call Events endpoint (e.g. `X-Auth-Token`), as set in DIDWW's panel.
const AUTH_HEADER_NAME: &str = "auth_header_name";
const AUTH_HEADER_VALUE: &str = "auth_header_value";
/// The phone.systems webhook secret (Settings > Webhooks).
const PS_WEBHOOK_SECRET: &str = "ps_webhook_secret";
/// phone.systems: "Reject the request if t is more than 5 minutes before or after the current
/// time".
const PS_TOLERANCE_SECS: i64 = 300;
/// The most a gzip body may inflate to; a Call Event is well under 4 KiB.
const MAX_BODY: usize = 1 << 20;

struct Didww;

impl Parser for Didww {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if is_phone_systems(&request) {
            return phone_systems(&request);
        }
        authenticate_call_events(&request)?;
        let body = decoded_body(&request)?;
        let documents = json_documents(&body)?;
        if let Some(kind) = cdr_kind(&documents) {
            log::info(&format!(
                "CDR streaming batch of {} `{kind}` records: not mapped (a result holds one \
                 call record, and Call Events report the same calls); send Call Events here",
                documents.len()
            ));
            return Ok(ParseResult::empty());
        }
        let [document] = documents.as_slice() else {
            return Err(ParseError::new(format!(
                "the body holds {} JSON documents, not one Call Event",
                documents.len()
            )));
        };
        let event: CallEvent = serde_json::from_value(document.clone())
            .map_err(|err| ParseError::new(format!("the body is not a DIDWW Call Event: {err}")))?;
        call_event(&event)
    }
}

/// A Call Event: `type`, the call's `id`, and the `attributes` of its kind.
#[derive(Deserialize)]
struct CallEvent {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    attributes: Attributes,
}

/// The attributes this parser reads; the others (times, trunk, rates, ...) are left alone.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Attributes {
    /// Voice IN: the DID that was called.
    did_number: Option<String>,
    /// The caller: the client (Voice IN), or the number DIDWW presents for the PBX (Voice OUT).
    src_number: Option<String>,
    /// Voice OUT: the number dialled.
    dst_number: Option<String>,
    /// Set from the connect event on, when the called side sent 200 OK.
    time_connect: Option<String>,
    /// Seconds from the connect to the end (20 for connect 11:05:38, end 11:05:58 in DIDWW's
    /// example).
    duration: Option<Value>,
}

/// A Call Event made into the platform's event, with the record at its end.
fn call_event(event: &CallEvent) -> Result<ParseResult, ParseError> {
    use Direction::{In, Out};
    use EventType::{NotifyAnswer, NotifyEnd, NotifyStart};

    let (kind, direction) = match event.kind.as_str() {
        "incoming-call-start-event" => (NotifyStart, In),
        "incoming-call-connect-event" => (NotifyAnswer, In),
        "incoming-call-end-event" => (NotifyEnd, In),
        "outbound-call-start-event" => (NotifyStart, Out),
        "outbound-call-connect-event" => (NotifyAnswer, Out),
        "outbound-call-end-event" => (NotifyEnd, Out),
        other => {
            log::info(&format!(
                "ignoring the DIDWW event `{other}`: not a call event"
            ));
            return Ok(ParseResult::empty());
        }
    };
    if event.id.is_empty() {
        return Err(ParseError::new("the Call Event's `id` is empty"));
    }
    let attributes = &event.attributes;
    let called = match direction {
        In => &attributes.did_number,
        _ => &attributes.dst_number,
    };
    let telephony = match (&attributes.src_number, called) {
        (Some(src), Some(dst)) => {
            TelephonyEvent::new(kind, direction, phone::number(src), phone::number(dst))
                .with_call_id(&event.id)
        }
        _ => TelephonyEvent::of_call(kind, &event.id),
    };
    let result = match kind {
        NotifyEnd => ended(telephony, event)?,
        _ => ParseResult::with_event(telephony),
    };
    // One request per event and one event of each type per call: `type:id` names a delivery.
    Ok(result.with_delivery_id(format!("{}:{}", event.kind, event.id)))
}

/// The end of a call and its record. Answered when the call was connected (`time_connect`, or
/// a talk time); DIDWW sends no recording, so the record's `call` is the call's `id`.
fn ended(event: TelephonyEvent, call: &CallEvent) -> Result<ParseResult, ParseError> {
    let attributes = &call.attributes;
    let talked = attributes.duration.as_ref().map(seconds).transpose()?;
    let connected = attributes
        .time_connect
        .as_deref()
        .is_some_and(|time| !time.is_empty());
    let answered = connected || talked.is_some_and(|secs| secs > 0);
    let (disposition, duration) = if answered {
        if talked.is_none() {
            log::warn(&format!("call {}: connected but no `duration`", call.id));
        }
        (Disposition::Answered, talked.unwrap_or_default())
    } else {
        // No disconnect code in Call Events: busy, cancelled and unanswered look the same.
        (Disposition::NoAnswer, 0)
    };
    let event = event.with_disposition(disposition);
    let record = CallRecord::of_event(&event, duration, &call.id);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// `duration` as DIDWW writes it: a number of seconds (a string is accepted too).
fn seconds(value: &Value) -> Result<u32, ParseError> {
    let secs = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    secs.filter(|secs| (0.0..=f64::from(u32::MAX)).contains(secs))
        .map(|secs| secs.round() as u32)
        .ok_or_else(|| ParseError::new(format!("`duration` is not a number of seconds: {value}")))
}

/// The record type of a CDR streaming batch (`inbound-cdr`, `outbound-cdr`: one JSON object
/// per line), which this parser acknowledges without an event.
fn cdr_kind(documents: &[Value]) -> Option<&str> {
    documents
        .first()
        .and_then(|first| first["type"].as_str())
        .filter(|kind| kind.ends_with("-cdr"))
}

/// The JSON documents of a body: one Call Event (pretty-printed or not), or the
/// one-per-line records of a CDR batch.
fn json_documents(body: &[u8]) -> Result<Vec<Value>, ParseError> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|err| ParseError::new(format!("the body is not the expected JSON: {err}")))
}

/// The body, inflated when DIDWW gzipped it (`Content-Encoding: gzip`, or gzip's magic bytes
/// whatever the headers say).
fn decoded_body(request: &Request) -> Result<Cow<'_, [u8]>, ParseError> {
    let declared = request
        .header("content-encoding")
        .is_some_and(|encoding| encoding.to_ascii_lowercase().contains("gzip"));
    if !declared && !gzip::is_gzip(&request.body) {
        return Ok(Cow::Borrowed(&request.body));
    }
    gzip::gunzip(&request.body, MAX_BODY)
        .map(Cow::Owned)
        .map_err(|err| ParseError::new(format!("cannot inflate the gzip body: {err}")))
}

/// Checks the Call Events endpoint's credentials: Basic authentication and/or a custom
/// header, whichever the settings hold; at least one must be set, since the events carry no
/// signature.
fn authenticate_call_events(request: &Request) -> Result<(), ParseError> {
    let basic = credentials(BASIC_USERNAME, BASIC_PASSWORD)?;
    let header = credentials(AUTH_HEADER_NAME, AUTH_HEADER_VALUE)?;
    if basic.is_none() && header.is_none() {
        if setting(PS_WEBHOOK_SECRET).is_some() {
            return Err(ParseError::unauthorized(
                "the X-PS-Signature header is missing (phone.systems signs every request, and \
                 no Call Events credentials are set)",
            ));
        }
        return Err(ParseError::misconfigured(
            BASIC_USERNAME,
            "no credentials are set: set `basic_username` and `basic_password`, or \
             `auth_header_name` and `auth_header_value`, as on DIDWW's Call Events endpoint, \
             or `ps_webhook_secret` for phone.systems",
        ));
    }
    if let Some((username, password)) = basic {
        check_basic(request, &username, &password)?;
    }
    if let Some((name, value)) = header {
        check_header(request, &name, &value)?;
    }
    Ok(())
}

/// A pair of settings that go together: both or neither.
fn credentials(first: &str, second: &str) -> Result<Option<(String, String)>, ParseError> {
    match (setting(first), setting(second)) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(half_set(first, second)),
        (None, Some(_)) => Err(half_set(second, first)),
    }
}

fn half_set(set: &str, missing: &str) -> ParseError {
    ParseError::misconfigured(
        missing,
        format!("the integration setting `{set}` is set but `{missing}` is not"),
    )
}

/// A setting, unless it is empty.
fn setting(key: &str) -> Option<String> {
    settings::get(key).filter(|value| !value.is_empty())
}

/// `Authorization: Basic base64(username:password)`, compared in constant time.
fn check_basic(request: &Request, username: &str, password: &str) -> Result<(), ParseError> {
    let Some(given) = request.header("authorization") else {
        return Err(ParseError::unauthorized(
            "the Authorization header is missing (the Call Events endpoint uses Basic \
             authentication)",
        ));
    };
    let token = given
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, token)| token.trim());
    let expected = crypto::base64_encode(format!("{username}:{password}").as_bytes());
    if !token.is_some_and(|token| crypto::constant_time_eq(token.as_bytes(), expected.as_bytes())) {
        log::warn("refusing a Call Event: wrong Basic credentials");
        return Err(ParseError::unauthorized(
            "the Authorization header's Basic credentials are wrong",
        ));
    }
    Ok(())
}

/// The endpoint's custom header, compared in constant time.
fn check_header(request: &Request, name: &str, value: &str) -> Result<(), ParseError> {
    let Some(given) = request.header(name) else {
        return Err(ParseError::unauthorized(format!(
            "the `{name}` header is missing"
        )));
    };
    if !crypto::constant_time_eq(given.trim().as_bytes(), value.as_bytes()) {
        log::warn(&format!("refusing a Call Event: wrong `{name}` header"));
        return Err(ParseError::unauthorized(format!(
            "the `{name}` header is wrong"
        )));
    }
    Ok(())
}

/// phone.systems requests carry `X-PS-Signature`, `X-PS-Event-Id` and `X-PS-Attempt`; a
/// request with any of them is held to phone.systems' signature.
fn is_phone_systems(request: &Request) -> bool {
    ["x-ps-signature", "x-ps-event-id", "x-ps-attempt"]
        .iter()
        .any(|name| request.header(name).is_some())
}

/// The envelope every phone.systems event has.
#[derive(Deserialize)]
struct PsEnvelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    global_tag: Option<String>,
}

/// A phone.systems webhook: verified (signature, then freshness), named by its event id, and
/// acknowledged without an event, since the event data's fields are not mapped.
fn phone_systems(request: &Request) -> Result<ParseResult, ParseError> {
    let secret = settings::require(PS_WEBHOOK_SECRET)?;
    let header = request
        .header("x-ps-signature")
        .ok_or_else(|| ParseError::unauthorized("the X-PS-Signature header is missing"))?;
    let (timestamp, signature) = signature_parts(header)?;
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let expected = crypto::hex_encode(&crypto::hmac_sha256(secret.as_bytes(), &signed));
    if !crypto::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        log::warn("refusing a phone.systems webhook: X-PS-Signature does not match");
        return Err(ParseError::unauthorized(
            "X-PS-Signature does not match the body (a wrong secret, or a changed body)",
        ));
    }
    // After the signature, so that a stale refusal means a genuine but replayed request.
    request.require_fresh(timestamp, PS_TOLERANCE_SECS)?;
    let envelope: PsEnvelope = request.json()?;
    log::info(&format!(
        "phone.systems `{}` of call {}: verified; phone.systems event data is not mapped",
        envelope.kind,
        envelope.global_tag.as_deref().unwrap_or("(none)")
    ));
    let delivery = request.header("x-ps-event-id").unwrap_or(&envelope.id);
    Ok(ParseResult::empty().with_delivery_id(delivery))
}

/// `t=<unix seconds>,v1=<64 lowercase hex>`: split on `,`, each part on its first `=`.
fn signature_parts(header: &str) -> Result<(i64, &str), ParseError> {
    let part = |name: &str| {
        header
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find_map(|(key, value)| (key == name).then_some(value))
    };
    let timestamp = part("t")
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| ParseError::unauthorized("X-PS-Signature has no numeric `t`"))?;
    let signature = part("v1")
        .filter(|v1| v1.len() == 64 && v1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| {
            ParseError::unauthorized("X-PS-Signature has no `v1` of 64 lowercase hex characters")
        })?;
    Ok((timestamp, signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const HOOK: &str = "https://hooks.example.com/hooks/acme/t0k3n";
    const END: &str = r#"{"type":"incoming-call-end-event","id":"10-AB","attributes":{"time_start":"2020-03-05T11:05:33+00:00","time_end":"2020-03-05T11:05:40+00:00","duration":0,"did_number":"123456789123","src_number":"111111222222"}}"#;

    fn with_header_token() -> Harness {
        Harness::new()
            .setting(AUTH_HEADER_NAME, "X-Auth-Token")
            .setting(AUTH_HEADER_VALUE, "t0p-s3cret")
    }

    #[test]
    fn an_unconnected_end_is_not_answered_and_lasts_nothing() {
        let request = TestRequest::post(HOOK)
            .header("x-auth-token", "t0p-s3cret")
            .body(END);
        let outcome = with_header_token().parse::<Didww>(request).outcome();
        let record = outcome.call_record.expect("record");
        assert_eq!(record.disposition, Disposition::NoAnswer);
        assert_eq!((record.duration, record.call.as_str()), (0, "10-AB"));
        assert_eq!(
            outcome.delivery_id.as_deref(),
            Some("incoming-call-end-event:10-AB")
        );
    }

    #[test]
    fn a_custom_header_token_is_required_and_compared_whole() {
        for given in [None, Some("t0p-s3cre"), Some("t0p-s3cret2")] {
            let mut request = TestRequest::post(HOOK).body(END);
            if let Some(given) = given {
                request = request.header("x-auth-token", given);
            }
            let refusal = with_header_token().parse::<Didww>(request).refusal();
            assert_eq!(refusal.status, Some(401), "{given:?}");
        }
    }

    #[test]
    fn credentials_must_come_in_pairs_and_at_least_one_must_be_set() {
        let half = Harness::new().setting(BASIC_USERNAME, "didww_events");
        let refusal = half
            .parse::<Didww>(TestRequest::post(HOOK).body(END))
            .refusal();
        assert_eq!(refusal.setting.as_deref(), Some(BASIC_PASSWORD));
        let none = Harness::new().parse::<Didww>(TestRequest::post(HOOK).body(END));
        assert_eq!(none.refusal().setting.as_deref(), Some(BASIC_USERNAME));
    }

    #[test]
    fn a_malformed_x_ps_signature_is_refused() {
        let harness = Harness::new().setting(PS_WEBHOOK_SECRET, "ps_test_secret_made_up");
        for header in [
            "t=abc,v1=bc28ec0803d016afeb2e2a8129e68710e63d7e48606a58451e6212bfc82fa2df",
            "t=1790847297,v1=BC28EC0803D016AFEB2E2A8129E68710E63D7E48606A58451E6212BFC82FA2DF",
            "t=1790847297",
        ] {
            let request = TestRequest::post(HOOK)
                .header("x-ps-signature", header)
                .body("{}");
            let refusal = harness.parse::<Didww>(request).refusal();
            assert_eq!(refusal.status, Some(401), "{header}");
        }
    }

    #[test]
    fn numbers_are_passed_through_and_a_missing_number_names_only_the_call() {
        let start = r#"{"type":"outbound-call-start-event","id":"10-CD","attributes":{"src_number":"123439643990"}}"#;
        let request = TestRequest::post(HOOK)
            .header("x-auth-token", "t0p-s3cret")
            .body(start);
        let event = with_header_token()
            .parse::<Didww>(request)
            .outcome()
            .event
            .expect("event");
        assert_eq!(
            event,
            TelephonyEvent::of_call(EventType::NotifyStart, "10-CD")
        );
    }
}

telehook_guest::export_parser!(Didww);
