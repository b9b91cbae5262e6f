//! Property tests (proptest) of the validator: whatever a parser returns, validation never
//! panics, a refusal names fields that exist, and an accepted result is one the HTTP layer and
//! the event log can carry as is.

use http::{HeaderName, HeaderValue, StatusCode};
use proptest::prelude::*;

use super::*;
use crate::outcome::{Disposition, EventType};

/// Text as a hostile parser writes it: mostly plausible, sometimes anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[+]?[0-9]{1,15}",
        "[a-z0-9 ._-]{0,12}",
        "[ -~]{0,80}",
        ".{0,40}",
        "[\r\n\t\u{0}\u{7f} a-z]{0,10}",
    ]
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::In),
        Just(Direction::Out),
        Just(Direction::Internal)
    ]
}

fn disposition() -> impl Strategy<Value = Disposition> {
    prop_oneof![
        Just(Disposition::Unknown),
        Just(Disposition::Answered),
        Just(Disposition::Busy),
        Just(Disposition::Cancel),
        Just(Disposition::NoAnswer),
    ]
}

prop_compose! {
    fn event()(
        event in prop_oneof![
            Just(EventType::NotifyStart),
            Just(EventType::NotifyAnswer),
            Just(EventType::NotifyEnd),
        ],
        direction in prop::option::of(direction()),
        disposition in disposition(),
        src_phone in optional_text(),
        src_phone_ext in optional_text(),
        dst_phone in optional_text(),
        dst_phone_ext in optional_text(),
        call_id in optional_text(),
    ) -> TelephonyEvent {
        TelephonyEvent {
            event, direction, disposition, src_phone, src_phone_ext, dst_phone, dst_phone_ext,
            call_id,
        }
    }
}

prop_compose! {
    fn record()(
        event in event(),
        duration in prop_oneof![0u32..100_000, any::<u32>()],
        call in text(),
    ) -> CallRecord {
        CallRecord {
            call_id: event.call_id,
            direction: event.direction,
            disposition: event.disposition,
            src_phone: event.src_phone,
            src_phone_ext: event.src_phone_ext,
            dst_phone: event.dst_phone,
            dst_phone_ext: event.dst_phone_ext,
            duration,
            call,
        }
    }
}

prop_compose! {
    fn response()(
        status in prop_oneof![200u16..600, any::<u16>()],
        headers in prop::collection::vec(
            (
                prop_oneof!["[a-z][a-z0-9-]{0,20}", "content-length|transfer-encoding", text()],
                text(),
            ),
            0..40,
        ),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            Just(vec![b'x'; MAX_RESPONSE_BODY_BYTES + 1]),
        ],
    ) -> HttpResponse {
        HttpResponse { status, headers, body }
    }
}

prop_compose! {
    fn outcome()(
        event in prop::option::of(event()),
        call_record in prop::option::of(record()),
        response in prop::option::of(response()),
    ) -> Outcome {
        Outcome {
            event,
            call_record,
            response,
            delivery_id: None,
        }
    }
}

fn phone_is_sendable(phone: &str) -> bool {
    !phone.is_empty()
        && phone.len() <= MAX_PHONE_LEN
        && phone.trim() == phone
        && phone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || PHONE_CHARS.contains(c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn accepted_results_can_be_sent_and_stored(outcome in outcome()) {
        match validate(&outcome) {
            Ok(()) => {
                if let Some(event) = &outcome.event {
                    prop_assert!(event.src_phone.as_deref().is_none_or(phone_is_sendable));
                    prop_assert!(event.dst_phone.as_deref().is_none_or(phone_is_sendable));
                    prop_assert!(event.call_id.is_some() || !event.parties().names_only_its_call());
                    prop_assert!(event.src_phone_ext.is_none() || event.direction == Some(Direction::In));
                    prop_assert!(event.dst_phone_ext.is_none() || event.direction == Some(Direction::Out));
                    prop_assert!(event.call_id.as_deref().is_none_or(|id| !id.chars().any(char::is_control)));
                }
                if let Some(response) = &outcome.response {
                    let status = StatusCode::from_u16(response.status);
                    prop_assert!(status.is_ok_and(|status| !status.is_informational()));
                    prop_assert!(response.body.len() <= MAX_RESPONSE_BODY_BYTES);
                    for (name, value) in &response.headers {
                        prop_assert!(HeaderName::from_bytes(name.as_bytes()).is_ok(), "{name:?}");
                        prop_assert!(HeaderValue::from_str(value).is_ok(), "{value:?}");
                        prop_assert!(!HOST_OWNED_HEADERS.contains(&name.to_ascii_lowercase().as_str()));
                    }
                }
            }
            Err(violations) => {
                prop_assert!(!violations.0.is_empty());
                for violation in &violations.0 {
                    let part = violation.field.split(['.', '[']).next().unwrap_or_default();
                    prop_assert!(
                        ["event", "call_record", "response"].contains(&part),
                        "{}", violation.field
                    );
                    match part {
                        "event" => prop_assert!(outcome.event.is_some()),
                        "call_record" => prop_assert!(outcome.call_record.is_some()),
                        _ => prop_assert!(outcome.response.is_some()),
                    }
                }
            }
        }
    }
}
