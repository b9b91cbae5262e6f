//! Verifies the request body's Ed25519 signature the way Telnyx signs (over
//! `timestamp|body`, the signature in base64 in a header, the key a base64 setting), where the
//! `x-verify` header says: `host` (contract 0.3's import, native), `guest` (ed25519-dalek in
//! the guest) or `none` (decode everything, verify nothing: the baseline).

use telehook_guest::prelude::*;

struct Ed25519Check;

impl Parser for Ed25519Check {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let decode = |text: &str, what: &str| {
            crypto::base64_decode(text)
                .ok_or_else(|| ParseError::new(format!("{what} is not base64")))
        };
        let key = decode(&settings::require("public_key")?, "the key")?;
        let signature = decode(
            request
                .header("telnyx-signature-ed25519")
                .unwrap_or_default(),
            "the signature",
        )?;
        let mut signed = request
            .header("telnyx-timestamp")
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        signed.push(b'|');
        signed.extend_from_slice(&request.body);
        let valid = match request.header("x-verify") {
            Some("host") => crypto::ed25519_verify(&key, &signed, &signature),
            Some("guest") => crypto::ed25519_verify_in_guest(&key, &signed, &signature),
            _ => true,
        };
        if !valid {
            return Err(ParseError::unauthorized("the signature does not match"));
        }
        Ok(ParseResult::empty())
    }
}

telehook_guest::export_parser!(Ed25519Check);
