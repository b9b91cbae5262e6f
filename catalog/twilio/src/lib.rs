//! A parser for Twilio Programmable Voice webhooks (<https://www.twilio.com/docs/usage/webhooks/voice-webhooks>).
//!
//! Twilio sends form-urlencoded requests (`POST`, or `GET` when so configured) to two kinds of
//! URL that may both point at the integration:
//!
//! - the number's *voice URL* ("A call comes in"), at the route suffix `voice`: Twilio wants
//!   TwiML back, so the parser answers with the document of the `voice_twiml` setting;
//! - *status callbacks* (`CallbackSource=call-progress-events`), at any other suffix: the
//!   number's status callback, and the `StatusCallback` of calls and `<Number>` legs.
//!
//! Every request is verified first: `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL +
//! sorted POST parameters)), tried over the URL with and without its port as Twilio's SDKs do;
//! JSON requests sign the URL alone and carry the body's SHA-256 in its `bodySHA256` query
//! parameter; a matching Webhook Rule signs with a SharedKey instead (see [`signing_key`]).
//!
//! How `CallStatus` becomes platform events (a child leg, one with `ParentCallSid`, is reported
//! under its parent's `CallSid`, the id that lasts for the whole call):
//!
//! | request | event | direction | src → dst | disposition |
//! |---|---|---|---|---|
//! | `initiated`, `ringing` | start | from `Direction` | `From` → `To` | unknown |
//! | `in-progress` | answer | from `Direction` | `From` → `To` | unknown |
//! | `completed`, `busy`, `no-answer`, `canceled`, `failed` | end + call record | from `Direction` | `From` → `To` | see [`disposition`] |
//! | child leg `in-progress` | answer naming only the parent call | — | — | unknown |
//! | child leg, any other status; `queued`; no `CallStatus` | nothing | | | |
//!
//! The call record's `duration` is `CallDuration` (seconds; `Duration` is billed minutes) and
//! its `call` the `RecordingUrl` when the call was recorded, else the `CallSid`. Twilio's
//! `I-Twilio-Idempotency-Token` header, the same on a retry, is the delivery id.

use std::collections::{BTreeMap, BTreeSet};

use telehook_guest::prelude::*;

/// The setting holding the account's primary Auth Token, Twilio's default signing key.
const AUTH_TOKEN: &str = "auth_token";
/// The setting holding the secret of a Webhooks SharedKey, for URLs a Webhook Rule signs.
const SHARED_KEY_SECRET: &str = "shared_key_secret";
/// The setting holding the TwiML document the voice URL answers with.
const VOICE_TWIML: &str = "voice_twiml";

/// The route suffix of the voice URL (`.../{token}/voice`).
const VOICE_ROUTE: &str = "voice";

/// The signature of every request Twilio makes.
const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// Present when a Webhook Rule made Twilio sign with a SharedKey: `key=...,algorithm=...`.
const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";
/// Twilio's id of one delivery, repeated on its retries.
const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";
/// The query parameter carrying the hex SHA-256 of a JSON body.
const BODY_SHA256: &str = "bodySHA256";

struct Twilio;

impl Parser for Twilio {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        verify(&request)?;
        let voice = request.route_suffix.trim_matches('/') == VOICE_ROUTE;
        let mut result = if request.query_param(BODY_SHA256).is_some() {
            log::info("a JSON webhook (bodySHA256): Twilio sends no call progress that way");
            ParseResult::empty()
        } else {
            match translate(&request.params()) {
                // The caller waits for the TwiML: an unreadable field must not drop the call.
                Err(err) if voice => {
                    log::warn(&format!(
                        "no event from the voice URL request: {}",
                        err.message
                    ));
                    ParseResult::empty()
                }
                other => other?,
            }
        };
        if voice {
            result = result.and_response(Response::xml(200, settings::require(VOICE_TWIML)?));
        }
        if let Some(token) = request.header(IDEMPOTENCY_HEADER) {
            result = result.with_delivery_id(token.trim());
        }
        Ok(result)
    }
}

/// The HMAC a signature is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha1,
    Sha256,
}

impl Algorithm {
    /// base64(HMAC(key, message)), the form of `X-Twilio-Signature`.
    fn sign(self, key: &str, message: &str) -> String {
        let (key, message) = (key.as_bytes(), message.as_bytes());
        match self {
            Self::Sha1 => crypto::base64_encode(&crypto::hmac_sha1(key, message)),
            Self::Sha256 => crypto::base64_encode(&crypto::hmac_sha256(key, message)),
        }
    }
}

/// The key and algorithm the request was signed with, and the setting's name for messages.
///
/// Without `X-Twilio-Webhooks-Signature-Settings`, Twilio signs with the Auth Token and
/// HMAC-SHA1. With it, "Twilio signs with the Setting's SharedKey and algorithm instead …
/// Only the hash changes" (twilio-node `examples/WebhookSignatureValidation.md`).
fn signing_key(request: &Request) -> Result<(String, Algorithm, &'static str), ParseError> {
    let Some(header) = request.header(SIGNATURE_SETTINGS_HEADER) else {
        return Ok((settings::require(AUTH_TOKEN)?, Algorithm::Sha1, AUTH_TOKEN));
    };
    let algorithm = header
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(name, _)| name.trim() == "algorithm")
        .map(|(_, value)| value.trim());
    let algorithm = match algorithm {
        Some(name) if name.eq_ignore_ascii_case("HMAC_SHA256") => Algorithm::Sha256,
        Some(name) if name.eq_ignore_ascii_case("HMAC_SHA1") => Algorithm::Sha1,
        other => {
            return Err(ParseError::unauthorized(format!(
                "the {SIGNATURE_SETTINGS_HEADER} header names no supported algorithm \
                 (HMAC_SHA1, HMAC_SHA256): {other:?}"
            )));
        }
    };
    Ok((
        settings::require(SHARED_KEY_SECRET)?,
        algorithm,
        SHARED_KEY_SECRET,
    ))
}

/// Refuses a request whose `X-Twilio-Signature` does not match, or whose JSON body does not
/// match the `bodySHA256` its signed URL names (twilio-python `RequestValidator.validate`).
fn verify(request: &Request) -> Result<(), ParseError> {
    let signature = request
        .header(SIGNATURE_HEADER)
        .map(str::trim)
        .ok_or_else(|| {
            ParseError::unauthorized(format!("the {SIGNATURE_HEADER} header is missing"))
        })?;
    let (key, algorithm, key_name) = signing_key(request)?;
    let body_hash = request.query_param(BODY_SHA256);
    // A JSON request signs the URL alone; a form POST appends its fields; a GET has none.
    let params = if body_hash.is_none() && request.is_method("POST") {
        request.form()
    } else {
        Form::default()
    };
    let suffix = signed_params(params.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let matches = url_forms(&request.url).iter().any(|url| {
        let expected = algorithm.sign(&key, &format!("{url}{suffix}"));
        crypto::constant_time_eq(expected.as_bytes(), signature.as_bytes())
    });
    if !matches {
        return Err(ParseError::unauthorized(format!(
            "the {SIGNATURE_HEADER} header does not match the request's URL and parameters \
             signed with the `{key_name}` setting"
        )));
    }
    if let Some(hash) = body_hash {
        let actual = crypto::hex_encode(&crypto::sha256(&request.body));
        if !crypto::constant_time_eq(actual.as_bytes(), hash.to_ascii_lowercase().as_bytes()) {
            return Err(ParseError::unauthorized(format!(
                "the body's SHA-256 {actual} does not match the URL's {BODY_SHA256} {hash}"
            )));
        }
    }
    Ok(())
}

/// The POST parameters as Twilio appends them to the URL: sorted by name (byte order, so
/// `CallSid` before `Caller`), each name's distinct values sorted, `name + value` with no
/// separators.
fn signed_params<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in pairs {
        sorted.entry(name).or_default().insert(value);
    }
    sorted
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |value| format!("{name}{value}")))
        .collect()
}

/// The URLs a signature may have been made over: "check signature of uri with and without
/// port, since sig generation on back end is inconsistent" (twilio-python), each also with
/// the query percent-encoded as a WHATWG URL parser leaves it (twilio-node validates over
/// `new URL(url)`, which turns `It's` into `It%27s`).
fn url_forms(url: &str) -> Vec<String> {
    let mut forms: Vec<String> = Vec::with_capacity(4);
    for form in port_forms(url) {
        let encoded = whatwg_query(&form);
        for candidate in [form, encoded] {
            if !forms.contains(&candidate) {
                forms.push(candidate);
            }
        }
    }
    forms
}

/// The URL without its port and with it (the default one, 443 for `https` and 80 otherwise,
/// when it names none), as twilio-python's `remove_port` and `add_port` make them.
fn port_forms(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
        None => (String::new(), authority),
    };
    let (host, port) = split_port(host_port);
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let port = port.unwrap_or(default_port);
    vec![
        format!("{scheme}://{userinfo}{host}{tail}"),
        format!("{scheme}://{userinfo}{host}:{port}{tail}"),
    ]
}

/// `host:port` split in two (an IPv6 literal keeps its brackets); no port when none is given.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    let after_literal = host_port.rfind(']').map_or(0, |end| end + 1);
    match host_port[after_literal..].rfind(':') {
        Some(colon) => {
            let colon = after_literal + colon;
            let port = &host_port[colon + 1..];
            let port =
                (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port);
            (&host_port[..colon], port)
        }
        None => (host_port, None),
    }
}

/// The URL with its query percent-encoded as the WHATWG URL standard's "special-query
/// percent-encode set" asks: controls, space, `"`, `#`, `<`, `>`, `'` and non-ASCII bytes.
fn whatwg_query(url: &str) -> String {
    let Some((before, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = query
        .split_once('#')
        .map_or((query, None), |(query, fragment)| (query, Some(fragment)));
    let mut encoded = format!("{before}?");
    for byte in query.bytes() {
        if byte <= b' ' || byte >= 0x7f || b"\"#<>'".contains(&byte) {
            encoded.push_str(&format!("%{byte:02X}"));
        } else {
            encoded.push(char::from(byte));
        }
    }
    if let Some(fragment) = fragment {
        encoded.push('#');
        encoded.push_str(fragment);
    }
    encoded
}

/// Turns a verified request's parameters into the platform's event and, when the call is
/// over, its record.
fn translate(params: &Form) -> Result<ParseResult, ParseError> {
    let Some(status) = params.get("CallStatus") else {
        log::info(
            "the request carries no CallStatus (a <Gather> or other TwiML action): no call progress",
        );
        return Ok(ParseResult::empty());
    };
    if params.get("CallbackSource").is_none() && params.get("DialCallStatus").is_some() {
        log::info(
            "a <Dial action> request: its parent call's own status callbacks report the call",
        );
        return Ok(ParseResult::empty());
    }
    let call_sid = params.require("CallSid")?;
    if let Some(parent) = params.get("ParentCallSid").filter(|sid| !sid.is_empty()) {
        return Ok(child_leg(parent, call_sid, status));
    }
    let Some(kind) = event_type(status, call_sid)? else {
        return Ok(ParseResult::empty());
    };
    let event = TelephonyEvent::new(
        kind,
        direction(params)?,
        params.phone("From")?,
        params.phone("To")?,
    )
    .with_call_id(call_sid);
    if kind == EventType::NotifyEnd {
        finished(event, status, params)
    } else {
        Ok(ParseResult::with_event(event))
    }
}

/// The event a call's `CallStatus` is; `None` for `queued`, a call that has not started.
fn event_type(status: &str, call_sid: &str) -> Result<Option<EventType>, ParseError> {
    Ok(Some(match status {
        "queued" => {
            log::info(&format!(
                "call {call_sid} is queued: it has not started yet"
            ));
            return Ok(None);
        }
        "initiated" | "ringing" => EventType::NotifyStart,
        "in-progress" => EventType::NotifyAnswer,
        "completed" | "busy" | "no-answer" | "canceled" | "failed" => EventType::NotifyEnd,
        other => {
            return Err(ParseError::new(format!(
                "the CallStatus {other:?} of call {call_sid} is none Twilio documents"
            )));
        }
    }))
}

/// The end of a call: the event with its disposition, and the call's record, whose `call` is
/// the recording when Twilio made one (`record=true` sends `RecordingUrl` with the status).
fn finished(event: TelephonyEvent, status: &str, params: &Form) -> Result<ParseResult, ParseError> {
    let disposition = disposition(status);
    let event = event.with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => params.seconds("CallDuration")?,
        _ => 0,
    };
    let call = params
        .get("RecordingUrl")
        .filter(|url| !url.is_empty())
        .or(event.call_id.as_deref())
        .unwrap_or_default()
        .to_owned();
    let record = CallRecord::of_event(&event, duration, call);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// A leg a `<Dial>` created (`Direction=outbound-dial`): its answer is the moment an operator
/// (or the dialled party) picked up, reported under the parent's id. Its other statuses are
/// left to the parent: one `<Dial>` may ring several legs, of which all but one end
/// `canceled` or `no-answer`, and the parent's own end ends the call.
fn child_leg(parent: &str, call_sid: &str, status: &str) -> ParseResult {
    if status == "in-progress" {
        return ParseResult::with_event(TelephonyEvent::of_call(EventType::NotifyAnswer, parent));
    }
    log::info(&format!(
        "child leg {call_sid} of call {parent} is {status}: the parent call's callbacks report it"
    ));
    ParseResult::empty()
}

/// Who called whom, from `Direction`: "`inbound` for inbound calls, `outbound-api` for calls
/// initiated via the REST API", `trunking-terminating` "for outgoing calls from your
/// communications infrastructure to the PSTN", `trunking-originating` "for incoming calls"
/// (twilio-python `CallInstance.direction`). A call placed from a Twilio Client (`From` =
/// `client:name`) reaches Twilio as `inbound` but is an operator calling out.
fn direction(params: &Form) -> Result<Direction, ParseError> {
    let from = params.get("From").unwrap_or_default();
    match params.require("Direction")? {
        "inbound" if from.starts_with("client:") => Ok(Direction::Out),
        "inbound" | "trunking-originating" => Ok(Direction::In),
        "outbound-api" | "outbound-dial" | "trunking-terminating" => Ok(Direction::Out),
        other => Err(ParseError::new(format!(
            "the Direction {other:?} is none Twilio documents"
        ))),
    }
}

/// How a call ended, from its final `CallStatus`, in the words of Twilio's "What are the
/// possible call statuses" (support article 223132547):
///
/// | `CallStatus` | Twilio's wording | disposition |
/// |---|---|---|
/// | `completed` | "a connection was established, and audio data was transferred" | answered |
/// | `busy` | "Twilio dialed the number, but received a busy response" | busy |
/// | `no-answer` | "no one answered before the timeout parameter value elapsed" | no-answer |
/// | `canceled` | "canceled via an HTTP POST request to the REST API" before it was answered, "or an incoming call was disconnected by the calling party" | cancel |
/// | `failed` | "Twilio's carriers could not connect the call" | no-answer (unreachable) |
fn disposition(status: &str) -> Disposition {
    match status {
        "completed" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "canceled" => Disposition::Cancel,
        "no-answer" | "failed" => Disposition::NoAnswer,
        _ => Disposition::Unknown,
    }
}

telehook_guest::export_parser!(Twilio);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    /// The twilio-python / twilio-node test vector: token `12345`, this URL and these fields.
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FIELDS: &[(&str, &str)] = &[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];

    fn harness() -> Harness {
        Harness::new().setting(AUTH_TOKEN, "12345").setting(
            VOICE_TWIML,
            "<Response><Dial>+15550001000</Dial></Response>",
        )
    }

    /// A form POST to `url` signed with the test token, as Twilio would sign it.
    fn signed(url: &str, fields: &[(&str, &str)]) -> TestRequest {
        let signed = format!("{url}{}", signed_params(fields.iter().copied()));
        TestRequest::post(url)
            .form(fields)
            .header(SIGNATURE_HEADER, Algorithm::Sha1.sign("12345", &signed))
    }

    #[test]
    fn the_sdk_vectors_sign_as_documented() {
        let sign = |url: &str| {
            let signed = format!("{url}{}", signed_params(FIELDS.iter().copied()));
            Algorithm::Sha1.sign("12345", &signed)
        };
        assert_eq!(sign(URL), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(
            sign("https://mycompany.com:443/myapp.php?foo=1&bar=2"),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        let duplicates = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ];
        assert_eq!(
            Algorithm::Sha1.sign("12345", &format!("{URL}{}", signed_params(duplicates))),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn urls_are_tried_with_and_without_their_port() {
        assert_eq!(
            port_forms("https://h.example.com/a?b=1"),
            [
                "https://h.example.com/a?b=1",
                "https://h.example.com:443/a?b=1"
            ]
        );
        assert_eq!(
            port_forms("http://u:p@h.example.com:8080"),
            ["http://u:p@h.example.com", "http://u:p@h.example.com:8080"]
        );
        assert_eq!(
            port_forms("https://[::1]:8443/x"),
            ["https://[::1]/x", "https://[::1]:8443/x"]
        );
        assert_eq!(split_port("[::1]"), ("[::1]", None));
    }

    // twilio-node spec/validation.spec.js: "should validate urls with special characters".
    #[test]
    fn a_quote_in_the_query_validates_as_twilio_node_encodes_it() {
        let url = format!("{URL}&Body=It's+amazing");
        let request = TestRequest::post(&url)
            .form(FIELDS)
            .header(SIGNATURE_HEADER, "TfZzewPq8wqrGlMfyAud8+/IvJ0=");
        assert_eq!(
            harness().parse::<Twilio>(request).outcome(),
            ParseResult::empty()
        );
    }

    #[test]
    fn a_child_leg_answers_under_its_parent_and_ends_nothing() {
        let answered = &[
            ("CallSid", "CA-child"),
            ("ParentCallSid", "CA-parent"),
            ("Direction", "outbound-dial"),
            ("CallStatus", "in-progress"),
            ("CallbackSource", "call-progress-events"),
        ];
        let outcome = harness().parse::<Twilio>(signed(URL, answered)).outcome();
        assert_eq!(
            outcome.event,
            Some(TelephonyEvent::of_call(
                EventType::NotifyAnswer,
                "CA-parent"
            ))
        );
        let mut lost = answered.to_vec();
        lost[3] = ("CallStatus", "no-answer");
        let parsed = harness().parse::<Twilio>(signed(URL, &lost));
        assert!(parsed.log[0].message.contains("child leg CA-child"));
        assert_eq!(parsed.outcome(), ParseResult::empty());
    }

    #[test]
    fn a_client_call_is_an_operator_calling_out() {
        let fields = &[
            ("CallSid", "CA1"),
            ("Direction", "inbound"),
            ("CallStatus", "ringing"),
            ("From", "client:alice"),
            ("To", "+14155550100"),
        ];
        let event = harness()
            .parse::<Twilio>(signed(URL, fields))
            .outcome()
            .event;
        let event = event.expect("an event");
        assert_eq!(event.direction, Some(Direction::Out));
        assert_eq!(event.src_phone.as_deref(), Some("client:alice"));
    }

    #[test]
    fn get_callbacks_sign_the_url_alone() {
        let url = format!("{URL}&CallSid=CA1&CallStatus=queued");
        let signature = Algorithm::Sha1.sign("12345", &url);
        let request = TestRequest::get(&url).header(SIGNATURE_HEADER, signature);
        let parsed = harness().parse::<Twilio>(request);
        assert!(parsed.log[0].message.contains("queued"));
        assert_eq!(parsed.outcome(), ParseResult::empty());
    }

    #[test]
    fn unknown_values_and_algorithms_are_refused() {
        let fields = &[
            ("CallSid", "CA1"),
            ("CallStatus", "exploded"),
            ("Direction", "inbound"),
        ];
        let refusal = harness().parse::<Twilio>(signed(URL, fields)).refusal();
        assert_eq!(refusal.status, None);
        assert!(refusal.message.contains("\"exploded\""));
        let request = signed(URL, FIELDS).header(SIGNATURE_SETTINGS_HEADER, "key=,algorithm=MD5");
        let refusal = harness().parse::<Twilio>(request).refusal();
        assert_eq!(refusal.status, Some(401));
    }

    #[test]
    fn an_unreadable_voice_request_still_gets_its_twiml() {
        let fields = &[
            ("CallSid", "CA1"),
            ("CallStatus", "ringing"),
            ("Direction", "sideways"),
        ];
        let parsed = harness().parse::<Twilio>(signed(URL, fields).route_suffix("voice"));
        assert!(parsed.log[0].message.contains("\"sideways\""));
        let outcome = parsed.outcome();
        assert_eq!(outcome.event, None);
        let twiml = outcome.response.expect("TwiML").body;
        assert_eq!(twiml, b"<Response><Dial>+15550001000</Dial></Response>");
    }

    #[test]
    fn the_voice_url_needs_its_twiml() {
        let request = signed(URL, FIELDS).route_suffix("voice");
        let refusal = Harness::new()
            .setting(AUTH_TOKEN, "12345")
            .parse::<Twilio>(request)
            .refusal();
        assert_eq!(
            refusal.message,
            "the integration setting `voice_twiml` is not set"
        );
    }
}
