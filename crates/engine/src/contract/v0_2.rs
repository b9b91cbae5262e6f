//! `telehook:parser@0.2.0` (`wit/0.2.0/parser.wit`, frozen): the request carries the URL the
//! provider called, the route suffix and the receive time; a refusal may name its status; a
//! result may carry the provider's delivery id; an event and a call record may name only their
//! call.

use crate::sandbox::Sandbox;

wasmtime::component::bindgen!({
    world: "parser",
    path: "../../wit/0.2.0",
});

use self::telehook::parser::host;
use self::telehook::parser::types as wit;

/// This version's package.
pub(crate) const PACKAGE: &str = "telehook:parser@0.2.0";

super::same_in_every_version!();
super::same_since_0_2!(|refusal| None);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::contract::Called;
    use crate::request::WebhookRequest;

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

    fn refusal(status: Option<u16>) -> Called {
        refused("bad signature".into(), status, None)
    }

    #[test]
    fn a_refusal_gets_its_status_or_400_and_never_a_success() {
        let forbidden = refusal(Some(403));
        assert_eq!(forbidden.err().map(|refusal| refusal.status), Some(403));
        let default = refusal(None);
        assert_eq!(default.err().map(|refusal| refusal.status), Some(400));
        let Ok(Err(violations)) = refusal(Some(200)) else {
            panic!("a refusal answered 200 was accepted");
        };
        assert_eq!(violations.0[0].field, "parse_error.status");
    }
}
