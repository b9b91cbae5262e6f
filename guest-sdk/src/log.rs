//! The invocation log: lines an admin reads when a parser misbehaves.
//!
//! The host keeps a bounded number of lines per invocation and drops the rest, so log what
//! explains a decision, not every field of every request.

pub use crate::bindings::telehook::parser::host::LogLevel;

/// Writes a line at `level`: to the host's invocation log, or in a native `cargo test` to the
/// [`testing`](crate::testing) harness.
pub fn write(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::telehook::parser::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::log(level, message);
}

/// Logs detail that is only useful while developing a parser.
pub fn debug(message: &str) {
    write(LogLevel::Debug, message);
}

/// Logs a normal decision, such as ignoring an event the platform does not need.
pub fn info(message: &str) {
    write(LogLevel::Info, message);
}

/// Logs something suspicious that did not stop the parse.
pub fn warn(message: &str) {
    write(LogLevel::Warn, message);
}

/// Logs why a request was refused.
pub fn error(message: &str) {
    write(LogLevel::Error, message);
}

/// Tells the host never to show `secret`, a value this request carries (Bitrix24's OAuth
/// tokens in every body): it is replaced in the request the host keeps for the admin's recent
/// invocations and in this log. Values shorter than four characters are ignored.
pub fn redact(secret: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::telehook::parser::host::redact(secret);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::redact(secret);
}

/// Sends a panic's message to the log, where the host finds it to say why the parser failed.
///
/// [`export_parser!`](crate::export_parser) calls it before each parse. Built for
/// `wasm32-wasip2`, Rust prints panics to stderr, which the host captures, so this does
/// nothing there; built for `wasm32-unknown-unknown` a parser has no stderr.
#[doc(hidden)]
pub fn report_panics() {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    std::panic::set_hook(Box::new(|panic| error(&panic.to_string())));
}
