//! `cargo xtask bench --nodes`: what several nodes cost and give, side by side in one run. The
//! same ~80-byte JSON webhook (the `generic-json` parser, every event committed before the
//! answer) to:
//!
//! - one node on its embedded SQLite (the default, fsynced);
//! - one node on the machine's PostgreSQL (a fresh schema), with NATS;
//! - two nodes on that PostgreSQL and NATS, each driven by a wrk of half the connections, as a
//!   load balancer would spread them.
//!
//! After each run the log must hold at least one event per `2xx` answered (requests cut off
//! when wrk stops may be logged without wrk counting their answer). On this two-core machine
//! the nodes, wrk and PostgreSQL share the cores, so two nodes measure the cost of sharing a
//! database, not the gain of a second machine.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::load::{Measurement, wrk, wrk_script};
use crate::server::Server;

/// Connection counts measured (split evenly between the nodes).
const CONNECTIONS: [u32; 2] = [16, 64];
/// How long wrk drives each connection count.
const DURATION: &str = "5s";
/// The database the PostgreSQL runs use, unless `TELEHOOK_BENCH_POSTGRES` names another.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The NATS server, unless `TELEHOOK_BENCH_NATS` names another.
const NATS: &str = "nats://127.0.0.1:4222";

/// Where the benchmark's parts are.
pub struct Setup<'a> {
    /// The release `telehook` binary.
    pub telehook: &'a Path,
    /// The `generic-json` component.
    pub generic_json: &'a Path,
    /// A scratch directory.
    pub scratch: &'a Path,
}

/// One configuration's figures at one connection count.
struct Row {
    setup: &'static str,
    connections: u32,
    per_second: f64,
    /// The slowest node's.
    p50_us: u64,
    p99_us: u64,
    not_2xx: u64,
}

/// Runs the three configurations and prints their table.
pub fn run(setup: &Setup) -> Result<()> {
    if setup.scratch.exists() {
        std::fs::remove_dir_all(setup.scratch)?;
    }
    std::fs::create_dir_all(setup.scratch)?;
    let script = setup.scratch.join("webhook.lua");
    std::fs::write(&script, wrk_script())?;
    let mut rows = Vec::new();

    let node = Server::start(setup.telehook, &setup.scratch.join("sqlite"), &[])?;
    rows.extend(measure("one node, SQLite", &[node], setup, &script)?);

    let base = std::env::var("TELEHOOK_BENCH_POSTGRES").unwrap_or_else(|_| POSTGRES.into());
    let nats = std::env::var("TELEHOOK_BENCH_NATS").unwrap_or_else(|_| NATS.into());
    for (name, count) in [("one node, PostgreSQL", 1), ("two nodes, PostgreSQL", 2)] {
        let schema = format!("telehook_bench_{count}");
        psql(
            &base,
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
        )?;
        let url = format!("{base}?options=-c%20search_path%3D{schema}");
        let key = setup.scratch.join(format!("{schema}-settings-key"));
        let nodes = (0..count)
            .map(|n| {
                let flags = [
                    "--database",
                    &url,
                    "--nats",
                    &nats,
                    "--settings-key-file",
                    key.to_str().context("a UTF-8 scratch path")?,
                ];
                Server::start(
                    setup.telehook,
                    &setup.scratch.join(format!("{schema}-node-{n}")),
                    &flags,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        rows.extend(measure(name, &nodes, setup, &script)?);
        drop(nodes);
        psql(&base, &format!("DROP SCHEMA {schema} CASCADE"))?;
    }

    println!("\n| setup | connections | requests/s | p50 ms | p99 ms | not 2xx |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            row.setup,
            row.connections,
            row.per_second,
            row.p50_us as f64 / 1e3,
            row.p99_us as f64 / 1e3,
            row.not_2xx
        );
    }
    Ok(())
}

/// Registers the parser through the first node, then drives every node at once at each
/// connection count, and checks the log against the answers.
fn measure(name: &'static str, nodes: &[Server], setup: &Setup, script: &Path) -> Result<Vec<Row>> {
    let first = nodes.first().context("a node")?;
    first.admin("POST", "/tenants", &json!({ "id": "bench" }))?;
    let webhook = first.register("bench", "generic-json", setup.generic_json, &json!({}))?;
    let path = webhook
        .strip_prefix(&first.url)
        .context("the webhook URL is the first node's")?;
    let urls: Vec<String> = nodes
        .iter()
        .map(|node| format!("{}{path}", node.url))
        .collect();
    let mut rows = Vec::new();
    let mut accepted = 0;
    for warm_up in [true, false] {
        let counts: &[u32] = if warm_up { &[16] } else { &CONNECTIONS };
        for &connections in counts {
            let share = connections / u32::try_from(nodes.len())?;
            let duration = if warm_up { "1s" } else { DURATION };
            let measured: Vec<Measurement> = std::thread::scope(|scope| {
                let runs: Vec<_> = urls
                    .iter()
                    .map(|url| scope.spawn(move || wrk(name, url, script, share, duration)))
                    .collect();
                runs.into_iter()
                    .map(|run| run.join().expect("wrk's thread"))
                    .collect::<Result<_>>()
            })?;
            accepted += measured.iter().map(|m| m.requests - m.not_2xx).sum::<u64>();
            if !warm_up {
                rows.push(Row {
                    setup: name,
                    connections,
                    per_second: measured.iter().map(|m| m.per_second).sum(),
                    p50_us: measured.iter().map(|m| m.p50_us).max().unwrap_or(0),
                    p99_us: measured.iter().map(|m| m.p99_us).max().unwrap_or(0),
                    not_2xx: measured.iter().map(|m| m.not_2xx).sum(),
                });
            }
        }
    }
    let logged = first.count_events("bench", "generic-json")? as u64;
    ensure!(
        logged >= accepted,
        "{name}: {accepted} answered 2xx but only {logged} logged"
    );
    println!("{name}: {accepted} answered 2xx, {logged} events logged");
    Ok(rows)
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let status = Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .status()
        .context("running psql (Debian's postgresql-client)")?;
    ensure!(status.success(), "psql failed on `{sql}` against {url}");
    Ok(())
}
