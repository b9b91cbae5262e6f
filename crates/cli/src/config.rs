//! `telehook serve`'s configuration: flags, then environment variables, then a TOML file,
//! then the embedded defaults (loopback, `./telehook-data`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use telehook::Limits;
use telehook_server::admission::AdmissionLimits;
use telehook_server::calls::{
    CallRules, DEFAULT_CALL_TIMEOUT, DEFAULT_CALL_WINDOW, DEFAULT_UNRESOLVED_AFTER,
};
use telehook_server::delivery::forwarder::ForwardConfig;
use telehook_server::health::BreakerConfig;
use telehook_server::http::HttpConfig;
use telehook_server::service::{
    DEFAULT_DELIVERY_WINDOW, DEFAULT_EVENT_RETENTION, DEFAULT_MAX_LOADED_PARSERS,
};

/// The default listening address: loopback only, until an operator decides otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";
/// How long compiling one upload may take: the examples take about a tenth of a second here,
/// a large parser a few seconds; minutes mean a component built to exhaust the compiler.
pub const DEFAULT_COMPILE_TIMEOUT_MS: u64 = 60_000;
/// The writable memory the compiler process may map: the examples compile within 64 MiB, a
/// component built to exhaust the compiler needs more than 256 MiB per megabyte of code.
pub const DEFAULT_COMPILE_MEMORY_MIB: u64 = 2048;
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "telehook-data";

/// The flags of `telehook serve`; each also reads an environment variable.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flags and environment win).
    #[arg(long, env = "TELEHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8700].
    #[arg(long, env = "TELEHOOK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the registry, components and admin token live [default: ./telehook-data]; with
    /// `--database`, only this node's caches and scratch files.
    #[arg(long, env = "TELEHOOK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host:port/db`) that several nodes share,
    /// instead of the data directory's SQLite; needs `--nats` and the same
    /// `--settings-key-file` on every node [default: SQLite, one node].
    #[arg(long, env = "TELEHOOK_DATABASE")]
    pub database: Option<String>,
    /// The NATS server (with JetStream) the nodes of `--database` hear each other through,
    /// e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = "TELEHOOK_NATS")]
    pub nats: Option<String>,
    /// The base of the webhook URLs shown to admins [default: the listening URL].
    #[arg(long, env = "TELEHOOK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The largest webhook body in bytes [default: 65536].
    #[arg(long, env = "TELEHOOK_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// The time a parser may run, in milliseconds [default: 50].
    #[arg(long, env = "TELEHOOK_PARSER_TIMEOUT_MS")]
    pub parser_timeout_ms: Option<u64>,
    /// The time a client may take to send its headers, in milliseconds [default: 10000].
    #[arg(long, env = "TELEHOOK_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// The time a client may take to send its body, in milliseconds [default: 10000].
    #[arg(long, env = "TELEHOOK_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Requests of one integration that may run parsers at once [default: every core but one].
    #[arg(long, env = "TELEHOOK_MAX_CONCURRENCY")]
    pub max_concurrency: Option<u32>,
    /// Requests of one integration that may wait for a running one [default: 64].
    #[arg(long, env = "TELEHOOK_MAX_QUEUE")]
    pub max_queue: Option<u32>,
    /// How long a queued request waits for its turn, in milliseconds [default: 1000].
    #[arg(long, env = "TELEHOOK_QUEUE_WAIT_MS")]
    pub queue_wait_ms: Option<u64>,
    /// Requests per second one integration may send [default: no budget].
    #[arg(long, env = "TELEHOOK_RATE_PER_SECOND")]
    pub rate_per_second: Option<u32>,
    /// Parser failures in a row that suspend an integration; 0 never does [default: 20].
    #[arg(long, env = "TELEHOOK_BREAKER_THRESHOLD")]
    pub breaker_threshold: Option<u32>,
    /// How long a suspended integration waits before a probe, in milliseconds [default: 30000].
    #[arg(long, env = "TELEHOOK_BREAKER_COOLDOWN_MS")]
    pub breaker_cooldown_ms: Option<u64>,
    /// Flush each batch of events to disk before acknowledging it; `false` keeps events safe
    /// from a crash of telehook but not from a power loss [default: true].
    #[arg(long, env = "TELEHOOK_FSYNC_EVENTS")]
    pub fsync_events: Option<bool>,
    /// Integrations whose parser stays loaded; the idlest beyond it are unloaded until their
    /// next request [default: 2000].
    #[arg(long, env = "TELEHOOK_MAX_LOADED_PARSERS")]
    pub max_loaded_parsers: Option<usize>,
    /// The time compiling one uploaded component may take, in milliseconds [default: 60000].
    #[arg(long, env = "TELEHOOK_COMPILE_TIMEOUT_MS")]
    pub compile_timeout_ms: Option<u64>,
    /// The memory compiling one uploaded component may use, in MiB [default: 2048].
    #[arg(long, env = "TELEHOOK_COMPILE_MEMORY_MIB")]
    pub compile_memory_mib: Option<u64>,
    /// How long events the platform has confirmed taking are kept, in hours; events it has
    /// not confirmed are kept whatever their age [default: 168].
    #[arg(long, env = "TELEHOOK_EVENT_RETENTION_HOURS")]
    pub event_retention_hours: Option<u64>,
    /// How long a delivery id is remembered, in hours: a delivery of the same id within it is
    /// the provider's retry, answered as the first and stored once [default: 24].
    #[arg(long, env = "TELEHOOK_DELIVERY_WINDOW_HOURS")]
    pub delivery_window_hours: Option<u64>,
    /// How long after its last event a call without a call id can still be found by its
    /// numbers, in seconds [default: 3600].
    #[arg(long, env = "TELEHOOK_CALL_WINDOW_SECS")]
    pub call_window_secs: Option<u64>,
    /// How long a call may hear nothing before the host ends it, marked `timeout`, in seconds
    /// [default: 14400].
    #[arg(long, env = "TELEHOOK_CALL_TIMEOUT_SECS")]
    pub call_timeout_secs: Option<u64>,
    /// How long an event that names only a call not known yet is held for it before it is
    /// stored unresolved, in seconds [default: 600].
    #[arg(long, env = "TELEHOOK_UNRESOLVED_AFTER_SECS")]
    pub unresolved_after_secs: Option<u64>,
    /// The file of the key settings are sealed with, created on first start if missing
    /// [default: DATA_DIR/settings-key].
    #[arg(long, env = "TELEHOOK_SETTINGS_KEY_FILE")]
    pub settings_key_file: Option<PathBuf>,
    /// The waits between attempts to forward an update to an endpoint, comma-separated;
    /// after the last, the update is a dead letter [default: 5s,5m,30m,2h,5h,10h,10h].
    #[arg(long, env = "TELEHOOK_FORWARD_SCHEDULE")]
    pub forward_schedule: Option<String>,
    /// How long an endpoint may take to answer a forwarded update, in milliseconds
    /// [default: 15000].
    #[arg(long, env = "TELEHOOK_FORWARD_TIMEOUT_MS")]
    pub forward_timeout_ms: Option<u64>,
    /// How many updates (each of another call) may be on their way to one endpoint at once
    /// [default: 64].
    #[arg(long, env = "TELEHOOK_FORWARD_CONCURRENCY")]
    pub forward_concurrency: Option<usize>,
    /// How often an idle live stream gets a keep-alive comment, in seconds [default: 15].
    #[arg(long, env = "TELEHOOK_STREAM_KEEP_ALIVE_SECS")]
    pub stream_keep_alive_secs: Option<u64>,
}

/// The same settings in the configuration file.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    nats: Option<String>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    parser_timeout_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_concurrency: Option<u32>,
    max_queue: Option<u32>,
    queue_wait_ms: Option<u64>,
    rate_per_second: Option<u32>,
    breaker_threshold: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    fsync_events: Option<bool>,
    max_loaded_parsers: Option<usize>,
    compile_timeout_ms: Option<u64>,
    compile_memory_mib: Option<u64>,
    event_retention_hours: Option<u64>,
    delivery_window_hours: Option<u64>,
    call_window_secs: Option<u64>,
    call_timeout_secs: Option<u64>,
    unresolved_after_secs: Option<u64>,
    settings_key_file: Option<PathBuf>,
    forward_schedule: Option<String>,
    forward_timeout_ms: Option<u64>,
    forward_concurrency: Option<usize>,
    stream_keep_alive_secs: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where several nodes keep everything, and hear each other; `None` for one node on
    /// SQLite.
    pub shared: Option<Shared>,
    pub public_url: Option<String>,
    pub http: HttpConfig,
    pub limits: Limits,
    pub admission: AdmissionLimits,
    pub breaker: BreakerConfig,
    pub fsync_events: bool,
    pub max_loaded_parsers: usize,
    pub compile_timeout: Duration,
    /// In bytes.
    pub compile_memory_limit: u64,
    pub event_retention: Duration,
    pub delivery_window: Duration,
    pub calls: CallRules,
    pub forwarding: ForwardConfig,
    pub settings_key_file: Option<PathBuf>,
}

/// The database and the NATS server several nodes share.
#[derive(Debug)]
pub struct Shared {
    pub database: String,
    pub nats: String,
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let shared = match (
            args.database.clone().or(file.database.clone()),
            args.nats.clone().or(file.nats.clone()),
        ) {
            (None, None) => None,
            (Some(database), Some(nats)) => {
                anyhow::ensure!(
                    database.starts_with("postgres://") || database.starts_with("postgresql://"),
                    "database must be a PostgreSQL URL (postgres://user@host:port/database)"
                );
                Some(Shared { database, nats })
            }
            (Some(_), None) => anyhow::bail!(
                "the nodes of a shared database hear each other through NATS: give --nats \
                 (e.g. nats://127.0.0.1:4222) with --database"
            ),
            (None, Some(_)) => {
                anyhow::bail!("--nats is for nodes that share a database: give --database too")
            }
        };
        let public_url = args.public_url.clone().or(file.public_url.clone());
        let mut http = HttpConfig {
            public_url: public_url.clone(),
            ..HttpConfig::default()
        };
        if let Some(max) = args.max_body_bytes.or(file.max_body_bytes) {
            http.max_body_bytes = max;
        }
        if let Some(ms) = args.header_timeout_ms.or(file.header_timeout_ms) {
            http.header_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = args.body_timeout_ms.or(file.body_timeout_ms) {
            http.body_timeout = Duration::from_millis(ms);
        }
        if let Some(secs) = args.stream_keep_alive_secs.or(file.stream_keep_alive_secs) {
            anyhow::ensure!(secs > 0, "stream-keep-alive-secs must be at least 1");
            http.stream_keep_alive = Duration::from_secs(secs);
        }
        let mut forwarding = ForwardConfig::default();
        if let Some(schedule) = args.forward_schedule.or(file.forward_schedule) {
            forwarding.schedule = schedule
                .split(',')
                .map(|wait| humantime::parse_duration(wait.trim()))
                .collect::<Result<_, _>>()
                .with_context(|| {
                    format!("forward-schedule must be waits such as 5s,5m,2h: `{schedule}`")
                })?;
        }
        if let Some(ms) = args.forward_timeout_ms.or(file.forward_timeout_ms) {
            forwarding.timeout = Duration::from_millis(ms);
        }
        if let Some(concurrency) = args.forward_concurrency.or(file.forward_concurrency) {
            anyhow::ensure!(concurrency > 0, "forward-concurrency must be at least 1");
            forwarding.concurrency = concurrency;
        }
        let mut limits = Limits::default();
        if let Some(ms) = args.parser_timeout_ms.or(file.parser_timeout_ms) {
            limits.timeout = Duration::from_millis(ms);
            limits.timeout_cap = limits.timeout_cap.max(limits.timeout);
        }
        let mut admission = AdmissionLimits::default();
        if let Some(max) = args.max_concurrency.or(file.max_concurrency) {
            anyhow::ensure!(
                (1..=limits.max_instances).contains(&max),
                "max-concurrency must be 1 to {}",
                limits.max_instances
            );
            admission.max_concurrency = max;
        }
        if let Some(max) = args.max_queue.or(file.max_queue) {
            admission.max_queue = max;
        }
        if let Some(ms) = args.queue_wait_ms.or(file.queue_wait_ms) {
            admission.queue_wait = Duration::from_millis(ms);
        }
        admission.rate_per_second = args.rate_per_second.or(file.rate_per_second);
        let mut breaker = BreakerConfig::default();
        if let Some(threshold) = args.breaker_threshold.or(file.breaker_threshold) {
            breaker.threshold = threshold;
        }
        if let Some(ms) = args.breaker_cooldown_ms.or(file.breaker_cooldown_ms) {
            breaker.cooldown = Duration::from_millis(ms);
        }
        Ok(Self {
            listen: match args.listen.or(file.listen) {
                Some(listen) => listen,
                None => DEFAULT_LISTEN.parse()?,
            },
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            shared,
            public_url,
            http,
            limits,
            admission,
            breaker,
            fsync_events: args.fsync_events.or(file.fsync_events).unwrap_or(true),
            max_loaded_parsers: args
                .max_loaded_parsers
                .or(file.max_loaded_parsers)
                .unwrap_or(DEFAULT_MAX_LOADED_PARSERS),
            compile_timeout: Duration::from_millis(
                args.compile_timeout_ms
                    .or(file.compile_timeout_ms)
                    .unwrap_or(DEFAULT_COMPILE_TIMEOUT_MS),
            ),
            compile_memory_limit: args
                .compile_memory_mib
                .or(file.compile_memory_mib)
                .unwrap_or(DEFAULT_COMPILE_MEMORY_MIB)
                << 20,
            event_retention: args
                .event_retention_hours
                .or(file.event_retention_hours)
                .map_or(DEFAULT_EVENT_RETENTION, |hours| {
                    Duration::from_secs(hours.saturating_mul(3600))
                }),
            delivery_window: args
                .delivery_window_hours
                .or(file.delivery_window_hours)
                .map_or(DEFAULT_DELIVERY_WINDOW, |hours| {
                    Duration::from_secs(hours.saturating_mul(3600))
                }),
            calls: CallRules {
                window: seconds(args.call_window_secs.or(file.call_window_secs))
                    .unwrap_or(DEFAULT_CALL_WINDOW),
                timeout: seconds(args.call_timeout_secs.or(file.call_timeout_secs))
                    .unwrap_or(DEFAULT_CALL_TIMEOUT),
                unresolved_after: seconds(
                    args.unresolved_after_secs.or(file.unresolved_after_secs),
                )
                .unwrap_or(DEFAULT_UNRESOLVED_AFTER),
            },
            forwarding,
            settings_key_file: args.settings_key_file.or(file.settings_key_file),
        })
    }
}

fn seconds(value: Option<u64>) -> Option<Duration> {
    value.map(Duration::from_secs)
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn resolve(flags: &[&str]) -> Result<ServeConfig> {
        let command =
            Command::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))?;
        ServeConfig::resolve(command.args)
    }

    #[test]
    fn a_shared_database_needs_nats_and_nats_needs_a_shared_database() {
        assert!(resolve(&[]).expect("the default").shared.is_none());
        let shared = resolve(&[
            "--database",
            "postgres://telehook@db/telehook",
            "--nats",
            "nats://nats:4222",
        ])
        .expect("both")
        .shared
        .expect("shared");
        assert_eq!(shared.database, "postgres://telehook@db/telehook");
        assert_eq!(shared.nats, "nats://nats:4222");

        let alone = resolve(&["--database", "postgres://db/telehook"]).expect_err("no NATS");
        assert!(alone.to_string().contains("give --nats"), "{alone}");
        let no_database = resolve(&["--nats", "nats://nats:4222"]).expect_err("no database");
        assert!(
            no_database.to_string().contains("--database"),
            "{no_database}"
        );
        let not_postgres = resolve(&["--database", "mysql://db", "--nats", "nats://n:4222"])
            .expect_err("not PostgreSQL");
        assert!(
            not_postgres.to_string().contains("PostgreSQL URL"),
            "{not_postgres}"
        );
    }
}
