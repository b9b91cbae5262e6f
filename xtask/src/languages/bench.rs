//! `cargo xtask bench --languages`: the same parse (the documentation's `generic-json`) as a
//! Rust, a TypeScript and a Python component in telehook, beside the platform's own way of
//! running a TypeScript parser, Node.js with a fresh `vm` context per request
//! (`benches/node-vm-peer`), in one run:
//!
//! - the build (`telehook build`) and the component's size;
//! - one invocation, p50 and p99 over [`RUNS`] fresh instances (`telehook run --repeat`; the
//!   peer times a context, the script's run and the call the same way);
//! - the upload to a server (which compiles it) and the precompiled artifact's size;
//! - end-to-end HTTP throughput and latency with wrk, as [`crate::load`] measures it, each
//!   webhook's event committed before the answer, the integration allowed one request per core
//!   at once (the peer's workers);
//! - the server's resident memory once the parser has served, over one that serves nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::load::{self, Measurement};
use crate::server::{Process, Server, resident_bytes};

/// Invocations timed per language.
const RUNS: u32 = 2000;

/// Where the benchmark's parts are.
pub struct Setup<'a> {
    /// The repository.
    pub root: &'a Path,
    /// The release `telehook` binary.
    pub telehook: &'a Path,
    /// The Rust `generic-json` component.
    pub rust_component: &'a Path,
    /// A scratch directory.
    pub scratch: &'a Path,
    /// The `PATH` that finds the SDKs' `python3` first, for `telehook build`.
    pub path: &'a std::ffi::OsStr,
}

/// One language's figures.
struct Row {
    name: &'static str,
    build_seconds: Option<f64>,
    component_bytes: Option<u64>,
    p50_us: f64,
    p99_us: f64,
    upload_seconds: Option<f64>,
    artifact_bytes: Option<u64>,
    resident_bytes: u64,
    http: Vec<Measurement>,
}

/// Runs the benchmark and prints its tables.
pub fn run(setup: &Setup) -> Result<()> {
    std::fs::create_dir_all(setup.scratch)?;
    let request = setup
        .root
        .join("examples/generic-json/samples/incoming-call.request.json");
    let script = setup.scratch.join("webhook.lua");
    std::fs::write(&script, load::wrk_script())?;
    let typescript = setup
        .root
        .join("examples/typescript/generic-json/parser.ts");
    let mut rows = Vec::new();
    for (name, source) in [
        ("Rust", None),
        ("TypeScript", Some(typescript.clone())),
        (
            "Python",
            Some(setup.root.join("examples/python/generic-json/parser.py")),
        ),
    ] {
        let (component, build_seconds) = match &source {
            None => (setup.rust_component.to_owned(), None),
            Some(source) => {
                let (component, seconds) = build(setup, name, source)?;
                (component, Some(seconds))
            }
        };
        let (p50_us, p99_us) = invocation(setup.telehook, &component, &request)?;
        println!("{name}: one invocation p50 {p50_us:.1} µs, p99 {p99_us:.1} µs");
        rows.push(serve(
            setup,
            name,
            &component,
            &script,
            build_seconds,
            p50_us,
            p99_us,
        )?);
    }
    rows.push(peer(setup, &typescript, &request, &script)?);
    print_tables(&rows);
    Ok(())
}

fn build(setup: &Setup, name: &str, source: &Path) -> Result<(PathBuf, f64)> {
    let component = setup.scratch.join(format!("generic-json-{name}.wasm"));
    let started = Instant::now();
    crate::run(
        Command::new(setup.telehook)
            .env("PATH", setup.path)
            .arg("build")
            .arg(source)
            .arg("--output")
            .arg(&component),
    )?;
    Ok((component, started.elapsed().as_secs_f64()))
}

/// `telehook run --repeat`'s p50 and p99, in µs.
fn invocation(telehook: &Path, component: &Path, request: &Path) -> Result<(f64, f64)> {
    let output = Command::new(telehook)
        .arg("run")
        .arg("--module")
        .arg(component)
        .arg("--request")
        .arg(request)
        .args(["--repeat", &RUNS.to_string()])
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "telehook run failed: {stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains(" invocations: "))
        .with_context(|| format!("no latency in: {stderr}"))?;
    let figure = |label: &str| -> Result<f64> {
        let (_, after) = line
            .split_once(label)
            .with_context(|| format!("no {label} in {line}"))?;
        let number = after.split_whitespace().next().unwrap_or_default();
        number.parse().with_context(|| format!("{label} in {line}"))
    };
    Ok((figure("p50 ")?, figure("p99 ")?))
}

#[allow(clippy::too_many_arguments)]
fn serve(
    setup: &Setup,
    name: &'static str,
    component: &Path,
    script: &Path,
    build_seconds: Option<f64>,
    p50_us: f64,
    p99_us: f64,
) -> Result<Row> {
    let data_dir = setup.scratch.join(format!("data-{name}"));
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let server = Server::start(setup.telehook, &data_dir, &[])?;
    server.admin("POST", "/tenants", &json!({ "id": "bench" }))?;
    let idle = resident_bytes(server.pid())?;
    let started = Instant::now();
    let webhook = server.register("bench", "generic-json", component, &json!({}))?;
    let upload_seconds = started.elapsed().as_secs_f64();
    // As many of the integration's requests at once as the peer has workers: one per core.
    // (The default, cores - 1, keeps a core for the host's other integrations.)
    server.admin(
        "PUT",
        "/tenants/bench/integrations/generic-json/limits",
        &json!({ "max_concurrency": cores() }),
    )?;
    let http = load::measure(name, &webhook, script)?;
    let resident = resident_bytes(server.pid())?;
    let accepted: u64 = http.iter().map(|m| m.requests - m.not_2xx).sum();
    let logged = server.count_events("bench", "generic-json")? as u64;
    ensure!(
        logged >= accepted,
        "{name}: {accepted} answered 2xx but only {logged} logged"
    );
    Ok(Row {
        name,
        build_seconds,
        component_bytes: Some(std::fs::metadata(component)?.len()),
        p50_us,
        p99_us,
        upload_seconds: Some(upload_seconds),
        artifact_bytes: Some(directory_bytes(&data_dir.join("compiled"))?),
        resident_bytes: resident.saturating_sub(idle),
        http,
    })
}

/// The Node.js peer: its own timing of one parse, then its HTTP server (a worker per core).
fn peer(setup: &Setup, parser: &Path, request: &Path, script: &Path) -> Result<Row> {
    let program = setup.root.join("benches/node-vm-peer/peer.mjs");
    let output = Command::new("node")
        .arg(&program)
        .arg("invoke")
        .arg(parser)
        .arg(request)
        .arg(RUNS.to_string())
        .output()
        .context("running the Node.js peer")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "the peer failed: {stdout}");
    let figures: Vec<f64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .context("the peer printed no result")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [p50_us, p99_us] = figures[..] else {
        anyhow::bail!("the peer's result: {stdout}");
    };
    let workers = cores();
    let server = Process::start(
        Command::new("node")
            .arg(&program)
            .arg("serve")
            .arg(parser)
            .arg(workers.to_string()),
        "node vm peer listening on ",
    )?;
    let http = load::measure(
        "Node.js vm peer",
        &format!("{}/hooks/t0k3n", server.url),
        script,
    )?;
    let resident = process_tree_resident(server.pid())?;
    Ok(Row {
        name: "Node.js vm peer",
        build_seconds: None,
        component_bytes: None,
        p50_us,
        p99_us,
        upload_seconds: None,
        artifact_bytes: None,
        resident_bytes: resident,
        http,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// The resident memory of `pid` and its children (the peer's workers).
fn process_tree_resident(pid: u32) -> Result<u64> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let mut total = resident_bytes(pid)?;
    for child in children.split_whitespace() {
        total += resident_bytes(child.parse()?)?;
    }
    Ok(total)
}

fn directory_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

fn print_tables(rows: &[Row]) {
    let mib = |bytes: Option<u64>| {
        bytes.map_or("–".to_owned(), |b| {
            format!("{:.1}", b as f64 / f64::from(1 << 20))
        })
    };
    let seconds = |s: Option<f64>| s.map_or("–".to_owned(), |s| format!("{s:.1}"));
    println!(
        "\n| guest | build s | component MiB | invocation p50 µs | p99 µs | upload (compile) s | artifact MiB | resident MiB once serving |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} |",
            row.name,
            seconds(row.build_seconds),
            mib(row.component_bytes),
            row.p50_us,
            row.p99_us,
            seconds(row.upload_seconds),
            mib(row.artifact_bytes),
            mib(Some(row.resident_bytes)),
        );
    }
    println!("\n| guest | connections | requests/s | p50 ms | p99 ms | not 2xx |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        for m in &row.http {
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
                row.name,
                m.connections,
                m.per_second,
                m.p50_us as f64 / 1e3,
                m.p99_us as f64 / 1e3,
                m.not_2xx
            );
        }
    }
}
