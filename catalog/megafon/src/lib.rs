//! A parser for MegaFon's Virtual PBX (МегаФон Виртуальная АТС), "API для CRM": the same
//! ITooLabs CRM protocol as Gravitel's, so this crate reads it through Gravitel's own code
//! ([`crm`], the file `catalog/gravitel/src/crm.rs`) and holds only what MegaFon does
//! differently:
//!
//! - the body may be JSON as well as a form (the spec's example is JSON, `mikopbx`);
//! - `cmd=event` has a sixth type, `TRANSFERRED` ("Входящий звонок переведен на другого
//!   сотрудника"), which changes nothing the platform shows: acknowledged, with `second_callid`
//!   logged;
//! - `cmd=rating` (a call's quality rating) is acknowledged;
//! - `cmd=contact` is answered `{}`, which the PBX reads as "contact not found";
//! - a history's `status` has MegaFon's full list, matched ignoring case (see
//!   [`disposition`]), and its conversation is `duration` less the `wait` for an answer.
//!
//! Everything else is Gravitel's: the `crm_token` check (`401`), `callid` as the call id, the
//! phones by direction (`in`: client `phone` → operator `ext`; `out`: operator → client), the
//! five other event types, and the refusal of an unknown one (`400 Unknown event type "X"`).

#[path = "../../gravitel/src/crm.rs"]
mod crm;

use crm::Fields;
use serde_json::{Map, Value};
use telehook_guest::prelude::*;

/// The content types this parser reads, for the refusal of any other.
const ACCEPTED_TYPES: &str = "\"application/x-www-form-urlencoded\" or \"application/json\"";

struct Megafon;

impl Parser for Megafon {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let fields = fields(&request)?;
        crm::check_token(&fields)?;
        match fields.get("cmd") {
            Some("event") if fields.get("type") == Some("TRANSFERRED") => {
                log::info(&format!(
                    "`TRANSFERRED` of {}: the call goes on with another employee (second_callid \
                     {}); nothing to show",
                    fields.call_id().unwrap_or("-"),
                    fields.get("second_callid").unwrap_or("-"),
                ));
                Ok(ParseResult::empty())
            }
            Some("event") => crm::call_event(&fields).map(ParseResult::with_event),
            Some("history") => history(&fields).map(ParseResult::with_call_record),
            // "ВАТС интерпретирует как «контакт не найден»" (mikopbx): no contact book here.
            Some("contact") => Ok(ParseResult::with_response(Response::json(
                200,
                &Value::Object(Map::new()),
            ))),
            other => {
                log::info(&format!(
                    "ignoring `cmd={}` (of call {}): not a call notification",
                    other.unwrap_or_default(),
                    fields.call_id().unwrap_or("-"),
                ));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// The request's fields: a form (the body, then the query; a `GET` history has only the
/// query), or a JSON object of them. Any other body is refused, as Gravitel's module does.
fn fields(request: &Request) -> Result<Fields, ParseError> {
    match crm::media_type(request).as_deref() {
        Some(crm::FORM) => Ok(Fields::of_form(request)),
        Some("application/json") => json_fields(request),
        _ if request.is_method("GET") => Ok(Fields::of_form(request)),
        _ => Err(crm::wrong_content_type(request, ACCEPTED_TYPES)),
    }
}

/// A JSON body's fields: the same names as the form's, with numbers taken as their text.
fn json_fields(request: &Request) -> Result<Fields, ParseError> {
    let object: Map<String, Value> = request.json()?;
    let pairs = object
        .into_iter()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name, text)),
            Value::Null => None,
            other => Some((name, other.to_string())),
        })
        .collect();
    Ok(Fields::new(Form::from_pairs(pairs)))
}

/// A history's record. The conversation of an answered call is `duration` ("Общая
/// длительность звонка в секундах", the total) less `wait` ("Время ожидания ответа"): MegaFon
/// sends the two apart, so the total includes the wait. An unanswered call had none.
fn history(fields: &Fields) -> Result<CallRecord, ParseError> {
    let disposition = disposition(fields.get("status").unwrap_or_default());
    let duration = match disposition {
        Disposition::Answered => {
            crm::seconds(fields, "duration").saturating_sub(crm::seconds(fields, "wait"))
        }
        _ => 0,
    };
    crm::history_record(fields, disposition, duration)
}

/// MegaFon's statuses (its spec's wording, as `brandup-online/megafon-ats` copies it),
/// ignoring case: Gravitel writes `missed`, MegaFon `Missed`, and a MegaFon client lowers them.
///
/// | `status` | MegaFon's wording | disposition |
/// |---|---|---|
/// | `Success` | "Успешный входящий (исходящий) звонок" | answered |
/// | `Missed` | "Пропущенный входящий (исходящий) звонок" | cancel, as for Gravitel |
/// | `Cancel` | "Входящий (исходящий) звонок отменен" | cancel |
/// | `Busy` | "Получен ответ «Занято»" | busy |
/// | `NotAvailable` | "Получен ответ «Абонент недоступен»" | no-answer |
/// | `NotAllowed` | "Получен ответ «Звонки на это направление запрещены»" | no-answer |
/// | `NotFound` | "Получен ответ «Вызываемый абонент не найден, нет такого SIP номера»" | no-answer |
/// | anything else | | unknown |
fn disposition(status: &str) -> Disposition {
    match status.to_ascii_lowercase().as_str() {
        "success" => Disposition::Answered,
        "missed" | "cancel" => Disposition::Cancel,
        "busy" => Disposition::Busy,
        "notavailable" | "notallowed" | "notfound" => Disposition::NoAnswer,
        _ => Disposition::Unknown,
    }
}

telehook_guest::export_parser!(Megafon);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use telehook_guest::testing::{Harness, TestRequest};

    const URL: &str = "https://hooks.example.com/hooks/t0k3n";
    const TOKEN: &str = "3f9b2c71-5e0a-4d8c-b6a4-9e1d7c2f0a58";

    fn harness() -> Harness {
        Harness::new().setting(crm::CRM_TOKEN, TOKEN)
    }

    fn history_with(status: &str, duration: &str, wait: &str) -> CallRecord {
        let request = TestRequest::post(URL).form(&[
            ("cmd", "history"),
            ("type", "in"),
            ("status", status),
            ("duration", duration),
            ("wait", wait),
            ("phone", "88005553535"),
            ("ext", "510"),
            ("callid", "43294397431"),
            ("crm_token", TOKEN),
        ]);
        harness()
            .parse::<Megafon>(request)
            .outcome()
            .call_record
            .expect("a record")
    }

    #[test]
    fn every_status_megafon_documents_has_its_disposition() {
        for (status, expected) in [
            ("Success", Disposition::Answered),
            ("success", Disposition::Answered),
            ("Missed", Disposition::Cancel),
            ("missed", Disposition::Cancel),
            ("Cancel", Disposition::Cancel),
            ("Busy", Disposition::Busy),
            ("NotAvailable", Disposition::NoAnswer),
            ("NotAllowed", Disposition::NoAnswer),
            ("NotFound", Disposition::NoAnswer),
            ("Rejected", Disposition::Unknown),
        ] {
            assert_eq!(
                history_with(status, "50", "8").disposition,
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn the_conversation_is_the_total_less_the_wait() {
        assert_eq!(history_with("Success", "50", "8").duration, 42);
        assert_eq!(history_with("Success", "50", "").duration, 50);
        assert_eq!(history_with("Success", "5", "8").duration, 0);
        assert_eq!(history_with("Missed", "50", "8").duration, 0);
    }

    #[test]
    fn a_json_body_reads_as_the_form_does() {
        let body = json!({
            "cmd": "event", "type": "OUTGOING", "direction": "out", "phone": 79031112233_u64,
            "ext": "510", "callid": "43294397431", "crm_token": TOKEN, "diversion": null,
        });
        let event = harness()
            .parse::<Megafon>(TestRequest::post(URL).json(&body))
            .outcome()
            .event
            .expect("an event");
        assert_eq!(
            (event.src_phone.as_deref(), event.dst_phone.as_deref()),
            (Some("510"), Some("79031112233"))
        );
        let not_an_object = TestRequest::post(URL).json(&json!(["cmd", "event"]));
        let refusal = harness().parse::<Megafon>(not_an_object).refusal();
        assert!(
            refusal
                .message
                .starts_with("the body is not the expected JSON")
        );
    }

    #[test]
    fn other_bodies_are_refused_naming_both_formats() {
        let text = TestRequest::post(URL)
            .header("content-type", "text/plain")
            .body("cmd=event");
        assert_eq!(
            harness().parse::<Megafon>(text).refusal().message,
            "Expected Content-Type to be \"application/x-www-form-urlencoded\" or \
             \"application/json\" (got: \"text/plain\")"
        );
    }
}
