//! The service: everything the HTTP edge calls, in the platform's terms (tenants,
//! integrations, versions, webhooks), on top of the engine.
//!
//! - [`registry`]: the SQLite database of tenants, integrations, versions, settings, bindings;
//! - [`components`]: uploaded components and their precompiled artifacts on disk;
//! - [`dispatch`]: the durable event log every accepted event is committed to;
//! - [`admission`] and [`limits`]: each integration's share of the host (concurrency, queue,
//!   rate budget) and the limits an admin may tune for it;
//! - [`lanes`]: heavy work (compilation, parsers that keep burning CPU) at the lowest priority;
//! - [`health`]: the circuit breaker of a parser that keeps failing;
//! - [`recipients`]: the users bound to a call's operators, who get its call card;
//! - [`secrets`]: settings sealed at rest;
//! - [`uploads`]: one upload per tenant at a time;
//! - [`metrics`] and [`tokens`].
//!
//! Each integration's active parser is kept in memory as a `Route`; a change (activation,
//! settings, a new token) builds a new route and swaps it in, so requests in flight finish on
//! the version they started with and the next ones use the new one.

pub mod admission;
pub mod compiler;
pub mod components;
pub mod dispatch;
pub mod health;
pub mod lanes;
pub mod limits;
pub mod metrics;
pub mod recipients;
pub mod registry;
pub mod secrets;
pub mod tokens;
pub mod uploads;
mod webhook;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::engine::parser::Parser;
use crate::engine::runtime::Runtime;
use crate::engine::sandbox::Settings;
use crate::error::LoadError;
use crate::{InvocationLog, Limits, RuntimeError};
use admission::{AdmissionLimits, Gate};
use compiler::Compiler;
use components::{ComponentStore, StoreError};
use dispatch::EventLog;
use health::{Breaker, BreakerConfig, HealthReport};
use lanes::CostMeter;
use limits::{EffectiveLimits, IntegrationLimits};
use metrics::Metrics;
use recipients::Recipients;
use registry::{Binding, Integration, IntegrationKey, Registry, RegistryError};
use secrets::{KeySource, SettingsKey};
use uploads::{UploadTurn, UploadTurns};

pub use webhook::Answer;

/// How many recent invocations the admin API shows per integration.
pub const RECENT_INVOCATIONS: usize = 50;

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

impl From<RegistryError> for ServiceError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::NotFound(what) => Self::NotFound(what),
            RegistryError::Conflict(what) => Self::Conflict(what),
            RegistryError::Invalid(why) => Self::BadRequest(why),
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
    /// Where the registry, components and admin token live.
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
}

/// The default of [`ServiceConfig::event_retention`]: a week.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default of [`ServiceConfig::max_loaded_parsers`]: about 800 MiB of compiled code for
/// parsers like the examples.
pub const DEFAULT_MAX_LOADED_PARSERS: usize = 2_000;

/// An integration's webhook endpoint as requests see it.
pub(crate) struct Route {
    pub(crate) webhook_token: String,
    pub(crate) active: Option<Arc<Active>>,
    /// Setting values, to redact from the bodies shown in recent invocations.
    pub(crate) secrets: Vec<String>,
    /// The extension-to-user bindings, which name who is notified of each event.
    pub(crate) recipients: Recipients,
    /// The integration's admission state, carried over from route to route.
    pub(crate) gate: Arc<Gate>,
    /// The active version's circuit breaker, carried over until another version is activated.
    pub(crate) breaker: Arc<Breaker>,
    /// What the integration's invocations cost lately, which decides the lane they run in.
    pub(crate) cost: Arc<CostMeter>,
    /// When the route last served a webhook, in milliseconds of the service's clock.
    pub(crate) last_used: AtomicU64,
}

/// The parser version requests run on, with the settings it sees.
pub(crate) struct Active {
    pub(crate) version: u32,
    pub(crate) parser: Parser,
    pub(crate) settings: Arc<Settings>,
}

/// One entry of an integration's recent invocations.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationSummary {
    /// When the request arrived (RFC 3339).
    pub at: String,
    /// The parser version that ran.
    pub version: u32,
    /// `ok`, or the kind of failure.
    pub outcome: &'static str,
    /// The failure's message.
    pub error: Option<String>,
    /// Time in the parser, microseconds.
    pub duration_us: u64,
    /// The request's method.
    pub method: String,
    /// The request's path, with the webhook token and setting values redacted.
    pub path: String,
    /// The request body (cut at 4 KiB), with setting values redacted.
    pub body: String,
    /// What the parser logged.
    pub log: InvocationLog,
}

/// The telehook service.
pub struct Service {
    runtime: Runtime,
    registry: Registry,
    components: ComponentStore,
    events: EventLog,
    routes: RwLock<HashMap<IntegrationKey, Arc<Route>>>,
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
    /// The start of the clock routes' `last_used` is counted on.
    started: Instant,
}

impl Service {
    /// Opens the data directory (creating it and the admin token on first start).
    pub fn open(config: ServiceConfig) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let database = config.data_dir.join("telehook.db");
        let key_file = config
            .settings_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("settings-key"));
        let key_error = |source| OpenError::SettingsKey {
            path: key_file.clone(),
            source,
        };
        let registry = match SettingsKey::read_or_generate(&key_file).map_err(key_error)? {
            KeySource::Read(key) => Registry::open(&database, key)?,
            KeySource::Generated(key, bytes) => {
                // Written before anything is sealed with it, so that no setting ever depends on
                // a key held only in memory; taken back if the database refuses it (its
                // settings were sealed with a key that went missing).
                SettingsKey::write(&key_file, &bytes).map_err(key_error)?;
                match Registry::open(&database, key) {
                    Ok(registry) => {
                        tracing::info!("generated the settings key in {}", key_file.display());
                        registry
                    }
                    Err(err) => {
                        let _ = std::fs::remove_file(&key_file);
                        return Err(err.into());
                    }
                }
            }
        };
        let scratch = config.data_dir.join("tmp");
        std::fs::create_dir_all(&scratch)?;
        let metrics = Metrics::default();
        let events = EventLog::start(
            registry::connect(&database)?,
            config.fsync_events,
            metrics.event_commits(),
        )?;
        Ok(Self {
            runtime: Runtime::new(config.limits)?,
            registry,
            components: ComponentStore::open(&config.data_dir)?,
            events,
            routes: RwLock::default(),
            recent: Mutex::default(),
            metrics,
            admin_token: admin_token(&config.data_dir)?,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            admission: config.admission,
            breaker: config.breaker,
            compilations: tokio::sync::Semaphore::new(1),
            upload_turns: UploadTurns::default(),
            compiler: config.compiler,
            scratch,
            max_loaded_parsers: config.max_loaded_parsers.max(1),
            event_retention: config.event_retention,
            started: Instant::now(),
        })
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        self.runtime.limits()
    }

    /// The admin token (kept in `DATA_DIR/admin-token`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Why the service cannot take webhooks now, if it cannot: the registry does not answer,
    /// or the event log cannot store events. What a readiness probe asks.
    pub fn trouble(&self) -> Option<String> {
        if let Err(err) = self.registry.ping() {
            return Some(err.to_string());
        }
        self.events.trouble().map(str::to_owned)
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.encode()
    }

    /// Who a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, ServiceError> {
        if tokens::matches(token, &self.admin_token) {
            return Ok(Some(Principal::Admin));
        }
        Ok(self
            .registry
            .tenant_by_token(&tokens::hash(token))?
            .map(Principal::Tenant))
    }

    /// The registry, for reads the admin API passes through.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The integration, if `principal` may manage it as part of `tenant_id`. A tenant asking for
    /// another tenant's integration gets the same answer as for one that does not exist.
    pub fn integration_for(
        &self,
        principal: &Principal,
        tenant_id: &str,
        integration_id: &str,
    ) -> Result<Integration, ServiceError> {
        self.authorize_tenant(principal, tenant_id)?;
        self.registry
            .integration(&IntegrationKey::new(tenant_id, integration_id))?
            .ok_or_else(|| ServiceError::NotFound(format!("integration `{integration_id}`")))
    }

    /// Fails unless `principal` may manage `tenant_id`.
    pub fn authorize_tenant(
        &self,
        principal: &Principal,
        tenant_id: &str,
    ) -> Result<(), ServiceError> {
        match principal {
            Principal::Admin => Ok(()),
            Principal::Tenant(own) if own == tenant_id => Ok(()),
            Principal::Tenant(_) => Err(ServiceError::NotFound(format!("tenant `{tenant_id}`"))),
        }
    }

    /// The URL the admin pastes into the provider's console.
    pub fn webhook_url(&self, integration: &Integration) -> String {
        format!(
            "{}/hooks/{}/{}/{}",
            self.public_url, integration.tenant_id, integration.id, integration.webhook_token
        )
    }

    /// `tenant_id`'s turn to upload a component, to take before reading it: refused while the
    /// tenant has another upload in flight (see [`uploads`]).
    pub fn upload_turn(&self, tenant_id: &str) -> Result<UploadTurn, ServiceError> {
        self.upload_turns.take(tenant_id).ok_or_else(|| {
            ServiceError::Busy(format!(
                "tenant `{tenant_id}` has an upload in flight already; send the next one once \
                 it is answered"
            ))
        })
    }

    /// Checks and stores a new parser version, in the tenant's upload turn; it is not active
    /// until activated.
    pub async fn upload_version(
        self: &Arc<Self>,
        key: &IntegrationKey,
        bytes: Vec<u8>,
        _turn: UploadTurn,
    ) -> Result<registry::Version, ServiceError> {
        // Compiling is the heaviest thing a tenant can ask for: one upload at a time, at the
        // lowest CPU priority (the background lane, or the compiler process, see `compiler`), so
        // that a flood of uploads gets only the CPU the webhooks leave. The one-at-a-time
        // compile is also what throttles a flood of uploads that are refused after it.
        let _compiling = self
            .compilations
            .acquire()
            .await
            .map_err(|err| ServiceError::Storage(err.to_string()))?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let service = Arc::clone(self);
        let stored = match &self.compiler {
            Compiler::InProcess => {
                lanes::in_background(move || {
                    let parser = service.runtime.load(&bytes)?;
                    Ok::<_, ServiceError>(service.components.put(&bytes, &parser)?)
                })
                .await
            }
            Compiler::Subprocess {
                program,
                timeout,
                memory_limit,
            } => {
                let (checked, bytes) = {
                    let service = Arc::clone(self);
                    lanes::in_background(move || (service.runtime.validate(&bytes), bytes))
                        .await
                        .map_err(|err| ServiceError::Storage(err.to_string()))?
                };
                checked?;
                let artifact =
                    compiler::in_child(program, *timeout, *memory_limit, &bytes, &self.scratch)
                        .await?;
                lanes::in_background(move || {
                    // SAFETY: `telehook compile` (`Runtime::precompile`) wrote the artifact into
                    // this host's own data directory a moment ago.
                    #[allow(unsafe_code)]
                    let parser = unsafe { service.runtime.load_precompiled(&artifact) }?;
                    Ok::<_, ServiceError>(service.components.put(&bytes, &parser)?)
                })
                .await
            }
        };
        let digest = stored.map_err(|err| ServiceError::Storage(err.to_string()))??;
        Ok(self.registry.add_version(key, &digest, size)?)
    }

    /// Makes `version` the one the next requests run on.
    pub async fn activate(
        self: &Arc<Self>,
        key: &IntegrationKey,
        version: u32,
    ) -> Result<(), ServiceError> {
        self.registry.activate(key, version)?;
        self.refresh_route(key).await
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(self: &Arc<Self>, key: &IntegrationKey) -> Result<u32, ServiceError> {
        let target = self.registry.rollback_target(key)?.ok_or_else(|| {
            ServiceError::BadRequest("there is no earlier active version to roll back to".into())
        })?;
        self.activate(key, target).await?;
        Ok(target)
    }

    /// Sets and removes settings; the next requests see the change.
    pub async fn update_settings(
        self: &Arc<Self>,
        key: &IntegrationKey,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ServiceError> {
        self.registry.update_settings(key, changes)?;
        self.refresh_route(key).await
    }

    /// Replaces the extension-to-user bindings; the next events notify the new users.
    pub async fn replace_bindings(
        self: &Arc<Self>,
        key: &IntegrationKey,
        bindings: &[Binding],
    ) -> Result<(), ServiceError> {
        self.registry.replace_bindings(key, bindings)?;
        self.refresh_route(key).await
    }

    /// Replaces the webhook token: the old URL stops working at once.
    pub async fn regenerate_token(
        self: &Arc<Self>,
        integration: &Integration,
    ) -> Result<Integration, ServiceError> {
        let token = tokens::generate()?;
        let key = integration.key();
        self.registry.set_webhook_token(&key, &token)?;
        self.refresh_route(&key).await?;
        Ok(Integration {
            webhook_token: token,
            ..integration.clone()
        })
    }

    /// Deletes an integration; its webhook URL stops working at once.
    pub fn delete_integration(&self, key: &IntegrationKey) -> Result<(), ServiceError> {
        self.registry.delete_integration(key)?;
        self.forget_route(key);
        Ok(())
    }

    /// Deletes a tenant and its integrations.
    pub fn delete_tenant(&self, tenant_id: &str) -> Result<(), ServiceError> {
        let integrations = self.registry.integrations(tenant_id)?;
        self.registry.delete_tenant(tenant_id)?;
        for integration in integrations {
            self.forget_route(&integration.key());
        }
        Ok(())
    }

    /// Loads a stored version (for testing it before activation).
    pub async fn load_version(
        self: &Arc<Self>,
        key: &IntegrationKey,
        version: u32,
    ) -> Result<Parser, ServiceError> {
        let stored = self
            .registry
            .versions(key)?
            .into_iter()
            .find(|stored| stored.version == version)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "version {version} of integration `{}`",
                    key.integration_id
                ))
            })?;
        let service = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            service.components.load(&service.runtime, &stored.sha256)
        })
        .await
        .map_err(|err| ServiceError::Storage(err.to_string()))?
        .map_err(Into::into)
    }

    /// The circuit breaker of an integration's active version: its state and last errors.
    pub async fn health(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<HealthReport, ServiceError> {
        Ok(self.loaded_route(key).await?.breaker.report())
    }

    /// Closes an integration's circuit breaker: its parser is called again from the next request.
    pub async fn reset_health(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<HealthReport, ServiceError> {
        let route = self.loaded_route(key).await?;
        route.breaker.reset();
        self.metrics.breaker_open(key, false);
        Ok(route.breaker.report())
    }

    async fn loaded_route(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<Arc<Route>, ServiceError> {
        self.route(key)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("integration `{}`", key.integration_id)))
    }

    /// An integration's own limits and the limits its requests run under.
    pub fn integration_limits(
        &self,
        key: &IntegrationKey,
    ) -> Result<(IntegrationLimits, EffectiveLimits), ServiceError> {
        let own = self.registry.limits(key)?;
        let effective = self.effective_limits(&own);
        Ok((own, effective))
    }

    /// Replaces an integration's own limits after checking them against the host's caps; the
    /// next requests run under them.
    pub async fn set_integration_limits(
        self: &Arc<Self>,
        key: &IntegrationKey,
        limits: &IntegrationLimits,
    ) -> Result<EffectiveLimits, ServiceError> {
        let broken = limits.violations(self.limits());
        if !broken.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "invalid limits: {}",
                broken.join("; ")
            )));
        }
        self.registry.set_limits(key, limits)?;
        self.refresh_route(key).await?;
        Ok(self.effective_limits(limits))
    }

    fn effective_limits(&self, own: &IntegrationLimits) -> EffectiveLimits {
        own.resolve(self.limits(), &self.admission)
    }

    /// The integration's settings, for a test run of a candidate version.
    pub fn settings(&self, key: &IntegrationKey) -> Result<Settings, ServiceError> {
        Ok(self.registry.settings(key)?)
    }

    /// Records that the platform has durably taken every event up to `seq`, and prunes what it
    /// took longer ago than the retention allows (see [`Registry::confirm_consumed`]).
    pub async fn confirm_consumed(
        self: &Arc<Self>,
        seq: i64,
    ) -> Result<registry::Consumption, ServiceError> {
        let prune_before = SystemTime::now()
            .checked_sub(self.event_retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let prune_before = humantime::format_rfc3339_millis(prune_before).to_string();
        let service = Arc::clone(self);
        let consumption = tokio::task::spawn_blocking(move || {
            service.registry.confirm_consumed(seq, &prune_before)
        })
        .await
        .map_err(|err| ServiceError::Storage(err.to_string()))??;
        if consumption.pruned > 0 {
            tracing::info!(
                seq = consumption.seq,
                pruned = consumption.pruned,
                "pruned events the platform has taken"
            );
        }
        Ok(consumption)
    }

    /// The integration's recent invocations, newest first.
    pub fn recent_invocations(&self, key: &IntegrationKey) -> Vec<InvocationSummary> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(key)
            .map(|entries| entries.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    fn remember(&self, key: &IntegrationKey, summary: InvocationSummary) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let entries = recent.entry(key.clone()).or_default();
        if entries.len() == RECENT_INVOCATIONS {
            entries.pop_front();
        }
        entries.push_back(summary);
    }

    /// The route of an integration, loading it on first use.
    async fn route(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<Option<Arc<Route>>, ServiceError> {
        if let Some(route) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(Some(Arc::clone(route)));
        }
        if self.registry.integration(key)?.is_none() {
            return Ok(None);
        }
        self.refresh_route(key).await?;
        Ok(self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    /// Rebuilds an integration's route from the registry and swaps it in.
    async fn refresh_route(self: &Arc<Self>, key: &IntegrationKey) -> Result<(), ServiceError> {
        let Some(integration) = self.registry.integration(key)? else {
            self.forget_route(key);
            return Ok(());
        };
        let settings = self.registry.settings(key)?;
        let recipients = Recipients::new(&self.registry.bindings(key)?);
        let limits = self.effective_limits(&self.registry.limits(key)?);
        let active = match integration.active_version {
            Some(version) => {
                let parser = self.load_version(key, version).await?;
                let invocation = limits.invocation(self.limits());
                Some(Arc::new(Active {
                    version,
                    parser: parser.with_limits(invocation.timeout, invocation.memory_bytes),
                    settings: Arc::new(settings.clone()),
                }))
            }
            None => None,
        };
        let previous = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        let gate = previous
            .as_ref()
            .map(|route| Arc::clone(&route.gate))
            .filter(|gate| *gate.limits() == limits.admission)
            .unwrap_or_else(|| Arc::new(Gate::new(limits.admission)));
        let same_version = |route: &&Arc<Route>| {
            route.active.as_ref().map(|active| active.version) == integration.active_version
        };
        let breaker = match previous.as_ref().filter(same_version) {
            Some(route) => Arc::clone(&route.breaker),
            None => {
                self.metrics.breaker_open(key, false);
                Arc::new(Breaker::new(self.breaker))
            }
        };
        let cost = previous
            .as_ref()
            .map_or_else(Default::default, |route| Arc::clone(&route.cost));
        let route = Route {
            last_used: AtomicU64::new(self.clock()),
            webhook_token: integration.webhook_token,
            active,
            secrets: settings.values().map(str::to_owned).collect(),
            recipients,
            gate,
            breaker,
            cost,
        };
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.insert(key.clone(), Arc::new(route));
        if routes.len() > self.max_loaded_parsers {
            unload_idlest(&mut routes, self.max_loaded_parsers, key);
        }
        self.metrics.loaded_parsers(routes.len());
        Ok(())
    }

    /// Milliseconds since the service started: the clock of routes' `last_used`.
    pub(crate) fn clock(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Drops what is held in memory for an integration that no longer exists, its recent
    /// invocations included: one created later under the same id starts without them.
    fn forget_route(&self, key: &IntegrationKey) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.remove(key);
        self.metrics.loaded_parsers(routes.len());
        drop(routes);
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Unloads the routes that have gone longest without a webhook, down to nine tenths of `max`
/// (so that the scan is not repeated on every load), keeping `just_loaded` and every route
/// whose breaker is open: its suspension must outlive the unloading. Requests in flight keep
/// their route alive until they finish.
fn unload_idlest(
    routes: &mut HashMap<IntegrationKey, Arc<Route>>,
    max: usize,
    just_loaded: &IntegrationKey,
) {
    let target = max - max / 10;
    let mut idle: Vec<(u64, IntegrationKey)> = routes
        .iter()
        .filter(|(key, route)| *key != just_loaded && !route.breaker.is_open())
        .map(|(key, route)| (route.last_used.load(Ordering::Relaxed), key.clone()))
        .collect();
    idle.sort_unstable();
    let excess = routes.len().saturating_sub(target);
    for (_, key) in idle.into_iter().take(excess) {
        routes.remove(&key);
    }
    tracing::info!(
        loaded = routes.len(),
        "unloaded the parsers of the integrations idle longest"
    );
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory is not usable.
    #[error("the data directory is not usable: {0}")]
    Io(#[from] io::Error),
    /// The registry database could not be opened.
    #[error(transparent)]
    Registry(#[from] RegistryError),
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
}

/// Reads the admin token, generating it (readable by the owner only) on first start.
fn admin_token(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(token.trim().to_owned()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let token = tokens::generate()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            io::Write::write_all(&mut options.open(&path)?, token.as_bytes())?;
            tracing::info!("generated the admin token in {}", path.display());
            Ok(token)
        }
        Err(err) => Err(err),
    }
}
