//! The invocation log: lines an admin reads when a parser misbehaves.
//!
//! The host keeps a bounded number of lines per invocation and drops the rest, so log what
//! explains a decision, not every field of every request.

use crate::bindings::telehook::parser::host::{self, LogLevel};

/// Logs detail that is only useful while developing a parser.
pub fn debug(message: &str) {
    host::log(LogLevel::Debug, message);
}

/// Logs a normal decision, such as ignoring an event the platform does not need.
pub fn info(message: &str) {
    host::log(LogLevel::Info, message);
}

/// Logs something suspicious that did not stop the parse.
pub fn warn(message: &str) {
    host::log(LogLevel::Warn, message);
}

/// Logs why a request was refused.
pub fn error(message: &str) {
    host::log(LogLevel::Error, message);
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
