//! The integration's settings, filled in by an admin (API keys, the provider's API secret).
//!
//! Built for WebAssembly they come from the host; in a native `cargo test` from the
//! [`testing`](crate::testing) harness.

use crate::ParseError;

/// Reads a setting; `None` when the admin has not set it.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::telehook::parser::host::get_setting(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::setting(key);
}

/// Reads a setting the parser cannot work without. When it is missing the error is the
/// admin's, not the provider's ([`ParseError::misconfigured`]): the provider is asked to retry
/// and the integration's health names the setting.
pub fn require(key: &str) -> Result<String, ParseError> {
    get(key).filter(|value| !value.is_empty()).ok_or_else(|| {
        ParseError::misconfigured(key, format!("the integration setting `{key}` is not set"))
    })
}
