//! Times as providers write them, as Unix time: a recording's start and end (Telnyx, Vonage),
//! a call's start (3CX, Zadarma's `call_start`), to work out a duration or check a signed
//! timestamp against the request's receive time.

use std::time::UNIX_EPOCH;

/// Milliseconds since the Unix epoch of an RFC 3339 time (`2024-01-29T13:46:22.125Z`,
/// `2024-01-29T16:46:22+03:00`) or of the forms providers loosen it to: a space instead of the
/// `T`, no offset (read as UTC). `None` for anything else, and for times before 1970.
pub fn unix_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (local, offset_secs) = split_offset(text)?;
    let at = humantime::parse_rfc3339_weak(local).ok()?;
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    Some(i64::try_from(since.as_millis()).ok()? - offset_secs * 1000)
}

/// Whole seconds since the Unix epoch of a time [`unix_ms`] reads.
pub fn unix_secs(text: &str) -> Option<i64> {
    unix_ms(text).map(|ms| ms.div_euclid(1000))
}

/// The text before a trailing `Z` or `±hh:mm` / `±hhmm` offset, and the offset in seconds
/// (humantime reads UTC times only).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    // An offset starts after the seconds: past `YYYY-MM-DDThh:mm:ss` (19 bytes).
    let Some(sign_at) = text.get(19..).and_then(|tail| tail.rfind(['+', '-'])) else {
        return Some((text, 0));
    };
    let sign_at = sign_at + 19;
    let digits: String = text[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    let offset = (hours * 3600 + minutes * 60)
        * if &text[sign_at..=sign_at] == "-" {
            -1
        } else {
            1
        };
    Some((&text[..sign_at], offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_times_become_unix_time() {
        assert_eq!(unix_secs("2026-12-01T10:00:00Z"), Some(1_796_119_200));
        assert_eq!(unix_ms("2026-12-01T10:00:00.250Z"), Some(1_796_119_200_250));
        assert_eq!(unix_secs("2026-12-01 10:00:00"), Some(1_796_119_200));
        assert_eq!(unix_secs("2026-12-01T13:00:00+03:00"), Some(1_796_119_200));
        assert_eq!(unix_secs("2026-12-01T05:00:00-0500"), Some(1_796_119_200));
        assert_eq!(unix_secs("yesterday"), None);
        assert_eq!(unix_secs("2026-12-01T10:00:00+3"), None);
    }
}
