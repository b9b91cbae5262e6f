//! A parser for Mango Office's virtual PBX, "API Realtime" (MANGO OFFICE API v1.10): the PBX
//! posts each notification to the external system's base URL plus a service path, which the
//! host hands over as the route suffix (`events/call`, `events/summary`, `events/recording`,
//! `events/dtmf`, `events/sms`, `result/<command>`, `ping`).
//!
//! Every notification is a form with three fields: `vpbx_api_key` (the PBX's code), `json`
//! (the notification, a JSON document as text) and `sign`, the lower-case hex
//! `sha256(vpbx_api_key + json + vpbx_api_salt)` (see [`sign_of`]). A missing or wrong
//! signature or key is refused with `401`; a notification whose `timestamp` is more than
//! [`FRESHNESS_SECS`] from its receipt with `403`.
//!
//! `entry_id`, the id of the "группа вызовов" that every leg, transfer and forward of a call
//! shares, is the call id; `call_id` is one leg's and is never used as one.
//!
//! | notification | event | record |
//! |---|---|---|
//! | `events/call`, `Appeared` | start | – |
//! | `events/call`, `Connected` at a phone (`location=abonent`) | answer | – |
//! | `events/call`, `OnHold`, `Disconnected`, `Connected` in the IVR or queue | – (a leg, not the call) | – |
//! | `events/summary` | end, with the disposition of [`summary_disposition`] | the same call, talk seconds, `call` = `entry_id` |
//! | everything else | – | – |
//!
//! A leg has no direction field: it is read from which side is an employee (see
//! [`Parties::of_leg`]). The summary's `call_direction` says it outright.

use serde_json::Value;
use telehook_guest::prelude::*;

/// The setting holding «Уникальный код вашей АТС», sent as `vpbx_api_key`.
const API_KEY: &str = "vpbx_api_key";
/// The setting holding «Ключ для создания подписи», the salt of every `sign`.
const API_SALT: &str = "vpbx_api_salt";
/// How far a notification's `timestamp` may be from its receipt. Mango documents no window;
/// notifications are real-time, so the platform's default applies.
const FRESHNESS_SECS: i64 = 300;

struct Mango;

impl Parser for Mango {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let route = request.route_suffix.trim_matches('/');
        let form = request.form();
        if route == "ping" && form.get("sign").is_none() {
            log::info("`ping` (the cabinet's «Проверить подключение») answered 200");
            return Ok(ParseResult::empty());
        }
        verify(&form)?;
        let notification: Value = form.json("json")?;
        if let Some(timestamp) = integer(&notification, "timestamp") {
            request.require_fresh(timestamp, FRESHNESS_SECS)?;
        }
        match route {
            "events/call" => call(&notification),
            "events/summary" => summary(&notification),
            "events/recording" => Ok(recording(&notification)),
            other => Ok(acknowledge(other, &notification)),
        }
    }
}

/// `sign = sha256(vpbx_api_key + json + vpbx_api_salt)` in lower-case hex (API p.5; PHP
/// `hash('sha256', ...)`), over the `json` field exactly as it was sent, never re-serialised.
pub fn sign_of(api_key: &str, json: &str, api_salt: &str) -> String {
    let signed = [api_key, json, api_salt].concat();
    crypto::hex_encode(&crypto::sha256(signed.as_bytes()))
}

/// Refuses a notification without `sign`, from another PBX (`vpbx_api_key`), or whose `sign`
/// is not that of its `json` under the salt; both compared in constant time.
fn verify(form: &Form) -> Result<(), ParseError> {
    let api_key = settings::require(API_KEY)?;
    let api_salt = settings::require(API_SALT)?;
    let Some(sign) = form.get("sign") else {
        return Err(ParseError::unauthorized(
            "the notification has no `sign` field: Mango signs every request with \
             sha256(vpbx_api_key + json + vpbx_api_salt)",
        ));
    };
    let json = form.require("json")?;
    let sent_key = form.get("vpbx_api_key").unwrap_or_default();
    if !crypto::constant_time_eq(sent_key.as_bytes(), api_key.as_bytes()) {
        return Err(ParseError::unauthorized(format!(
            "the notification's `vpbx_api_key` is not the `{API_KEY}` setting: it comes from \
             another PBX, or is forged"
        )));
    }
    let expected = sign_of(&api_key, json, &api_salt);
    if !crypto::constant_time_eq(expected.as_bytes(), sign.to_ascii_lowercase().as_bytes()) {
        return Err(ParseError::unauthorized(format!(
            "the `sign` field is not sha256(vpbx_api_key + json + vpbx_api_salt) of the `json` \
             field under `{API_SALT}`: forged, altered, or signed with another salt"
        )));
    }
    Ok(())
}

/// `events/call`: one leg of the call changed state. Only a leg appearing starts the call and
/// only a phone's leg connecting answers it; the end is the summary's, since a leg's
/// `Disconnected` ends an IVR stage or a group member's ringing as well as the call.
fn call(notification: &Value) -> Result<ParseResult, ParseError> {
    let entry_id = require_text(notification, "entry_id")?;
    let delivery = format!(
        "call:{}:{}",
        text(notification, "call_id").unwrap_or_default(),
        text(notification, "seq").unwrap_or_default()
    );
    let state = text(notification, "call_state").unwrap_or_default();
    let location = text(notification, "location");
    let at_a_phone = location
        .as_deref()
        .is_none_or(|location| location == "abonent");
    let kind = match state.as_str() {
        "Appeared" => EventType::NotifyStart,
        "Connected" if at_a_phone => EventType::NotifyAnswer,
        _ => {
            log::info(&format!(
                "`{state}` of a leg of {entry_id} (location {}, disconnect_reason {}): the call \
                 goes on; it ends with its events/summary",
                location.as_deref().unwrap_or("-"),
                text(notification, "disconnect_reason")
                    .as_deref()
                    .unwrap_or("-"),
            ));
            return Ok(ParseResult::empty().with_delivery_id(delivery));
        }
    };
    let event = match Parties::of_leg(notification) {
        Some(parties) => parties.event(kind).with_call_id(&entry_id),
        None => TelephonyEvent::of_call(kind, &entry_id),
    };
    Ok(ParseResult::with_event(event).with_delivery_id(delivery))
}

/// `events/summary`, "финализирующее событие по звонку": the end of the whole call and its
/// record. The conversation is `end_time − talk_time` (`talk_time` is the answer's time, 0 when
/// nobody talked). The record's `call` is `entry_id`, the id Mango's statistics and recordings
/// are found by; the summary names no recording.
fn summary(notification: &Value) -> Result<ParseResult, ParseError> {
    let entry_id = require_text(notification, "entry_id")?;
    let talk_time = integer(notification, "talk_time");
    let answered = integer(notification, "entry_result") == Some(1)
        && talk_time.is_none_or(|talk_time| talk_time > 0);
    let (disposition, duration) = if answered {
        let talked = integer(notification, "end_time")
            .zip(talk_time)
            .map_or(0, |(end, talk)| end.saturating_sub(talk));
        (Disposition::Answered, u32::try_from(talked).unwrap_or(0))
    } else {
        let reason = integer(notification, "disconnect_reason").unwrap_or(0);
        (summary_disposition(reason), 0)
    };
    let (event, record) = match Parties::of_summary(notification) {
        Some(parties) => (
            parties.clone().event(EventType::NotifyEnd),
            parties.record(disposition, duration, &entry_id),
        ),
        None => (
            TelephonyEvent::of_call(EventType::NotifyEnd, &entry_id),
            CallRecord::of_call(&entry_id, disposition, duration, &entry_id),
        ),
    };
    let event = event.with_call_id(&entry_id).with_disposition(disposition);
    Ok(ParseResult::with_event(event)
        .and_call_record(record.with_call_id(&entry_id))
        .with_delivery_id(format!("summary:{entry_id}")))
}

/// How an unanswered call ended, by its `disconnect_reason` (API p.43-45). Codes the list does
/// not name are read as the head of their subclass, as Mango asks ("интерпретировать его как
/// код известного класса/подкласса"):
///
/// | code | Mango's wording | disposition |
/// |---|---|---|
/// | 1110, other 111x | "Вызов завершен вызывающим абонентом" | cancel |
/// | 1111 | "Вызов не получил ответа в течение времени ожидания" | no-answer |
/// | 1121 | "Получен ответ "занято" от удаленной стороны" | busy |
/// | 1122 | "Вызов отклонен вызываемым абонентом" | busy |
/// | 1123 | "Получен сигнал "не беспокоить"" | busy |
/// | 1120, other 112x | "Вызов завершен вызываемым абонентом" | no-answer |
/// | 118x | "Вызов завершен командой пользователя", "…по команде из внешней системы", "…перехватом на другого оператора", "Назначен новый оператор" | cancel |
/// | 1000, 1100, 113x-117x, 119x | "Действие успешно выполнено", "…в нормальном режиме", number restrictions, unavailable or missing numbers, lists, groups and queues ("Все операторы в данный момент недоступны"), the forwarding scheme, inactive numbers | no-answer |
/// | 2xxx, 3xxx, 4xxx, 5xxx | billing limits, a wrong number, "Связаться с абонентом в данный момент невозможно", server errors | no-answer |
pub fn summary_disposition(reason: i64) -> Disposition {
    match (reason / 10, reason) {
        (111, 1111) => Disposition::NoAnswer,
        (111, _) | (118, _) => Disposition::Cancel,
        (112, 1121..=1123) => Disposition::Busy,
        _ => Disposition::NoAnswer,
    }
}

/// `events/recording`: the recording's progress. The call's record has come with its summary
/// already (and the host keeps a call's first record), so this is only logged: the recording
/// is found by the record's `entry_id`.
fn recording(notification: &Value) -> ParseResult {
    let recording_id = text(notification, "recording_id").unwrap_or_default();
    log::info(&format!(
        "recording {recording_id} of {} {} (completion_code {}, recipient {}): found by the \
         call's entry_id",
        text(notification, "entry_id").as_deref().unwrap_or("-"),
        text(notification, "recording_state")
            .as_deref()
            .unwrap_or("-"),
        text(notification, "completion_code")
            .as_deref()
            .unwrap_or("-"),
        text(notification, "recipient").as_deref().unwrap_or("-"),
    ));
    ParseResult::empty().with_delivery_id(format!(
        "recording:{recording_id}:{}",
        text(notification, "seq").unwrap_or_default()
    ))
}

/// DTMF, SMS, command results, a signed `ping` and any other path: verified, and nothing the
/// platform shows.
fn acknowledge(route: &str, notification: &Value) -> ParseResult {
    if route.is_empty() {
        log::warn(
            "a notification without a service path: the webhook URL in Mango's «API Коннектор» \
             must end with `/`, so that Mango appends events/call etc.",
        );
    } else {
        log::info(&format!(
            "`{route}` verified: the platform has no event for it"
        ));
    }
    match route {
        "events/dtmf" => ParseResult::empty().with_delivery_id(format!(
            "dtmf:{}:{}",
            text(notification, "call_id").unwrap_or_default(),
            text(notification, "seq").unwrap_or_default()
        )),
        _ => ParseResult::empty(),
    }
}

/// Who called whom, in the contract's terms.
#[derive(Clone)]
struct Parties {
    direction: Direction,
    src: String,
    dst: String,
    /// The operator's extension: the receiving one on `in`, the calling one on `out`.
    ext: Option<String>,
}

impl Parties {
    /// A leg's parties. Mango names an employee by `extension`, so:
    /// - both sides employees: `internal`, `from.extension` → `to.extension`;
    /// - only `from`: `out`, `from.extension` → `to.number`;
    /// - only `to`: `in`, `from.number` → `to.extension`;
    /// - neither (the IVR, a queue): `in`, `from.number` → the line called (`to.line_number`,
    ///   else `to.number`).
    ///
    /// The first leg of a callback (`callback_initiator` or `command_id`, and no caller
    /// `taken_from_call_id` from an earlier leg) rings the initiating employee, `to`, "from"
    /// the number to be called (API p.47): it is the initiator's outgoing call.
    fn of_leg(notification: &Value) -> Option<Self> {
        let from_ext = side(notification, "from", "extension");
        let to_ext = side(notification, "to", "extension");
        let from_number = side(notification, "from", "number");
        let to_number = side(notification, "to", "number");
        let callback = (text(notification, "callback_initiator").is_some()
            || text(notification, "command_id").is_some())
            && side(notification, "from", "taken_from_call_id").is_none();
        match (from_ext, to_ext) {
            (from_ext, Some(initiator)) if callback => match from_ext {
                Some(callee) => Some(Self::internal(initiator, callee)),
                None => Self::outgoing(initiator, from_number),
            },
            (Some(from_ext), Some(to_ext)) => Some(Self::internal(from_ext, to_ext)),
            (Some(from_ext), None) => Self::outgoing(from_ext, to_number),
            (None, Some(to_ext)) => Some(Self::incoming(from_number, to_ext.clone(), Some(to_ext))),
            (None, None) => {
                let line = side(notification, "to", "line_number").or(to_number)?;
                Some(Self::incoming(from_number, phone::number(&line), None))
            }
        }
    }

    /// A summary's parties by its `call_direction` (0 internal, 1 incoming, 2 outgoing). `to` is
    /// the employee who answered, or the first who missed the call; an employee is named by
    /// `extension`, else by the device's `number`.
    fn of_summary(notification: &Value) -> Option<Self> {
        let from_ext = side(notification, "from", "extension");
        let from_number = side(notification, "from", "number");
        let to_ext = side(notification, "to", "extension");
        let to_number = side(notification, "to", "number");
        match integer(notification, "call_direction") {
            Some(0) => Some(Self::internal(
                from_ext.or_else(|| from_number.map(|number| phone::number(&number)))?,
                to_ext.or_else(|| to_number.map(|number| phone::number(&number)))?,
            )),
            Some(1) => {
                let called = to_ext
                    .clone()
                    .or(to_number)
                    .or_else(|| text(notification, "line_number"))?;
                Some(Self::incoming(from_number, phone::number(&called), to_ext))
            }
            Some(2) => {
                let employee =
                    from_ext.or_else(|| from_number.map(|number| phone::number(&number)))?;
                Self::outgoing(employee, to_number)
            }
            other => {
                log::warn(&format!(
                    "unknown `call_direction` {other:?} (expected 0, 1 or 2): the end names only \
                     its call"
                ));
                None
            }
        }
    }

    /// A client (`from.number`, absent when the caller withheld it: `anonymous`) calls `called`.
    fn incoming(client: Option<String>, called: String, ext: Option<String>) -> Self {
        Self {
            direction: Direction::In,
            src: phone::number(client.as_deref().unwrap_or_default()),
            dst: called,
            ext,
        }
    }

    /// Employee `ext` calls a client; unknown without the client's number.
    fn outgoing(ext: String, client: Option<String>) -> Option<Self> {
        Some(Self {
            direction: Direction::Out,
            src: ext.clone(),
            dst: phone::number(&client?),
            ext: Some(ext),
        })
    }

    fn internal(caller: String, callee: String) -> Self {
        Self {
            direction: Direction::Internal,
            src: caller,
            dst: callee,
            ext: None,
        }
    }

    fn event(self, kind: EventType) -> TelephonyEvent {
        let event = TelephonyEvent::new(kind, self.direction, self.src, self.dst);
        match (self.direction, self.ext) {
            (Direction::In, Some(ext)) => event.with_src_phone_ext(ext),
            (Direction::Out, Some(ext)) => event.with_dst_phone_ext(ext),
            _ => event,
        }
    }

    fn record(self, disposition: Disposition, duration: u32, call: &str) -> CallRecord {
        let record = CallRecord::new(
            self.direction,
            disposition,
            self.src,
            self.dst,
            duration,
            call,
        );
        match (self.direction, self.ext) {
            (Direction::In, Some(ext)) => record.with_src_phone_ext(ext),
            (Direction::Out, Some(ext)) => record.with_dst_phone_ext(ext),
            _ => record,
        }
    }
}

/// A field as text: Mango sends ids and counters as strings in some examples and numbers in
/// others. Empty counts as absent ("Если группе не присвоен короткий номер, передается пустое
/// значение").
fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A field that must be there, else the notification is unreadable.
fn require_text(value: &Value, key: &str) -> Result<String, ParseError> {
    text(value, key)
        .ok_or_else(|| ParseError::new(format!("the notification's `json` has no `{key}`")))
}

/// A whole number, sent as a number or as its text.
fn integer(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A field of `from` or `to`.
fn side(value: &Value, side: &str, key: &str) -> Option<String> {
    text(value.get(side)?, key)
}

telehook_guest::export_parser!(Mango);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    /// The official vectors: MANGO OFFICE, "Примеры кода для API v 1.8 (27.02.2017)", pages 2,
    /// 4, 5 and 7, with the documents' literal placeholder key and salt.
    const PDF_KEY: &str = "<YOUR_API_KEY>";
    const PDF_SALT: &str = "<YOUR_API_SALT>";
    const PDF_POSTS: [&str; 4] = [
        "vpbx_api_key=%3CYOUR_API_KEY%3E&sign=afdeb462cd5e0e422a9c9220390124608df06a4472cb1add6ebd6e24184bd15a&json=%7B%22command_id%22%3A%22your-command-id%22%2C%22from%22%3A%7B%22extension%22%3A%22%3Cextension%3E%22%2C%22number%22%3A%22%22%7D%2C%22to_number%22%3A%22%3Cto_number%3E%22%7D",
        "vpbx_api_key=%3CYOUR_API_KEY%3E&sign=2d1d01246f52cec1fdb44f2a4d7091dc54f67e318369c0628201d66b5d336ef0&json=%7B%22command_id%22%3A%22your-command-id%22%2C%22call_id%22%3A%22%3CCALL_ID%3E%22%7D",
        "vpbx_api_key=%3CYOUR_API_KEY%3E&sign=94e263aa0aa65d77481b86e9224fa2230265faa387322e40716389406982c0fb&json=%7B%22date_from%22%3A%221445288400%22%2C%22date_to%22%3A%221445374859%22%2C%22from%22%3A%7B%22extension%22%3A%22%22%2C%22number%22%3A%22%22%7D%2C%22to%22%3A%7B%22extension%22%3A%22%22%2C%22number%22%3A%22%22%7D%7D",
        "vpbx_api_key=%3CYOUR_API_KEY%3E&sign=515069b8c079df62f408e36dd7933912b8e86d833c5927ee77eb4b68d766c4f5&json=%7B%22key%22%3A%22%3CREQUEST_KEY%3E%22%7D",
    ];

    fn pdf_harness() -> Harness {
        Harness::new()
            .setting(API_KEY, PDF_KEY)
            .setting(API_SALT, PDF_SALT)
    }

    fn post(route: &str, body: impl Into<Vec<u8>>) -> TestRequest {
        TestRequest::post("https://hooks.example.com/hooks/t0k3n/")
            .route_suffix(route)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    #[test]
    fn sign_reproduces_the_official_vectors() {
        for body in PDF_POSTS {
            let form = Form::parse(body.as_bytes());
            let json = form.require("json").expect("json");
            assert_eq!(
                form.get("sign"),
                Some(sign_of(PDF_KEY, json, PDF_SALT).as_str()),
                "{json}"
            );
        }
    }

    #[test]
    fn the_official_posts_verify_and_altered_ones_do_not() {
        for body in PDF_POSTS {
            let parsed = pdf_harness().parse::<Mango>(post("result/callback", body));
            assert_eq!(parsed.outcome(), ParseResult::empty());
            let sign = Form::parse(body.as_bytes())
                .get("sign")
                .expect("sign")
                .to_owned();
            let upper_sign = body.replace(&sign, &sign.to_ascii_uppercase());
            let parsed = pdf_harness().parse::<Mango>(post("result/callback", upper_sign));
            assert!(parsed.result.is_ok(), "hex of either case");
            let tampered = body.replace("%22%7D", "%22%20%7D");
            let refusal = pdf_harness()
                .parse::<Mango>(post("result/callback", tampered))
                .refusal();
            assert_eq!(refusal.status, Some(401), "{}", refusal.message);
        }
        let other_salt = Harness::new()
            .setting(API_KEY, PDF_KEY)
            .setting(API_SALT, "<ANOTHER_SALT>");
        let refusal = other_salt
            .parse::<Mango>(post("result/callback", PDF_POSTS[3]))
            .refusal();
        assert_eq!(refusal.status, Some(401));
        let other_key = Harness::new()
            .setting(API_KEY, "<ANOTHER_KEY>")
            .setting(API_SALT, PDF_SALT);
        let refusal = other_key
            .parse::<Mango>(post("result/callback", PDF_POSTS[3]))
            .refusal();
        assert!(
            refusal.message.contains("vpbx_api_key"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn unanswered_calls_end_as_their_reason_says() {
        for (reason, expected) in [
            (1110, Disposition::Cancel),
            (1119, Disposition::Cancel),
            (1111, Disposition::NoAnswer),
            (1120, Disposition::NoAnswer),
            (1121, Disposition::Busy),
            (1122, Disposition::Busy),
            (1123, Disposition::Busy),
            (1124, Disposition::NoAnswer),
            (1164, Disposition::NoAnswer),
            (1182, Disposition::Cancel),
            (1100, Disposition::NoAnswer),
            (2240, Disposition::NoAnswer),
            (4200, Disposition::NoAnswer),
            (0, Disposition::NoAnswer),
        ] {
            assert_eq!(summary_disposition(reason), expected, "{reason}");
        }
    }

    #[test]
    fn a_callbacks_first_leg_is_the_initiators_call() {
        // API p.47: the PBX rings the initiator 1234 "from" the number to call.
        let leg = serde_json::json!({
            "call_id": "100:500:251", "entry_id": "232wc3e3w3s222", "call_state": "Appeared",
            "location": "abonent", "from": {"number": "74955404444"},
            "to": {"extension": "1234", "number": "12345678"},
            "command_id": "cmd.2.vpbx.12345.external.system.com.net",
        });
        let parties = Parties::of_leg(&leg).expect("parties");
        assert_eq!(parties.direction, Direction::Out);
        assert_eq!(
            (parties.src.as_str(), parties.dst.as_str()),
            ("1234", "74955404444")
        );
        // A leg a routing command made for a caller taken from the IVR stays incoming.
        let routed = serde_json::json!({
            "command_id": "c111", "from": {"number": "79000000000", "taken_from_call_id": "1"},
            "to": {"extension": "123", "number": "sip:aaa@mangosip.ru"},
        });
        let parties = Parties::of_leg(&routed).expect("parties");
        assert_eq!(parties.direction, Direction::In);
        assert_eq!(parties.ext.as_deref(), Some("123"));
    }

    #[test]
    fn loose_types_are_read_either_way() {
        let value = serde_json::json!({"a": "1399906976", "b": 1399906976, "c": "", "d": null});
        assert_eq!(integer(&value, "a"), Some(1_399_906_976));
        assert_eq!(integer(&value, "b"), Some(1_399_906_976));
        assert_eq!(text(&value, "b").as_deref(), Some("1399906976"));
        assert_eq!((text(&value, "c"), text(&value, "d")), (None, None));
    }
}
