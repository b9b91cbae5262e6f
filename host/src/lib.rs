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
//! The modules follow a request's path:
//! - [`request`]: the provider's request in the contract's shape;
//! - `runtime` and `parser`: the engine, and loading a component with every check it needs;
//! - `sandbox`: what a running parser can reach (settings, a log, nothing else);
//! - `invoke`: one request in one fresh instance, failures classified;
//! - [`validate`]: the rules a result must follow;
//! - [`outcome`]: the result in the platform's terms.

#![deny(missing_docs)]

mod contract;
pub mod error;
mod invoke;
pub mod limits;
pub mod log;
pub mod outcome;
mod parser;
pub mod request;
mod runtime;
mod sandbox;
pub mod validate;

pub use error::{InvokeError, LoadError, RefusedImport, RequestError, RuntimeError};
pub use invoke::Invocation;
pub use limits::Limits;
pub use outcome::Outcome;
pub use parser::Parser;
pub use request::WebhookRequest;
pub use runtime::Runtime;
pub use sandbox::Settings;
