//! A parser for Bitrix24's telephony REST events
//! (<https://apidocs.bitrix24.com/api-reference/telephony/events/index.html>).
//!
//! Bitrix24 posts every event to the handler URL as `application/x-www-form-urlencoded` with
//! PHP's bracketed keys: `event=ONVOXIMPLANTCALLEND&data[CALL_ID]=...&auth[application_token]=...`
//! (its docs show the same data as JSON, which is not the wire format). The only proof that a
//! request is Bitrix24's is `auth[application_token]`, compared in constant time with the
//! `application_token` setting: missing or different is `401`.
//!
//! | `event` | result |
//! |---|---|
//! | `ONEXTERNALCALLSTART` (a user clicks a number in the CRM) | `notify-start`, `out`, operator → `PHONE_NUMBER_INTERNATIONAL` |
//! | `ONVOXIMPLANTCALLINIT`, `CALL_TYPE` 2/3 (incoming) | `notify-start`, `in`, `CALLER_ID` → the line |
//! | `ONVOXIMPLANTCALLINIT`, other types | nothing: the operator is not in it |
//! | `ONVOXIMPLANTCALLSTART` | `notify-answer` naming only its call |
//! | `ONVOXIMPLANTCALLEND` | `notify-end` + call record, disposition from `CALL_FAILED_CODE` |
//! | `ONEXTERNALCALLBACKSTART`, anything else | nothing |
//!
//! `data[CALL_ID]` is the whole call's id in every event. Operators are Bitrix user ids
//! (`USER_ID`, `PORTAL_USER_ID`), mapped to extensions by the optional `user_extensions`
//! setting, else used as they are. The body also carries the user's live OAuth tokens
//! (`auth[access_token]`, `auth[refresh_token]`): the parser asks the host to redact them
//! and the application token (contract 0.3's `redact`) before anything else, so that no stored
//! request shows them, and never logs any `auth[...]` value but `auth[domain]`.

use std::collections::HashMap;

use serde_json::json;
use telehook_guest::prelude::*;

/// The setting: the outgoing webhook's token, or the app's `application_token`.
const APPLICATION_TOKEN: &str = "application_token";
/// The optional setting: a JSON object from Bitrix user id to extension, `{"1269": "101"}`.
const USER_EXTENSIONS: &str = "user_extensions";

struct Bitrix24;

impl Parser for Bitrix24 {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let form = request.form();
        redact_credentials(&form);
        check_token(&form)?;
        let event = form
            .get("event")
            .ok_or_else(|| ParseError::new("the form field `event` is missing"))?;
        let data = Data(form.section("data"));
        match event.to_ascii_uppercase().as_str() {
            "ONEXTERNALCALLSTART" => external_call_start(&data),
            "ONVOXIMPLANTCALLINIT" => call_init(&data),
            "ONVOXIMPLANTCALLSTART" => Ok(ParseResult::with_event(TelephonyEvent::of_call(
                EventType::NotifyAnswer,
                data.require("CALL_ID")?,
            ))),
            "ONVOXIMPLANTCALLEND" => call_end(&data),
            "ONEXTERNALCALLBACKSTART" => {
                log::info("ONEXTERNALCALLBACKSTART: a callback form, no call exists yet");
                Ok(ParseResult::empty())
            }
            other => {
                let domain = form.section("auth").get("domain").unwrap_or("?").to_owned();
                log::info(&format!("ignoring {other} from {domain}: not a call event"));
                Ok(ParseResult::empty())
            }
        }
    }
}

/// The `auth[...]` values that act for the portal's user: hidden from everything the host
/// keeps of the request, whether the request turns out genuine or not.
const CREDENTIALS: &[&str] = &["access_token", "refresh_token", "application_token"];

fn redact_credentials(form: &Form) {
    let auth = form.section("auth");
    for name in CREDENTIALS {
        if let Some(value) = auth.get(name) {
            log::redact(value);
        }
    }
}

/// Compares `auth[application_token]` with the setting in constant time, as Bitrix24's docs
/// ("safe event handlers", outgoing webhooks) ask. The token is never logged.
fn check_token(form: &Form) -> Result<(), ParseError> {
    let expected = settings::require(APPLICATION_TOKEN)?;
    let auth = form.section("auth");
    let Some(token) = auth.get("application_token").filter(|t| !t.is_empty()) else {
        return Err(ParseError::unauthorized(
            "the form field `auth[application_token]` is missing (Bitrix24 posts a \
             form-urlencoded body)",
        ));
    };
    if crypto::constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ParseError::unauthorized(
            "`auth[application_token]` does not match the setting `application_token`",
        ))
    }
}

/// The `data[...]` fields of an event.
struct Data(Form);

impl Data {
    /// A field, absent when empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).filter(|value| !value.is_empty())
    }

    /// A field the event always carries, named as on the wire in the error.
    fn require(&self, name: &str) -> Result<&str, ParseError> {
        self.get(name)
            .ok_or_else(|| ParseError::new(format!("the form field `data[{name}]` is missing")))
    }

    /// The operator of the call: the first of `names` that is set, as an extension.
    fn operator(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.get(name)).map(extension)
    }
}

/// A Bitrix user id as the extension the admin gave it in `user_extensions`, or the id itself
/// (events carry no internal numbers; bind the ids in telehook's extension table then).
fn extension(user_id: &str) -> String {
    let Some(map) = settings::get(USER_EXTENSIONS).filter(|m| !m.trim().is_empty()) else {
        return user_id.to_owned();
    };
    match serde_json::from_str::<HashMap<String, serde_json::Value>>(&map) {
        Ok(map) => match map.get(user_id) {
            Some(serde_json::Value::String(ext)) if !ext.is_empty() => ext.clone(),
            Some(serde_json::Value::Number(ext)) => ext.to_string(),
            _ => user_id.to_owned(),
        },
        Err(err) => {
            log::warn(&format!(
                "the setting `{USER_EXTENSIONS}` is not a JSON object of user id to extension \
                 ({err}); using Bitrix user ids"
            ));
            user_id.to_owned()
        }
    }
}

/// `ONEXTERNALCALLSTART`: a user clicked a number to call it through the telephony app.
fn external_call_start(data: &Data) -> Result<ParseResult, ParseError> {
    let call_id = data.require("CALL_ID")?;
    let operator = extension(data.require("USER_ID")?);
    let client = data
        .get("PHONE_NUMBER_INTERNATIONAL")
        .map_or_else(|| data.require("PHONE_NUMBER"), Ok)?;
    let event = TelephonyEvent::new(
        EventType::NotifyStart,
        Direction::Out,
        operator.clone(),
        phone::number(client),
    )
    .with_call_id(call_id)
    .with_dst_phone_ext(operator);
    Ok(checked(event).map_or_else(ParseResult::empty, ParseResult::with_event))
}

/// `ONVOXIMPLANTCALLINIT`: a call begins. Only an incoming one names both sides: the client
/// (`CALLER_ID`) and the line (`PHONE_NUMBER`, else `ACCOUNT_SEARCH_ID`); no operator yet.
fn call_init(data: &Data) -> Result<ParseResult, ParseError> {
    let call_id = data.require("CALL_ID")?;
    let call_type = data.get("CALL_TYPE").unwrap_or_default();
    if direction(call_type) != Some(Direction::In) {
        log::info(&format!(
            "ONVOXIMPLANTCALLINIT of call {call_id} (CALL_TYPE {call_type}): the operator is \
             not in it, no event"
        ));
        return Ok(ParseResult::empty());
    }
    let Some(line) = data.get("PHONE_NUMBER").or(data.get("ACCOUNT_SEARCH_ID")) else {
        log::info(&format!(
            "ONVOXIMPLANTCALLINIT of call {call_id}: no line number (an app's call), no event"
        ));
        return Ok(ParseResult::empty());
    };
    let client = phone::number(data.get("CALLER_ID").unwrap_or_default());
    let event = TelephonyEvent::new(EventType::NotifyStart, Direction::In, client, line)
        .with_call_id(call_id);
    Ok(checked(event).map_or_else(ParseResult::empty, ParseResult::with_event))
}

/// `ONVOXIMPLANTCALLEND`: the call is over. Its record's `call` holds the ids a later
/// REST lookup needs: the event carries no recording.
fn call_end(data: &Data) -> Result<ParseResult, ParseError> {
    let call_id = data.require("CALL_ID")?;
    let code = data.get("CALL_FAILED_CODE").unwrap_or("OTHER");
    let disposition = disposition(code);
    let operator = data.operator(&["PORTAL_USER_ID", "ACCOUNT_USER_ID"]);
    let client = data.get("PHONE_NUMBER").map(phone::number);
    let parties = direction(data.get("CALL_TYPE").unwrap_or_default()).zip(operator.zip(client));
    let event = parties
        .and_then(|(direction, (operator, client))| {
            let event = match direction {
                Direction::In => {
                    TelephonyEvent::new(EventType::NotifyEnd, direction, client, operator.clone())
                        .with_src_phone_ext(operator)
                }
                _ => TelephonyEvent::new(EventType::NotifyEnd, direction, operator.clone(), client)
                    .with_dst_phone_ext(operator),
            };
            checked(event.with_call_id(call_id))
        })
        .unwrap_or_else(|| TelephonyEvent::of_call(EventType::NotifyEnd, call_id))
        .with_disposition(disposition);
    let duration = match disposition {
        Disposition::Answered => seconds(data.get("CALL_DURATION").unwrap_or("0")),
        _ => 0,
    };
    let call = json!({"call_id": call_id, "crm_activity_id": data.get("CRM_ACTIVITY_ID")});
    let record = CallRecord::of_event(&event, duration, call.to_string());
    Ok(ParseResult::with_event(event).and_call_record(record))
}

/// `CALL_TYPE`: `1` outgoing, `2` incoming, `3` incoming with redirection, `4` callback (the
/// portal calls the client back), `5` informational call (a robot calls the client).
fn direction(call_type: &str) -> Option<Direction> {
    match call_type {
        "1" | "4" | "5" => Some(Direction::Out),
        "2" | "3" => Some(Direction::In),
        _ => None,
    }
}

/// `CALL_FAILED_CODE` (a string: `603-S` and `OTHER` exist), in Bitrix24's wording:
///
/// | code | Bitrix24 | disposition |
/// |---|---|---|
/// | `200` | successful call | answered |
/// | `304` | missed call | no-answer |
/// | `603` | declined | busy |
/// | `603-S` | call canceled | cancel |
/// | `486` | busy | busy |
/// | `480` | temporarily unavailable | no-answer |
/// | `403` | forbidden | no-answer |
/// | `404` | invalid number | no-answer |
/// | `484`, `503` | direction unavailable | no-answer |
/// | `402` | insufficient funds | no-answer |
/// | `423` | blocked | no-answer |
/// | `OTHER`, anything else | undefined | no-answer |
fn disposition(code: &str) -> Disposition {
    match code.trim().to_ascii_uppercase().as_str() {
        "200" => Disposition::Answered,
        "486" | "603" => Disposition::Busy,
        "603-S" => Disposition::Cancel,
        _ => Disposition::NoAnswer,
    }
}

/// `CALL_DURATION` in whole seconds; an unreadable one counts as 0.
fn seconds(value: &str) -> u32 {
    value.trim().parse().unwrap_or_else(|_| {
        log::warn(&format!("CALL_DURATION {value:?} is not whole seconds: 0"));
        0
    })
}

/// The event when the host accepts its phones, else `None` with the reason logged.
fn checked(event: TelephonyEvent) -> Option<TelephonyEvent> {
    for phone in [&event.src_phone, &event.dst_phone].into_iter().flatten() {
        if let Err(why) = phone::check(phone) {
            log::warn(&format!("unusable number {phone:?}: {why}"));
            return None;
        }
    }
    Some(event)
}

telehook_guest::export_parser!(Bitrix24);

#[cfg(test)]
mod tests {
    use super::*;
    use telehook_guest::testing::{Harness, TestRequest};

    const TOKEN: &str = "e24831714bb347622e3ef25af61525cf";

    fn post(fields: &[(&str, &str)]) -> TestRequest {
        let mut all = fields.to_vec();
        all.extend([
            ("auth[access_token]", "s7p6eclrvim9da28dt9ch94ekreb52sv"),
            ("auth[domain]", "some-domain.bitrix24.com"),
            ("auth[application_token]", TOKEN),
        ]);
        TestRequest::post("https://hooks.example.com/hooks/acme/t0k3n").form(&all)
    }

    fn harness() -> Harness {
        Harness::new().setting(APPLICATION_TOKEN, TOKEN)
    }

    fn end(code: &str, call_type: &str) -> ParseResult {
        let request = post(&[
            ("event", "ONVOXIMPLANTCALLEND"),
            ("data[CALL_ID]", "c.1"),
            ("data[CALL_TYPE]", call_type),
            ("data[PHONE_NUMBER]", "+499061234567"),
            ("data[ACCOUNT_USER_ID]", "7"),
            ("data[CALL_DURATION]", "42"),
            ("data[CALL_FAILED_CODE]", code),
        ]);
        harness().parse::<Bitrix24>(request).outcome()
    }

    #[test]
    fn failure_codes_map_deliberately() {
        for (code, disposition) in [
            ("200", Disposition::Answered),
            ("603", Disposition::Busy),
            ("603-S", Disposition::Cancel),
            ("486", Disposition::Busy),
            ("304", Disposition::NoAnswer),
            ("OTHER", Disposition::NoAnswer),
        ] {
            let outcome = end(code, "2");
            assert_eq!(
                outcome.event.expect("an end").disposition,
                disposition,
                "{code}"
            );
            let record = outcome.call_record.expect("a record");
            let expected = if code == "200" { 42 } else { 0 };
            assert_eq!(record.duration, expected, "{code}");
        }
    }

    #[test]
    fn the_older_account_fields_and_user_ids_name_the_operator() {
        let event = end("200", "2").event.expect("an end");
        assert_eq!(event.direction, Some(Direction::In));
        assert_eq!(event.dst_phone.as_deref(), Some("7"));
        assert_eq!(event.src_phone_ext.as_deref(), Some("7"));
        let mapped = harness()
            .setting(USER_EXTENSIONS, r#"{"7": 101}"#)
            .parse::<Bitrix24>(post(&[
                ("event", "ONEXTERNALCALLSTART"),
                ("data[CALL_ID]", "c.2"),
                ("data[USER_ID]", "7"),
                ("data[PHONE_NUMBER]", "+494951234567"),
            ]))
            .outcome()
            .event
            .expect("a start");
        assert_eq!(mapped.src_phone.as_deref(), Some("101"));
        assert_eq!(mapped.dst_phone_ext.as_deref(), Some("101"));
    }

    #[test]
    fn an_unknown_call_type_ends_only_the_call() {
        let event = end("200", "9").event.expect("an end");
        assert_eq!((event.direction, event.src_phone), (None, None));
        assert_eq!(event.call_id.as_deref(), Some("c.1"));
    }

    #[test]
    fn the_token_is_required_and_never_logged() {
        let forged = Harness::new()
            .setting(APPLICATION_TOKEN, "different_application_token_67890")
            .parse::<Bitrix24>(post(&[("event", "ONCRMCONTACTADD")]));
        assert!(forged.log.is_empty());
        assert_eq!(forged.refusal().status, Some(401));
        let ignored = harness().parse::<Bitrix24>(post(&[("event", "ONCRMCONTACTADD")]));
        assert!(
            ignored
                .log
                .iter()
                .all(|line| !line.message.contains(TOKEN) && !line.message.contains("s7p6"))
        );
        assert!(
            ignored
                .redacted
                .iter()
                .any(|value| value.starts_with("s7p6"))
        );
        assert!(ignored.redacted.iter().any(|value| value == TOKEN));
        assert_eq!(ignored.outcome(), ParseResult::empty());
        let unset = Harness::new().parse::<Bitrix24>(post(&[("event", "ONCRMCONTACTADD")]));
        assert_eq!(
            unset.refusal().message,
            "the integration setting `application_token` is not set"
        );
    }

    #[test]
    fn a_json_body_is_refused_as_unauthenticated() {
        let json = TestRequest::post("https://hooks.example.com/h").json(&serde_json::json!({
            "event": "ONVOXIMPLANTCALLSTART",
            "auth": {"application_token": TOKEN},
        }));
        assert_eq!(
            harness().parse::<Bitrix24>(json).refusal().status,
            Some(401)
        );
    }
}
