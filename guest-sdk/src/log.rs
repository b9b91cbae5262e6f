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
