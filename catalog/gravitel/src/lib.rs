//! A parser for the cloud-PBX CRM protocol of Gravitel and the other PBXs built on the same
//! platform (the "REST API ВАТС (CRM)": the PBX posts to one CRM URL).
//!
//! Every request is a form-urlencoded `POST` with a `cmd` and the `crm_token` the admin copied
//! from the PBX's integration settings:
//!
//! - `cmd=event`: a call changes state. `type` is `INCOMING` (an operator's phone rings),
//!   `OUTGOING` (an operator dials out), `ACCEPTED` (answered), `COMPLETED` (hung up after a
//!   conversation) or `CANCELLED` (hung up before an answer); `phone` is the client's number,
//!   `ext` the operator's extension, `telnum` the company number called, `callid` the call,
//!   and `direction` (`in`/`out`) says which way `ACCEPTED`, `COMPLETED` and `CANCELLED` go.
//! - `cmd=history`: a call is over. `type` is `in` or `out`, `status` its outcome (`Success`,
//!   `missed`, `Cancel`, `Busy`, `NotAvailable`, `NotAllowed`, `NotFound`), `duration` its
//!   length in seconds and `link` the recording, when there is one.
//! - `cmd=contact`: the PBX asks for the client's name. This parser has no contact book, so it
//!   answers with the empty result (an empty `200`), which the PBX reads as "unknown".
//!
//! Events become telephony events (`INCOMING`/`OUTGOING` start, `ACCEPTED` answer, `COMPLETED`
//! end answered, `CANCELLED` end cancelled); `history` becomes a call record whose `call` is the
//! recording link, or the call id when nothing was recorded. On incoming calls the client is
//! `src_phone` and the operator's extension is `dst_phone` and `src_phone_ext`; on outgoing calls
//! the operator's extension is `src_phone` and `dst_phone_ext`, and the client is `dst_phone`.
//!
//! When the integration setting `crm_token` is set, a request carrying another token is answered
//! `401` and produces nothing.

use serde_json::json;
use telehook_guest::prelude::*;

/// The setting holding the token the PBX sends with every request.
const CRM_TOKEN: &str = "crm_token";

struct Gravitel;

impl Parser for Gravitel {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let form = request.form();
        let Some(command) = form.get("cmd") else {
            return Ok(ParseResult::empty());
        };
        if !token_is_valid(&form) {
            log::warn(&format!(
                "refusing `cmd={command}`: missing or wrong crm_token"
            ));
            return Ok(ParseResult::with_response(Response::json(
                401,
                &json!({"error": "missing or invalid crm_token"}),
            )));
        }
        match command {
            "event" => call_event(&form).map(ParseResult::with_event),
            "history" => call_history(&form).map(ParseResult::with_call_record),
            "contact" => Ok(ParseResult::empty()),
            other => {
                log::info(&format!("ignoring `cmd={other}`: not a call notification"));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// True when no token is configured, or the request carries exactly the configured one.
fn token_is_valid(form: &Form) -> bool {
    match settings::get(CRM_TOKEN).filter(|token| !token.is_empty()) {
        None => true,
        Some(expected) => form
            .get(CRM_TOKEN)
            .is_some_and(|sent| crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes())),
    }
}

fn call_event(form: &Form) -> Result<TelephonyEvent, ParseError> {
    let (kind, direction, disposition) = match form.require("type")? {
        "INCOMING" => (EventType::NotifyStart, Direction::In, Disposition::Unknown),
        "OUTGOING" => (EventType::NotifyStart, Direction::Out, Disposition::Unknown),
        "ACCEPTED" => (
            EventType::NotifyAnswer,
            direction(form)?,
            Disposition::Answered,
        ),
        "COMPLETED" => (
            EventType::NotifyEnd,
            direction(form)?,
            Disposition::Answered,
        ),
        "CANCELLED" => (EventType::NotifyEnd, direction(form)?, Disposition::Cancel),
        other => {
            return Err(ParseError::new(format!(
                "unknown event `type`: {other:?} (expected INCOMING, OUTGOING, ACCEPTED, \
                 COMPLETED or CANCELLED)"
            )));
        }
    };
    let parties = Parties::of(direction, form)?;
    let event = TelephonyEvent::new(kind, direction, parties.src, parties.dst)
        .with_disposition(disposition);
    let event = match direction {
        Direction::In => event.with_src_phone_ext(parties.ext),
        _ => event.with_dst_phone_ext(parties.ext),
    };
    Ok(match form.get("callid") {
        Some(call_id) if !call_id.is_empty() => event.with_call_id(call_id),
        _ => event,
    })
}

fn call_history(form: &Form) -> Result<CallRecord, ParseError> {
    let direction = match form.require("type")? {
        "in" => Direction::In,
        "out" => Direction::Out,
        other => {
            return Err(ParseError::new(format!(
                "unknown history `type`: {other:?} (expected in or out)"
            )));
        }
    };
    let duration = form.require("duration")?;
    let duration = duration.parse().map_err(|_| {
        ParseError::new(format!(
            "`duration` is not a number of seconds: {duration:?}"
        ))
    })?;
    let call_id = form.get("callid").filter(|id| !id.is_empty());
    let call = form
        .get("link")
        .filter(|link| !link.is_empty())
        .or(call_id)
        .ok_or_else(|| ParseError::new("a history without `link` or `callid`"))?;
    let parties = Parties::of(direction, form)?;
    let record = CallRecord::new(
        direction,
        disposition(form.require("status")?),
        parties.src,
        parties.dst,
        duration,
        call,
    );
    let record = match direction {
        Direction::In => record.with_src_phone_ext(parties.ext),
        _ => record.with_dst_phone_ext(parties.ext),
    };
    Ok(match call_id {
        Some(call_id) => record.with_call_id(call_id),
        None => record,
    })
}

/// The `direction` of an event that may belong to either kind of call; `in` when absent, as
/// older PBX versions only report incoming calls' progress.
fn direction(form: &Form) -> Result<Direction, ParseError> {
    match form.get("direction").unwrap_or("in") {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        other => Err(ParseError::new(format!(
            "unknown `direction`: {other:?} (expected in or out)"
        ))),
    }
}

/// The PBX's outcomes; the ones where nobody could be reached are "not answered".
fn disposition(status: &str) -> Disposition {
    match status.to_ascii_lowercase().as_str() {
        "success" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "cancel" => Disposition::Cancel,
        _ => Disposition::NoAnswer,
    }
}

/// Who called whom, in the contract's terms.
struct Parties<'a> {
    src: &'a str,
    dst: &'a str,
    /// The operator's extension; empty when the PBX did not say.
    ext: &'a str,
}

impl<'a> Parties<'a> {
    fn of(direction: Direction, form: &'a Form) -> Result<Self, ParseError> {
        let client = form.require("phone")?;
        let ext = form.get("ext").unwrap_or_default();
        Ok(match direction {
            Direction::In if ext.is_empty() => Self {
                src: client,
                dst: form.require("telnum")?,
                ext,
            },
            Direction::In => Self {
                src: client,
                dst: ext,
                ext,
            },
            _ => Self {
                src: form.require("ext")?,
                dst: client,
                ext,
            },
        })
    }
}

telehook_guest::export_parser!(Gravitel);
