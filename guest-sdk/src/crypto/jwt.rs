//! JSON Web Tokens signed with HS256 (RFC 7519), as Vonage signs its webhooks.
//!
//! Only what a webhook check needs: the token's HMAC-SHA256 under a shared secret, its `alg`
//! (anything but `HS256`, `none` included, is refused, so a forger cannot pick the algorithm),
//! and its time claims against the request's receive time. What the claims must say beyond
//! that (Vonage's `payload_hash`, an issuer) is the provider's, so the parser reads them from
//! the returned claims.

use serde_json::{Map, Value};

use super::{base64url_decode, constant_time_eq, hmac_sha256};
use crate::ParseError;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts with a JSON header and claims.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// Signed with another algorithm than HS256.
    #[error("the token is signed with `{0}`, not HS256")]
    Algorithm(String),
    /// The signature does not match the secret.
    #[error("the token's signature is wrong")]
    Signature,
    /// `exp` has passed (with the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not come yet (with the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
}

impl From<JwtError> for ParseError {
    /// A bad token is the sender's fault and proves nothing about who sent it: `401`.
    fn from(err: JwtError) -> Self {
        ParseError::unauthorized(err.to_string())
    }
}

/// Verifies an HS256 `token` under `secret` at `now_secs` (Unix seconds, the request's receive
/// time), allowing `leeway_secs` of clock skew on `exp` and `nbf`, and returns its claims.
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    now_secs: i64,
    leeway_secs: i64,
) -> Result<Map<String, Value>, JwtError> {
    let three_parts = JwtError::Malformed("not three dot-separated parts");
    let (signed, signature) = token.trim().rsplit_once('.').ok_or(three_parts.clone())?;
    let (header, claims) = signed.split_once('.').ok_or(three_parts.clone())?;
    if claims.contains('.') {
        return Err(three_parts);
    }
    let header = json_part(header, "the header")?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        other => return Err(JwtError::Algorithm(other.unwrap_or("nothing").to_owned())),
    }
    let signature =
        base64url_decode(signature).ok_or(JwtError::Malformed("the signature is not base64url"))?;
    if !constant_time_eq(&hmac_sha256(secret, signed.as_bytes()), &signature) {
        return Err(JwtError::Signature);
    }
    let claims = json_part(claims, "the claims")?;
    let time = |name| claims.get(name).and_then(Value::as_i64);
    if time("exp").is_some_and(|exp| now_secs > exp + leeway_secs) {
        return Err(JwtError::Expired);
    }
    if time("nbf").is_some_and(|nbf| now_secs + leeway_secs < nbf) {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

fn json_part(part: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = base64url_decode(part).ok_or(JwtError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::base64url_encode;

    fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            base64url_encode(header.as_bytes()),
            base64url_encode(claims.as_bytes())
        );
        let signature = base64url_encode(&hmac_sha256(secret, signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    // RFC 7515 appendix A.1: the HS256 example, with its key and its claims (exp 1300819380).
    #[test]
    fn accepts_the_rfc_7515_example() {
        let token = concat!(
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
            ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
            ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        let key = base64url_decode(concat!(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75",
            "aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
        ))
        .expect("base64url");
        let claims = verify_hs256(token, &key, 1_300_819_000, 0).expect("valid");
        assert_eq!(claims["iss"], "joe");
        assert_eq!(
            verify_hs256(token, &key, 1_300_819_381, 0),
            Err(JwtError::Expired)
        );
        assert!(verify_hs256(token, &key, 1_300_819_381, 60).is_ok());
        assert_eq!(
            verify_hs256(token, b"another key", 1_300_819_000, 0),
            Err(JwtError::Signature)
        );
    }

    #[test]
    fn refuses_other_algorithms_and_tampered_claims() {
        let none = sign(r#"{"alg":"none"}"#, r#"{"a":1}"#, b"k");
        assert_eq!(
            verify_hs256(&none, b"k", 0, 0),
            Err(JwtError::Algorithm("none".into()))
        );
        let token = sign(r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"nbf":100}"#, b"k");
        assert_eq!(
            verify_hs256(&token, b"k", 50, 0),
            Err(JwtError::NotYetValid)
        );
        assert!(verify_hs256(&token, b"k", 100, 0).is_ok());
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let (header, _) = signed.split_once('.').expect("three parts");
        let tampered = format!("{header}.{}.{signature}", base64url_encode(br#"{"nbf":1}"#));
        assert_eq!(
            verify_hs256(&tampered, b"k", 100, 0),
            Err(JwtError::Signature)
        );
        assert!(matches!(
            verify_hs256("a.b", b"k", 0, 0),
            Err(JwtError::Malformed(_))
        ));
        let err: ParseError = JwtError::Signature.into();
        assert_eq!(err.status, Some(401));
    }
}
