//! The cloud-PBX CRM protocol both Gravitel and MegaFon's Virtual PBX speak ("REST API ВАТС
//! (CRM)" of the ITooLabs platform they run on): the parts that are the same for both.
//!
//! This file is shared: `catalog/gravitel` has it as `src/crm.rs`, and `catalog/megafon`
//! includes the same file (`#[path]`), so that the two parsers, separate components, read the
//! protocol through one piece of code and differ only where their PBXs do. A change here
//! changes both parsers: run both crates' tests and samples.
//!
//! What is shared: the fields (`cmd`, `type`, `phone`, `ext`, `telnum`, `user`, `diversion`,
//! `callid`, `crm_token`, ...), the `crm_token` check, the meaning of the five event types,
//! who the parties of an event or a history are, and the call record of a history. What each
//! parser decides for itself: the content types it accepts, the commands and event types only
//! its PBX sends, and how a history's `status` and `duration` map.

use telehook_guest::prelude::*;

/// The setting holding the «Ключ для авторизации в вашей CRM» typed into the PBX, which it
/// sends back in every request as the field `crm_token`.
pub const CRM_TOKEN: &str = "crm_token";

/// The content type both PBXs post (and the only one the platform's own module accepts).
pub const FORM: &str = "application/x-www-form-urlencoded";

/// A request's fields by name, wherever the PBX put them.
pub struct Fields(Form);

impl Fields {
    /// The fields of a form, in the order they came; the first of a repeated name wins.
    pub fn new(form: Form) -> Self {
        Self(form)
    }

    /// The form body's fields, then the query's: `history` may come as a `GET` ("history
    /// (GET/POST)" in ITooLabs' table of contents), with its fields in the query.
    pub fn of_form(request: &Request) -> Self {
        Self::new(request.params())
    }

    /// A field's value; an empty one counts as absent (the platform's module reads
    /// `data.ext ?? ''`, so a PBX that sends `ext=` means "no extension"). Only an empty one:
    /// a blank value (` `) is kept, which [`Form::non_empty`] would drop (a blank `crm_token`
    /// would then be refused as missing rather than as wrong, a blank `ext` skipped).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).filter(|value| !value.is_empty())
    }

    /// `callid`, "уникальный id звонка, совпадает для всех связанных звонков": the whole call,
    /// across the members of a group and a transfer, so the contract's `call_id`.
    pub fn call_id(&self) -> Option<&str> {
        self.get("callid")
    }

    /// The operator of the call: the extension, else the user's direct number (`telnum`,
    /// "прямой телефонный номер пользователя"), else the user's login (`user`), for a user
    /// without an extension; admins bind whichever of these they use.
    fn operator(&self) -> Option<&str> {
        self.get("ext")
            .or_else(|| self.get("telnum"))
            .or_else(|| self.get("user"))
    }

    /// The client's number (`phone`, "номер телефона клиента"); a withheld one is
    /// `anonymous`.
    fn client(&self) -> String {
        phone::number(self.get("phone").unwrap_or_default())
    }
}

/// The request's media type, lower case, without parameters (`; charset=UTF-8`).
pub fn media_type(request: &Request) -> Option<String> {
    let value = request.header("content-type")?;
    let media = value.split(';').next().unwrap_or(value);
    Some(media.trim().to_ascii_lowercase())
}

/// The platform module's refusal of a body in another format, in its words; `accepted` is
/// the quoted list of what the parser reads.
pub fn wrong_content_type(request: &Request, accepted: &str) -> ParseError {
    let got = request.header("content-type").map_or_else(
        || "no Content-Type header".to_owned(),
        |got| format!("{got:?}"),
    );
    ParseError::new(format!(
        "Expected Content-Type to be {accepted} (got: {got})"
    ))
}

/// Refuses a request whose `crm_token` is missing or is not the integration's (compared
/// exactly and in constant time: a third-party MegaFon client ignores case, which a secret
/// must not). The token is a secret the request carries, so the host is told to hide it.
pub fn check_token(fields: &Fields) -> Result<(), ParseError> {
    let expected = settings::require(CRM_TOKEN)?;
    let Some(sent) = fields.get(CRM_TOKEN) else {
        return Err(ParseError::unauthorized(format!(
            "the request has no `{CRM_TOKEN}` field: the PBX sends the «Ключ для авторизации \
             в вашей CRM» of its CRM integration with every request"
        )));
    };
    log::redact(sent);
    if !crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return Err(ParseError::unauthorized(format!(
            "the request's `{CRM_TOKEN}` is not the integration's `{CRM_TOKEN}` setting: \
             forged, or the PBX has another key for its CRM"
        )));
    }
    Ok(())
}

/// A `cmd=event` of the five types both PBXs send, or the platform module's refusal of any
/// other `type` (`Unknown event type "X"`).
///
/// | `type` | wording (Gravitel's PDF, 2017) | event | disposition |
/// |---|---|---|---|
/// | `INCOMING` | "пришел входящий звонок" | start, `in` | unknown |
/// | `OUTGOING` | "менеджер совершает исходящий звонок" | start, `out` | unknown |
/// | `ACCEPTED` | "звонок успешно принят (менеджер снял трубку)" | answer | unknown |
/// | `COMPLETED` | "звонок успешно завершен … после разговора" | end | answered |
/// | `CANCELLED` | "звонок сброшен (клиент не дождался …, либо … на звонок мог ответить кто-то еще)" | end | cancel without `ext`; unknown with one |
///
/// A `CANCELLED` that names a member's `ext` may only mean that another member of the group
/// answered, and the host keeps the first end of a call: `unknown` lets the answer (or the
/// history's status) say how the call ended, while a `CANCELLED` of the call itself (no
/// `ext`: the caller gave up in the queue) is a `cancel`.
pub fn call_event(fields: &Fields) -> Result<TelephonyEvent, ParseError> {
    use EventType::{NotifyAnswer, NotifyEnd, NotifyStart};

    let Some(event_type) = fields.get("type") else {
        return Err(ParseError::new(
            "Unknown event type: the event has no `type` field",
        ));
    };
    let (kind, direction, disposition) = match event_type {
        "INCOMING" => (NotifyStart, Some(Direction::In), Disposition::Unknown),
        "OUTGOING" => (NotifyStart, Some(Direction::Out), Disposition::Unknown),
        "ACCEPTED" => (NotifyAnswer, direction_field(fields), Disposition::Unknown),
        "COMPLETED" => (NotifyEnd, direction_field(fields), Disposition::Answered),
        "CANCELLED" if fields.get("ext").is_some() => {
            (NotifyEnd, direction_field(fields), Disposition::Unknown)
        }
        "CANCELLED" => (NotifyEnd, direction_field(fields), Disposition::Cancel),
        other => return Err(ParseError::new(format!("Unknown event type {other:?}"))),
    };
    let direction = match (direction, fields.call_id()) {
        (Some(direction), _) => direction,
        // Gravitel's 2017 field list has no `direction`: the call's start said it.
        (None, Some(call_id)) => {
            return Ok(TelephonyEvent::of_call(kind, call_id).with_disposition(disposition));
        }
        (None, None) => {
            log::warn(&format!(
                "`{event_type}` has neither `direction` nor `callid`: taken as incoming, as the \
                 platform's module takes every event"
            ));
            Direction::In
        }
    };
    let Some(parties) = Parties::of(direction, fields) else {
        return of_call(fields, event_type)
            .map(|call_id| TelephonyEvent::of_call(kind, call_id).with_disposition(disposition));
    };
    let event = TelephonyEvent::new(kind, direction, parties.src, parties.dst)
        .with_disposition(disposition);
    let event = match (direction, parties.ext) {
        (Direction::In, Some(ext)) => event.with_src_phone_ext(ext),
        (Direction::Out, Some(ext)) => event.with_dst_phone_ext(ext),
        _ => event,
    };
    Ok(match fields.call_id() {
        Some(call_id) => event.with_call_id(call_id),
        None => event,
    })
}

/// The call record of a `cmd=history` ("после успешного звонка … с данными о звонке и ссылкой
/// на запись разговора"), with the parser's reading of `status` and `duration`: `out` for
/// `type=out`, `in` for anything else (as the platform's module reads it), and as `call` the
/// recording `link`, else the `callid`.
pub fn history_record(
    fields: &Fields,
    disposition: Disposition,
    duration: u32,
) -> Result<CallRecord, ParseError> {
    let direction = match fields.get("type") {
        Some("out") => Direction::Out,
        _ => Direction::In,
    };
    let Some(call) = fields.get("link").or_else(|| fields.call_id()) else {
        return Err(ParseError::new(
            "the history has neither a recording `link` nor a `callid`: nothing to keep as \
             the call's data",
        ));
    };
    let Some(parties) = Parties::of(direction, fields) else {
        return of_call(fields, "history")
            .map(|call_id| CallRecord::of_call(call_id, disposition, duration, call));
    };
    let record = CallRecord::new(
        direction,
        disposition,
        parties.src,
        parties.dst,
        duration,
        call,
    );
    let record = match (direction, parties.ext) {
        (Direction::In, Some(ext)) => record.with_src_phone_ext(ext),
        (Direction::Out, Some(ext)) => record.with_dst_phone_ext(ext),
        _ => record,
    };
    Ok(match fields.call_id() {
        Some(call_id) => record.with_call_id(call_id),
        None => record,
    })
}

/// A whole number of seconds the way the platform's module reads one (`parseInt`: the leading
/// digits); 0, with a warning, when there are none.
pub fn seconds(fields: &Fields, name: &str) -> u32 {
    let Some(value) = fields.get(name) else {
        return 0;
    };
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or_else(|_| {
        log::warn(&format!(
            "`{name}` is not a number of seconds: {value:?}; taken as 0"
        ));
        0
    })
}

/// The `direction` of an answer or an end (`in`/`out`); none when it is absent (Gravitel
/// 2017) or another value, so that the event names only its call.
fn direction_field(fields: &Fields) -> Option<Direction> {
    match fields.get("direction")? {
        "in" => Some(Direction::In),
        "out" => Some(Direction::Out),
        other => {
            log::warn(&format!(
                "unknown `direction` {other:?} (expected in or out): the event names only its call"
            ));
            None
        }
    }
}

/// The call id of a notification whose parties cannot be told, or why it is refused.
fn of_call<'a>(fields: &'a Fields, what: &str) -> Result<&'a str, ParseError> {
    fields.call_id().ok_or_else(|| {
        ParseError::new(format!(
            "`{what}` names no operator (`ext`, `telnum`, `user`), no called line \
             (`diversion`) and no `callid`: nothing to tie it to"
        ))
    })
}

/// Who called whom, in the contract's terms.
struct Parties {
    src: String,
    dst: String,
    /// The operator's extension, when the PBX named one.
    ext: Option<String>,
}

impl Parties {
    /// `in`: the client calls the operator ([`Fields::operator`]), or, when the call has none
    /// yet (a queue), the line called (`diversion`, "ваш номер телефона, через который пришел
    /// входящий вызов"; `telnum` is the operator's own number, not the company's). `out`: the
    /// operator calls the client. `None` when the operator's side is unknown.
    fn of(direction: Direction, fields: &Fields) -> Option<Self> {
        let ext = fields.get("ext").map(str::to_owned);
        let (src, dst) = match direction {
            Direction::Out => (fields.operator()?.to_owned(), fields.client()),
            _ => {
                let called = fields.operator().or_else(|| fields.get("diversion"))?;
                (fields.client(), called.to_owned())
            }
        };
        Some(Self { src, dst, ext })
    }
}
