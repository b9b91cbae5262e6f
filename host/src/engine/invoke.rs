//! Running one request through a parser: a fresh instance, hard limits, a validated outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use crate::engine::contract::telehook::parser::types as wit;
use crate::engine::log::InvocationLog;
use crate::engine::parser::Parser;
use crate::engine::sandbox::{Sandbox, Settings};
use crate::error::InvokeError;
use crate::outcome::Outcome;
use crate::request::WebhookRequest;
use crate::validate::validate;

/// What one invocation produced: the validated outcome or the reason there is none, with the
/// parser's log either way (admins need it most when something failed).
#[derive(Debug)]
pub struct Invocation {
    /// The validated outcome, or why there is none.
    pub result: Result<Outcome, InvokeError>,
    /// What the parser logged and printed.
    pub log: InvocationLog,
    /// Wall time from creating the instance to the validated outcome.
    pub elapsed: Duration,
}

impl Parser {
    /// Runs the parser on one request in a fresh instance that sees only these settings.
    ///
    /// Never panics and never lets the parser's failure escape as anything but an
    /// [`InvokeError`]: traps, timeouts and limit hits are contained in the instance, which is
    /// thrown away.
    pub fn invoke(&self, request: &WebhookRequest, settings: Arc<Settings>) -> Invocation {
        let started = Instant::now();
        let engine = self.pre.instance_pre().engine();
        let mut store = Store::new(engine, Sandbox::new(settings, &self.limits));
        store.limiter(|sandbox| &mut sandbox.memory);
        store.set_epoch_deadline(self.limits.timeout_ticks());

        let called = self.pre.instantiate(&mut store).and_then(|parser| {
            parser.call_parse_webhook_request(&mut store, &wit::Request::from(request))
        });
        let result = match called {
            Ok(Ok(result)) => {
                let outcome = Outcome::from(result);
                validate(&outcome)
                    .map(|()| outcome)
                    .map_err(InvokeError::Invalid)
            }
            Ok(Err(refusal)) => Err(InvokeError::Rejected {
                message: refusal.message,
            }),
            Err(err) => Err(self.classify(&err, store.data())),
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(_) => tracing::debug!(elapsed_us = elapsed.as_micros(), "parser invocation done"),
            // Debug, not warn: callers (the server, the CLI) report failures with their context.
            Err(err) => tracing::debug!(
                kind = err.kind(),
                elapsed_us = elapsed.as_micros(),
                "parser invocation failed: {err}"
            ),
        }
        Invocation {
            result,
            log: store.into_data().into_log(),
            elapsed,
        }
    }

    /// Names what stopped the parser, most specific first.
    fn classify(&self, err: &wasmtime::Error, sandbox: &Sandbox) -> InvokeError {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => InvokeError::Timeout {
                limit: self.limits.timeout,
            },
            Some(Trap::StackOverflow) => InvokeError::StackOverflow,
            _ if sandbox.memory.refused => InvokeError::MemoryLimit {
                limit_bytes: self.limits.memory_bytes,
            },
            Some(trap) => InvokeError::Trap {
                message: panic_message(&sandbox.stderr_text()).unwrap_or_else(|| trap.to_string()),
            },
            None if is_pool_exhausted(err) => InvokeError::Instantiate(format!("{err:#}")),
            None => InvokeError::Trap {
                message: format!("{err:#}"),
            },
        }
    }
}

/// Rust's panic hook prints `thread '...' panicked at FILE:LINE:COL:` and the message on the
/// following lines; that is what an admin wants to read, not `unreachable executed`.
fn panic_message(stderr: &str) -> Option<String> {
    let (_, after) = stderr.split_once("panicked at ")?;
    let (location, rest) = after.split_once('\n').unwrap_or((after, ""));
    let message: Vec<&str> = rest
        .lines()
        .take_while(|line| !line.starts_with("note: "))
        .collect();
    Some(
        format!(
            "panicked at {} {}",
            location.trim_end_matches(':'),
            message.join("\n")
        )
        .trim_end()
        .to_owned(),
    )
}

fn is_pool_exhausted(err: &wasmtime::Error) -> bool {
    format!("{err:#}").contains("maximum concurrent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_is_taken_from_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nboom: 42\nnote: run with \
                      `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at src/lib.rs:12:9 boom: 42")
        );
        assert_eq!(panic_message("just some output"), None);
    }
}
