//! Verifies a webhook signed over the URL the provider called, by Twilio's documented scheme
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>): the full URL (scheme,
//! host, path and query), then every POST parameter sorted by name as name and value with no
//! separator, HMAC-SHA1 with the account's auth token, base64, in `x-twilio-signature`.
//!
//! The signature covers the scheme and host, which only contract 0.2.0's `url` carries: the
//! host's tests send it over HTTP/2 (no `host` header) and behind a proxy, and expect a
//! forged or re-addressed request to be refused with `403`, as Twilio's own middleware does.

use telehook_guest::prelude::*;

struct UrlSigned;

impl Parser for UrlSigned {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let token = settings::require("auth_token")?;
        let signature = request
            .header("x-twilio-signature")
            .ok_or_else(|| ParseError::unauthorized("no x-twilio-signature header"))?;
        let form = request.form();
        let mut params: Vec<(&str, &str)> = form
            .pairs()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        params.sort_unstable();
        let mut signed = request.url.clone();
        for (name, value) in params {
            signed.push_str(name);
            signed.push_str(value);
        }
        let expected =
            crypto::base64_encode(&crypto::hmac_sha1(token.as_bytes(), signed.as_bytes()));
        if !crypto::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(ParseError::forbidden(format!(
                "the signature does not match {}",
                request.url
            )));
        }
        let event = TelephonyEvent::new(
            EventType::NotifyStart,
            Direction::In,
            form.require("From")?,
            form.require("To")?,
        )
        .with_call_id(form.require("CallSid")?);
        Ok(ParseResult::with_event(event))
    }
}

telehook_guest::export_parser!(UrlSigned);
