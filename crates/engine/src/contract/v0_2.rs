//! `telehook:parser@0.2.0` (`wit/parser.wit`), the current contract: the request carries the
//! URL the provider called, the route suffix and the receive time; a refusal may name its
//! status; a result may carry the provider's delivery id; an event and a call record may name
//! only their call.

use wasmtime::Store;
use wasmtime::component::Func;

use super::{Called, DEFAULT_REFUSAL_STATUS, Refusal};
use crate::outcome::{self, Outcome};
use crate::request::WebhookRequest;
use crate::sandbox::Sandbox;
use crate::validate::{Violation, Violations};

wasmtime::component::bindgen!({
    world: "parser",
    path: "../../wit",
});

use self::telehook::parser::host;
use self::telehook::parser::types as wit;

/// This version's package.
pub(crate) const PACKAGE: &str = "telehook:parser@0.2.0";

/// The statuses a refusal may name: the provider's request was at fault.
const REFUSAL_STATUSES: std::ops::RangeInclusive<u16> = 400..=499;

super::same_in_every_version!();

/// Calls a 0.2.0 parser's export.
pub(super) fn call(
    store: &mut Store<Sandbox>,
    func: Func,
    request: &WebhookRequest,
) -> wasmtime::Result<Called> {
    Ok(match call_export(store, func, request)? {
        Ok(result) => Ok(Ok(outcome(result))),
        Err(refusal) => refused(refusal),
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
            url: request.url.clone(),
            route_suffix: request.route_suffix.clone(),
            received_at_ms: request.received_at_ms(),
        }
    }
}

/// A refusal, with its status checked: a parser may not answer a refusal with a success.
fn refused(refusal: wit::ParseError) -> Called {
    match refusal.status {
        Some(status) if !REFUSAL_STATUSES.contains(&status) => {
            Ok(Err(Violations(vec![Violation {
                field: "parse_error.status".into(),
                rule: format!("must be 400 to 499 (the request was at fault), not {status}"),
            }])))
        }
        status => Err(Refusal {
            message: refusal.message,
            status: status.unwrap_or(DEFAULT_REFUSAL_STATUS),
        }),
    }
}

/// The result in the host's types. An event or a call record that names only its call keeps
/// its gaps: validation allows them only with a call id, and the server completes them from
/// the call's earlier events.
fn outcome(result: wit::ParseResult) -> Outcome {
    Outcome {
        event: result.event.map(Into::into),
        call_record: result.call_record.map(Into::into),
        response: result.response.map(Into::into),
        delivery_id: result.delivery_id,
    }
}

impl From<wit::TelephonyEvent> for outcome::TelephonyEvent {
    fn from(event: wit::TelephonyEvent) -> Self {
        Self {
            event: event.event.into(),
            direction: event.direction.map(Into::into),
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
            direction: record.direction.map(Into::into),
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
            prop_assert_eq!(&converted.url, &path);
            prop_assert_eq!(converted.received_at_ms, request.received_at_ms());
        }
    }

    fn refusal(status: Option<u16>) -> wit::ParseError {
        wit::ParseError {
            message: "bad signature".into(),
            status,
        }
    }

    #[test]
    fn a_refusal_gets_its_status_or_400_and_never_a_success() {
        let forbidden = refused(refusal(Some(403)));
        assert_eq!(forbidden.err().map(|refusal| refusal.status), Some(403));
        let default = refused(refusal(None));
        assert_eq!(default.err().map(|refusal| refusal.status), Some(400));
        let Ok(Err(violations)) = refused(refusal(Some(200))) else {
            panic!("a refusal answered 200 was accepted");
        };
        assert_eq!(violations.0[0].field, "parse_error.status");
    }
}
