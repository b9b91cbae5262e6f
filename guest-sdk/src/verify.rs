//! The primitives providers build their request signatures from.
//!
//! Zadarma signs with base64(HMAC-SHA1) over selected fields, Twilio with base64(HMAC-SHA1)
//! over the URL and sorted parameters, others with hex(HMAC-SHA256) over the body. Each
//! provider's exact construction belongs in its parser; this module keeps the cryptography in
//! one reviewed place. Compare signatures with [`constant_time_eq`], never with `==`, so that
//! the time taken does not reveal how much of a forged signature was right.

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// HMAC-SHA1 of `message` keyed with `key` (Zadarma, Twilio).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC accepts keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `message` keyed with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 with padding; `None` when the text is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Lower-case hexadecimal.
pub fn hex_encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Decodes hexadecimal of either case; `None` when the text is not hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 2202 test case 2 and RFC 4231 test case 2: key "Jefe".
    #[test]
    fn hmac_matches_rfc_vectors() {
        let message = b"what do ya want for nothing?";
        assert_eq!(
            hex_encode(&hmac_sha1(b"Jefe", message)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex_encode(&hmac_sha256(b"Jefe", message)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn codecs_round_trip_and_reject_garbage() {
        assert_eq!(base64_encode(b"hi"), "aGk=");
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(hex_decode("ABcd").as_deref(), Some(&[0xab, 0xcd][..]));
        assert_eq!(hex_decode("xyz"), None);
    }
}
