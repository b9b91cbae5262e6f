//! The primitives providers build their request signatures from.
//!
//! Zadarma signs with base64(hex(HMAC-SHA1)) over selected fields, Twilio with
//! base64(HMAC-SHA1) over the URL and sorted parameters, Mango with a plain SHA-256 over key,
//! body and salt, Vonage with an HS256 JWT, Telnyx with Ed25519. Each provider's exact
//! construction belongs in its parser; this module keeps the cryptography in one reviewed
//! place, built on the RustCrypto and dalek crates. Compare signatures with
//! [`constant_time_eq`], never with `==`, so that the time taken does not reveal how much of a
//! forged signature was right.

pub mod jwt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;

/// SHA-1 digest (Exotel's and older providers' token hashes).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

/// SHA-256 digest (Mango Office's `sign`, Vonage's `payload_hash`, Twilio's `bodySHA256`).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// HMAC-SHA1 of `message` keyed with `key` (Zadarma, Twilio).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC accepts keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `message` keyed with `key` (Plivo, JWT HS256, Standard Webhooks).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether `signature` is a valid Ed25519 signature of `message` under `public_key` (Telnyx).
///
/// The strict check (RFC 8032 with canonical encodings, no small-order keys), so that a
/// signature has exactly one accepted form. `false` for a key or signature of the wrong
/// length or encoding, as for a wrong signature: a parser has nothing to do with the
/// difference but refuse. Built for WebAssembly, the host computes it natively (contract
/// 0.3's `verify-ed25519`): in a guest it costs several times the rest of a parse
/// (BENCHMARKS.md); in a native test it is [`ed25519_verify_in_guest`].
pub fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::telehook::parser::host::verify_ed25519(public_key, message, signature);
    #[cfg(not(target_arch = "wasm32"))]
    return ed25519_verify_in_guest(public_key, message, signature);
}

/// [`ed25519_verify`] computed by the parser itself, with `ed25519-dalek`: the same answer,
/// without the host's import, at the guest's speed.
pub fn ed25519_verify_in_guest(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .is_ok_and(|key| key.verify_strict(message, &signature).is_ok())
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

/// URL-safe base64 without padding, as JWTs and most URL-borne tokens use it.
pub fn base64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes URL-safe base64, with or without padding; `None` when the text is not base64url.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
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

    // FIPS 180-2 appendix examples: "abc".
    #[test]
    fn digests_match_fips_vectors() {
        assert_eq!(
            hex_encode(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex_encode(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    // RFC 8032 section 7.1, TEST 2: a one-byte message.
    #[test]
    fn ed25519_accepts_the_rfc_vector_and_nothing_else() {
        let key = hex_decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
            .expect("hex");
        let signature = hex_decode(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ))
        .expect("hex");
        assert!(ed25519_verify(&key, &[0x72], &signature));
        assert!(ed25519_verify_in_guest(&key, &[0x72], &signature));
        assert!(!ed25519_verify(&key, &[0x73], &signature));
        let mut forged = signature.clone();
        forged[0] ^= 1;
        assert!(!ed25519_verify(&key, &[0x72], &forged));
        assert!(!ed25519_verify(&key[..31], &[0x72], &signature));
        assert!(!ed25519_verify(&key, &[0x72], &signature[..63]));
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
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64url_decode("-_8=").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64url_decode("+/8"), None);
        assert_eq!(hex_decode("ABcd").as_deref(), Some(&[0xab, 0xcd][..]));
        assert_eq!(hex_decode("xyz"), None);
    }
}
