//! A parser for 46elks voice callbacks (<https://46elks.se/docs/receive-call>).
//!
//! 46elks drives a call by callbacks: each is a form-urlencoded POST, and the reply to
//! `voice_start` must be a JSON call action (an empty `200` ends the call, a non-2xx is retried
//! for hours). One telehook URL serves every callback, told apart by the route suffix the
//! parser itself hands out in its actions:
//!
//! | route suffix | callback | event | direction | src → dst | reply |
//! |---|---|---|---|---|---|
//! | (none) | `voice_start`, incoming call | start | in | `from` → `to` | connect to `connect_to` |
//! | (none) | `voice_start` from a 46elks client in `client_numbers` | start | out | `from` → `to` | connect to `to` as `callerid` |
//! | (none) | `voice_start` of an API call, once answered | answer | out | `from` → `to` | connect to `connect_to` |
//! | `hangup` | `whenhangup` | end + record | by `direction` | `from` → `to` | `200` |
//! | `recording` | `recordcall` | record, call only | – | – | `200` |
//! | `next` | a `next` of an admin's own action chain | – | – | – | `{"hangup": "reject"}` |
//!
//! Every connect the parser answers with registers `whenhangup` (and, with `record_calls`,
//! `recordcall`) back to the same telehook URL, so the end, the record and the recording come
//! back here; see the README for the settings that shape the action.
//!
//! The call id is `callid` (`id` in `whenhangup` and client calls): 46elks's id of the whole
//! call; the legs a `connect` makes have none. 46elks signs nothing, and telehook sees no
//! client address to check 46elks's IP list against, so besides telehook's own URL token a
//! second shared secret can be required: the `url_token` setting, sent as the first route
//! segment (`.../<token>/hangup`) or as `?token=`. The parser's callback URLs keep the token
//! where the request had it.

use serde_json::{Value, json};
use telehook_guest::prelude::*;

/// Where incoming calls are connected: an E.164 number, a comma-separated list rung at once, or
/// a SIP address (46elks `connect`).
const CONNECT_TO: &str = "connect_to";
/// Optional: where a connect that is busy or fails goes instead (46elks's nested `busy` and
/// `failed` actions), e.g. a voicemail number.
const FALLBACK_CONNECT: &str = "fallback_connect";
/// Optional: the caller id clients see when an operator calls out from a 46elks client.
const CALLERID: &str = "callerid";
/// Optional: `true` adds `recordcall`, so that every connected call is recorded.
const RECORD_CALLS: &str = "record_calls";
/// Optional: the comma-separated numbers of the 46elks clients (SIP/WebRTC phones) operators
/// call from; their `voice_start` says `incoming` but is an operator calling out.
const CLIENT_NUMBERS: &str = "client_numbers";
/// Optional: a shared secret the callback URL must carry.
const URL_TOKEN: &str = "url_token";
/// The query parameter that carries `url_token` when it is not in the path.
const TOKEN_PARAM: &str = "token";

struct Elks46;

impl Parser for Elks46 {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let location = locate(&request)?;
        let form = request.form();
        match location.route {
            Route::VoiceStart => voice_start(&request, &location, &form),
            Route::Hangup => hung_up(&form),
            Route::Recording => recorded(&form),
            Route::Next => Ok(next(&form)),
        }
    }
}

/// Which callback a request is, from the last segment of its route suffix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    VoiceStart,
    Hangup,
    Recording,
    Next,
}

impl Route {
    fn suffix(self) -> &'static str {
        match self {
            Route::VoiceStart => "",
            Route::Hangup => "hangup",
            Route::Recording => "recording",
            Route::Next => "next",
        }
    }
}

/// The callback and, when the URL carried `url_token` in its path, that segment.
struct Location {
    route: Route,
    path_token: Option<String>,
}

/// Reads the route suffix (`[token/]route`) and checks the shared token when one is set.
fn locate(request: &Request) -> Result<Location, ParseError> {
    let mut segments: Vec<&str> = request
        .route_suffix
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let route = [Route::Hangup, Route::Recording, Route::Next]
        .into_iter()
        .find(|route| segments.last() == Some(&route.suffix()))
        .unwrap_or(Route::VoiceStart);
    if route != Route::VoiceStart {
        segments.pop();
    }
    let path_token = match segments.as_slice() {
        [] => None,
        [token] => Some(*token),
        _ => return Err(unknown_route(request)),
    };
    authorize(request, path_token)?;
    Ok(Location {
        route,
        path_token: path_token.map(str::to_owned),
    })
}

/// With `url_token` set, the path segment or `?token=` must equal it (`401` otherwise);
/// without it, a path segment that is no route is an unknown route.
fn authorize(request: &Request, path_token: Option<&str>) -> Result<(), ParseError> {
    let Some(expected) = settings::get(URL_TOKEN).filter(|token| !token.is_empty()) else {
        return match path_token {
            Some(_) => Err(unknown_route(request)),
            None => Ok(()),
        };
    };
    let Some(presented) = path_token.or_else(|| request.query_param(TOKEN_PARAM)) else {
        log::warn("refusing a callback without the url_token");
        return Err(ParseError::unauthorized(format!(
            "the callback URL carries no token: with `{URL_TOKEN}` set, 46elks must call \
             `.../<token>` or `...?{TOKEN_PARAM}=<token>`"
        )));
    };
    if !crypto::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        log::warn("refusing a callback with a wrong url_token");
        return Err(ParseError::unauthorized(format!(
            "the token in the callback URL is not the `{URL_TOKEN}` setting"
        )));
    }
    Ok(())
}

fn unknown_route(request: &Request) -> ParseError {
    ParseError::new(format!(
        "unknown route suffix `{}`: expected nothing, `hangup`, `recording` or `next`, after \
         the `{URL_TOKEN}` segment when that setting is set",
        request.route_suffix
    ))
}

/// `voice_start`: the call's first event and the action that routes it.
fn voice_start(
    request: &Request,
    location: &Location,
    form: &Form,
) -> Result<ParseResult, ParseError> {
    let call_id = call_id(form, "voice_start")?;
    let (from, to) = (party(form, "from")?, party(form, "to")?);
    let (event, connect, calls_a_client) = match form.require("direction")? {
        "incoming" if is_client_number(&from) => {
            let target = form.require("to")?.trim().to_owned();
            let event = TelephonyEvent::new(EventType::NotifyStart, Direction::Out, from, to);
            (event, target, true)
        }
        "incoming" => {
            let event = TelephonyEvent::new(EventType::NotifyStart, Direction::In, from, to);
            (event, connect_to()?, false)
        }
        // 46elks loads an API call's voice_start "when someone answers the phone call".
        "outgoing" => {
            let event = TelephonyEvent::new(EventType::NotifyAnswer, Direction::Out, from, to);
            (event, connect_to()?, false)
        }
        other => return Err(bad_direction("voice_start", other)),
    };
    let action = connect_action(request, location, &connect, calls_a_client)?;
    Ok(ParseResult::with_event(event.with_call_id(call_id))
        .and_response(Response::json(200, &action)))
}

/// The connect action: the target, the hang-up (and recording) callbacks back to telehook,
/// and, when an operator calls a client, the caller id. Calls to operators keep 46elks's
/// default caller id, the caller's own number, so the operator sees who calls, and go to
/// `fallback_connect` when the operators are busy or do not answer.
fn connect_action(
    request: &Request,
    location: &Location,
    target: &str,
    calls_a_client: bool,
) -> Result<Value, ParseError> {
    let mut action = json!({ "connect": target });
    if calls_a_client {
        match non_empty_setting(CALLERID) {
            Some(callerid) => action["callerid"] = json!(callerid),
            None => {
                log::warn("`callerid` is not set: the client sees the 46elks client's own number")
            }
        }
    }
    if let Some(fallback) = non_empty_setting(FALLBACK_CONNECT).filter(|_| !calls_a_client) {
        action["busy"] = json!({ "connect": fallback });
        action["failed"] = json!({ "connect": fallback });
    }
    action["whenhangup"] = json!(callback_url(request, location, Route::Hangup));
    if record_calls()? {
        action["recordcall"] = json!(callback_url(request, location, Route::Recording));
    }
    Ok(action)
}

/// The telehook URL of another callback: the request's URL with its route replaced, the
/// path token and the query (with `?token=`) kept as they came.
fn callback_url(request: &Request, location: &Location, route: Route) -> String {
    let (path, query) = request
        .url
        .split_once('?')
        .map_or((request.url.as_str(), None), |(path, query)| {
            (path, Some(query))
        });
    let suffix = request.route_suffix.trim_matches('/');
    let base = path.trim_end_matches('/');
    let base = match base.strip_suffix(suffix) {
        Some(base) if !suffix.is_empty() => base.trim_end_matches('/'),
        _ => base,
    };
    let mut url = base.to_owned();
    for segment in [location.path_token.as_deref(), Some(route.suffix())]
        .into_iter()
        .flatten()
        .filter(|segment| !segment.is_empty())
    {
        url.push('/');
        url.push_str(segment);
    }
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `whenhangup`: the end of the call with its outcome, and its record.
fn hung_up(form: &Form) -> Result<ParseResult, ParseError> {
    let call_id = call_id(form, "whenhangup")?;
    let (from, to) = (party(form, "from")?, party(form, "to")?);
    let direction = match form.require("direction")? {
        "incoming" if is_client_number(&from) => Direction::Out,
        "incoming" => Direction::In,
        "outgoing" => Direction::Out,
        other => return Err(bad_direction("whenhangup", other)),
    };
    let ending = ending(
        form.get("state").unwrap_or_default(),
        &json_list(form, "legs")?,
        &json_list(form, "actions")?,
        seconds(form.get("duration")),
    );
    let mut event = TelephonyEvent::new(EventType::NotifyEnd, direction, from, to)
        .with_call_id(call_id)
        .with_disposition(ending.disposition);
    if direction == Direction::In
        && let Some(operator) = ending.answered_by.filter(|ext| is_extension(ext))
    {
        event = event.with_src_phone_ext(operator);
    }
    let answered = ending.disposition == Disposition::Answered;
    if answered && record_calls()? {
        log::info("the record comes with the recording (`record_calls` is on)");
        return Ok(ParseResult::with_event(event));
    }
    let record = CallRecord::of_event(&event, ending.duration, call_id);
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// How a call ended, read from `whenhangup`.
#[derive(Debug, PartialEq, Eq)]
struct Ending {
    disposition: Disposition,
    /// The conversation: the answered leg's duration (the call's own also counts the time
    /// before the answer), 0 when not answered.
    duration: u32,
    /// The number that answered a connect (the leg's `to`), the operator of an incoming call.
    answered_by: Option<String>,
}

/// The disposition from the call's `state` (`success`, `busy`, `failed`), its connect legs
/// (`[{"duration", "to", "state", "from"}]`) and its actions (`[{"connect", "result"}]`, where
/// `result` is "success", "failed" or "busy"):
///
/// | evidence | disposition | duration |
/// |---|---|---|
/// | a leg with `state=success` | answered | that leg's |
/// | the last connect's `result=success` | answered | the call's |
/// | the last connect `busy`, a leg `busy`, or the call `busy` | busy | 0 |
/// | a connect or legs, none answered | no-answer (a caller who hung up while it rang is not told apart: no cancel) | 0 |
/// | no connect: the call `success` (picked up: an IVR, or an API call's callee) | answered | the call's |
/// | no connect: `failed` or anything else | no-answer | 0 |
fn ending(state: &str, legs: &[Value], actions: &[Value], call_duration: u32) -> Ending {
    let not_answered = |disposition| Ending {
        disposition,
        duration: 0,
        answered_by: None,
    };
    let answered = |duration, answered_by| Ending {
        disposition: Disposition::Answered,
        duration,
        answered_by,
    };
    let leg_state = |leg: &Value| leg.get("state").and_then(Value::as_str).map(str::to_owned);
    if let Some(leg) = legs
        .iter()
        .find(|leg| leg_state(leg).as_deref() == Some("success"))
    {
        let duration = leg.get("duration").map_or(call_duration, value_seconds);
        let operator = leg.get("to").and_then(Value::as_str).map(phone::number);
        return answered(duration, operator);
    }
    let connect = actions
        .iter()
        .filter(|action| action.get("connect").is_some())
        .filter_map(|action| action.get("result").and_then(Value::as_str))
        .next_back();
    let busy_leg = legs
        .iter()
        .any(|leg| leg_state(leg).as_deref() == Some("busy"));
    match (connect, state) {
        (Some("success"), _) => answered(call_duration, None),
        (Some("busy"), _) | (_, "busy") => not_answered(Disposition::Busy),
        _ if busy_leg => not_answered(Disposition::Busy),
        (Some(_), _) => not_answered(Disposition::NoAnswer),
        _ if !legs.is_empty() => not_answered(Disposition::NoAnswer),
        (None, "success") => answered(call_duration, None),
        (None, "failed") => not_answered(Disposition::NoAnswer),
        (None, other) => {
            log::warn(&format!(
                "whenhangup with state {other:?} and no connect: taken as not answered"
            ));
            not_answered(Disposition::NoAnswer)
        }
    }
}

/// `recordcall`: the recording of the whole call, which 46elks keeps for 72 hours.
fn recorded(form: &Form) -> Result<ParseResult, ParseError> {
    let call_id = call_id(form, "recordcall")?;
    let wav = form
        .get("wav")
        .filter(|url| !url.is_empty())
        .ok_or_else(|| ParseError::new("the recordcall callback has no `wav` URL"))?;
    let record = CallRecord::of_call(
        call_id,
        Disposition::Answered,
        seconds(form.get("duration")),
        wav,
    );
    Ok(ParseResult::with_call_record(record))
}

/// `next`: the parser's own actions never ask for it, so this ends an admin's chain that
/// points here; "reject" is the one hangup value allowed after a first action.
fn next(form: &Form) -> ParseResult {
    log::info(&format!(
        "`next` of call {:?} (result {:?}): nothing follows, the call ends",
        form.get("callid").unwrap_or_default(),
        form.get("result").unwrap_or_default()
    ));
    ParseResult::with_response(Response::json(200, &json!({ "hangup": "reject" })))
}

/// `callid`, or `id` as `whenhangup` and the client-call example name it.
fn call_id<'a>(form: &'a Form, callback: &str) -> Result<&'a str, ParseError> {
    ["callid", "id"]
        .into_iter()
        .find_map(|name| form.get(name).filter(|id| !id.is_empty()))
        .ok_or_else(|| ParseError::new(format!("the {callback} callback has no `callid` or `id`")))
}

/// A `from`/`to` field as the platform's phone.
fn party(form: &Form, field: &str) -> Result<String, ParseError> {
    let raw = form.require(field)?;
    let number = phone::number(raw);
    phone::check(&number)
        .map_err(|err| ParseError::new(format!("`{field}` {raw:?} is not a phone: {err}")))?;
    Ok(number)
}

fn bad_direction(callback: &str, direction: &str) -> ParseError {
    ParseError::new(format!(
        "the {callback} callback has direction {direction:?}, not `incoming` or `outgoing`"
    ))
}

/// Whether `number` is one of the `client_numbers`.
fn is_client_number(number: &str) -> bool {
    settings::get(CLIENT_NUMBERS).is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|client| !client.is_empty() && phone::number(client) == number)
    })
}

/// Whether a number fits the platform's extension field, where an incoming call's answering
/// operator goes.
fn is_extension(number: &str) -> bool {
    number.len() <= phone::MAX_EXTENSION_LEN && phone::check(number).is_ok()
}

fn connect_to() -> Result<String, ParseError> {
    Ok(settings::require(CONNECT_TO)?.trim().to_owned())
}

fn record_calls() -> Result<bool, ParseError> {
    match non_empty_setting(RECORD_CALLS).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ParseError::new(format!(
            "the integration setting `{RECORD_CALLS}` is {other:?}; it must be `true` or `false`"
        ))),
    }
}

fn non_empty_setting(key: &str) -> Option<String> {
    settings::get(key)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A form field holding a JSON list (`legs`, `actions`); empty when absent.
fn json_list(form: &Form, name: &str) -> Result<Vec<Value>, ParseError> {
    if form.get(name).is_none_or(str::is_empty) {
        return Ok(Vec::new());
    }
    form.json(name)
}

/// Whole seconds from a form field; 0 when absent or not a number.
fn seconds(text: Option<&str>) -> u32 {
    text.and_then(|text| text.trim().parse::<f64>().ok())
        .map_or(0, clamp_seconds)
}

/// Whole seconds from a JSON number or numeric string.
fn value_seconds(value: &Value) -> u32 {
    match value {
        Value::Number(number) => number.as_f64().map_or(0, clamp_seconds),
        Value::String(text) => seconds(Some(text)),
        _ => 0,
    }
}

fn clamp_seconds(secs: f64) -> u32 {
    if secs.is_finite() && secs > 0.0 {
        // Rounded and capped, so the cast cannot wrap.
        secs.round().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

telehook_guest::export_parser!(Elks46);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const BASE: &str = "https://hooks.example.com/hooks/acme/elks46/t0k3n";

    fn harness() -> Harness {
        Harness::new().setting(CONNECT_TO, "+46700000000,+46711234567")
    }

    fn incoming() -> Vec<(&'static str, &'static str)> {
        vec![
            ("direction", "incoming"),
            ("callid", "sf8425555e5d8db61dda7a7b3f1b91bdb"),
            ("from", "+46706861004"),
            ("to", "+46706861020"),
        ]
    }

    fn reply(outcome: &ParseResult) -> Value {
        let body = &outcome.response.as_ref().expect("a reply").body;
        serde_json::from_slice(body).expect("JSON")
    }

    #[test]
    fn voice_start_connects_and_registers_the_callbacks_with_the_token() {
        let request = TestRequest::post(&format!("{BASE}/s3cr3t"))
            .route_suffix("s3cr3t")
            .form(&incoming());
        let outcome = harness()
            .setting(URL_TOKEN, "s3cr3t")
            .setting(RECORD_CALLS, "true")
            .parse::<Elks46>(request)
            .outcome();
        assert_eq!(
            reply(&outcome),
            json!({
                "connect": "+46700000000,+46711234567",
                "whenhangup": format!("{BASE}/s3cr3t/hangup"),
                "recordcall": format!("{BASE}/s3cr3t/recording"),
            })
        );
        let event = outcome.event.expect("a start");
        assert_eq!(
            (event.event, event.direction),
            (EventType::NotifyStart, Some(Direction::In))
        );
    }

    #[test]
    fn the_token_is_required_once_set() {
        let harness = harness().setting(URL_TOKEN, "s3cr3t");
        let missing = harness.parse::<Elks46>(
            TestRequest::post(&format!("{BASE}/hangup"))
                .route_suffix("hangup")
                .form(&incoming()),
        );
        assert_eq!(missing.refusal().status, Some(401));
        let wrong = harness
            .parse::<Elks46>(TestRequest::post(&format!("{BASE}?token=guess")).form(&incoming()));
        assert_eq!(wrong.refusal().status, Some(401));
        let unset = Harness::new().parse::<Elks46>(
            TestRequest::post(&format!("{BASE}/s3cr3t/hangup"))
                .route_suffix("s3cr3t/hangup")
                .form(&incoming()),
        );
        assert!(unset.refusal().message.starts_with("unknown route suffix"));
    }

    #[test]
    fn a_fallback_answers_busy_and_failed_connects() {
        let outcome = harness()
            .setting(FALLBACK_CONNECT, "+46709999999")
            .parse::<Elks46>(TestRequest::post(BASE).form(&incoming()))
            .outcome();
        let action = reply(&outcome);
        assert_eq!(action["busy"], json!({"connect": "+46709999999"}));
        assert_eq!(action["failed"], json!({"connect": "+46709999999"}));
        let client_call = harness()
            .setting(FALLBACK_CONNECT, "+46709999999")
            .setting(CLIENT_NUMBERS, "+4600100100, +4600100101")
            .parse::<Elks46>(TestRequest::post(BASE).form(&[
                ("direction", "incoming"),
                ("id", "sf8425555e5d8db61dda7a7b3f1b91bdb"),
                ("from", "+4600100101"),
                ("to", "+46766861004"),
            ]))
            .outcome();
        let action = reply(&client_call);
        assert_eq!(action["connect"], "+46766861004");
        assert_eq!(action.get("busy"), None);
        assert_eq!(
            client_call.event.expect("a start").direction,
            Some(Direction::Out)
        );
    }

    #[test]
    fn endings_read_legs_actions_and_state() {
        use Disposition::*;
        let leg = |state: &str| json!({"duration": 14, "to": "+4634090510", "state": state});
        let connect = |result: &str| json!({"connect": "+4634090510", "result": result});
        let case = |state, legs: &[Value], actions: &[Value]| ending(state, legs, actions, 15);
        assert_eq!(
            case("success", &[leg("failed"), leg("success")], &[]),
            Ending {
                disposition: Answered,
                duration: 14,
                answered_by: Some("+4634090510".into())
            }
        );
        assert_eq!(case("success", &[], &[connect("success")]).duration, 15);
        assert_eq!(case("success", &[], &[connect("busy")]).disposition, Busy);
        assert_eq!(case("success", &[leg("busy")], &[]).disposition, Busy);
        assert_eq!(case("busy", &[], &[]).disposition, Busy);
        let failed = case("success", &[], &[connect("failed")]);
        assert_eq!((failed.disposition, failed.duration), (NoAnswer, 0));
        assert_eq!(case("success", &[], &[]).disposition, Answered);
        assert_eq!(case("failed", &[], &[]).disposition, NoAnswer);
    }

    #[test]
    fn with_recordings_on_an_answered_call_waits_for_its_recording() {
        let form = [
            ("direction", "outgoing"),
            ("id", "c70b23624c022a93a87907712cf804aca"),
            ("from", "+46700000000"),
            ("to", "+46700371815"),
            ("state", "success"),
            ("duration", "42"),
        ];
        let request = TestRequest::post(&format!("{BASE}/hangup"))
            .route_suffix("hangup")
            .form(&form);
        let recorded = Harness::new()
            .setting(RECORD_CALLS, "true")
            .parse::<Elks46>(request.clone())
            .outcome();
        assert_eq!(recorded.call_record, None);
        let plain = Harness::new().parse::<Elks46>(request).outcome();
        let record = plain.call_record.expect("a record");
        assert_eq!(
            (record.duration, record.call.as_str()),
            (42, "c70b23624c022a93a87907712cf804aca")
        );
    }
}
