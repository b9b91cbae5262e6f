//! What a parser returns, in the platform's terms, and the rules it must follow.
//!
//! A crate of its own, without the sandbox, because two sides need the same rules: the host
//! (`telehook`) validates every result a parser returns before anything is stored or sent, and
//! the guest SDK (`telehook-guest`) runs the very same checks in a tenant's `cargo test`, so that
//! a parser's unit test catches what the host would refuse. It depends on serde alone, and
//! builds for the host and for WebAssembly guests alike.

#![deny(missing_docs)]

pub mod outcome;
pub mod validate;

pub use outcome::{
    CallRecord, Direction, Disposition, EventType, HttpResponse, Outcome, Parties, TelephonyEvent,
};
pub use validate::{Violation, Violations, validate};
