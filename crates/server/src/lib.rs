//! The telehook server: the multi-tenant service around the engine ([`telehook`]) and its HTTP
//! edge, usable as a library by a platform that wants the whole service in its own process
//! (the `telehook serve` command of `telehook-cli` is one such user).
//!
//! Dependencies point one way: [`http`] translates HTTP to the [`service`], which decides,
//! using the engine to run parsers and [`storage`] to remember; nothing below the edge knows
//! HTTP, and nothing but [`storage::sqlite`] and [`storage::postgres`] knows SQL.
//!
//! - [`http`]: webhook ingress for providers, the admin API, `/metrics` and the probes;
//! - [`service`]: tenants, integrations, versions and webhooks in the platform's terms;
//! - [`storage`]: what must outlive the process, behind one trait; SQLite is its embedded
//!   default;
//! - [`event_log`]: the group commit every accepted event goes through before the provider
//!   hears "accepted"; [`calls`]: the calls those events are correlated into, in the same
//!   commit;
//! - [`components`] and [`compiler`]: uploaded components, their precompiled artifacts, and
//!   compiling an upload in a child process with a deadline;
//! - [`admission`] and [`limits`]: each integration's share of the host and the limits an
//!   admin may tune; [`lanes`]: heavy work at the lowest priority; [`health`]: the circuit
//!   breaker of a parser that keeps failing; [`uploads`]: one upload per tenant at a time;
//! - [`delivery`]: every call update, from the log to the platform: the library's
//!   subscriptions, the live stream and forwarding to endpoints;
//! - [`recipients`]: the users bound to a call's operators, who get its call card;
//! - [`cluster`]: several nodes on one database, hearing each other through NATS;
//! - [`secrets`]: settings sealed at rest; [`tokens`]; [`metrics`].

#![deny(missing_docs)]

pub mod admission;
pub mod calls;
pub mod cluster;
pub mod compiler;
pub mod components;
pub mod delivery;
pub mod event_log;
pub mod health;
pub mod http;
pub mod lanes;
pub mod limits;
pub mod metrics;
pub mod recipients;
pub mod secrets;
pub mod service;
pub mod storage;
pub mod tokens;
pub mod uploads;

pub use service::{Service, ServiceConfig};
