//! The invocation log: what a parser said while it ran, bounded so that a chatty or hostile
//! parser cannot grow the host's memory.

use std::borrow::Cow;

use serde::Serialize;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Fine-grained detail.
    Trace,
    /// Development detail.
    Debug,
    /// A normal decision; also what the parser printed to stdout.
    Info,
    /// Something suspicious.
    Warn,
    /// A failure; also what the parser printed to stderr (a panic message lands there).
    Error,
}

/// One line of a parser's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// How much it matters.
    pub level: LogLevel,
    /// The text, cut at the per-line limit.
    pub message: String,
}

/// The lines one invocation kept, and how many it had to drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationLog {
    /// The kept lines, in order.
    pub lines: Vec<LogLine>,
    /// Lines dropped because the per-invocation limit was reached.
    pub dropped: usize,
    /// The last error line dropped: a panic's message comes last, after whatever filled the
    /// log, and is what the invocation's error must still report.
    #[serde(skip)]
    last_dropped_error: Option<String>,
    #[serde(skip)]
    max_lines: usize,
    #[serde(skip)]
    max_line_bytes: usize,
    /// Values the parser asked the host never to show (contract 0.3's `redact`), each also in
    /// its form-encoded spelling; never serialised.
    #[serde(skip)]
    secrets: Vec<String>,
}

/// The most values one invocation may ask to hide; more are ignored.
pub const MAX_REDACTIONS: usize = 64;
/// Values shorter than this are not hidden: they would blank out ordinary text.
pub const MIN_REDACTED_LEN: usize = 4;
/// What a hidden value reads as.
pub const REDACTED: &str = "[redacted]";

/// `text` with every one of `secrets` of at least [`MIN_REDACTED_LEN`] bytes replaced by
/// [`REDACTED`]: how a host hides settings' values, webhook tokens and what a parser asked to
/// hide from anything shown to people. Borrowed when none occurs, so the common case copies
/// nothing.
pub fn redact<'a, S: AsRef<str>>(
    text: &'a str,
    secrets: impl IntoIterator<Item = S>,
) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.len() >= MIN_REDACTED_LEN && text.contains(secret) {
            text = Cow::Owned(text.replace(secret, REDACTED));
        }
    }
    text
}

impl InvocationLog {
    pub(crate) fn new(max_lines: usize, max_line_bytes: usize) -> Self {
        Self {
            lines: Vec::new(),
            dropped: 0,
            last_dropped_error: None,
            max_lines,
            max_line_bytes,
            secrets: Vec::new(),
        }
    }

    /// Hides `secret` from now on: in the lines kept so far, in every later one, and in
    /// whatever the caller passes through [`hide`](Self::hide) (the request it keeps).
    pub(crate) fn redact(&mut self, secret: &str) {
        if secret.len() < MIN_REDACTED_LEN || self.secrets.len() >= MAX_REDACTIONS {
            return;
        }
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for spelling in [secret.to_owned(), encoded] {
            if !self.secrets.contains(&spelling) {
                for line in &mut self.lines {
                    line.message = line.message.replace(&spelling, REDACTED);
                }
                self.secrets.push(spelling);
            }
        }
    }

    /// The values the parser asked the host never to show, each as sent and form-encoded,
    /// for [`redact`] over whatever the caller keeps of the request.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(String::as_str)
    }

    /// Keeps a line if there is room, cut to the line limit on a character boundary.
    pub(crate) fn push(&mut self, level: LogLevel, message: &str) {
        if self.lines.len() >= self.max_lines {
            self.dropped += 1;
            if level == LogLevel::Error {
                self.last_dropped_error = Some(self.cut(&redact(message, self.secrets())));
            }
            return;
        }
        let message = self.cut(&redact(message, self.secrets()));
        self.lines.push(LogLine { level, message });
    }

    /// The error lines, last first, including the last one dropped.
    pub(crate) fn errors_last_first(&self) -> impl Iterator<Item = &str> {
        let kept = self.lines.iter().rev();
        let kept = kept.filter(|line| line.level == LogLevel::Error);
        let kept = kept.map(|line| line.message.as_str());
        self.last_dropped_error.as_deref().into_iter().chain(kept)
    }

    fn cut(&self, message: &str) -> String {
        let mut end = message.len().min(self.max_line_bytes);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut kept = message[..end].to_owned();
        if end < message.len() {
            kept.push('…');
        }
        kept
    }

    /// Keeps captured stdout or stderr, one log line per printed line.
    pub(crate) fn push_output(&mut self, level: LogLevel, output: &[u8]) {
        for line in String::from_utf8_lossy(output).lines() {
            self.push(level, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keeps_a_bounded_number_of_cut_lines() {
        let mut log = InvocationLog::new(2, 4);
        log.push(LogLevel::Info, "short");
        log.push(LogLevel::Warn, "ééé");
        log.push(LogLevel::Error, "dropped");
        assert_eq!(log.lines[0].message, "shor…");
        assert_eq!(log.lines[1].message, "éé…");
        assert_eq!(log.dropped, 1);
    }

    #[test]
    fn redacted_values_vanish_from_the_log_before_and_after() {
        let mut log = InvocationLog::new(8, 256);
        log.push(LogLevel::Info, "token a/b+c=d1 arrived");
        log.redact("a/b+c=d1");
        log.redact("abc");
        log.push(LogLevel::Warn, "again: a/b+c=d1, encoded a%2Fb%2Bc%3Dd1");
        assert_eq!(log.lines[0].message, "token [redacted] arrived");
        assert_eq!(
            log.lines[1].message,
            "again: [redacted], encoded [redacted]"
        );
        assert_eq!(
            redact("auth[access_token]=a%2Fb%2Bc%3Dd1&abc=1", log.secrets()),
            "auth[access_token]=[redacted]&abc=1"
        );
        assert_eq!(
            redact("sig=s3cr3t-key&x=ab", ["s3cr3t-key", "ab"]),
            "sig=[redacted]&x=ab"
        );
        assert!(matches!(
            redact("nothing to hide", ["s3cr3t-key"]),
            Cow::Borrowed(_)
        ));
        assert!(!serde_json::to_string(&log).expect("JSON").contains("a/b"));
    }

    #[test]
    fn the_last_error_dropped_is_still_found() {
        let mut log = InvocationLog::new(2, 64);
        log.push(LogLevel::Error, "kept");
        log.push(LogLevel::Info, "kept too");
        log.push(LogLevel::Error, "first dropped");
        log.push(LogLevel::Error, "last dropped");
        log.push(LogLevel::Info, "dropped, not an error");
        let errors: Vec<_> = log.errors_last_first().collect();
        assert_eq!(errors, ["last dropped", "kept"]);
        assert_eq!(log.dropped, 3);
    }
}
