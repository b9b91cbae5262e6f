//! The end-to-end benchmark of `cargo xtask bench`: the same ~80-byte JSON webhook, over HTTP on
//! loopback, to five servers one after another:
//!
//! - the native baseline (`crates/server/examples/native_server.rs`): the `generic-json` parse compiled
//!   into a server on the same HTTP stack, no sandbox, no event log;
//! - the same native server committing each event to telehook's event log (fsynced, group
//!   commit) before answering: the same server with the parser compiled in;
//! - `telehook serve` with the `generic-json` component, every event fsynced before the answer
//!   (the default);
//! - the same with `--fsync-events false`;
//! - `wasmtime serve` (the reference wasi:http host, a fresh instance per request, pooling
//!   allocator) with the same parse as a wasi:http component
//!   (`tests/guests/wasi-http-generic-json`).
//!
//! wrk drives each at several connection counts and reports throughput and latency
//! percentiles; after each telehook run the event log must hold exactly one event per `2xx`.
//! wrk shares the two cores with the server, as a peer's figures in PERF-NOTES.md did.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use crate::server::{Process, Server, WEBHOOK_BODY};

/// Connection counts measured.
const CONNECTIONS: [u32; 3] = [1, 16, 64];
/// How long wrk drives each connection count.
const DURATION: &str = "5s";

/// Where the benchmark's parts are.
pub struct Setup<'a> {
    /// The release `telehook` binary.
    pub telehook: &'a Path,
    /// The release native baseline server.
    pub native_server: &'a Path,
    /// The `generic-json` component.
    pub generic_json: &'a Path,
    /// The peer: `wasmtime` (the CLI, 48.0.8).
    pub wasmtime: &'a Path,
    /// The wasi:http component the peer serves.
    pub peer_component: &'a Path,
    /// A scratch directory.
    pub scratch: &'a Path,
}

/// What wrk measured for one server at one connection count.
pub struct Measurement {
    server: &'static str,
    pub connections: u32,
    pub requests: u64,
    pub per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    p999_us: u64,
    pub not_2xx: u64,
    socket_errors: u64,
}

/// Runs the benchmark and prints its table.
pub fn run(setup: &Setup) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("the HTTP benchmark drives the servers with wrk: `apt-get install wrk`");
    }
    std::fs::create_dir_all(setup.scratch)?;
    let script = setup.scratch.join("webhook.lua");
    std::fs::write(&script, wrk_script())?;
    let mut results = Vec::new();

    let native = Process::start(
        &mut Command::new(setup.native_server),
        "native baseline listening on ",
    )?;
    let url = format!("{}/hooks/generic-json/token", native.url);
    results.extend(measure("native", &url, &script)?);
    drop(native);

    let database = setup.scratch.join("native-events.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", database.display()));
    }
    let native_logged = Process::start(
        Command::new(setup.native_server)
            .arg("127.0.0.1:0")
            .arg(&database),
        "native baseline listening on ",
    )?;
    let url = format!("{}/hooks/generic-json/token", native_logged.url);
    results.extend(measure("native + event log", &url, &script)?);
    drop(native_logged);

    for (name, fsync) in [("telehook", "true"), ("telehook, no fsync", "false")] {
        let data_dir = setup.scratch.join(format!("data-fsync-{fsync}"));
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        let server = Server::start(setup.telehook, &data_dir, &["--fsync-events", fsync])?;
        server.admin("POST", "/tenants", &json!({ "id": "bench" }))?;
        let webhook = server.register("bench", "generic-json", setup.generic_json, &json!({}))?;
        let measured = measure(name, &webhook, &script)?;
        let accepted: u64 = measured.iter().map(|m| m.requests - m.not_2xx).sum();
        let logged = server.count_events("bench", "generic-json")? as u64;
        // Requests cut off when wrk stops may be logged without wrk counting their answer.
        ensure!(
            logged >= accepted,
            "{name}: {accepted} answered 2xx but only {logged} logged"
        );
        println!("{name}: {accepted} answered 2xx, {logged} events logged");
        results.extend(measured);
    }

    let address = free_address()?;
    let peer = Process::start_listening(
        Command::new(setup.wasmtime)
            .args(["serve", "-S", "cli=y", "-O", "pooling-allocator", "--addr"])
            .arg(address.to_string())
            .arg(setup.peer_component),
        address,
    )?;
    let url = format!("{}/hooks/generic-json/token", peer.url);
    results.extend(measure("wasmtime serve", &url, &script)?);
    drop(peer);

    print_table(&results);
    Ok(())
}

/// A loopback address nothing listens on, for a server that cannot announce the port it got.
pub fn free_address() -> Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A one-second warm-up, then one wrk run per connection count.
pub fn measure(server: &'static str, url: &str, script: &Path) -> Result<Vec<Measurement>> {
    wrk(server, url, script, 16, "1s")?;
    CONNECTIONS
        .iter()
        .map(|&connections| wrk(server, url, script, connections, DURATION))
        .collect()
}

pub fn wrk(
    server: &'static str,
    url: &str,
    script: &Path,
    connections: u32,
    duration: &str,
) -> Result<Measurement> {
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{duration}")])
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "wrk failed: {text}");
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .with_context(|| format!("wrk printed no result: {text}"))?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("wrk's result line: {line}"))?;
    let [requests, seconds, p50, p99, p999, not_2xx, socket_errors] = fields[..] else {
        bail!("wrk's result line has {} fields: {line}", fields.len());
    };
    let measurement = Measurement {
        server,
        connections,
        requests: requests as u64,
        per_second: requests / seconds,
        p50_us: p50 as u64,
        p99_us: p99 as u64,
        p999_us: p999 as u64,
        not_2xx: not_2xx as u64,
        socket_errors: socket_errors as u64,
    };
    println!("{}", row(&measurement));
    Ok(measurement)
}

/// POSTs the body and prints one machine-readable line when done (latencies in µs).
pub fn wrk_script() -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = '{WEBHOOK_BODY}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %f %d %d %d %d %d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#
    )
}

fn row(m: &Measurement) -> String {
    format!(
        "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
        m.server,
        m.connections,
        m.per_second,
        m.p50_us as f64 / 1e3,
        m.p99_us as f64 / 1e3,
        m.p999_us as f64 / 1e3,
        m.not_2xx,
        m.socket_errors
    )
}

fn print_table(results: &[Measurement]) {
    println!(
        "\n| server | connections | requests/s | p50 ms | p99 ms | p99.9 ms | not 2xx | socket errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for measurement in results {
        println!("{}", row(measurement));
    }
    println!(
        "\n| connections | telehook / native + event log | telehook / native | fsynced / no fsync | telehook / wasmtime serve |"
    );
    println!("|---|---|---|---|---|");
    let rate = |server: &str, connections: u32| {
        results
            .iter()
            .find(|m| m.server == server && m.connections == connections)
            .map_or(f64::NAN, |m| m.per_second)
    };
    for connections in CONNECTIONS {
        let native = rate("native", connections);
        let native_logged = rate("native + event log", connections);
        let fsynced = rate("telehook", connections);
        let relaxed = rate("telehook, no fsync", connections);
        let peer = rate("wasmtime serve", connections);
        println!(
            "| {connections} | {:.1}% | {:.1}% | {:.1}% | {:.1}x |",
            100.0 * fsynced / native_logged,
            100.0 * fsynced / native,
            100.0 * fsynced / relaxed,
            fsynced / peer
        );
    }
}
