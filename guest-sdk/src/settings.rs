//! The integration's settings, filled in by an admin (API keys, the provider's API secret).

use crate::ParseError;
use crate::bindings::telehook::parser::host;

/// Reads a setting; `None` when the admin has not set it.
pub fn get(key: &str) -> Option<String> {
    host::get_setting(key)
}

/// Reads a setting the parser cannot work without, naming it in the error when it is missing.
pub fn require(key: &str) -> Result<String, ParseError> {
    get(key)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ParseError::new(format!("the integration setting `{key}` is not set")))
}
