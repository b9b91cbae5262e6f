//! The native baseline: what the `generic-json` guest does, compiled into the host. Shared by
//! the invocation benchmark and the end-to-end benchmark's native server.

use serde::Deserialize;
use telehook::outcome::{Direction, Disposition, EventType, Outcome, TelephonyEvent};
use telehook::validate::validate;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    call_id: Option<String>,
    src_phone: String,
    dst_phone: String,
}

/// Parses a `generic-json` body into the same outcome as the guest, and validates it.
pub fn parse(body: &[u8]) -> Result<Outcome, String> {
    let notification: Notification = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    let outcome = Outcome {
        event: Some(TelephonyEvent {
            event: EventType::NotifyStart,
            direction: Some(Direction::In),
            disposition: Disposition::Unknown,
            src_phone: Some(notification.src_phone),
            src_phone_ext: None,
            dst_phone: Some(notification.dst_phone),
            dst_phone_ext: None,
            call_id: notification.call_id,
        }),
        call_record: None,
        response: None,
        delivery_id: None,
    };
    validate(&outcome).map_err(|err| err.to_string())?;
    Ok(outcome)
}
