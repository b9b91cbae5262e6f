//! A parser for Plivo Voice callbacks (<https://www.plivo.com/docs/voice/xml/request/>).
//!
//! Plivo calls an application's URLs with form-urlencoded `POST`s (or `GET`s with the same
//! parameters in the query), each naming its stage in `Event`:
//!
//! - the *answer URL* (`Event=StartApp`) when a call comes in, or when a call made with the
//!   API is answered: Plivo wants Plivo XML back, so the parser answers with the document of
//!   the `answer_xml` setting;
//! - the *ring URL* (`Event=Ring`) of an API call, when it starts ringing;
//! - the *hangup URL* (`Event=Hangup`) when the call is over;
//! - a `<Dial callbackUrl>` (`DialAction=answer|connected|hangup|digits`) for the legs a
//!   `<Dial>` rings.
//!
//! Without an `Event` the route suffix (`answer`, `ring`, `hangup`, `dial`) names the stage.
//! Every request is verified first: `X-Plivo-Signature-V3` is base64(HMAC-SHA256(auth token,
//! URL and sorted parameters + "." + `X-Plivo-Signature-V3-Nonce`)), possibly several
//! signatures separated by commas (see [`signed_string`]); `X-Plivo-Signature-Ma-V3` is the
//! same signed with the main account's token.
//!
//! | request | event | direction | src → dst | disposition |
//! |---|---|---|---|---|
//! | answer, `Direction=inbound` | start | in | `From` → `To` | unknown |
//! | answer, `Direction=outbound` | answer | out | `From` → `To` | unknown |
//! | ring | start | from `Direction` | `From` → `To` | unknown |
//! | hangup | end + call record | from `Direction` | `From` → `To` | see [`disposition`] |
//! | Dial `DialAction=answer` | answer naming only the A leg's call | — | — | unknown |
//!
//! The call id is the A leg's `CallUUID` (`DialALegUUID`, `ALegUUID`, else `CallUUID`), so
//! that the legs of one call stay one call. The call record's `duration` is `Duration` when
//! the call was answered, and its `call` the `CallUUID`, the id of Plivo's call detail record.

use std::collections::BTreeMap;

use telehook_guest::prelude::*;

/// The setting holding the Auth Token of the (sub)account that owns the application.
const AUTH_TOKEN: &str = "auth_token";
/// The setting holding the main account's Auth Token, for `X-Plivo-Signature-Ma-V3`.
const MAIN_AUTH_TOKEN: &str = "main_auth_token";
/// The setting holding the Plivo XML the answer URL replies with.
const ANSWER_XML: &str = "answer_xml";

/// The signatures made with the application's account token, comma-separated.
const SIGNATURE_HEADER: &str = "X-Plivo-Signature-V3";
/// The signatures made with the main account's token.
const MAIN_SIGNATURE_HEADER: &str = "X-Plivo-Signature-Ma-V3";
/// The nonce both signatures cover.
const NONCE_HEADER: &str = "X-Plivo-Signature-V3-Nonce";

struct Plivo;

impl Parser for Plivo {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        verify(&request)?;
        let params = request.params();
        match Stage::of(&request, &params) {
            Stage::Answer => {
                let xml = settings::require(ANSWER_XML)?;
                // The call waits for the XML: an unreadable field must not drop it.
                let result = answered(&params).unwrap_or_else(|err| {
                    log::warn(&format!(
                        "no event from the answer URL request: {}",
                        err.message
                    ));
                    ParseResult::empty()
                });
                Ok(result.and_response(Response::xml(200, xml)))
            }
            Stage::Ring => Ok(ParseResult::with_event(event(
                EventType::NotifyStart,
                &params,
            )?)),
            Stage::Hangup => hung_up(&params),
            Stage::Dial => Ok(dial(&params)),
            Stage::Other(name) => {
                log::info(&format!(
                    "the callback `{name}` reports no call progress the platform has an event for"
                ));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// Which of an application's URLs Plivo called.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Answer,
    Ring,
    Hangup,
    Dial,
    Other(String),
}

impl Stage {
    /// The stage `Event` names, else the route suffix, else what the fields show. `Event`
    /// comes first because one URL may serve several stages: an application whose hangup URL
    /// is its answer URL sends its hangups to `.../answer`.
    fn of(request: &Request, params: &Form) -> Self {
        if let Some(event) = params.get("Event").filter(|event| !event.is_empty()) {
            return match event {
                "StartApp" => Self::Answer,
                "Ring" => Self::Ring,
                "Hangup" => Self::Hangup,
                dial if dial.starts_with("Dial") && params.get("DialAction").is_some() => {
                    Self::Dial
                }
                other => Self::Other(other.to_owned()),
            };
        }
        match request.route_suffix.trim_matches('/') {
            "answer" => Self::Answer,
            "ring" => Self::Ring,
            "hangup" => Self::Hangup,
            "dial" => Self::Dial,
            _ if params.get("DialAction").is_some() => Self::Dial,
            _ if params.get("HangupCause").is_some() => Self::Hangup,
            other => Self::Other(format!("(no Event, route `{other}`)")),
        }
    }
}

/// Refuses a request none of whose signatures is Plivo's, as plivo-python's
/// `validate_v3_signature` checks them: any one of the comma-separated signatures of
/// `X-Plivo-Signature-V3` (auth token) or of `X-Plivo-Signature-Ma-V3` (main account token,
/// when that setting is set) must match.
fn verify(request: &Request) -> Result<(), ParseError> {
    let nonce = request
        .header(NONCE_HEADER)
        .ok_or_else(|| ParseError::unauthorized(format!("the {NONCE_HEADER} header is missing")))?;
    let signatures = request.header(SIGNATURE_HEADER);
    let main_signatures = request.header(MAIN_SIGNATURE_HEADER);
    if signatures.is_none() && main_signatures.is_none() {
        return Err(ParseError::unauthorized(format!(
            "the {SIGNATURE_HEADER} header is missing"
        )));
    }
    let signed = signed_string(request, nonce);
    let token = settings::require(AUTH_TOKEN)?;
    if signatures.is_some_and(|list| any_matches(&token, &signed, list)) {
        return Ok(());
    }
    let main_token = settings::get(MAIN_AUTH_TOKEN).filter(|token| !token.is_empty());
    let message = match (main_signatures, main_token) {
        (None, _) => format!(
            "no signature in {SIGNATURE_HEADER} matches the request's URL, parameters and \
             nonce signed with the `{AUTH_TOKEN}` setting"
        ),
        (Some(list), Some(main_token)) => {
            if any_matches(&main_token, &signed, list) {
                return Ok(());
            }
            format!(
                "no signature in {SIGNATURE_HEADER} or {MAIN_SIGNATURE_HEADER} matches the \
                 request's URL, parameters and nonce signed with the `{AUTH_TOKEN}` or \
                 `{MAIN_AUTH_TOKEN}` setting"
            )
        }
        (Some(_), None) => format!(
            "no signature in {SIGNATURE_HEADER} matches the request's URL, parameters and \
             nonce signed with the `{AUTH_TOKEN}` setting; {MAIN_SIGNATURE_HEADER} was not \
             checked: the `{MAIN_AUTH_TOKEN}` setting is not set"
        ),
    };
    Err(ParseError::unauthorized(message))
}

/// Whether one of the comma-separated `signatures` is base64(HMAC-SHA256(token, signed)).
fn any_matches(token: &str, signed: &str, signatures: &str) -> bool {
    let expected = crypto::base64_encode(&crypto::hmac_sha256(token.as_bytes(), signed.as_bytes()));
    signatures
        .split(',')
        .any(|signature| crypto::constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()))
}

/// The string V3 signs, as plivo-python `construct_get_url` / `construct_post_url` build it
/// (plivo-go `GenerateUrl` and plivo-node agree), followed by `.` and the nonce:
///
/// - the URL's scheme, authority (port kept) and path, without query or fragment;
/// - for a `GET`: `?` and every query parameter (the URL's own and Plivo's, which a `GET`
///   carries there) as `name=value`, sorted, joined with `&`;
/// - for a `POST`: `?` (when there is any parameter), the URL's query parameters as above,
///   `.` when there are both, then the form fields as `namevalue`, sorted, with no separator.
///
/// Values are the decoded ones; names sort by byte (`SIP-H-To` before `SessionStart`), and a
/// name's values sort among themselves.
fn signed_string(request: &Request, nonce: &str) -> String {
    let url = request.url.as_str();
    let base = url.find(['?', '#']).map_or(url, |end| &url[..end]);
    let query = sorted_pairs(request.query.iter(), "=", "&");
    let mut signed = base.to_owned();
    if request.is_method("GET") {
        if !query.is_empty() {
            signed.push('?');
            signed.push_str(&query);
        }
    } else {
        let form = request.form();
        let fields = sorted_pairs(form.pairs().iter(), "", "");
        if !query.is_empty() || !fields.is_empty() {
            signed.push('?');
        }
        signed.push_str(&query);
        if !query.is_empty() && !fields.is_empty() {
            signed.push('.');
        }
        signed.push_str(&fields);
    }
    signed.push('.');
    signed.push_str(nonce);
    signed
}

/// `pairs` sorted by name and then value, each as `name{between}value`, joined with `join`.
fn sorted_pairs<'a>(
    pairs: impl Iterator<Item = &'a (String, String)>,
    between: &str,
    join: &str,
) -> String {
    let mut sorted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in pairs {
        sorted.entry(name).or_default().push(value);
    }
    let mut parts = Vec::new();
    for (name, values) in &mut sorted {
        values.sort_unstable();
        parts.extend(values.iter().map(|value| format!("{name}{between}{value}")));
    }
    parts.join(join)
}

/// The answer URL: a call coming in (it rings while Plivo fetches the XML), or a call made
/// with the API answered by the called party ("If you're using the Call API, the direction
/// will be outbound and the call will be in an answered state", Plivo's request docs).
fn answered(params: &Form) -> Result<ParseResult, ParseError> {
    let kind = match params.require("Direction")? {
        "outbound" => EventType::NotifyAnswer,
        _ => EventType::NotifyStart,
    };
    Ok(ParseResult::with_event(event(kind, params)?))
}

/// The hangup URL: the end of the call and its record.
fn hung_up(params: &Form) -> Result<ParseResult, ParseError> {
    let disposition = disposition(params)?;
    let event = event(EventType::NotifyEnd, params)?.with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => params.seconds("Duration")?,
        _ => 0,
    };
    let record = CallRecord::of_event(&event, duration, params.require("CallUUID")?);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// A `<Dial callbackUrl>` request: the B leg's answer is when the dialled operator (or
/// party) picked up, reported under the A leg's call. Its `connected`, `digits` and `hangup`
/// actions are left out: the A leg's own hangup URL ends the call.
fn dial(params: &Form) -> ParseResult {
    let action = params.get("DialAction").unwrap_or_default();
    let a_leg = params
        .get("DialALegUUID")
        .or_else(|| params.get("CallUUID"))
        .filter(|uuid| !uuid.is_empty());
    match (action, a_leg) {
        ("answer", Some(a_leg)) => {
            ParseResult::with_event(TelephonyEvent::of_call(EventType::NotifyAnswer, a_leg))
        }
        _ => {
            log::info(&format!(
                "the Dial callback `{action}` reports nothing the call's own callbacks do not"
            ));
            ParseResult::empty()
        }
    }
}

/// An event with the call's parties and id.
fn event(kind: EventType, params: &Form) -> Result<TelephonyEvent, ParseError> {
    let direction = match params.require("Direction")? {
        "inbound" => Direction::In,
        "outbound" => Direction::Out,
        other => {
            return Err(ParseError::new(format!(
                "the Direction {other:?} is neither `inbound` nor `outbound`"
            )));
        }
    };
    let call_id = ["DialALegUUID", "ALegUUID", "CallUUID"]
        .into_iter()
        .find_map(|field| params.get(field).filter(|uuid| !uuid.is_empty()))
        .ok_or_else(|| ParseError::new("the form field `CallUUID` is missing"))?;
    Ok(
        TelephonyEvent::new(kind, direction, params.phone("From")?, params.phone("To")?)
            .with_call_id(call_id),
    )
}

/// How the call ended. Plivo's `CallStatus` on hangup "will be set to completed for inbound
/// calls and to completed, busy, failed, timeout, or no-answer for outbound calls"; its
/// values, in Plivo's words (dial status reporting):
///
/// | `CallStatus` | Plivo's wording | disposition |
/// |---|---|---|
/// | `completed` | "The call was completed, terminated either by the Hangup API or by one of the parties" | answered when `Duration` > 0, else from the cause ([`unanswered`]) |
/// | `busy` | "The called line is busy" | busy |
/// | `no-answer` | "The call was not answered" | no-answer |
/// | `timeout` | "a timeout while connecting your call" (carriers, network) | no-answer |
/// | `failed` | (outbound calls that could not connect) | no-answer |
/// | `cancel` | "The call was canceled by the caller" | cancel |
fn disposition(params: &Form) -> Result<Disposition, ParseError> {
    Ok(match params.get("CallStatus").unwrap_or_default() {
        "busy" => Disposition::Busy,
        "no-answer" | "timeout" | "failed" => Disposition::NoAnswer,
        "cancel" => Disposition::Cancel,
        _ if params.seconds("Duration")? > 0 => Disposition::Answered,
        _ => unanswered(params),
    })
}

/// Why a `completed` call with no duration was not answered, from Plivo's hangup causes
/// (docs "Hangup causes": `HangupCauseCode` with `HangupSource`), else, for the code `0`
/// ("The reason for hangup could not be determined") or one Plivo does not document, from
/// the telephony cause name in `HangupCause`:
///
/// | code | Plivo's name | disposition |
/// |---|---|---|
/// | 1000 | Canceled ("canceled using the Hangup Call API before it was answered") | cancel |
/// | 1010 | Canceled (Out Of Credits) | cancel |
/// | 1020 | Canceled (Simultaneous dial limit reached) | no-answer |
/// | 2000–2070 | Destination issues: invalid address, out of service, not registered, barred, loop | no-answer |
/// | 4000 | Normal Hangup, with `HangupSource=Caller`: the caller gave up while it rang | cancel |
/// | 4000, 4010, 4020, 4030 | Normal Hangup, End Of XML Instructions, Multiparty call ended / kicked out | no-answer |
/// | 0, other | `HangupCause` `USER_BUSY` / `ORIGINATOR_CANCEL` / anything else | busy / cancel / no-answer |
fn unanswered(params: &Form) -> Disposition {
    let code = params.get("HangupCauseCode").map(str::trim);
    let by_caller = params
        .get("HangupSource")
        .is_some_and(|source| source.eq_ignore_ascii_case("Caller"));
    match code.and_then(|code| code.parse::<u32>().ok()) {
        Some(1000 | 1010) => Disposition::Cancel,
        Some(1020 | 2000..=2999) => Disposition::NoAnswer,
        Some(4000) if by_caller => Disposition::Cancel,
        Some(4000 | 4010 | 4020 | 4030) => Disposition::NoAnswer,
        _ => match params.get("HangupCause").unwrap_or_default() {
            "USER_BUSY" => Disposition::Busy,
            "ORIGINATOR_CANCEL" => Disposition::Cancel,
            _ => Disposition::NoAnswer,
        },
    }
}

telehook_guest::export_parser!(Plivo);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    /// plivo-go `TestValidateSignatureV3Pass1..4`: token, nonce, URLs and fields.
    const TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const NONCE: &str = "31627761595286130198";
    const URL: &str = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
    const UUID: &str = "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36";
    const FIELDS: &[(&str, &str)] = &[
        ("Direction", "outbound"),
        ("From", "19792014278"),
        ("ALegUUID", UUID),
        ("CallStatus", "in-progress"),
        ("BillRate", "0.002"),
        ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
        (
            "To",
            "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
        ),
        ("ALegRequestUUID", UUID),
        ("CallUUID", UUID),
        ("RequestUUID", UUID),
        (
            "SIP-H-To",
            "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
        ),
        ("SessionStart", "2020-04-08 11:34:33.238707"),
        ("Event", "StartApp"),
    ];

    fn harness() -> Harness {
        Harness::new()
            .setting(AUTH_TOKEN, TOKEN)
            .setting(ANSWER_XML, "<Response><Speak>Hello</Speak></Response>")
    }

    fn signature(request: &TestRequest) -> String {
        let request = Request::from(request.clone());
        let signed = signed_string(&request, NONCE);
        crypto::base64_encode(&crypto::hmac_sha256(TOKEN.as_bytes(), signed.as_bytes()))
    }

    /// `request` signed with the test token, as Plivo signs it.
    fn signed(request: TestRequest) -> TestRequest {
        let signature = signature(&request);
        request
            .header(NONCE_HEADER, NONCE)
            .header(SIGNATURE_HEADER, signature)
    }

    #[test]
    fn the_four_plivo_go_vectors_are_reproduced() {
        let query_url = format!("{URL}/?a=b&c=d");
        let get_url = |base: &str| {
            let query: Vec<String> = FIELDS
                .iter()
                .map(|(name, value)| {
                    format!("{name}={}", value.replace(' ', "+").replace(';', "%3B"))
                })
                .collect();
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}{}", query.join("&"))
        };
        let cases = [
            (
                TestRequest::post(&query_url).form(FIELDS),
                "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            ),
            (
                TestRequest::get(&get_url(&query_url)),
                "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=",
            ),
            (
                TestRequest::post(URL).form(FIELDS),
                "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=",
            ),
            (
                TestRequest::get(&get_url(URL)),
                "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc=",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(signature(&request), expected);
        }
    }

    #[test]
    fn a_get_answer_is_verified_over_its_query() {
        let url = format!(
            "{URL}?CallUUID={UUID}&Direction=inbound&From=14155551234&To=14155550100&CallStatus=ringing&Event=StartApp"
        );
        let outcome = harness()
            .parse::<Plivo>(signed(TestRequest::get(&url)))
            .outcome();
        let event = outcome.event.expect("an event");
        assert_eq!(
            (event.event, event.direction),
            (EventType::NotifyStart, Some(Direction::In))
        );
        assert_eq!(outcome.response.expect("XML").status, 200);
    }

    #[test]
    fn the_main_account_signature_needs_its_token() {
        let request = TestRequest::post(URL).form(FIELDS);
        let main = signature(&request);
        let request = request
            .header(NONCE_HEADER, NONCE)
            .header(MAIN_SIGNATURE_HEADER, main);
        let refused = Harness::new()
            .setting(AUTH_TOKEN, "another-token")
            .parse::<Plivo>(request.clone())
            .refusal();
        assert_eq!(refused.status, Some(401));
        let accepted = Harness::new()
            .setting(AUTH_TOKEN, "another-token")
            .setting(MAIN_AUTH_TOKEN, TOKEN)
            .setting(ANSWER_XML, "<Response/>")
            .parse::<Plivo>(request);
        assert!(accepted.outcome().event.is_some());
    }

    #[test]
    fn a_hangup_at_the_answer_url_is_a_hangup() {
        let fields = &[
            ("CallUUID", UUID),
            ("Direction", "inbound"),
            ("From", "14155551234"),
            ("To", "14155550100"),
            ("CallStatus", "completed"),
            ("Event", "Hangup"),
            ("Duration", "0"),
            ("HangupCauseCode", "4000"),
            ("HangupSource", "Caller"),
        ];
        let request = signed(TestRequest::post(URL).form(fields).route_suffix("answer"));
        let outcome = harness().parse::<Plivo>(request).outcome();
        assert_eq!(outcome.response, None);
        assert_eq!(
            outcome.event.expect("an event").disposition,
            Disposition::Cancel
        );
        assert_eq!(outcome.call_record.expect("a record").duration, 0);
    }

    #[test]
    fn unanswered_causes_map_deliberately() {
        let cause = |fields: &[(&str, &str)]| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            unanswered(&Form::parse(body.join("&").as_bytes()))
        };
        assert_eq!(cause(&[("HangupCauseCode", "1000")]), Disposition::Cancel);
        assert_eq!(cause(&[("HangupCauseCode", "2020")]), Disposition::NoAnswer);
        assert_eq!(
            cause(&[("HangupCauseCode", "4000"), ("HangupSource", "Plivo")]),
            Disposition::NoAnswer
        );
        assert_eq!(
            cause(&[("HangupCauseCode", "0"), ("HangupCause", "USER_BUSY")]),
            Disposition::Busy
        );
        assert_eq!(
            cause(&[("HangupCause", "ORIGINATOR_CANCEL")]),
            Disposition::Cancel
        );
        assert_eq!(cause(&[]), Disposition::NoAnswer);
    }

    #[test]
    fn an_unreadable_answer_still_gets_its_xml() {
        let fields = &[
            ("CallUUID", UUID),
            ("Direction", "sideways"),
            ("Event", "StartApp"),
        ];
        let parsed = harness().parse::<Plivo>(signed(TestRequest::post(URL).form(fields)));
        assert!(parsed.log[0].message.contains("\"sideways\""));
        let outcome = parsed.outcome();
        assert_eq!(outcome.event, None);
        assert_eq!(
            outcome.response.expect("XML").body,
            b"<Response><Speak>Hello</Speak></Response>"
        );
    }

    #[test]
    fn a_dial_hangup_and_an_unknown_event_give_nothing() {
        let dial = &[
            ("DialAction", "hangup"),
            ("DialALegUUID", UUID),
            ("Event", "DialHangup"),
        ];
        let parsed = harness().parse::<Plivo>(signed(TestRequest::post(URL).form(dial)));
        assert_eq!(parsed.outcome(), ParseResult::empty());
        let record = &[("CallUUID", UUID), ("Event", "Record")];
        let parsed = harness().parse::<Plivo>(signed(TestRequest::post(URL).form(record)));
        assert!(parsed.log[0].message.contains("`Record`"));
    }
}
