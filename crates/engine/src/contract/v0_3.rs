//! `telehook:parser@0.3.0` (`wit/parser.wit`), the current contract: a refusal may name the
//! integration setting that is missing or wrong (the admin's to fix, so the provider retries),
//! and the host offers `redact` (values of the request never to show) and `verify-ed25519`
//! (done natively).

use crate::sandbox::Sandbox;

wasmtime::component::bindgen!({
    world: "parser",
    path: "../../wit",
});

use self::telehook::parser::host;
use self::telehook::parser::types as wit;

/// This version's package.
pub(crate) const PACKAGE: &str = "telehook:parser@0.3.0";

super::same_in_every_version! {
    fn redact(&mut self, secret: String) {
        Sandbox::redact(self, &secret);
    }

    fn verify_ed25519(&mut self, public_key: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> bool {
        Sandbox::verify_ed25519(&public_key, &message, &signature)
    }
}
super::same_since_0_2!(|refusal| refusal.setting);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_that_names_a_setting_is_the_admins_whatever_its_status() {
        let Err(refusal) = refused("no secret".into(), Some(200), Some("api_secret".into())) else {
            panic!("a configuration refusal was taken for an invalid result");
        };
        assert_eq!(refusal.setting.as_deref(), Some("api_secret"));
        let Ok(Err(violations)) = refused("bad".into(), Some(200), None) else {
            panic!("a refusal answered 200 was accepted");
        };
        assert_eq!(violations.0[0].field, "parse_error.status");
    }
}
