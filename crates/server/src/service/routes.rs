//! Each integration's endpoint held in memory: its token, active parser and settings, and the
//! state that outlives a change (its gate, breaker and cost). A change builds a new route from
//! storage and swaps it in; the integrations idle longest are unloaded past
//! [`ServiceConfig::max_loaded_parsers`](super::ServiceConfig::max_loaded_parsers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use telehook::{Parser, Settings};

use super::{Service, ServiceError};
use crate::admission::Gate;
use crate::health::Breaker;
use crate::lanes::CostMeter;
use crate::limits::{EffectiveLimits, IntegrationLimits};
use crate::recipients::Recipients;
use crate::storage::IntegrationKey;

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

impl Service {
    /// The route of an integration, loading it on first use.
    pub(super) async fn route(
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
        if self.storage.integration(key).await?.is_none() {
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

    /// Rebuilds an integration's route from storage and swaps it in. Rebuilds of one
    /// integration take turns: two at once (a first webhook's load and an admin's change, or
    /// another node's signal) could otherwise read the integration before and after a change
    /// and swap in the older one last.
    pub(super) async fn refresh_route(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<(), ServiceError> {
        let _turn = self.rebuilds.turn(key).await;
        let Some(integration) = self.storage.integration(key).await? else {
            self.forget_route(key);
            return Ok(());
        };
        let settings = self.storage.settings(key).await?;
        let recipients = Recipients::new(&self.storage.bindings(key).await?);
        let limits = self.effective_limits(&self.storage.limits(key).await?);
        let previous = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        // A version's component never changes, so the parser loaded already is taken again,
        // under the limits as they are now: rebuilding a route costs no load when only its
        // settings, bindings or limits changed (or nothing did, on a periodic re-read).
        let loaded = |version: u32| {
            let active = previous.as_ref()?.active.as_ref()?;
            (active.version == version).then(|| {
                let invocation = limits.invocation(self.limits());
                active
                    .parser
                    .with_limits(invocation.timeout, invocation.memory_bytes)
            })
        };
        let active = match integration.active_version {
            Some(version) => Some(Arc::new(Active {
                version,
                parser: match loaded(version) {
                    Some(parser) => parser,
                    None => self.load_version(key, version).await?,
                },
                settings: Arc::new(settings.clone()),
            })),
            None => None,
        };
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
        // When it last served a webhook, not when it was rebuilt: a route re-read on a
        // schedule (see `nodes`) must still look idle to the unloading.
        let last_used = previous.as_ref().map_or_else(
            || self.clock(),
            |route| route.last_used.load(Ordering::Relaxed),
        );
        let route = Route {
            last_used: AtomicU64::new(last_used),
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

    /// Rebuilds the route of an integration an admin changed, and tells the other nodes,
    /// which rebuild theirs.
    pub(super) async fn route_changed(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<(), ServiceError> {
        let refreshed = self.refresh_route(key).await;
        self.integration_changed(key).await;
        refreshed
    }

    pub(super) async fn loaded_route(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<Arc<Route>, ServiceError> {
        self.route(key)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("integration `{}`", key.integration_id)))
    }

    /// Loads a stored version under the integration's own time and memory limits: the active
    /// one, or one on trial before its activation, which must meet the limits it will run
    /// under.
    pub async fn load_version(
        self: &Arc<Self>,
        key: &IntegrationKey,
        version: u32,
    ) -> Result<Parser, ServiceError> {
        let stored = self
            .storage
            .versions(key)
            .await?
            .into_iter()
            .find(|stored| stored.version == version)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "version {version} of integration `{}`",
                    key.integration_id
                ))
            })?;
        let invocation = self
            .effective_limits(&self.storage.limits(key).await?)
            .invocation(self.limits());
        let fetched = if self.components.holds(&stored.sha256) {
            None
        } else {
            // Uploaded to another node: the database has it.
            let bytes = self.storage.component(&stored.sha256).await?;
            Some(bytes.ok_or_else(|| {
                ServiceError::Storage(format!(
                    "the component of version {version} ({}) is not in the database",
                    stored.sha256
                ))
            })?)
        };
        let service = Arc::clone(self);
        let parser = tokio::task::spawn_blocking(move || {
            if let Some(bytes) = fetched {
                service.components.cache(&stored.sha256, &bytes)?;
            }
            service.components.load(&service.runtime, &stored.sha256)
        })
        .await
        .map_err(|err| ServiceError::Storage(err.to_string()))??;
        Ok(parser.with_limits(invocation.timeout, invocation.memory_bytes))
    }

    pub(super) fn effective_limits(&self, own: &IntegrationLimits) -> EffectiveLimits {
        own.resolve(self.limits(), &self.admission)
    }

    /// Milliseconds since the service started: the clock of routes' `last_used`.
    pub(super) fn clock(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Drops what is held in memory for an integration that no longer exists, its recent
    /// invocations included: one created later under the same id starts without them.
    pub(super) fn forget_route(&self, key: &IntegrationKey) {
        self.rebuilds.forget(key);
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

/// The turns of each integration's route rebuilds.
#[derive(Default)]
pub(super) struct Rebuilds(Mutex<HashMap<IntegrationKey, Arc<tokio::sync::Mutex<()>>>>);

impl Rebuilds {
    /// Waits for the integration's turn to rebuild its route.
    async fn turn(&self, key: &IntegrationKey) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = Arc::clone(
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        turn.lock_owned().await
    }

    /// Forgets a deleted integration's turns (a rebuild holding one keeps it until done).
    fn forget(&self, key: &IntegrationKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
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
