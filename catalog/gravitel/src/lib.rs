//! A parser for Gravitel's cloud PBX, "REST API ВАТС (CRM)": the PBX posts every command to
//! the one CRM URL, form-urlencoded, with the «Ключ для авторизации в вашей CRM» as
//! `crm_token`.
//!
//! It does what the platform's own Gravitel module does (ELMA365's help, "Интеграция с
//! IP-телефонией через пользовательский модуль"): it refuses a body that is not
//! `application/x-www-form-urlencoded` and an event of an unknown `type` with `400`, maps a
//! history's `status` the same way (see [`disposition`]), and answers every other command with
//! the default `200`. On top of that (the README lists every difference):
//!
//! - the `crm_token` is checked (`401` when missing or wrong);
//! - events and records carry `callid` as their call id;
//! - the phones depend on the direction, as the contract wants: `in` is client (`phone`) →
//!   operator (`ext`, also the `src_phone_ext`), `out` is operator → client (`ext` also the
//!   `dst_phone_ext`); an incoming call with no operator yet is client → the line called,
//!   `diversion`;
//! - `ACCEPTED` and `COMPLETED`/`CANCELLED` take the `direction` field when the PBX sends it,
//!   and name only their call when it does not;
//! - only ends carry a disposition: `ACCEPTED` is `unknown`, `COMPLETED` `answered`;
//! - a history's duration is 0 unless the call was answered.
//!
//! The protocol itself is in [`crm`], which `catalog/megafon` shares.

mod crm;

use crm::Fields;
use telehook_guest::prelude::*;

struct Gravitel;

impl Parser for Gravitel {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if !request.is_method("GET") && crm::media_type(&request).as_deref() != Some(crm::FORM) {
            return Err(crm::wrong_content_type(
                &request,
                "\"application/x-www-form-urlencoded\"",
            ));
        }
        let fields = Fields::of_form(&request);
        crm::check_token(&fields)?;
        match fields.get("cmd") {
            Some("event") => crm::call_event(&fields).map(ParseResult::with_event),
            Some("history") => history(&fields).map(ParseResult::with_call_record),
            Some("contact") => {
                // "Команда для получения информации о названии клиента": this parser has no
                // contact book; the empty 200 is what the platform's module answers too.
                log::info("`cmd=contact` answered with the default 200: no contact book here");
                Ok(ParseResult::empty())
            }
            other => {
                log::info(&format!(
                    "ignoring `cmd={}`: not a call notification",
                    other.unwrap_or_default()
                ));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// A history's record: the platform module's disposition, and the `duration` ("общая
/// длительность звонка в секундах") only for an answered call, since the contract counts the
/// conversation and an unanswered call had none.
fn history(fields: &Fields) -> Result<CallRecord, ParseError> {
    let disposition = disposition(fields.get("status").unwrap_or_default());
    let duration = match disposition {
        Disposition::Answered => crm::seconds(fields, "duration"),
        _ => 0,
    };
    crm::history_record(fields, disposition, duration)
}

/// The platform module's `toCallDisposition`, case for case (Gravitel's wording from its PDF,
/// as `maxim-oleinik/gravitel` quotes it):
///
/// | `status` | Gravitel's wording | disposition |
/// |---|---|---|
/// | `Success` | "успешный входящий/исходящий звонок" | answered |
/// | `Busy` | "мы получили ответ Занято" | busy |
/// | `Missed`, `missed` | "пропущенный входящий звонок" | cancel |
/// | `NotAvailable` | "мы получили ответ Абонент недоступен" | no-answer |
/// | `NotAllowed`, anything else | "Звонки на это направление запрещены" | unknown |
///
/// The module matches `Missed` only, but Gravitel's own list writes it `missed`, which the
/// module leaves `unknown`: this parser reads both spellings as the missed call they are. Every
/// other value is matched exactly, as the module does.
fn disposition(status: &str) -> Disposition {
    match status {
        "Success" => Disposition::Answered,
        "Busy" => Disposition::Busy,
        "Missed" | "missed" => Disposition::Cancel,
        "NotAvailable" => Disposition::NoAnswer,
        _ => Disposition::Unknown,
    }
}

telehook_guest::export_parser!(Gravitel);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const URL: &str = "https://hooks.example.com/hooks/t0k3n";
    const TOKEN: &str = "7d4c0f3e-2a61-4b8e-9c55-1f0a6e3d2b97";

    fn harness() -> Harness {
        Harness::new().setting(crm::CRM_TOKEN, TOKEN)
    }

    fn post(fields: &[(&str, &str)]) -> TestRequest {
        let mut all = vec![("crm_token", TOKEN)];
        all.extend_from_slice(fields);
        TestRequest::post(URL).form(&all)
    }

    fn history_with(status: &str) -> CallRecord {
        let request = post(&[
            ("cmd", "history"),
            ("type", "in"),
            ("status", status),
            ("duration", "42"),
            ("phone", "79161234567"),
            ("ext", "101"),
            ("callid", "c-1"),
        ]);
        let parsed = harness().parse::<Gravitel>(request);
        parsed.outcome().call_record.expect("a record")
    }

    #[test]
    fn statuses_map_as_the_platforms_module_maps_them() {
        for (status, expected) in [
            ("Success", Disposition::Answered),
            ("Busy", Disposition::Busy),
            ("Missed", Disposition::Cancel),
            ("missed", Disposition::Cancel),
            ("NotAvailable", Disposition::NoAnswer),
            ("NotAllowed", Disposition::Unknown),
            ("success", Disposition::Unknown),
            ("", Disposition::Unknown),
        ] {
            let record = history_with(status);
            assert_eq!(record.disposition, expected, "{status}");
            let duration = if expected == Disposition::Answered {
                42
            } else {
                0
            };
            assert_eq!(record.duration, duration, "{status}");
        }
    }

    #[test]
    fn the_token_is_required_and_compared_exactly() {
        let wrong = harness().parse::<Gravitel>(
            TestRequest::post(URL).form(&[("cmd", "contact"), ("crm_token", "7D4C0F3E")]),
        );
        assert_eq!(wrong.redacted, ["7D4C0F3E"]);
        assert_eq!(wrong.refusal().status, Some(401));
        let missing = harness().parse::<Gravitel>(TestRequest::post(URL).form(&[("cmd", "x")]));
        assert_eq!(missing.refusal().status, Some(401));
        let unset = Harness::new().parse::<Gravitel>(post(&[("cmd", "contact")]));
        assert_eq!(unset.refusal().setting.as_deref(), Some(crm::CRM_TOKEN));
    }

    #[test]
    fn a_content_type_with_parameters_is_the_same_content_type() {
        let request = TestRequest::post(URL)
            .header(
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            )
            .body(format!("cmd=contact&crm_token={TOKEN}"));
        assert!(harness().parse::<Gravitel>(request).result.is_ok());
        let json = TestRequest::post(URL).json(&serde_json::json!({"cmd": "event"}));
        assert_eq!(
            harness().parse::<Gravitel>(json).refusal().message,
            "Expected Content-Type to be \"application/x-www-form-urlencoded\" (got: \
             \"application/json\")"
        );
    }

    #[test]
    fn an_event_without_a_type_is_refused_like_an_unknown_one() {
        let refusal = harness()
            .parse::<Gravitel>(post(&[("cmd", "event"), ("callid", "c-1")]))
            .refusal();
        assert_eq!(
            (refusal.status, refusal.message.as_str()),
            (None, "Unknown event type: the event has no `type` field")
        );
    }

    #[test]
    fn an_operator_without_an_extension_is_named_by_telnum_then_user() {
        let outgoing = |fields: &[(&str, &str)]| {
            let mut all = vec![
                ("cmd", "event"),
                ("type", "OUTGOING"),
                ("phone", "79031112233"),
            ];
            all.extend_from_slice(fields);
            let event = harness().parse::<Gravitel>(post(&all)).outcome().event;
            let event = event.expect("an event");
            (event.src_phone, event.dst_phone_ext)
        };
        assert_eq!(
            outgoing(&[("telnum", "74951234500"), ("user", "ivanov")]),
            (Some("74951234500".into()), None)
        );
        assert_eq!(
            outgoing(&[("user", "ivanov")]),
            (Some("ivanov".into()), None)
        );
        let refusal = harness()
            .parse::<Gravitel>(post(&[
                ("cmd", "event"),
                ("type", "OUTGOING"),
                ("phone", "7"),
            ]))
            .refusal();
        assert!(
            refusal.message.contains("names no operator"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn a_cancel_by_a_group_member_leaves_the_outcome_to_the_call() {
        let event = harness()
            .parse::<Gravitel>(post(&[
                ("cmd", "event"),
                ("type", "CANCELLED"),
                ("direction", "in"),
                ("phone", "79161234567"),
                ("ext", "102"),
                ("callid", "c-1"),
            ]))
            .outcome()
            .event
            .expect("an event");
        assert_eq!(
            (event.event, event.disposition),
            (EventType::NotifyEnd, Disposition::Unknown)
        );
        assert_eq!(event.src_phone_ext.as_deref(), Some("102"));
    }

    #[test]
    fn durations_are_read_as_parse_int_reads_them() {
        let fields = Fields::new(Form::from_pairs(vec![
            ("a".into(), "95".into()),
            ("b".into(), "12.5".into()),
            ("c".into(), "x".into()),
        ]));
        assert_eq!(crm::seconds(&fields, "a"), 95);
        assert_eq!(crm::seconds(&fields, "b"), 12);
        assert_eq!(crm::seconds(&fields, "c"), 0);
        assert_eq!(crm::seconds(&fields, "missing"), 0);
    }
}
