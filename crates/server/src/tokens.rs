//! Secrets in URLs and headers: generated from the OS's random source, compared in constant
//! time, and stored hashed where the plain value need not be shown again.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new 256-bit token, hex-encoded.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(hex::encode(bytes))
}

/// The SHA-256 of a token, hex-encoded: what is stored for tenant tokens.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented token equals the expected one, in time independent of where they differ.
pub fn matches(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compare_exactly() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(matches(&a, &a.clone()));
        assert!(!matches(&a, &b));
        assert!(!matches(&a, &a[..63]));
        assert_eq!(hash("abc").len(), 64);
    }
}
