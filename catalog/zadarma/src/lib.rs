//! A parser for Zadarma's PBX notifications (<https://zadarma.com/en/support/api/>).
//!
//! Zadarma calls the webhook URL in two ways:
//!
//! - a `GET ?zd_echo=VALUE` when the URL is saved in its console, which must be answered with
//!   exactly `VALUE`;
//! - a form-urlencoded `POST` per call event, with `event` = `NOTIFY_START`, `NOTIFY_INTERNAL`,
//!   `NOTIFY_ANSWER`, `NOTIFY_END`, `NOTIFY_OUT_START`, `NOTIFY_OUT_END`, `NOTIFY_RECORD` or
//!   `NOTIFY_IVR`, signed in the `Signature` header.
//!
//! The signature is `base64(hex(HMAC-SHA1(api_secret, fields)))`, where `fields` is the
//! concatenation of three event-specific fields (see [`signed_fields`]) and the HMAC is the
//! lowercase hex digest, as PHP's `hash_hmac` returns by default: that is the construction of
//! Zadarma's official PHP library, `zadarma/user-api-v1`. A notification with a missing or
//! wrong signature is answered `401` and produces no event.
//!
//! How notifications become platform events:
//!
//! | notification | event | direction | src → dst | disposition |
//! |---|---|---|---|---|
//! | `NOTIFY_START` (call reaches the PBX) | start | in | `caller_id` → `called_did` | unknown |
//! | `NOTIFY_INTERNAL` (an extension rings) | start | in | `caller_id` → `internal` | unknown |
//! | `NOTIFY_ANSWER` | answer | in | `caller_id` → `internal` or `destination` | answered |
//! | `NOTIFY_END` | end | in | `caller_id` → `internal` or `called_did` | from `disposition` |
//! | `NOTIFY_OUT_START` | start | out | `internal` → `destination` | unknown |
//! | `NOTIFY_OUT_END` | end | out | `internal` → `destination` | from `disposition` |
//!
//! On incoming calls the answering extension is also the event's `src_phone_ext`; on outgoing
//! calls the calling extension is its `dst_phone_ext`, as the contract asks. `NOTIFY_END` and
//! `NOTIFY_OUT_END` of a recorded call (`is_recorded=1`) also carry a call record whose `call`
//! is `call_id_with_rec`, the id Zadarma's `pbx/record/request` API turns into a recording
//! link. `NOTIFY_RECORD` and `NOTIFY_IVR` are verified and acknowledged without an event: the
//! first repeats the recording id already recorded at the end of the call, the second reports a
//! voice-menu step the platform has no event for.

use serde_json::json;
use telehook_guest::prelude::*;

/// The setting holding the API secret from Zadarma's personal account.
const API_SECRET: &str = "api_secret";

struct Zadarma;

impl Parser for Zadarma {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if let Some(echo) = request.query_param("zd_echo") {
            return Ok(ParseResult::with_response(Response::text(200, echo)));
        }
        let form = request.form();
        let Some(event) = form.get("event") else {
            return Ok(ParseResult::empty());
        };
        let Some(fields) = signed_fields(event) else {
            log::info(&format!(
                "ignoring the notification `{event}`: not a call event"
            ));
            return Ok(ParseResult::empty());
        };
        let secret = settings::require(API_SECRET)?;
        if !signature_is_valid(&secret, &form, fields, request.header("Signature")) {
            log::warn(&format!("refusing `{event}`: missing or wrong Signature"));
            return Ok(ParseResult::with_response(Response::json(
                401,
                &json!({"error": "missing or invalid Signature"}),
            )));
        }
        translate(event, &form)
    }
}

/// The fields whose concatenation each notification signs, per `zadarma/user-api-v1`
/// (`lib/Webhook/Notify*.php`, `getSignatureString`); `None` for notifications this parser
/// does not handle.
fn signed_fields(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "NOTIFY_START" | "NOTIFY_INTERNAL" | "NOTIFY_END" | "NOTIFY_IVR" => {
            &["caller_id", "called_did", "call_start"]
        }
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        _ => return None,
    })
}

/// Compares the `Signature` header with the one computed from the form, in constant time. A
/// field the form lacks counts as empty, as it does in PHP's string concatenation.
fn signature_is_valid(secret: &str, form: &Form, fields: &[&str], signature: Option<&str>) -> bool {
    let Some(signature) = signature else {
        return false;
    };
    let signed: String = fields
        .iter()
        .map(|field| form.get(field).unwrap_or_default())
        .collect();
    let digest = crypto::hmac_sha1(secret.as_bytes(), signed.as_bytes());
    let expected = crypto::base64_encode(crypto::hex_encode(&digest).as_bytes());
    crypto::constant_time_eq(expected.as_bytes(), signature.trim().as_bytes())
}

/// Turns a verified call notification into the platform's event and, for recorded calls,
/// its record.
fn translate(notification: &str, form: &Form) -> Result<ParseResult, ParseError> {
    use Direction::{In, Out};
    use EventType::{NotifyAnswer, NotifyEnd, NotifyStart};

    let internal = form.get("internal").filter(|ext| !ext.is_empty());
    let internal_or = |field| internal.map_or_else(|| form.require(field), Ok);
    let (kind, direction, src, dst) = match notification {
        "NOTIFY_START" => (
            NotifyStart,
            In,
            form.require("caller_id")?,
            form.require("called_did")?,
        ),
        "NOTIFY_INTERNAL" => (
            NotifyStart,
            In,
            form.require("caller_id")?,
            form.require("internal")?,
        ),
        "NOTIFY_ANSWER" => (
            NotifyAnswer,
            In,
            form.require("caller_id")?,
            internal_or("destination")?,
        ),
        "NOTIFY_END" => (
            NotifyEnd,
            In,
            form.require("caller_id")?,
            internal_or("called_did")?,
        ),
        "NOTIFY_OUT_START" => (
            NotifyStart,
            Out,
            form.require("internal")?,
            form.require("destination")?,
        ),
        "NOTIFY_OUT_END" => (
            NotifyEnd,
            Out,
            form.require("internal")?,
            form.require("destination")?,
        ),
        _ => return Ok(ParseResult::empty()),
    };
    let event =
        TelephonyEvent::new(kind, direction, src, dst).with_call_id(form.require("pbx_call_id")?);
    let event = match direction {
        In => event.with_src_phone_ext(internal.unwrap_or_default()),
        _ => event.with_dst_phone_ext(internal.unwrap_or_default()),
    };
    match kind {
        NotifyAnswer => Ok(ParseResult::with_event(
            event.with_disposition(Disposition::Answered),
        )),
        NotifyEnd => finished(event, form),
        NotifyStart => Ok(ParseResult::with_event(event)),
    }
}

/// The end of a call: the event with its disposition, plus a call record when it was recorded.
fn finished(event: TelephonyEvent, form: &Form) -> Result<ParseResult, ParseError> {
    let event = event.with_disposition(disposition(form.require("disposition")?));
    let recording = form
        .get("call_id_with_rec")
        .filter(|id| form.get("is_recorded") == Some("1") && !id.is_empty());
    let Some(recording) = recording else {
        return Ok(ParseResult::with_event(event));
    };
    let duration = form.require("duration")?;
    let duration = duration.parse().map_err(|_| {
        ParseError::new(format!(
            "`duration` is not a number of seconds: {duration:?}"
        ))
    })?;
    let record = CallRecord::of_event(&event, duration, recording);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// Zadarma's dispositions: `answered`, `busy`, `cancel`, `no answer`, and reasons the call never
/// connected (`failed`, `no money`, `unallocated number`, `no limit`, `no day limit`,
/// `line limit`, `no money, no limit`), which the platform knows as "not answered".
fn disposition(zadarma: &str) -> Disposition {
    match zadarma {
        "answered" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "cancel" => Disposition::Cancel,
        _ => Disposition::NoAnswer,
    }
}

telehook_guest::export_parser!(Zadarma);
