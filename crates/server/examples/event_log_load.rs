//! The event log on its own, without HTTP or parsers: how many appends per second it commits
//! when 1, 16 and 64 callers each wait for their append before sending the next, and their
//! latency. This is the ceiling of `telehook serve` at that many connections, since every
//! accepted webhook waits for its append (BENCHMARKS.md, step 8).
//!
//! `event_log_load [--no-fsync] [--postgres URL] [SECONDS]` (default 4 seconds per level)
//! creates a database in a temporary folder under `target/`, or with `--postgres` appends to
//! the PostgreSQL database at `URL` (`postgres://...`, whose schema it brings up to date), and
//! prints one Markdown row per level.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use prometheus_client::metrics::histogram::Histogram;
use telehook::outcome::{Direction, Disposition, EventType, TelephonyEvent};
use telehook_server::event_log::EventLog;
use telehook_server::secrets::SettingsKey;
use telehook_server::storage::postgres::PostgresStorage;
use telehook_server::storage::sqlite::SqliteStorage;
use telehook_server::storage::{NewEvent, Storage, now};

/// The event `generic-json` makes of the benchmark's webhook, each append a call of its own
/// (`call_id`), so that every append also begins a call.
fn event(call_id: String) -> TelephonyEvent {
    TelephonyEvent {
        event: EventType::NotifyStart,
        direction: Some(Direction::In),
        disposition: Disposition::Unknown,
        src_phone: Some("+79161234567".into()),
        src_phone_ext: None,
        dst_phone: Some("101".into()),
        dst_phone_ext: None,
        call_id: Some(call_id),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fsync = !args.iter().any(|arg| arg == "--no-fsync");
    let seconds = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(4.0);
    let postgres = args
        .iter()
        .position(|arg| arg == "--postgres")
        .and_then(|at| args.get(at + 1));
    let key = SettingsKey::from_bytes(&[0; 32]);
    let folder = tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))?;
    let storage: Box<dyn Storage> = match postgres {
        Some(url) => Box::new(PostgresStorage::connect(url, key).await?),
        None => Box::new(SqliteStorage::open(
            &folder.path().join("telehook.db"),
            key,
        )?),
    };
    let log = Arc::new(EventLog::start(
        storage.event_writer(fsync)?,
        telehook_server::event_log::Announce::Hub(telehook_server::delivery::Hub::default()),
        Histogram::new([1.0]),
    )?);
    println!("| callers | appends/s | p50 µs | p99 µs | p99.9 µs |");
    println!("|---|---|---|---|---|");
    for callers in [1, 16, 64] {
        let mut latencies = drive(&log, callers, Duration::from_secs_f64(seconds)).await?;
        latencies.sort_unstable();
        let at = |quantile: f64| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let index = ((latencies.len() - 1) as f64 * quantile) as usize;
            latencies[index].as_micros()
        };
        #[allow(clippy::cast_precision_loss)]
        let rate = latencies.len() as f64 / seconds;
        println!(
            "| {callers} | {rate:.0} | {} | {} | {} |",
            at(0.5),
            at(0.99),
            at(0.999)
        );
    }
    Ok(())
}

/// `callers` tasks append in a loop for `duration`; the latency of every append.
async fn drive(log: &Arc<EventLog>, callers: usize, duration: Duration) -> Result<Vec<Duration>> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let log = Arc::clone(log);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let call_id = format!("{callers}-{caller}-{}", latencies.len());
                    let started = Instant::now();
                    log.append(NewEvent {
                        tenant_id: "bench".into(),
                        integration_id: "generic-json".into(),
                        version: 1,
                        received_at: now(),
                        event: Some(event(call_id)),
                        call_record: None,
                        users: Vec::new(),
                        delivery: None,
                        calls_since: now(),
                    })
                    .await?;
                    latencies.push(started.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}
