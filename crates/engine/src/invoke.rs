//! Running one request through a parser: a fresh instance, hard limits, a validated outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Func, Instance};
use wasmtime::{Store, Trap};

use crate::contract::{self, Refusal};
use crate::error::InvokeError;
use crate::log::InvocationLog;
use crate::outcome::Outcome;
use crate::parser::Parser;
use crate::request::WebhookRequest;
use crate::sandbox::{Sandbox, Settings};
use crate::validate::validate;

/// The stages of an invocation, for [`Parser::invoke_until`]; each includes the ones before it
/// and dropping the store.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A store with the sandbox, limits and deadline.
    Store,
    /// A fresh instance of the parser.
    Instantiate,
    /// The call, the request lowered into the instance and the result lifted out.
    Call,
    /// Validation of the result: everything [`Parser::invoke`] does but keeping the log.
    Validate,
}

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
        let mut store = self.store(settings);
        let called = self
            .instantiate(&mut store)
            .and_then(|parse| self.linked.call(&mut store, parse, request));
        let result = match called {
            Ok(Ok(Ok(outcome))) => validate(&outcome)
                .map(|()| outcome)
                .map_err(InvokeError::Invalid),
            Ok(Ok(Err(violations))) => Err(InvokeError::Invalid(violations)),
            Ok(Err(Refusal {
                message,
                setting: Some(setting),
                ..
            })) => Err(InvokeError::Misconfigured { setting, message }),
            Ok(Err(Refusal {
                message, status, ..
            })) => Err(InvokeError::Rejected { message, status }),
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

    /// Runs an invocation up to `stage` and throws it away: the invocation benchmark prices
    /// each stage by the difference between two of these. Returns whether the stage succeeded.
    #[doc(hidden)]
    pub fn invoke_until(
        &self,
        stage: Stage,
        request: &WebhookRequest,
        settings: Arc<Settings>,
    ) -> bool {
        let mut store = self.store(settings);
        if stage == Stage::Store {
            return true;
        }
        let Ok(parse) = self.instantiate(&mut store) else {
            return false;
        };
        if stage == Stage::Instantiate {
            return true;
        }
        match self.linked.call(&mut store, parse, request) {
            Ok(Ok(Ok(outcome))) => stage == Stage::Call || validate(&outcome).is_ok(),
            _ => false,
        }
    }

    /// A fresh store with this parser's limits and deadline.
    fn store(&self, settings: Arc<Settings>) -> Store<Sandbox> {
        let engine = self.linked.instance_pre().engine();
        let mut store = Store::new(engine, Sandbox::new(settings, &self.limits));
        store.limiter(|sandbox| &mut sandbox.memory);
        store.set_epoch_deadline(self.limits.timeout_ticks());
        store
    }

    /// A fresh instance in `store`, as its `parse-webhook-request`. The contract's module
    /// types the function without checking its type again: the generated bindings check it on
    /// every instantiation, which costs a tenth of a small parser's invocation, and it was
    /// checked once when the parser was loaded.
    fn instantiate(&self, store: &mut Store<Sandbox>) -> wasmtime::Result<Func> {
        let instance = self.linked.instance_pre().instantiate(&mut *store)?;
        self.parse_function(store, &instance)
    }

    /// The instance's `parse-webhook-request`, which `self.export` indexes.
    fn parse_function(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
    ) -> wasmtime::Result<Func> {
        instance
            .get_func(&mut *store, self.export)
            .ok_or_else(|| wasmtime::format_err!("`{}` is not exported", contract::EXPORT))
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
                message: reported_panic(sandbox).unwrap_or_else(|| trap.to_string()),
            },
            None if is_pool_exhausted(err) => InvokeError::Instantiate(format!("{err:#}")),
            None => InvokeError::Trap {
                message: format!("{err:#}"),
            },
        }
    }
}

/// Why the parser crashed, in its own words: a Rust panic's message (printed to stderr when it
/// was built for `wasm32-wasip2`, logged by the SDK when it was built for
/// `wasm32-unknown-unknown`, which has no stderr), or the exception the TypeScript or Python
/// SDK logged as `uncaught ...` before it trapped.
fn reported_panic(sandbox: &Sandbox) -> Option<String> {
    panic_message(&sandbox.stderr_text()).or_else(|| {
        sandbox
            .log
            .errors_last_first()
            .find_map(|line| panic_message(line).or_else(|| uncaught_exception(line)))
    })
}

/// The first line of an `uncaught TypeError: ...` the SDKs of interpreted languages log (the
/// stack or traceback that follows stays in the log).
fn uncaught_exception(line: &str) -> Option<String> {
    let first = line.lines().next()?;
    first.starts_with("uncaught ").then(|| first.to_owned())
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

    #[test]
    fn an_uncaught_exception_is_named_by_its_first_line() {
        let logged = "uncaught TypeError: missing is undefined\nparse@parser.js:3:7";
        assert_eq!(
            uncaught_exception(logged).as_deref(),
            Some("uncaught TypeError: missing is undefined")
        );
        assert_eq!(uncaught_exception("TypeError: logged, not thrown"), None);
    }
}
