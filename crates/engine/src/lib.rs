//! telehook runs tenant-written WebAssembly parsers for telephony webhooks.
//!
//! A provider's webhook request goes in; the platform's normalised telephony event comes out,
//! produced by the integration's parser component in a fresh, isolated instance with hard
//! limits on time, memory and output, and validated before anyone sees it.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use telehook::{Limits, Runtime, Settings, WebhookRequest};
//!
//! let runtime = Runtime::new(Limits::default())?;
//! let parser = runtime.load(&std::fs::read("generic_json.wasm")?)?;
//! let request = WebhookRequest::new(
//!     "POST",
//!     "/hooks/acme",
//!     [("content-type".to_owned(), "application/json".to_owned())],
//!     br#"{"srcPhone": "+79161234567", "dstPhone": "101"}"#.to_vec(),
//! );
//! let invocation = parser.invoke(&request, Arc::new(Settings::new()));
//! println!("{:?}", invocation.result?.event);
//! # Ok(())
//! # }
//! ```
//!
//! This crate is the engine alone: no HTTP, storage, command line or allocator. The service
//! around it (tenants, integrations, the event log, the HTTP edge) is `telehook-server`, and the
//! `telehook` command is `telehook-cli`.
//!
//! The modules follow a request's path:
//! - [`request`]: the provider's request in the contract's shape;
//! - [`runtime`]: the engine, its instance pool and deadline clock, and loading a component;
//! - `check`: what a component must be to load (size, kind, imports,
//!   export), checked once, so that a [`Parser`] exists only for a component this host can run;
//! - [`parser`]: a loaded parser, and [`sandbox`]: what a running one can reach (settings, a
//!   log, nothing else);
//! - [`invoke`]: one request in one fresh instance, its failures classified, under [`limits`],
//!   with what the parser wrote in its [`log`];
//! - [`validate`]: the rules a result must follow;
//! - [`outcome`]: the result in the platform's terms; [`error`]: why each step can fail.
//!
//! The contract's generated bindings are seen by one private module, so that a new contract
//! version changes it and nothing else.

#![deny(missing_docs)]

mod check;
mod contract;
pub mod error;
pub mod invoke;
pub mod limits;
pub mod log;
pub mod parser;
pub mod request;
pub mod runtime;
pub mod sandbox;
mod streams;

/// What a parser returns and the rules it must follow: a crate of their own
/// (`telehook-outcome`), because the guest SDK checks a parser's results with the same rules.
pub use telehook_outcome::{outcome, validate};

/// The README's Rust examples (embedding the engine; a parser written with the SDK), compiled as
/// doctests so that what a newcomer copies builds.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

pub use error::{InvokeError, LoadError, RefusedImport, RequestError, RuntimeError};
pub use invoke::Invocation;
pub use limits::Limits;
pub use log::{InvocationLog, LogLevel, LogLine};
pub use outcome::Outcome;
pub use parser::Parser;
pub use request::WebhookRequest;
pub use runtime::Runtime;
pub use sandbox::Settings;
