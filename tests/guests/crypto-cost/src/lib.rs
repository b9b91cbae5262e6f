//! Runs the check the `x-check` header names over the request, the way providers sign:
//! `none` (read the inputs, check nothing: the baseline), `sha1`, `sha256`, `hmac-sha1`,
//! `hmac-sha256` (over the body, keyed with the `secret` setting, compared with the
//! `x-signature` header's base64), `jwt-hs256` (the `authorization` header's token under the
//! secret), and `ed25519-guest` / `ed25519-host` (Telnyx's construction: the
//! `telnyx-signature-ed25519` header over `telnyx-timestamp|body`, the `public_key` setting, in
//! the guest or through the host's import). A check that fails is a 401, so the benchmark
//! cannot time a shortcut.

use telehook_guest::prelude::*;

struct CryptoCost;

impl Parser for CryptoCost {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let secret = settings::require("secret")?;
        let signature = request.header("x-signature").unwrap_or_default();
        let expected = |mac: &[u8]| {
            crypto::constant_time_eq(crypto::base64_encode(mac).as_bytes(), signature.as_bytes())
        };
        let valid = match request.header("x-check").unwrap_or("none") {
            "none" => true,
            "sha1" => expected(&crypto::sha1(&request.body)),
            "sha256" => expected(&crypto::sha256(&request.body)),
            "hmac-sha1" => expected(&crypto::hmac_sha1(secret.as_bytes(), &request.body)),
            "hmac-sha256" => expected(&crypto::hmac_sha256(secret.as_bytes(), &request.body)),
            "jwt-hs256" => {
                let token = request.header("authorization").unwrap_or_default();
                crypto::jwt::verify_hs256(token, secret.as_bytes(), request.received_at_secs(), 0)
                    .is_ok()
            }
            ed25519 => {
                let key = crypto::base64_decode(&settings::require("public_key")?)
                    .ok_or_else(|| ParseError::new("the key is not base64"))?;
                let signature = crypto::base64_decode(
                    request
                        .header("telnyx-signature-ed25519")
                        .unwrap_or_default(),
                )
                .ok_or_else(|| ParseError::new("the signature is not base64"))?;
                let mut signed = request
                    .header("telnyx-timestamp")
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec();
                signed.push(b'|');
                signed.extend_from_slice(&request.body);
                match ed25519 {
                    "ed25519-guest" => crypto::ed25519_verify_in_guest(&key, &signed, &signature),
                    "ed25519-host" => crypto::ed25519_verify(&key, &signed, &signature),
                    other => return Err(ParseError::new(format!("unknown check `{other}`"))),
                }
            }
        };
        if !valid {
            return Err(ParseError::unauthorized("the signature does not match"));
        }
        Ok(ParseResult::empty())
    }
}

telehook_guest::export_parser!(CryptoCost);
