//! Returns the event and call record its form body spells out, so that a test can send the
//! host any sequence of events a provider could cause, partial ones included:
//!
//! `event=start|answer|end`, `call_id`, `direction=in|out|internal`, `src`, `src_ext`, `dst`,
//! `dst_ext`, `disposition=answered|busy|cancel|no_answer`, `delivery`; a `record=CALL` field
//! adds a call record of the same call (`duration` seconds) and, without `event`, is the whole
//! result. Fields left out stay absent, so `event=end&call_id=c-1` names only its call.

use telehook_guest::prelude::*;

struct Scripted;

fn direction(name: &str) -> Result<Direction, ParseError> {
    match name {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        "internal" => Ok(Direction::Internal),
        other => Err(ParseError::new(format!("unknown direction `{other}`"))),
    }
}

fn disposition(name: Option<&str>) -> Result<Disposition, ParseError> {
    match name {
        None => Ok(Disposition::Unknown),
        Some("answered") => Ok(Disposition::Answered),
        Some("busy") => Ok(Disposition::Busy),
        Some("cancel") => Ok(Disposition::Cancel),
        Some("no_answer") => Ok(Disposition::NoAnswer),
        Some(other) => Err(ParseError::new(format!("unknown disposition `{other}`"))),
    }
}

fn event_type(name: &str) -> Result<EventType, ParseError> {
    match name {
        "start" => Ok(EventType::NotifyStart),
        "answer" => Ok(EventType::NotifyAnswer),
        "end" => Ok(EventType::NotifyEnd),
        other => Err(ParseError::new(format!("unknown event `{other}`"))),
    }
}

impl Parser for Scripted {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let form = request.form();
        let owned = |name: &str| form.get(name).map(str::to_owned);
        let direction = form.get("direction").map(direction).transpose()?;
        let disposition = disposition(form.get("disposition"))?;
        let mut result = ParseResult::empty();
        if let Some(event) = form.get("event") {
            result.event = Some(TelephonyEvent {
                call_id: owned("call_id"),
                event: event_type(event)?,
                direction,
                disposition,
                src_phone: owned("src"),
                src_phone_ext: owned("src_ext"),
                dst_phone: owned("dst"),
                dst_phone_ext: owned("dst_ext"),
            });
        }
        if let Some(call) = form.get("record") {
            let duration = form
                .get("duration")
                .map(str::parse)
                .transpose()
                .map_err(|err| ParseError::new(format!("duration: {err}")))?
                .unwrap_or(0);
            result.call_record = Some(CallRecord {
                call_id: owned("call_id"),
                direction,
                disposition,
                src_phone: owned("src"),
                src_phone_ext: owned("src_ext"),
                dst_phone: owned("dst"),
                dst_phone_ext: owned("dst_ext"),
                duration,
                call: call.to_owned(),
            });
        }
        result.delivery_id = owned("delivery");
        Ok(result)
    }
}

telehook_guest::export_parser!(Scripted);
