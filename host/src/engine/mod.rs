//! The WebAssembly side: compiling and checking parser components, and running each request in
//! a fresh, limited instance. Nothing here knows about HTTP, tenants or storage.

pub(crate) mod contract;
pub mod invoke;
pub mod limits;
pub mod log;
pub mod parser;
pub mod runtime;
pub mod sandbox;
mod streams;
