//! The Standard Webhooks signature (spec v1.0.0) every forwarded update carries, so that an
//! endpoint can tell our deliveries from forgeries with any of the spec's libraries.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is its
//! HMAC-SHA256 under the endpoint's secret, base64, prefixed `v1,`. A secret is shown as
//! `whsec_` followed by the base64 of its bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a shown secret starts with.
const PREFIX: &str = "whsec_";

/// The fewest bytes a secret may have (the spec's minimum); generated ones have 32.
const MIN_SECRET_BYTES: usize = 24;

/// Why a secret given by an admin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Not `whsec_` followed by base64.
    #[error("a signing secret is `whsec_` followed by base64: {0}")]
    Malformed(String),
    /// Too few bytes to be safe.
    #[error("a signing secret needs at least {MIN_SECRET_BYTES} bytes, this one has {0}")]
    TooShort(usize),
}

/// An endpoint's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new secret of 32 bytes from the operating system's random source.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = vec![0; 32];
        getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
        Ok(Self(bytes))
    }

    /// Reads a secret as shown (`whsec_...`).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| SecretError::Malformed("it does not start with `whsec_`".into()))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|err| SecretError::Malformed(err.to_string()))?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The secret as shown: `whsec_` and its base64.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` header's value for a delivery of `body` with this id, at
    /// `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_specifications_test_vector() {
        // The test vector of the Standard Webhooks reference libraries
        // (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs).
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("valid");
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#,
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn a_secret_is_shown_as_it_is_read_and_bad_ones_are_refused() {
        let secret = Secret::generate().expect("random");
        assert_eq!(Secret::parse(&secret.reveal()), Ok(secret));
        assert!(matches!(
            Secret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Malformed(_))
        ));
        assert!(matches!(
            Secret::parse("whsec_not base64!"),
            Err(SecretError::Malformed(_))
        ));
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ="),
            Err(SecretError::TooShort(5))
        );
    }
}
