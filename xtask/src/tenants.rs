//! The many-tenants benchmark of `cargo xtask bench`: one `telehook serve` with many
//! integrations, each running a distinct component (the `generic-json` component with a custom
//! section naming the integration, so that every one has its own digest, compilation and
//! artifact). It reports:
//!
//! - the time an upload takes until its version is active (compilation included), and the
//!   latency of the integration's first webhook after that;
//! - the server's resident memory once every integration has served a request;
//! - a hot integration's latency with one integration registered and with all of them;
//! - after a restart, the time until the server listens and until every integration has
//!   answered once (precompiled artifacts are reused; nothing is compiled again);
//! - the same with a tenth of the integrations allowed to stay loaded (`--max-loaded-parsers`):
//!   resident memory then stays bounded while every integration keeps answering.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::server::{Latencies, Server, WEBHOOK_BODY};

/// How long the hot integration is measured each time.
const HOT_WINDOW: Duration = Duration::from_secs(5);

/// Where the benchmark's parts are.
pub struct Setup<'a> {
    /// The release `telehook` binary.
    pub telehook: &'a Path,
    /// The `generic-json` component.
    pub generic_json: &'a Path,
    /// A scratch directory for the server's data.
    pub data_dir: &'a Path,
    /// How many integrations to register.
    pub integrations: usize,
}

/// Runs the benchmark and prints its results.
pub fn run(setup: &Setup) -> Result<()> {
    if setup.data_dir.exists() {
        std::fs::remove_dir_all(setup.data_dir)?;
    }
    let component = std::fs::read(setup.generic_json)?;
    let server = Server::start(setup.telehook, setup.data_dir, &[])?;
    server.admin("POST", "/tenants", &json!({ "id": "bench" }))?;

    let mut uploads = Vec::with_capacity(setup.integrations);
    let mut first_answers = Vec::with_capacity(setup.integrations);
    let mut webhooks = Vec::with_capacity(setup.integrations);
    let mut hot_alone = None;
    for index in 0..setup.integrations {
        let started = Instant::now();
        let webhook = register(&server, index, &with_name(&component, index))?;
        uploads.push(started.elapsed());
        let started = Instant::now();
        post(&server.agent, &webhook)?;
        first_answers.push(started.elapsed());
        webhooks.push(webhook);
        if index == 0 {
            hot_alone = Some(hot_latency(&server.agent, &webhooks[0])?);
        }
        if (index + 1) % 100 == 0 {
            println!("{} integrations registered", index + 1);
        }
    }
    let resident = crate::server::resident_bytes(server.pid())?;
    let hot_among_all = hot_latency(&server.agent, &webhooks[0])?;
    // The restarted server listens on another port: keep the paths.
    let paths: Vec<String> = webhooks
        .iter()
        .map(|webhook| webhook.trim_start_matches(server.url.as_str()).to_owned())
        .collect();
    drop(server);

    let restarted = Instant::now();
    let server = Server::start(setup.telehook, setup.data_dir, &[])?;
    let listening = restarted.elapsed();
    for path in &paths {
        post(&server.agent, &format!("{}{path}", server.url))?;
    }
    let all_answered = restarted.elapsed();
    let resident_after_restart = crate::server::resident_bytes(server.pid())?;
    drop(server);

    let cap = (setup.integrations / 10).max(1);
    let capped = Server::start(
        setup.telehook,
        setup.data_dir,
        &["--max-loaded-parsers", &cap.to_string()],
    )?;
    let started = Instant::now();
    for path in &paths {
        post(&capped.agent, &format!("{}{path}", capped.url))?;
    }
    let capped_all_answered = started.elapsed();
    let resident_capped = crate::server::resident_bytes(capped.pid())?;

    let (upload_median, upload_worst) = median_and_worst(&mut uploads);
    let (first_median, first_worst) = median_and_worst(&mut first_answers);
    let (alone_p50, alone_p99) = hot_alone.context("at least one integration")?;
    let (all_p50, all_p99) = hot_among_all;
    let n = setup.integrations;
    println!("\n| measurement | result |");
    println!("|---|---|");
    println!(
        "| upload until active, {n} distinct components | median {:.1} ms, worst {:.1} ms |",
        ms(upload_median),
        ms(upload_worst)
    );
    println!(
        "| first webhook after activation | median {:.2} ms, worst {:.2} ms |",
        ms(first_median),
        ms(first_worst)
    );
    println!(
        "| resident memory, {n} integrations registered, each served once (at most the server's cap of them loaded) | {:.0} MiB ({:.0} KiB per integration) |",
        resident as f64 / f64::from(1 << 20),
        resident as f64 / 1024.0 / n as f64
    );
    println!(
        "| hot integration, 1 registered | p50 {:.2} ms, p99 {:.2} ms |",
        ms(alone_p50),
        ms(alone_p99)
    );
    println!(
        "| hot integration, {n} registered | p50 {:.2} ms, p99 {:.2} ms |",
        ms(all_p50),
        ms(all_p99)
    );
    println!(
        "| restart: listening | {:.0} ms |",
        listening.as_secs_f64() * 1e3
    );
    println!(
        "| restart: every integration answered once | {:.0} ms |",
        all_answered.as_secs_f64() * 1e3
    );
    println!(
        "| resident memory after the restart and one request each | {:.0} MiB |",
        resident_after_restart as f64 / f64::from(1 << 20)
    );
    println!(
        "| at most {cap} loaded: every integration answered once | {:.0} ms, then {:.0} MiB resident |",
        capped_all_answered.as_secs_f64() * 1e3,
        resident_capped as f64 / f64::from(1 << 20)
    );
    Ok(())
}

/// The component with a custom section that names `index`: the same code, another digest.
fn with_name(component: &[u8], index: usize) -> Vec<u8> {
    let name = b"telehook-bench";
    let payload = index.to_string();
    let mut content = leb128(name.len());
    content.extend_from_slice(name);
    content.extend_from_slice(payload.as_bytes());
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section
    bytes.extend(leb128(content.len()));
    bytes.extend(content);
    bytes
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}

/// Creates integration `i{index}` with `component` active; returns its webhook URL.
fn register(server: &Server, index: usize, component: &[u8]) -> Result<String> {
    let base = "/tenants/bench/integrations";
    let id = format!("i{index}");
    let integration = server.admin("POST", base, &json!({ "id": id }))?;
    server.admin_bytes("POST", &format!("{base}/{id}/versions"), component.to_vec())?;
    server.admin(
        "POST",
        &format!("{base}/{id}/versions/1/activate"),
        &Value::Null,
    )?;
    integration["webhook_url"]
        .as_str()
        .map(str::to_owned)
        .context("the integration has a webhook URL")
}

fn post(agent: &ureq::Agent, webhook: &str) -> Result<()> {
    let response = agent
        .post(webhook)
        .header("content-type", "application/json")
        .send(WEBHOOK_BODY)?;
    ensure!(
        response.status() == 200,
        "{webhook} answered {}",
        response.status()
    );
    Ok(())
}

/// Sequential requests to one integration for [`HOT_WINDOW`]: p50 and p99.
fn hot_latency(agent: &ureq::Agent, webhook: &str) -> Result<(Duration, Duration)> {
    let measured = Latencies::measure(agent, webhook, HOT_WINDOW);
    ensure!(
        measured.failures == 0,
        "{webhook}: {} requests not answered 200",
        measured.failures
    );
    Ok((measured.percentile(0.5), measured.percentile(0.99)))
}

fn median_and_worst(durations: &mut [Duration]) -> (Duration, Duration) {
    durations.sort();
    (
        durations
            .get(durations.len() / 2)
            .copied()
            .unwrap_or_default(),
        durations.last().copied().unwrap_or_default(),
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
