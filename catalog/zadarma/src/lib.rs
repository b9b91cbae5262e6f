//! A parser for the PBX call notifications of Zadarma (<https://zadarma.com/en/support/api/>)
//! and of Novofon's classic platform, its Russian twin (same `NOTIFY_*` events, fields and
//! signature: Novofon's PHP SDK `novofon/user-api-v1` is a fork of `zadarma/user-api-v1`).
//!
//! The provider calls the webhook URL in two ways:
//!
//! - a `GET ?zd_echo=VALUE` when the URL is saved in its console, answered with exactly `VALUE`;
//! - a `POST` per call event, form-urlencoded (a third-party handler reports multipart bodies
//!   too, which are read as well), with `event` = `NOTIFY_START`, `NOTIFY_INTERNAL`,
//!   `NOTIFY_ANSWER`, `NOTIFY_END`, `NOTIFY_OUT_START`, `NOTIFY_OUT_END`, `NOTIFY_RECORD` or
//!   `NOTIFY_IVR`, signed in the `Signature` header.
//!
//! The signature is `base64(hex(HMAC-SHA1(api_secret, fields)))`: the concatenation of two or
//! three event-specific fields (see [`signed_fields`]), HMAC'd into PHP's lowercase hex digest
//! and that text base64-encoded, as the official PHP SDK's `Client::encodeSignature` does. A
//! missing or wrong signature is refused with `401`.
//!
//! | notification | event | direction | src → dst | ext | record |
//! |---|---|---|---|---|---|
//! | `NOTIFY_START` | start | in | `caller_id` → `called_did` | – | – |
//! | `NOTIFY_INTERNAL` | start | in | `caller_id` → `internal` | src = `internal` | – |
//! | `NOTIFY_ANSWER` | answer | of its call (`pbx_call_id` only) | – | – | – |
//! | `NOTIFY_END` | end | in | `caller_id` → `internal` or `called_did` | src = `internal` | yes |
//! | `NOTIFY_OUT_START` | start | out (internal to a 3-digit extension) | `internal` → `destination` | dst = `internal` | – |
//! | `NOTIFY_OUT_END` | end | as `NOTIFY_OUT_START` | as `NOTIFY_OUT_START` | as above | yes |
//!
//! `pbx_call_id` is every event's call id (the id that survives the call's scenario and voice
//! menu). Only the ends carry a disposition (see [`disposition`]); every end also carries a
//! call record whose duration is 0 unless the call was answered, and whose `call` is
//! `call_id_with_rec` when the call was recorded, else `pbx_call_id` (both are ids Zadarma's
//! `pbx/record/request` API accepts). `NOTIFY_RECORD`, `NOTIFY_IVR` and the other hooks are
//! verified and acknowledged without an event.

use telehook_guest::prelude::*;

/// The setting holding the API secret from the personal account (Zadarma's or Novofon's).
const API_SECRET: &str = "api_secret";

/// Zadarma's PBX extensions are three-digit numbers ("внутренний номер АТС (трехзначный
/// номер)", the API page on redirects): an outgoing call to one is an internal call.
const EXTENSION_DIGITS: usize = 3;

struct Zadarma;

impl Parser for Zadarma {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if let Some(echo) = request.query_param("zd_echo") {
            return Ok(ParseResult::with_response(Response::text(200, echo)));
        }
        let fields = fields_of(&request);
        let Some(event) = fields.get("event") else {
            return Err(ParseError::new(
                "the request has no `event` field: not a Zadarma or Novofon classic NOTIFY_* \
                 notification (Novofon 2.0 sends another format)",
            ));
        };
        let Some(signed) = signed_fields(event) else {
            log::info(&format!(
                "ignoring `{event}`: not a notification this parser knows, nothing verified"
            ));
            return Ok(ParseResult::empty());
        };
        verify(&request, &fields, event, signed)?;
        translate(event, &fields)
    }
}

/// The fields whose concatenation each notification signs: `getSignatureString()` of each
/// `lib/Webhook/Notify*.php` in `zadarma/user-api-v1` (and unchanged in `novofon/user-api-v1`);
/// the other hooks (SMS, speech recognition, number lookup, call tracking) sign their
/// `result`. `None` for a notification neither documents.
fn signed_fields(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "NOTIFY_START" | "NOTIFY_INTERNAL" | "NOTIFY_END" | "NOTIFY_IVR" => {
            &["caller_id", "called_did", "call_start"]
        }
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        "SMS" | "SPEECH_RECOGNITION" | "NUMBER_LOOKUP" | "CALL_TRACKING" => &["result"],
        _ => return None,
    })
}

/// Refuses a notification whose `Signature` header is missing or is not the one its signed
/// fields give under the API secret (compared in constant time).
fn verify(
    request: &Request,
    fields: &Form,
    event: &str,
    signed: &[&str],
) -> Result<(), ParseError> {
    let secret = settings::require(API_SECRET)?;
    let Some(signature) = request
        .header("signature")
        .map(str::trim)
        .filter(|signature| !signature.is_empty())
    else {
        return Err(ParseError::unauthorized(format!(
            "`{event}` has no `Signature` header: the provider signs notifications only once \
             the account has API keys (generate them and set `{API_SECRET}` to the secret)"
        )));
    };
    let expected = signature_of(&secret, fields, signed);
    if !crypto::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(ParseError::unauthorized(format!(
            "the `Signature` header of `{event}` is not the HMAC of its fields {} under \
             `{API_SECRET}`: forged, altered, or signed with another account's secret",
            signed.join(" + ")
        )));
    }
    Ok(())
}

/// `base64_encode(hash_hmac('sha1', $signed, $secret))`: base64 of the 40 hex characters. A
/// field the notification lacks counts as empty, as in PHP's string concatenation.
fn signature_of(secret: &str, fields: &Form, signed: &[&str]) -> String {
    let message: String = signed
        .iter()
        .map(|name| fields.get(name).unwrap_or_default())
        .collect();
    let digest = crypto::hmac_sha1(secret.as_bytes(), message.as_bytes());
    crypto::base64_encode(crypto::hex_encode(&digest).as_bytes())
}

/// Turns a verified notification into the platform's event and, at the end, the call record.
fn translate(notification: &str, fields: &Form) -> Result<ParseResult, ParseError> {
    use EventType::{NotifyEnd, NotifyStart};

    let event = match notification {
        "NOTIFY_START" => incoming(NotifyStart, fields, "called_did")?,
        "NOTIFY_INTERNAL" => incoming(NotifyStart, fields, "internal")?,
        "NOTIFY_END" => incoming(NotifyEnd, fields, "called_did")?,
        "NOTIFY_OUT_START" => outgoing(NotifyStart, fields)?,
        "NOTIFY_OUT_END" => outgoing(NotifyEnd, fields)?,
        // Its direction is not documented (outgoing calls may send it too) and the answering
        // extension comes again with the end: name only the call.
        "NOTIFY_ANSWER" => {
            TelephonyEvent::of_call(EventType::NotifyAnswer, require(fields, "pbx_call_id")?)
        }
        "NOTIFY_RECORD" => {
            log::info(
                "`NOTIFY_RECORD` verified and acknowledged: its recording id came with the \
                 call's end already",
            );
            return Ok(ParseResult::empty());
        }
        other => {
            log::info(&format!(
                "`{other}` verified and acknowledged: the platform has no event for it"
            ));
            return Ok(ParseResult::empty());
        }
    };
    let event = event.with_call_id(require(fields, "pbx_call_id")?);
    if event.event == NotifyEnd {
        return finished(event, fields);
    }
    Ok(ParseResult::with_event(event))
}

/// An incoming call's event: the client calls `dst_field` (the company number dialled), or the
/// extension in `internal` once one rang or answered, which is also `src_phone_ext`.
fn incoming(kind: EventType, fields: &Form, dst_field: &str) -> Result<TelephonyEvent, ParseError> {
    let client = phone(fields.get("caller_id").unwrap_or_default(), "caller_id")?;
    let extension = fields.non_empty("internal");
    let operator = match extension {
        Some(ext) => phone(ext, "internal")?,
        None => phone(require(fields, dst_field)?, dst_field)?,
    };
    Ok(TelephonyEvent::new(kind, Direction::In, client, operator)
        .with_src_phone_ext(extension.unwrap_or_default()))
}

/// An outgoing call's event: the operator's extension (`internal`) calls `destination`, a
/// client, or another extension (then the call is internal and names no extension field).
fn outgoing(kind: EventType, fields: &Form) -> Result<TelephonyEvent, ParseError> {
    let extension = fields.non_empty("internal");
    let operator = match extension {
        Some(ext) => ext,
        None => fields
            .non_empty("caller_id")
            .filter(|caller| *caller != "0")
            .ok_or_else(|| {
                ParseError::new("an outgoing call with neither `internal` nor `caller_id`")
            })?,
    };
    let operator = phone(operator, "internal")?;
    let destination = phone(require(fields, "destination")?, "destination")?;
    if is_extension(&destination) {
        return Ok(TelephonyEvent::new(
            kind,
            Direction::Internal,
            operator,
            destination,
        ));
    }
    Ok(
        TelephonyEvent::new(kind, Direction::Out, operator, destination)
            .with_dst_phone_ext(extension.unwrap_or_default()),
    )
}

/// The end of a call: its disposition, and the call record of every ended call, recorded or
/// not, so that missed calls reach the activity stream too.
fn finished(event: TelephonyEvent, fields: &Form) -> Result<ParseResult, ParseError> {
    let disposition = disposition(require(fields, "disposition")?);
    let event = event.with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => seconds(require(fields, "duration")?)?,
        _ => 0,
    };
    let recording = fields
        .non_empty("call_id_with_rec")
        .filter(|_| fields.get("is_recorded") == Some("1"));
    let call = match recording {
        Some(recording) => recording,
        None => require(fields, "pbx_call_id")?,
    };
    let record = CallRecord::of_event(&event, duration, call);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// How the call ended, from `disposition`. The webhook's values are listed in the SDKs'
/// `NotifyEnd.php`; the glosses are the statistics API's (`zadarma/openapi`):
///
/// | `disposition` | provider's gloss | platform |
/// |---|---|---|
/// | `answered` | conversation | answered |
/// | `busy` | busy | busy |
/// | `cancel` | cancelled | cancel |
/// | `no answer` | no answer | no-answer |
/// | `failed` (`call failed` in statistics) | failed | no-answer |
/// | `no money` | no funds, limit exceeded | no-answer |
/// | `unallocated number` | the number does not exist | no-answer |
/// | `no limit`, `no day limit`, `line limit`, `no money, no limit` | limits exceeded | no-answer |
///
/// Every reason the call never connected is "not answered or unreachable" to the platform; an
/// undocumented value is too, with a warning in the log.
fn disposition(zadarma: &str) -> Disposition {
    match zadarma {
        "answered" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "cancel" => Disposition::Cancel,
        "no answer" | "failed" | "call failed" | "no money" | "unallocated number" | "no limit"
        | "no day limit" | "line limit" | "no money, no limit" => Disposition::NoAnswer,
        other => {
            log::warn(&format!(
                "undocumented disposition {other:?}: reported as not answered"
            ));
            Disposition::NoAnswer
        }
    }
}

/// A number as the host wants it (a SIP URI's user part, `anonymous` for a withheld caller);
/// the error names the field.
fn phone(raw: &str, field: &str) -> Result<String, ParseError> {
    let number = phone::number(raw);
    phone::check(&number)
        .map_err(|err| ParseError::new(format!("`{field}` is not a usable number: {err}")))?;
    Ok(number)
}

/// Whether a number is one of the PBX's own extensions.
fn is_extension(number: &str) -> bool {
    number.len() == EXTENSION_DIGITS && number.bytes().all(|byte| byte.is_ascii_digit())
}

fn seconds(text: &str) -> Result<u32, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(format!("`duration` is not a number of seconds: {text:?}")))
}

/// A notification's fields: the body's (form-urlencoded, or multipart as a third-party
/// handler reports Zadarma sometimes posts), then the query's.
fn fields_of(request: &Request) -> Form {
    let multipart = request
        .header("content-type")
        .is_some_and(|kind| kind.trim().to_ascii_lowercase().starts_with("multipart/"));
    let mut pairs = if multipart {
        multipart_fields(&String::from_utf8_lossy(&request.body))
    } else {
        request.form().pairs().to_vec()
    };
    pairs.extend(request.query.iter().cloned());
    Form::from_pairs(pairs)
}

/// A field the notification must carry with a value: unlike [`Form::require`], an empty one
/// is refused too, and the error says so.
fn require<'a>(fields: &'a Form, name: &str) -> Result<&'a str, ParseError> {
    fields
        .non_empty(name)
        .ok_or_else(|| ParseError::new(format!("the field `{name}` is missing or empty")))
}

/// The fields of a `multipart/form-data` body (RFC 7578), which the SDK does not decode. The
/// delimiter is taken from the body's first line rather than the header: the third-party
/// handler that reports such bodies found the two disagreeing.
fn multipart_fields(body: &str) -> Vec<(String, String)> {
    let Some(first_line) = body
        .split("\r\n")
        .next()
        .filter(|line| line.starts_with("--"))
    else {
        return Vec::new();
    };
    let delimiter = format!("\r\n{first_line}");
    body[first_line.len()..]
        .split(delimiter.as_str())
        .filter_map(|part| {
            let (headers, value) = part.strip_prefix("\r\n")?.split_once("\r\n\r\n")?;
            Some((part_name(headers)?, value.to_owned()))
        })
        .collect()
}

/// The `name` of a part's `Content-Disposition: form-data; name="..."`.
fn part_name(headers: &str) -> Option<String> {
    let disposition = headers.lines().find(|line| {
        line.to_ascii_lowercase()
            .starts_with("content-disposition:")
    })?;
    let name = disposition
        .split(';')
        .map(str::trim)
        .find_map(|param| param.strip_prefix("name="))?;
    Some(name.trim_matches('"').to_owned())
}

telehook_guest::export_parser!(Zadarma);

#[cfg(test)]
mod tests {
    use telehook_guest::testing::{Harness, TestRequest};

    use super::*;

    const SECRET: &str = "0c8a1f5e3b9d47e2a6f1";
    const URL: &str = "https://hooks.example.com/hooks/t0k3n";

    /// A POST of `sent`, with the signature of `signed`.
    fn post(sent: &[(&str, &str)], signed: &[(&str, &str)]) -> TestRequest {
        let form = Form::from_pairs(
            signed
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        );
        let event = form.get("event").unwrap_or_default();
        let names = signed_fields(event).unwrap_or_default();
        TestRequest::post(URL)
            .form(sent)
            .header("Signature", signature_of(SECRET, &form, names))
    }

    fn signed(fields: &[(&str, &str)]) -> TestRequest {
        post(fields, fields)
    }

    fn harness() -> Harness {
        Harness::new().setting(API_SECRET, SECRET)
    }

    #[test]
    fn the_signature_is_base64_of_the_hex_digest() {
        // zadarma.md §5's vector (secret `ours_test_secret_1234`), also reproduced with node.
        let form = Form::from_pairs(vec![
            ("internal".into(), "100".into()),
            ("destination".into(), "+79001010100".into()),
            ("call_start".into(), "2024-01-29 13:46:22".into()),
        ]);
        let names = signed_fields("NOTIFY_OUT_START").unwrap_or_default();
        assert_eq!(
            signature_of("ours_test_secret_1234", &form, names),
            "ZTQxZjdiNTE4YTZmYzM5MmMxOTAyZTIxNzE4OTZiOWY3ZDRjNmFiMg=="
        );
    }

    #[test]
    fn an_answered_end_has_talk_time_and_a_missed_one_none() {
        let end = |disposition, recorded| {
            signed(&[
                ("event", "NOTIFY_END"),
                ("call_start", "2024-01-29 13:46:22"),
                ("pbx_call_id", "in_1"),
                ("caller_id", "+79161234567"),
                ("called_did", "+74951112233"),
                ("duration", "42"),
                ("disposition", disposition),
                ("is_recorded", recorded),
                ("call_id_with_rec", "rec-1"),
            ])
        };
        let answered = harness().parse::<Zadarma>(end("answered", "1")).outcome();
        let record = answered.call_record.expect("a record");
        assert_eq!((record.duration, record.call.as_str()), (42, "rec-1"));
        let missed = harness()
            .parse::<Zadarma>(end("no day limit", "0"))
            .outcome();
        let record = missed.call_record.expect("a record");
        assert_eq!((record.duration, record.call.as_str()), (0, "in_1"));
        assert_eq!(record.disposition, Disposition::NoAnswer);
    }

    #[test]
    fn an_answer_names_its_call_and_only_signed_fields_are_covered() {
        let fields = [
            ("event", "NOTIFY_ANSWER"),
            ("caller_id", "+79161234567"),
            ("destination", "101"),
            ("call_start", "2024-01-29 13:46:22"),
            ("pbx_call_id", "in_1"),
            ("internal", "101"),
        ];
        let event = harness()
            .parse::<Zadarma>(signed(&fields))
            .outcome()
            .event
            .expect("an event");
        assert_eq!(
            event,
            TelephonyEvent::of_call(EventType::NotifyAnswer, "in_1")
        );
        let mut unsigned = fields;
        unsigned[5] = ("internal", "102");
        assert!(
            harness()
                .parse::<Zadarma>(post(&unsigned, &fields))
                .result
                .is_ok()
        );
        let mut tampered = fields;
        tampered[2] = ("destination", "102");
        let refused = harness()
            .parse::<Zadarma>(post(&tampered, &fields))
            .refusal();
        assert_eq!(refused.status, Some(401));
    }

    #[test]
    fn a_multipart_post_is_read_like_a_form() {
        let body = "--xYz\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\nNOTIFY_RECORD\r\n\
                    --xYz\r\nContent-Disposition: form-data; name=\"pbx_call_id\"\r\n\r\nin_1\r\n\
                    --xYz--\r\n";
        let fields = multipart_fields(body);
        assert_eq!(
            fields,
            vec![
                ("event".to_string(), "NOTIFY_RECORD".to_string()),
                ("pbx_call_id".to_string(), "in_1".to_string())
            ]
        );
        assert!(multipart_fields("event=NOTIFY_START").is_empty());
    }

    #[test]
    fn a_missing_secret_is_the_admins_and_a_missing_event_a_400() {
        let request = signed(&[("event", "NOTIFY_RECORD"), ("pbx_call_id", "in_1")]);
        let refused = Harness::new().parse::<Zadarma>(request).refusal();
        assert_eq!(refused.setting.as_deref(), Some(API_SECRET));
        assert_eq!(
            refused.message,
            "the integration setting `api_secret` is not set"
        );
        let no_event = harness().parse::<Zadarma>(TestRequest::get(URL)).refusal();
        assert_eq!((no_event.status, no_event.setting), (None, None));
        assert!(
            no_event
                .message
                .starts_with("the request has no `event` field")
        );
    }

    #[test]
    fn other_hooks_are_verified_then_acknowledged() {
        let sms = [
            ("event", "SMS"),
            ("result", r#"{"caller_id":"+79161234567"}"#),
        ];
        let parsed = harness().parse::<Zadarma>(signed(&sms));
        assert_eq!(parsed.outcome(), ParseResult::empty());
        let forged = post(&[("event", "SMS"), ("result", "{}")], &sms);
        assert_eq!(
            harness().parse::<Zadarma>(forged).refusal().status,
            Some(401)
        );
    }

    #[test]
    fn unknown_dispositions_are_not_answered_and_logged() {
        let parsed = harness().parse::<Zadarma>(signed(&[
            ("event", "NOTIFY_OUT_END"),
            ("call_start", "2024-01-29 13:46:22"),
            ("pbx_call_id", "out_1"),
            ("internal", "100"),
            ("destination", "+79001010100"),
            ("duration", "7"),
            ("disposition", "congestion"),
        ]));
        assert_eq!(parsed.log.len(), 1);
        let outcome = parsed.outcome();
        let event = outcome.event.expect("an event");
        assert_eq!(event.disposition, Disposition::NoAnswer);
        assert_eq!(event.dst_phone_ext.as_deref(), Some("100"));
        assert_eq!(outcome.call_record.expect("a record").duration, 0);
    }
}
