//! Phone numbers as providers send them, made into what the host accepts and the platform
//! matches users on.
//!
//! Providers send `sip:101@pbx.example.com;user=phone`, `"Reception" <sip:101@pbx>`,
//! `anonymous`, `+266696687` (Twilio's caller with the number withheld) or a national number
//! with a trunk prefix. [`number`] turns each into the plain number (or [`ANONYMOUS`]), and
//! [`check`] applies the host's own rule, so that a unit test finds a number the host would
//! refuse rather than the first webhook in production.

pub use telehook_outcome::validate::{MAX_EXTENSION_LEN, MAX_PHONE_LEN, PHONE_CHARS};

/// What a parser reports for a caller who withheld the number: the host needs a phone, and
/// this one matches no user.
pub const ANONYMOUS: &str = "anonymous";

/// Markers providers use for a withheld or unknown caller (compared ignoring case), and
/// Twilio's `+266696687`, "ANONYMOUS" on a keypad.
const ANONYMOUS_MARKERS: &[&str] = &[
    "anonymous",
    "restricted",
    "private",
    "unavailable",
    "unknown",
    "withheld",
    "+266696687",
    "266696687",
];

/// Whether `raw` says the caller withheld the number (or sent none at all).
pub fn is_anonymous(raw: &str) -> bool {
    let user = sip_user(raw);
    user.is_empty()
        || ANONYMOUS_MARKERS
            .iter()
            .any(|marker| marker.eq_ignore_ascii_case(user))
}

/// The user part of a SIP or tel URI (`sip:101@pbx;user=phone` is `101`, `tel:+7916;ext=1` is
/// `+7916`), with a display name and angle brackets taken off; any other text, trimmed.
pub fn sip_user(raw: &str) -> &str {
    let mut text = raw.trim();
    if let (Some(open), Some(close)) = (text.find('<'), text.rfind('>'))
        && open < close
    {
        text = &text[open + 1..close];
    }
    let lower = text
        .get(..5)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let scheme = ["sips:", "sip:", "tel:"]
        .into_iter()
        .find(|scheme| lower.starts_with(scheme));
    let Some(scheme) = scheme else {
        return text;
    };
    let rest = &text[scheme.len()..];
    let user = rest.split_once('@').map_or(rest, |(user, _)| user);
    user.split(';').next().unwrap_or(user).trim()
}

/// The number a provider's field names: the SIP URI's user part, or [`ANONYMOUS`] for a
/// withheld caller. Formatting inside the number is kept; see [`e164`] to normalise it.
pub fn number(raw: &str) -> String {
    if is_anonymous(raw) {
        ANONYMOUS.to_owned()
    } else {
        sip_user(raw).to_owned()
    }
}

/// The number in E.164 (`+` and 8 to 15 digits), for platforms that match clients on it.
///
/// Spaces, dots, dashes and brackets are dropped; `00` and `+` mean an international number;
/// otherwise a number that already starts with `country_code` gets a `+`, and a national one
/// loses its trunk prefix (`0`, or `8` for country code `7`) and gains `+country_code`.
/// `None` for anything that does not come out as a plausible E.164 number: an extension, a
/// service code, an anonymous caller. Then keep the provider's form.
pub fn e164(raw: &str, country_code: &str) -> Option<String> {
    let raw = sip_user(raw);
    if raw
        .chars()
        .any(|c| !c.is_ascii_digit() && !"+ .-()/".contains(c))
    {
        return None;
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let international = raw.trim_start().starts_with('+');
    let national_len = 15usize.saturating_sub(country_code.len());
    let full = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if country_code == "7" && digits.len() == 11 && digits.starts_with('8') {
        format!("7{}", &digits[1..])
    } else if digits.starts_with(country_code) && digits.len() > national_len.min(10) {
        digits
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("{country_code}{national}")
    } else if digits.len() >= 7 {
        format!("{country_code}{digits}")
    } else {
        return None;
    };
    ((8..=15).contains(&full.len()) && !full.starts_with('0')).then(|| format!("+{full}"))
}

/// Whether the host accepts `phone` as a `src_phone` or `dst_phone`; the error says why not,
/// in the host's own words.
pub fn check(phone: &str) -> Result<(), String> {
    telehook_outcome::validate::check_phone(phone, MAX_PHONE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris_give_their_user_part() {
        assert_eq!(sip_user("sip:101@pbx.example.com"), "101");
        assert_eq!(sip_user("SIP:101@pbx;user=phone"), "101");
        assert_eq!(
            sip_user("sips:+74951112233@sip.example.com:5061"),
            "+74951112233"
        );
        assert_eq!(sip_user("\"Reception\" <sip:102@pbx>;tag=1"), "102");
        assert_eq!(sip_user("tel:+79161234567;ext=12"), "+79161234567");
        assert_eq!(sip_user(" +7 916 123-45-67 "), "+7 916 123-45-67");
    }

    #[test]
    fn withheld_callers_are_anonymous() {
        for raw in [
            "anonymous",
            "Anonymous",
            "sip:anonymous@anonymous.invalid",
            "+266696687",
            "",
            "Restricted",
        ] {
            assert!(is_anonymous(raw), "{raw}");
            assert_eq!(number(raw), ANONYMOUS);
        }
        assert!(!is_anonymous("+79161234567"));
        assert_eq!(number("sip:101@pbx"), "101");
        assert!(check(ANONYMOUS).is_ok());
    }

    #[test]
    fn numbers_become_e164() {
        assert_eq!(
            e164("+7 (916) 123-45-67", "7").as_deref(),
            Some("+79161234567")
        );
        assert_eq!(e164("89161234567", "7").as_deref(), Some("+79161234567"));
        assert_eq!(e164("79161234567", "7").as_deref(), Some("+79161234567"));
        assert_eq!(
            e164("0046 8 123 456 78", "46").as_deref(),
            Some("+46812345678")
        );
        assert_eq!(e164("08-123 456 78", "46").as_deref(), Some("+46812345678"));
        assert_eq!(e164("4155550100", "1").as_deref(), Some("+14155550100"));
        assert_eq!(
            e164("sip:+14155550100@sip.twilio.com", "1").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(e164("101", "7"), None);
        assert_eq!(e164("anonymous", "7"), None);
        assert_eq!(e164("*100#", "7"), None);
    }

    #[test]
    fn check_uses_the_hosts_rule() {
        assert!(check("+79161234567").is_ok());
        assert!(check("sip:101@pbx").is_ok());
        let err = check("+7916\n").unwrap_err();
        assert!(err.contains("allowed are"), "{err}");
        assert!(check(&"1".repeat(MAX_PHONE_LEN + 1)).is_err());
        assert!(check("").is_err());
    }
}
