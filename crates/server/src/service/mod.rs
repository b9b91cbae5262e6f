//! The service: everything the HTTP edge calls, in the platform's terms (tenants,
//! integrations, versions, webhooks), on top of the engine and [`crate::storage`].
//!
//! - `admin`: what admins and tenants do (tenants, integrations, versions, settings,
//!   bindings, limits, health, the platform's confirmations);
//! - `webhook`: a provider's request, from the route to the answer;
//! - `calls`: the calls the event log correlated, for admins, and the sweep that ends the
//!   silent ones;
//! - `routes`: each integration's active parser held in memory as a `Route`. A change
//!   (activation, settings, a new token) builds a new route and swaps it in, so requests in
//!   flight finish on the version they started with and the next ones use the new one;
//! - `invocations`: each integration's recent invocations, for the admin's view;
//! - `delivery`: feeds, subscriptions and streams of call updates, and the endpoints they are
//!   forwarded to;
//! - `nodes`: with several nodes, what keeps this one in step with the others.

mod admin;
mod calls;
mod delivery;
mod invocations;
mod nodes;
mod routes;
mod webhook;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use telehook::{Limits, LoadError, Runtime, RuntimeError};
use tokio::sync::{Notify, watch};

use crate::admission::AdmissionLimits;
use crate::calls::CallRules;
use crate::cluster::{Cluster, ClusterError};
use crate::compiler::Compiler;
use crate::components::{ComponentStore, StoreError};
use crate::delivery::Hub;
use crate::delivery::forwarder::{ClientError, ForwardConfig, Forwarders};
use crate::delivery::runtime::DeliveryRuntime;
use crate::delivery::stream_token::StreamTokens;
use crate::event_log::{Announce, EventLog};
use crate::health::BreakerConfig;
use crate::metrics::Metrics;
use crate::metrics::activity::BucketReport;
use crate::secrets::{KeySource, SettingsKey};
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{IntegrationKey, Storage, StorageError};
use crate::tokens;
use crate::uploads::UploadTurns;
use routes::Route;

pub use delivery::{MAX_STREAM_TOKEN_TTL, NewEndpoint, StreamAccess};
pub use invocations::{InvocationSummary, RECENT_INVOCATIONS};
pub use webhook::Answer;

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The holder of the admin token: manages everything.
    Admin,
    /// A tenant's token: manages that tenant's integrations only.
    Tenant(String),
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The thing does not exist, or the caller may not know it does.
    #[error("{0} not found")]
    NotFound(String),
    /// Only the admin may do this.
    #[error("only the admin token may {0}")]
    Forbidden(&'static str),
    /// The credential presented is not valid; the message says why.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The caller has as much in flight as it may; it may retry once that is done.
    #[error("{0}")]
    Busy(String),
    /// An uploaded component failed the check.
    #[error("the component was refused: {0}")]
    Component(#[from] LoadError),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}

impl From<StorageError> for ServiceError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound(what) => Self::NotFound(what),
            StorageError::Conflict(what) => Self::Conflict(what),
            StorageError::Invalid(why) => Self::BadRequest(why),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Load(err) => Self::Component(err),
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<io::Error> for ServiceError {
    fn from(err: io::Error) -> Self {
        Self::Storage(err.to_string())
    }
}

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where the database (unless the service is given other storage), the components and
    /// the admin token live.
    pub data_dir: PathBuf,
    /// The base of webhook URLs shown to admins, e.g. `https://hooks.example.com`.
    pub public_url: String,
    /// The limits every invocation runs under, unless an admin tunes them per integration.
    pub limits: Limits,
    /// Each integration's share of the host, unless an admin tunes it per integration.
    pub admission: AdmissionLimits,
    /// When a parser that keeps failing stops being called.
    pub breaker: BreakerConfig,
    /// Whether each batch of events is flushed to disk (`fsync`) before it is acknowledged.
    /// Without it an acknowledged event survives a crash of the host process but not a power
    /// loss or a kernel crash; the throughput gained is measured in BENCHMARKS.md.
    pub fsync_events: bool,
    /// How many integrations may be held in memory, each with its parser when a version is
    /// active (one without an active version counts too, though it costs little). Past it, the
    /// ones that have gone longest without a webhook are unloaded and load again (from their
    /// precompiled artifact, under a millisecond) on their next request: each loaded parser
    /// keeps its compiled code mapped, a few hundred KiB.
    pub max_loaded_parsers: usize,
    /// Where uploads are compiled: `telehook serve` uses a child process with a deadline.
    pub compiler: Compiler,
    /// The file of the key settings are sealed with; `None` for `DATA_DIR/settings-key`. A
    /// missing file gets a new key on first start. Kept apart from the data directory (a
    /// secrets mount), it keeps a copy of the database from revealing any setting.
    pub settings_key_file: Option<PathBuf>,
    /// How long an event the platform has confirmed taking stays in the log (for the
    /// per-integration view) before a later confirmation prunes it. Events the platform has
    /// not confirmed are kept whatever their age.
    pub event_retention: Duration,
    /// How long a delivery id is remembered: a delivery of the same id to the same
    /// integration within it is a provider's retry, answered as the first and stored once.
    pub delivery_window: Duration,
    /// How events are correlated into calls (see [`crate::calls`]).
    pub calls: CallRules,
    /// How call updates are forwarded to endpoints (see [`crate::delivery::forwarder`]).
    pub forwarding: ForwardConfig,
}

/// The default of [`ServiceConfig::delivery_window`]: a day, longer than the providers'
/// retry schedules (Twilio's and Telnyx's retries end within hours).
pub const DEFAULT_DELIVERY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The default of [`ServiceConfig::event_retention`]: a week.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default of [`ServiceConfig::max_loaded_parsers`]: about 800 MiB of compiled code for
/// parsers like the examples.
pub const DEFAULT_MAX_LOADED_PARSERS: usize = 2_000;

/// The telehook service.
pub struct Service {
    runtime: Runtime,
    storage: Arc<dyn Storage>,
    components: ComponentStore,
    events: EventLog,
    /// Where committed call updates are offered to the live feeds.
    hub: Hub,
    forwarders: Forwarders,
    /// Where forwarding runs, below the webhooks' priority: held for as long as the service.
    _delivery_runtime: DeliveryRuntime,
    stream_tokens: StreamTokens,
    routes: RwLock<HashMap<IntegrationKey, Arc<Route>>>,
    rebuilds: routes::Rebuilds,
    recent: Mutex<HashMap<IntegrationKey, VecDeque<InvocationSummary>>>,
    metrics: Metrics,
    admin_token: String,
    public_url: String,
    admission: AdmissionLimits,
    breaker: BreakerConfig,
    compilations: tokio::sync::Semaphore,
    upload_turns: UploadTurns,
    compiler: Compiler,
    /// Where the compiler's input and output files live while it runs.
    scratch: PathBuf,
    max_loaded_parsers: usize,
    event_retention: Duration,
    delivery_window: Duration,
    call_rules: CallRules,
    /// The start of the clock routes' `last_used` is counted on.
    started: Instant,
    /// The other nodes, when there are several.
    nodes: Option<Nodes>,
}

/// What a node of several holds to keep in step with the others (see `nodes`).
struct Nodes {
    cluster: Cluster,
    /// The last position this node's event log committed.
    committed: watch::Receiver<i64>,
    /// Woken when another node committed.
    heard: Arc<Notify>,
}

impl Service {
    /// Opens the data directory (creating it and the admin token on first start), with its
    /// SQLite database as the storage: the embedded default.
    pub fn open(config: ServiceConfig) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let storage = open_sqlite(&config)?;
        Self::with_storage(config, Arc::new(storage))
    }

    /// The service on `storage`, with the data directory for the components, the compiler's
    /// scratch files and the admin token: the only node on it.
    pub fn with_storage(
        config: ServiceConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let admin_token = admin_token(&config.data_dir)?;
        Self::build(config, storage, admin_token, None)
    }

    /// One node of several that share `storage` (PostgreSQL), hearing the others through the
    /// NATS server at `nats_url`. The admin token is the database's (the first node makes
    /// it), copied to `DATA_DIR/admin-token` as one node keeps it; the data directory holds
    /// only caches and scratch files. Start the service's work with
    /// [`Service::keep_in_step`] (`http::serve` does).
    pub async fn join(
        config: ServiceConfig,
        storage: Arc<dyn Storage>,
        nats_url: &str,
    ) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&config.data_dir)?;
        // First, so that a node whose settings key is not the others' is refused as such.
        let admin_token = storage
            .shared_secret("admin-token", &tokens::generate()?)
            .await?;
        let cluster = Cluster::join(nats_url, &*storage).await?;
        write_secret_file(&config.data_dir.join("admin-token"), &admin_token, true)?;
        Self::build(config, storage, admin_token, Some(cluster))
    }

    /// One node of several on the PostgreSQL database at `database_url` (see
    /// [`Service::join`]), with the settings key of [`ServiceConfig::settings_key_file`]: every
    /// node must have the same key, and one that does not open what the database holds is
    /// refused before it serves.
    pub async fn open_shared(
        config: ServiceConfig,
        database_url: &str,
        nats_url: &str,
    ) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let (key, key_file) = settings_key(&config)?;
        let storage = PostgresStorage::connect(database_url, key)
            .await
            .map_err(|err| key_file.refused(err))?;
        let storage: Arc<dyn Storage> = Arc::new(storage);
        match Self::join(config, storage, nats_url).await {
            Err(OpenError::Storage(err)) => Err(key_file.refused(err)),
            joined => joined,
        }
    }

    fn build(
        config: ServiceConfig,
        storage: Arc<dyn Storage>,
        admin_token: String,
        cluster: Option<Cluster>,
    ) -> Result<Self, OpenError> {
        let scratch = config.data_dir.join("tmp");
        std::fs::create_dir_all(&scratch)?;
        let metrics = Metrics::default();
        let hub = Hub::default();
        let (announce, nodes) = match cluster {
            None => (Announce::Hub(hub.clone()), None),
            Some(cluster) => {
                let (last, committed) = watch::channel(0);
                let nodes = Nodes {
                    cluster,
                    committed,
                    heard: Arc::default(),
                };
                (Announce::Position(last), Some(nodes))
            }
        };
        let events = EventLog::start(
            storage.event_writer(config.fsync_events)?,
            announce,
            metrics.event_commits(),
        )?;
        let delivery_runtime = DeliveryRuntime::start(2)?;
        let forwarders = Forwarders::new(
            delivery_runtime.handle().clone(),
            Arc::clone(&storage),
            hub.clone(),
            config.forwarding,
            metrics.forwarding(),
            nodes.as_ref().map(|nodes| nodes.cluster.leases().clone()),
        )?;
        Ok(Self {
            runtime: Runtime::new(config.limits)?,
            storage,
            components: ComponentStore::open(&config.data_dir)?,
            events,
            hub,
            forwarders,
            _delivery_runtime: delivery_runtime,
            stream_tokens: StreamTokens::new(&admin_token),
            routes: RwLock::default(),
            rebuilds: routes::Rebuilds::default(),
            recent: Mutex::default(),
            metrics,
            admin_token,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            admission: config.admission,
            breaker: config.breaker,
            compilations: tokio::sync::Semaphore::new(1),
            upload_turns: UploadTurns::default(),
            compiler: config.compiler,
            scratch,
            max_loaded_parsers: config.max_loaded_parsers.max(1),
            event_retention: config.event_retention,
            delivery_window: config.delivery_window,
            call_rules: config.calls,
            started: Instant::now(),
            nodes,
        })
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        self.runtime.limits()
    }

    /// The admin token (kept in `DATA_DIR/admin-token`; with several nodes, in the database).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Why the service cannot take webhooks now, if it cannot: the database does not answer,
    /// or the event log cannot store events. What a readiness probe asks.
    pub async fn trouble(&self) -> Option<String> {
        if let Err(err) = self.storage.ping().await {
            return Some(err.to_string());
        }
        self.events.trouble().map(str::to_owned)
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.encode()
    }

    /// An integration's requests and parser latencies over the last half hour, in buckets of
    /// [`crate::metrics::activity::BUCKET_SECS`], oldest first.
    pub fn activity(&self, key: &IntegrationKey) -> Vec<BucketReport> {
        self.metrics.activity(key)
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory is not usable.
    #[error("the data directory is not usable: {0}")]
    Io(#[from] io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The settings key file could not be read or written.
    #[error("the settings key file {}: {source}", path.display())]
    SettingsKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The engine could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Forwarding could not be set up.
    #[error(transparent)]
    Forwarding(#[from] ClientError),
    /// The other nodes could not be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Opens `DATA_DIR/telehook.db` with the settings key, generating the key on first start.
fn open_sqlite(config: &ServiceConfig) -> Result<SqliteStorage, OpenError> {
    let database = config.data_dir.join("telehook.db");
    let (key, key_file) = settings_key(config)?;
    SqliteStorage::open(&database, key).map_err(|err| key_file.refused(err))
}

/// The settings key file, and whether this start generated it.
struct KeyFile {
    path: PathBuf,
    generated: bool,
}

impl KeyFile {
    /// Takes back a key generated by this start that the database refused (its settings were
    /// sealed with a key that went missing, or another node's): nothing was sealed with it.
    fn refused(&self, err: StorageError) -> OpenError {
        if self.generated && matches!(err, StorageError::WrongKey(_)) {
            let _ = std::fs::remove_file(&self.path);
        }
        err.into()
    }
}

/// Reads the settings key, or generates it and writes it before anything is sealed with it,
/// so that no setting ever depends on a key held only in memory.
fn settings_key(config: &ServiceConfig) -> Result<(SettingsKey, KeyFile), OpenError> {
    let path = config
        .settings_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("settings-key"));
    let key_error = |source| OpenError::SettingsKey {
        path: path.clone(),
        source,
    };
    match SettingsKey::read_or_generate(&path).map_err(key_error)? {
        KeySource::Read(key) => Ok((
            key,
            KeyFile {
                path,
                generated: false,
            },
        )),
        KeySource::Generated(key, bytes) => {
            SettingsKey::write(&path, &bytes).map_err(key_error)?;
            tracing::info!("generated the settings key in {}", path.display());
            Ok((
                key,
                KeyFile {
                    path,
                    generated: true,
                },
            ))
        }
    }
}

/// Reads the admin token, generating it (readable by the owner only) on first start.
fn admin_token(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(token.trim().to_owned()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let token = tokens::generate()?;
            write_secret_file(&path, &token, false)?;
            tracing::info!("generated the admin token in {}", path.display());
            Ok(token)
        }
        Err(err) => Err(err),
    }
}

/// Writes a secret to a file readable by its owner only. With `replace`, what the file held
/// goes (a node copies the cluster's token over its own); without, a file that exists is an
/// error, so that two first starts at once cannot both believe their token is the one kept.
fn write_secret_file(path: &Path, secret: &str, replace: bool) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    if replace {
        options.write(true).create(true).truncate(true);
    } else {
        options.write(true).create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(path)?, secret.as_bytes())
}
