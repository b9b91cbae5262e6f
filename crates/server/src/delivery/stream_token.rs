//! Stream tokens: what the platform hands a browser so that it can follow one user's calls
//! (`GET /stream/calls?token=...`) without ever holding the tenant's token. A browser's
//! `EventSource` cannot send headers, so the token travels in the URL: it names one user of
//! one tenant and expires, and the host checks it without storing anything.
//!
//! A token is `CLAIMS.MAC`: the base64url of `{"t": tenant, "u": user, "e": expiry}` (Unix
//! seconds) and its HMAC-SHA256 under a key derived from the admin token, so that replacing
//! the admin token revokes every stream token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a stream token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token this host minted (or minted under another admin token).
    #[error("the stream token is not valid")]
    Invalid,
    /// It was valid until its expiry.
    #[error("the stream token expired")]
    Expired,
}

/// Whom a valid token lets stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The tenant.
    #[serde(rename = "t")]
    pub tenant_id: String,
    /// The user of the tenant whose calls it streams.
    #[serde(rename = "u")]
    pub user: String,
    /// When it expires, in Unix seconds.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Mints and checks stream tokens.
#[derive(Clone)]
pub struct StreamTokens {
    key: [u8; 32],
}

impl StreamTokens {
    /// The tokens keyed by `secret` (the admin token).
    pub fn new(secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"telehook stream tokens\0");
        hasher.update(secret.as_bytes());
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        Hmac::new_from_slice(&self.key).expect("HMAC takes any key")
    }

    /// A token for `user` of `tenant_id`, valid for `ttl` from now; and its expiry.
    pub fn mint(&self, tenant_id: &str, user: &str, ttl: Duration) -> (String, SystemTime) {
        let expires_at = SystemTime::now() + ttl;
        let grant = Grant {
            tenant_id: tenant_id.to_owned(),
            user: user.to_owned(),
            expires: unix(expires_at),
        };
        // A struct of strings and a number always serialises.
        #[allow(clippy::expect_used)]
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&grant).expect("serialises"));
        let mut mac = self.mac();
        mac.update(claims.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{claims}.{tag}"), expires_at)
    }

    /// Whom `token` lets stream, if it is valid and has not expired.
    pub fn check(&self, token: &str) -> Result<Grant, TokenError> {
        let (claims, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(claims.as_bytes());
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let grant: Grant = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Invalid)?;
        if grant.expires <= unix(SystemTime::now()) {
            return Err(TokenError::Expired);
        }
        Ok(grant)
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_grants_its_user_until_it_expires_and_only_under_its_key() {
        let tokens = StreamTokens::new("admin-token");
        let (token, _) = tokens.mint("acme", "anna.k@example.com", Duration::from_secs(60));
        let grant = tokens.check(&token).expect("valid");
        assert_eq!(
            (grant.tenant_id.as_str(), grant.user.as_str()),
            ("acme", "anna.k@example.com")
        );

        assert_eq!(
            StreamTokens::new("another admin token").check(&token),
            Err(TokenError::Invalid)
        );
        let (claims, tag) = token.split_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD.encode(br#"{"t":"acme","u":"boris","e":99999999999}"#);
        assert_eq!(
            tokens.check(&format!("{forged}.{tag}")),
            Err(TokenError::Invalid)
        );
        assert_eq!(tokens.check(claims), Err(TokenError::Invalid));

        let (expired, _) = tokens.mint("acme", "anna", Duration::ZERO);
        assert_eq!(tokens.check(&expired), Err(TokenError::Expired));
    }
}
