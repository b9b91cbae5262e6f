//! The delivery benchmark of `cargo xtask bench --delivery`: how long a call update takes from
//! a provider's webhook to the platform, and what delivering it costs the webhooks.
//!
//! A fresh `telehook serve` (fsync on, the default) runs the scripted guest for one
//! integration whose extensions 100 to 199 are bound to 100 users. With delivery on, each user
//! has a browser-style stream open (`GET /stream/calls?token=...`, a stream token each), and
//! one endpoint, a real HTTP server in this process, takes every update forwarded. Each
//! webhook begins a call of its own caller, to one of the 100 extensions in turn, so that
//! every update reaches one stream and the endpoint; a webhook's latency to either is from
//! just before its request is written to when the update's JSON is read there.
//!
//! Load comes from C threads, each sending one webhook after another on a kept-alive
//! connection; the same load drives both runs of a pair, with delivery off (no stream, no
//! endpoint) and on. Everything shares the machine's two cores; the observers (the streams'
//! readers and the endpoint) run at nice [`OBSERVER_NICE`], so that they take what the server
//! and the load leave, as consumers on machines of their own would take nothing. Their
//! latencies include waiting for that.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::server::Server;

/// Connection counts of webhook load.
const CONNECTIONS: [usize; 2] = [1, 16];
/// How many users follow their calls on a stream.
const STREAMS: usize = 100;
/// How long each run drives webhooks.
const DURATION: Duration = Duration::from_secs(5);
/// Pairs of runs (off, on) per connection count.
const PAIRS: usize = 3;
/// How much lower the observers' threads run than the server's and the load's.
const OBSERVER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`OBSERVER_NICE`] (on Linux, `setpriority` of the
/// calling process applies to the calling thread alone).
fn observe_at_low_priority() {
    let _ = rustix::process::setpriority_process(None, OBSERVER_NICE);
}

/// Where the benchmark's parts are.
pub struct Setup<'a> {
    /// The release `telehook` binary.
    pub telehook: &'a Path,
    /// The scripted guest.
    pub scripted: &'a Path,
    /// A scratch directory for the servers' data.
    pub scratch: &'a Path,
}

/// When each webhook's request was sent, by caller, and when its update arrived on each path.
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    streamed: Mutex<Vec<(String, Instant)>>,
    forwarded: Mutex<Vec<(String, Instant)>>,
}

impl Clock {
    fn latencies(&self, arrivals: &Mutex<Vec<(String, Instant)>>) -> Vec<Duration> {
        let sent = lock(&self.sent);
        let mut latencies: Vec<Duration> = lock(arrivals)
            .iter()
            .filter_map(|(caller, at)| sent.get(caller).map(|sent| at.duration_since(*sent)))
            .collect();
        latencies.sort();
        latencies
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Who takes the updates in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumers {
    /// The 100 users' streams.
    pub streams: bool,
    /// The endpoint.
    pub endpoint: bool,
}

impl Consumers {
    const OFF: Self = Self {
        streams: false,
        endpoint: false,
    };
    const ON: Self = Self {
        streams: true,
        endpoint: true,
    };

    /// `off`, `streams`, `endpoint` or `on`.
    pub fn parse(word: &str) -> Result<Self> {
        Ok(match word {
            "off" => Self::OFF,
            "streams" => Self {
                streams: true,
                endpoint: false,
            },
            "endpoint" => Self {
                streams: false,
                endpoint: true,
            },
            "on" => Self::ON,
            other => anyhow::bail!("`{other}` is not off, streams, endpoint or on"),
        })
    }
}

/// One run's figures.
struct Run {
    per_second: f64,
    acknowledged: u64,
    failed: u64,
    streamed: Vec<Duration>,
    forwarded: Vec<Duration>,
}

/// Runs one configuration once, `connections` with delivery `on` or off, and prints its
/// figures: what to profile.
pub fn run_one(setup: &Setup, connections: usize, consumers: Consumers) -> Result<()> {
    let data_dir = fresh(setup.scratch.join("one"))?;
    let run = measure(setup, &data_dir, connections, consumers)?;
    println!(
        "{connections} connections, delivery {consumers:?}: {:.0} webhooks/s; stream p50 / p99 {}; endpoint p50 / p99 {}",
        run.per_second,
        spread(&run.streamed),
        spread(&run.forwarded),
    );
    Ok(())
}

pub fn run(setup: &Setup) -> Result<()> {
    let mut table = Vec::new();
    for connections in CONNECTIONS {
        for pair in 0..PAIRS {
            for delivery in [false, true] {
                let data_dir = fresh(
                    setup
                        .scratch
                        .join(format!("c{connections}-{pair}-{delivery}")),
                )?;
                let consumers = if delivery {
                    Consumers::ON
                } else {
                    Consumers::OFF
                };
                let run = measure(setup, &data_dir, connections, consumers)?;
                println!(
                    "{connections} connections, delivery {}: {:.0} webhooks/s ({} acknowledged, {} failed); \
                     stream p50 / p99 {} ({} updates); endpoint p50 / p99 {} ({} updates)",
                    if delivery { "on" } else { "off" },
                    run.per_second,
                    run.acknowledged,
                    run.failed,
                    spread(&run.streamed),
                    run.streamed.len(),
                    spread(&run.forwarded),
                    run.forwarded.len(),
                );
                table.push((connections, delivery, run));
            }
        }
    }
    println!();
    println!(
        "| connections | off (webhooks/s) | on | on / off (medians) | stream p50 / p99 | endpoint p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for connections in CONNECTIONS {
        let runs = |on: bool| -> Vec<&Run> {
            table
                .iter()
                .filter(|(c, delivery, _)| *c == connections && *delivery == on)
                .map(|(_, _, run)| run)
                .collect()
        };
        let rates = |runs: &[&Run]| -> Vec<f64> { runs.iter().map(|run| run.per_second).collect() };
        let (off, on) = (rates(&runs(false)), rates(&runs(true)));
        let streamed: Vec<String> = runs(true).iter().map(|run| spread(&run.streamed)).collect();
        let forwarded: Vec<String> = runs(true)
            .iter()
            .map(|run| spread(&run.forwarded))
            .collect();
        println!(
            "| {connections} | {} | {} | {:.0} / {:.0} = **{:.2}** | {} | {} |",
            joined(&off),
            joined(&on),
            median(&on),
            median(&off),
            median(&on) / median(&off),
            streamed.join(", "),
            forwarded.join(", "),
        );
    }
    Ok(())
}

fn joined(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|rate| format!("{rate:.0}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// `p50 / p99` of sorted latencies.
fn spread(sorted: &[Duration]) -> String {
    format!(
        "{} / {}",
        millis(percentile(sorted, 0.5)),
        millis(percentile(sorted, 0.99))
    )
}

/// `dir`, emptied of an earlier run's data.
fn fresh(dir: std::path::PathBuf) -> Result<std::path::PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// One run: a fresh server, its updates taken by `consumers`, `connections` threads of
/// webhooks.
fn measure(
    setup: &Setup,
    data_dir: &Path,
    connections: usize,
    consumers: Consumers,
) -> Result<Run> {
    let server = Server::start(setup.telehook, data_dir, &[])?;
    server.admin("POST", "/tenants", &json!({ "id": "acme" }))?;
    let webhook = server.register("acme", "pbx", setup.scripted, &json!({}))?;
    let bindings: Vec<Value> = (0..STREAMS)
        .map(|user| json!({ "extension": (100 + user).to_string(), "user_id": format!("u{user}") }))
        .collect();
    server.admin(
        "PUT",
        "/tenants/acme/integrations/pbx/bindings",
        &Value::Array(bindings),
    )?;

    let clock = Arc::new(Clock::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut observers = Vec::new();
    let endpoint = if consumers.endpoint {
        let endpoint = Endpoint::start(Arc::clone(&clock))?;
        server.admin(
            "POST",
            "/endpoints",
            &json!({ "url": endpoint.url, "tenant": "acme" }),
        )?;
        Some(endpoint)
    } else {
        None
    };
    if consumers.streams {
        for user in 0..STREAMS {
            let minted = server.admin(
                "POST",
                "/tenants/acme/stream-tokens",
                &json!({ "user": format!("u{user}") }),
            )?;
            let path = minted["stream"].as_str().context("a stream path")?;
            let clock = Arc::clone(&clock);
            observers.push(follow(
                &format!("{}{path}", server.url),
                &[],
                move |update| {
                    if let Some(caller) = caller_of(update) {
                        lock(&clock.streamed).push((caller, Instant::now()));
                    }
                },
            )?);
        }
    }

    let callers = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..connections)
        .map(|_| {
            let (webhook, clock, stop, callers) = (
                webhook.clone(),
                Arc::clone(&clock),
                Arc::clone(&stop),
                Arc::clone(&callers),
            );
            std::thread::spawn(move || send(&webhook, &clock, &stop, &callers))
        })
        .collect();
    std::thread::sleep(DURATION);
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = 0;
    let mut failed = 0;
    for sender in senders {
        let (ok, not_ok) = sender
            .join()
            .map_err(|_| anyhow::anyhow!("a sender panicked"))?;
        acknowledged += ok;
        failed += not_ok;
    }
    let elapsed = started.elapsed();
    // Let the last updates arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected = |on: bool| if on { acknowledged } else { 0 };
    while (lock(&clock.streamed).len() as u64) < expected(consumers.streams)
        || (lock(&clock.forwarded).len() as u64) < expected(consumers.endpoint)
    {
        ensure!(
            Instant::now() < deadline,
            "of {acknowledged} updates, {} streamed and {} forwarded within 30 s",
            lock(&clock.streamed).len(),
            lock(&clock.forwarded).len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    drop(endpoint);
    drop(observers);
    #[allow(clippy::cast_precision_loss)]
    let per_second = acknowledged as f64 / elapsed.as_secs_f64();
    Ok(Run {
        per_second,
        acknowledged,
        failed,
        streamed: clock.latencies(&clock.streamed),
        forwarded: clock.latencies(&clock.forwarded),
    })
}

/// Sends webhooks one after another until `stop`; returns how many were and were not
/// acknowledged.
fn send(webhook: &str, clock: &Clock, stop: &AtomicBool, callers: &AtomicU64) -> (u64, u64) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let (mut ok, mut not_ok) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let n = callers.fetch_add(1, Ordering::Relaxed);
        let caller = format!("+7900{n:07}");
        let form = format!(
            "event=start&direction=in&src=%2B{}&dst={}",
            &caller[1..],
            100 + n % STREAMS as u64
        );
        lock(&clock.sent).insert(caller, Instant::now());
        match agent
            .post(webhook)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form.as_bytes())
        {
            Ok(response) if response.status().is_success() => ok += 1,
            _ => not_ok += 1,
        }
    }
    (ok, not_ok)
}

/// The caller of the call an update is about. Found in the text rather than by parsing the
/// JSON: the observers share the cores with the server, and should take as little of them as
/// a consumer elsewhere would take of its own.
fn caller_of(update: &str) -> Option<String> {
    const KEY: &str = "\"src_phone\":\"";
    let start = update.find(KEY)? + KEY.len();
    let end = start + update[start..].find('"')?;
    Some(update[start..end].to_owned())
}

/// A browser's stream of call updates at `url` (with `headers`), read on a thread of its own
/// until the server goes away: `on_update` gets each update's JSON as it arrives.
pub fn follow(
    url: &str,
    headers: &[(&str, &str)],
    mut on_update: impl FnMut(&str) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.call()?;
    ensure!(response.status() == 200, "{url}: {}", response.status());
    let reader = BufReader::new(response.into_body().into_reader());
    Ok(std::thread::spawn(move || {
        observe_at_low_priority();
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data: ") {
                on_update(data);
            }
        }
    }))
}

/// The platform's endpoint: a real HTTP server (hyper, on a runtime of its own) that notes
/// when each update arrives.
struct Endpoint {
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Endpoint {
    fn start(clock: Arc<Clock>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(observe_at_low_priority)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let clock = Arc::clone(&clock);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let clock = Arc::clone(&clock);
                        async move { take(request, &clock).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/telehook"),
            runtime: Some(runtime),
        })
    }
}

/// Takes one forwarded update: `204`, once its arrival is noted.
async fn take(
    request: hyper::Request<hyper::body::Incoming>,
    clock: &Clock,
) -> Result<hyper::Response<http_body_util::Empty<hyper::body::Bytes>>, hyper::Error> {
    use http_body_util::BodyExt;
    let body = request.into_body().collect().await?.to_bytes();
    if let Some(caller) = std::str::from_utf8(&body).ok().and_then(caller_of) {
        lock(&clock.forwarded).push((caller, Instant::now()));
    }
    let mut response = hyper::Response::new(http_body_util::Empty::new());
    *response.status_mut() = hyper::StatusCode::NO_CONTENT;
    Ok(response)
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
