//! The WIT contract (`wit/`), as Rust: generated bindings and the conversions between the
//! generated types and the host's own ([`crate::outcome`], [`crate::WebhookRequest`]).
//!
//! This is the only module that sees generated types, so that a new contract version changes
//! this file and nothing else.

use crate::outcome::{self, Outcome};
use crate::request::WebhookRequest;

wasmtime::component::bindgen!({
    world: "parser",
    path: "../../wit",
});

pub use self::telehook::parser::host::{Host, LogLevel};
use self::telehook::parser::types as wit;

/// The contract version this host implements; guests must import this package version.
pub const PACKAGE: &str = "telehook:parser@0.1.0";

/// The name of the one function a parser exports.
pub const EXPORT: &str = "parse-webhook-request";

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
        }
    }
}

impl From<wit::TelephonyEvent> for outcome::TelephonyEvent {
    fn from(event: wit::TelephonyEvent) -> Self {
        Self {
            event: event.event.into(),
            direction: event.direction.into(),
            disposition: event.disposition.into(),
            src_phone: event.src_phone,
            src_phone_ext: event.src_phone_ext,
            dst_phone: event.dst_phone,
            dst_phone_ext: event.dst_phone_ext,
            call_id: event.call_id,
        }
    }
}

impl From<wit::CallRecord> for outcome::CallRecord {
    fn from(record: wit::CallRecord) -> Self {
        Self {
            call_id: record.call_id,
            direction: record.direction.into(),
            disposition: record.disposition.into(),
            src_phone: record.src_phone,
            src_phone_ext: record.src_phone_ext,
            dst_phone: record.dst_phone,
            dst_phone_ext: record.dst_phone_ext,
            duration: record.duration,
            call: record.call,
        }
    }
}

impl From<wit::Response> for outcome::HttpResponse {
    fn from(response: wit::Response) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

impl From<wit::EventType> for outcome::EventType {
    fn from(event: wit::EventType) -> Self {
        match event {
            wit::EventType::NotifyStart => Self::NotifyStart,
            wit::EventType::NotifyAnswer => Self::NotifyAnswer,
            wit::EventType::NotifyEnd => Self::NotifyEnd,
        }
    }
}

impl From<wit::Direction> for outcome::Direction {
    fn from(direction: wit::Direction) -> Self {
        match direction {
            wit::Direction::In => Self::In,
            wit::Direction::Out => Self::Out,
            wit::Direction::Internal => Self::Internal,
        }
    }
}

impl From<wit::Disposition> for outcome::Disposition {
    fn from(disposition: wit::Disposition) -> Self {
        match disposition {
            wit::Disposition::Unknown => Self::Unknown,
            wit::Disposition::Answered => Self::Answered,
            wit::Disposition::Busy => Self::Busy,
            wit::Disposition::Cancel => Self::Cancel,
            wit::Disposition::NoAnswer => Self::NoAnswer,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever arrives over HTTP becomes a contract request without panicking and
        /// without losing anything: the method, path, every header in order (names in lower
        /// case), the query decoded from the path, and the body byte for byte.
        #[test]
        fn http_requests_convert_without_loss(
            method in "[A-Za-z]{1,10}",
            path in "/[ -~]{0,60}",
            headers in prop::collection::vec(("[A-Za-z0-9-]{1,20}", ".{0,40}"), 0..20),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let request = WebhookRequest::new(&method, &path, headers.clone(), body.clone());
            let converted = wit::Request::from(&request);
            prop_assert_eq!(&converted.method, &method.to_ascii_uppercase());
            prop_assert_eq!(&converted.path_with_query, &path);
            prop_assert_eq!(converted.headers.len(), headers.len());
            for ((name, value), (sent_name, sent_value)) in converted.headers.iter().zip(&headers) {
                prop_assert_eq!(name, &sent_name.to_ascii_lowercase());
                prop_assert_eq!(value, sent_value);
            }
            let query: Vec<(String, String)> = path
                .split_once('?')
                .map(|(_, query)| {
                    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
                })
                .unwrap_or_default();
            prop_assert_eq!(&converted.query, &query);
            prop_assert_eq!(&converted.body, &body);
        }
    }
}
