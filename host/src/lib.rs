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
//! - [`engine`]: the WebAssembly side: the runtime, loading a component with every check it
//!   needs, what a running parser can reach (settings, a log, nothing else), and one request in
//!   one fresh instance with its failures classified;
//! - [`validate`]: the rules a result must follow;
//! - [`outcome`]: the result in the platform's terms.

#![deny(missing_docs)]

pub mod engine;
pub mod error;
pub mod outcome;
pub mod request;
pub mod server;
pub mod service;
pub mod validate;

pub use engine::invoke::Invocation;
pub use engine::limits::Limits;
pub use engine::log::{InvocationLog, LogLevel, LogLine};
pub use engine::parser::Parser;
pub use engine::runtime::Runtime;
pub use engine::sandbox::Settings;
pub use error::{InvokeError, LoadError, RefusedImport, RequestError, RuntimeError};
pub use outcome::Outcome;
pub use request::WebhookRequest;
