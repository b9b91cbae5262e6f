//! `telehook:parser@0.1.0` (`wit/0.1.0/parser.wit`, frozen): the first published contract.
//! Its request has no URL, route suffix or receive time, its refusals are always `400`, and its
//! events always name both parties; it maps onto the host's types without loss.

use wasmtime::Store;
use wasmtime::component::Func;

use super::{Called, DEFAULT_REFUSAL_STATUS, Refusal};
use crate::outcome::{self, Outcome};
use crate::request::WebhookRequest;
use crate::sandbox::Sandbox;

wasmtime::component::bindgen!({
    world: "parser",
    path: "../../wit/0.1.0",
});

use self::telehook::parser::host;
use self::telehook::parser::types as wit;

/// This version's package.
pub(crate) const PACKAGE: &str = "telehook:parser@0.1.0";

super::same_in_every_version!();

/// Calls a 0.1.0 parser's export.
pub(super) fn call(
    store: &mut Store<Sandbox>,
    func: Func,
    request: &WebhookRequest,
) -> wasmtime::Result<Called> {
    Ok(match call_export(store, func, request)? {
        Ok(result) => Ok(Ok(Outcome::from(result))),
        Err(refusal) => Err(Refusal {
            message: refusal.message,
            status: DEFAULT_REFUSAL_STATUS,
            setting: None,
        }),
    })
}

impl From<&WebhookRequest> for wit::Request {
    fn from(request: &WebhookRequest) -> Self {
        Self {
            method: request.method.clone(),
            path_with_query: request.path_with_query.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        }
    }
}

impl From<wit::ParseResult> for Outcome {
    fn from(result: wit::ParseResult) -> Self {
        Self {
            event: result.event.map(Into::into),
            call_record: result.call_record.map(Into::into),
            response: result.response.map(Into::into),
            delivery_id: None,
        }
    }
}

impl From<wit::TelephonyEvent> for outcome::TelephonyEvent {
    fn from(event: wit::TelephonyEvent) -> Self {
        Self {
            event: event.event.into(),
            direction: Some(event.direction.into()),
            disposition: event.disposition.into(),
            src_phone: Some(event.src_phone),
            src_phone_ext: event.src_phone_ext,
            dst_phone: Some(event.dst_phone),
            dst_phone_ext: event.dst_phone_ext,
            call_id: event.call_id,
        }
    }
}

impl From<wit::CallRecord> for outcome::CallRecord {
    fn from(record: wit::CallRecord) -> Self {
        Self {
            call_id: record.call_id,
            direction: Some(record.direction.into()),
            disposition: record.disposition.into(),
            src_phone: Some(record.src_phone),
            src_phone_ext: record.src_phone_ext,
            dst_phone: Some(record.dst_phone),
            dst_phone_ext: record.dst_phone_ext,
            duration: record.duration,
            call: record.call,
        }
    }
}
