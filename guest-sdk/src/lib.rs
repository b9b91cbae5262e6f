//! Write telehook webhook parsers in Rust.
//!
//! A parser turns a telephony provider's webhook request into the platform's normalised
//! telephony event. With this crate a parser is one short file: implement [`Parser`] and hand
//! the type to [`export_parser!`]; build with `cargo build --target wasm32-unknown-unknown` and
//! make the module a component with `telehook componentize` (or build for `wasm32-wasip2`,
//! which makes a component directly but imports WASI and costs more per request).
//!
//! ```ignore
//! use telehook_guest::prelude::*;
//!
//! struct Echo;
//!
//! impl Parser for Echo {
//!     fn parse(request: Request) -> Result<ParseResult, ParseError> {
//!         let body: serde_json::Value = request.json()?;
//!         let event = TelephonyEvent::new(
//!             EventType::NotifyStart,
//!             Direction::In,
//!             body["srcPhone"].as_str().unwrap_or_default(),
//!             body["dstPhone"].as_str().unwrap_or_default(),
//!         );
//!         Ok(ParseResult::with_event(event))
//!     }
//! }
//!
//! telehook_guest::export_parser!(Echo);
//! ```
//!
//! The crate is organised by what a parser does:
//! - [`request`]: read the provider's request (case-insensitive headers, query, form and JSON
//!   bodies);
//! - [`outcome`]: build the event, call record and response to return;
//! - [`phone`]: numbers as providers send them (SIP URIs, withheld callers) made into what the
//!   host accepts, and E.164;
//! - [`time`]: providers' timestamps as Unix time;
//! - [`settings`] and [`log`]: what the host grants a parser (and `log::redact`);
//! - [`crypto`]: the primitives providers' signatures are built from (SHA digests, HMAC,
//!   Ed25519, HS256 JWTs, base64, base64url, hex, constant-time comparison);
//! - [`testing`]: a harness that runs a parser natively in `cargo test`, with settings, the
//!   log and the host's validation.

#![cfg_attr(not(test), deny(missing_docs))]

pub mod crypto;
pub mod log;
pub mod outcome;
pub mod phone;
pub mod request;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod heap;

/// Built for `wasm32-unknown-unknown`, a parser allocates from a bump heap (see `heap.rs`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static HEAP: heap::BumpHeap = heap::BumpHeap::new();

#[doc(hidden)]
pub mod bindings {
    //! Generated from the contract in `wit/`; parsers use the re-exports at the crate root.
    #![allow(missing_docs, clippy::too_many_arguments)]
    wit_bindgen::generate!({
        world: "parser",
        path: "wit",
        // Tests compare what parsers return.
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_parser_world",
        default_bindings_module: "telehook_guest::bindings",
    });
}

pub use bindings::telehook::parser::types::{
    CallRecord, Direction, Disposition, EventType, ParseError, ParseResult, Request, Response,
    TelephonyEvent,
};
pub use request::Form;

/// A webhook parser: the one function a tenant writes.
///
/// The host calls it once per provider request, in a fresh instance, so an implementation keeps
/// no state between calls. Returning `Err` answers the provider `400 {"error": message}`.
pub trait Parser {
    /// Turns one provider request into the platform's outcome, or refuses it.
    fn parse(request: Request) -> Result<ParseResult, ParseError>;
}

/// Everything a parser usually needs, in one import.
pub mod prelude {
    pub use crate::{
        CallRecord, Direction, Disposition, EventType, Form, ParseError, ParseResult, Parser,
        Request, Response, TelephonyEvent, crypto, log, phone, settings, time,
    };
}

/// Exports a [`Parser`] implementation as the component's `parse-webhook-request`.
///
/// Use it once per parser crate, at the top level: `telehook_guest::export_parser!(MyParser);`.
#[macro_export]
macro_rules! export_parser {
    ($parser:ty) => {
        const _: () = {
            struct TelehookParserExport;

            impl $crate::bindings::Guest for TelehookParserExport {
                fn parse_webhook_request(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::ParseResult, $crate::ParseError> {
                    $crate::log::report_panics();
                    <$parser as $crate::Parser>::parse(request)
                }
            }

            $crate::bindings::__export_parser_world!(
                TelehookParserExport with_types_in $crate::bindings
            );
        };
    };
}
