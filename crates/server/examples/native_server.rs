//! The native baselines of the end-to-end benchmark (`cargo xtask bench`): the `generic-json`
//! parse compiled into a server on the same HTTP stack as `telehook serve` (axum on hyper, on
//! tokio), with no sandbox and no admission.
//!
//! - `native_server [ADDRESS]` answers as soon as the body is parsed: the ceiling of the HTTP
//!   stack itself.
//! - `native_server ADDRESS DATABASE` also commits each event to telehook's own event log in
//!   `DATABASE` (group commit, fsynced) before answering, as `telehook serve` does: the same
//!   server with the parser compiled in, so the difference to `telehook serve` is the sandbox
//!   and the host's per-request bookkeeping.
//!
//! It prints `native baseline listening on http://ADDRESS` and serves
//! `/hooks/{integration}/{token}`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use prometheus_client::metrics::histogram::Histogram;
use telehook_server::event_log::EventLog;
use telehook_server::secrets::SettingsKey;
use telehook_server::storage::sqlite::SqliteStorage;
use telehook_server::storage::{NewEvent, Storage, now};

#[path = "../../engine/benches/native/mod.rs"]
mod native;

/// The allocator `telehook serve` uses, so that the two servers differ only in the sandbox.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let events = match args.next() {
        Some(database) => Some(Arc::new(open_event_log(Path::new(&database))?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "native baseline listening on http://{}",
        listener.local_addr()?
    );
    let app = Router::new()
        .route("/hooks/{integration}/{token}", post(webhook))
        .with_state(events);
    axum::serve(listener, app).await?;
    Ok(())
}

fn open_event_log(database: &Path) -> Result<EventLog> {
    let storage = SqliteStorage::open(database, SettingsKey::from_bytes(&[0; 32]))?;
    let sizes = Histogram::new([1.0]);
    Ok(EventLog::start(
        storage.event_writer(true)?,
        telehook_server::event_log::Announce::Hub(telehook_server::delivery::Hub::default()),
        sizes,
    )?)
}

async fn webhook(State(events): State<Option<Arc<EventLog>>>, body: Bytes) -> (StatusCode, String) {
    let outcome = match native::parse(&body) {
        Ok(outcome) => outcome,
        Err(err) => return (StatusCode::BAD_REQUEST, err),
    };
    let Some(events) = events else {
        return (StatusCode::OK, String::new());
    };
    let event = NewEvent {
        tenant_id: "bench".into(),
        integration_id: "generic-json".into(),
        version: 1,
        received_at: now(),
        event: outcome.event,
        call_record: None,
        users: Vec::new(),
        delivery: None,
        calls_since: now(),
    };
    match events.append(event).await {
        Ok(_) => (StatusCode::OK, String::new()),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}
