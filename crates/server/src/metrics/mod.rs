//! Prometheus metrics: requests by integration and outcome, parser latency, which
//! integrations' circuit breakers are open, the calls the host had to end or could not
//! resolve, and how delivery goes (stream clients, forwarding attempts, dead letters).
//!
//! [`activity`] keeps the last half hour of each integration's requests and latencies in
//! buckets, for the console's charts.
//!
//! Integrations are labelled by tenant and id, since ids are only unique within a tenant.
//! Both come from URLs anyone can send; only registered ones become label values, so that a
//! scan of random URLs cannot grow the metrics without bound.

pub mod activity;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::{IntegrationKey, Swept};
use activity::{Activity, BucketReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    tenant: String,
    integration: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegrationLabels {
    tenant: String,
    integration: String,
}

impl From<&IntegrationKey> for IntegrationLabels {
    fn from(key: &IntegrationKey) -> Self {
        Self {
            tenant: key.tenant_id.clone(),
            integration: key.integration_id.clone(),
        }
    }
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    latency: Family<IntegrationLabels, Histogram, fn() -> Histogram>,
    breaker_open: Family<IntegrationLabels, Gauge>,
    loaded_parsers: Gauge,
    event_commits: Histogram,
    calls_timed_out: Family<IntegrationLabels, Counter>,
    unresolved_events: Family<IntegrationLabels, Counter>,
    stream_clients: Gauge,
    forwarding: ForwardMetrics,
    activity: Activity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The forwarders' metrics: attempts by result, and dead letters.
#[derive(Clone, Debug, Default)]
pub struct ForwardMetrics {
    attempts: Family<ResultLabels, Counter>,
    dead_letters: Counter,
}

impl ForwardMetrics {
    /// Counts an attempt that came to `result` (`delivered`, `failed`, `gone`).
    pub fn attempt(&self, result: &str) {
        self.attempts
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts an update given up on after its last attempt.
    pub fn dead_letter(&self) {
        self.dead_letters.inc();
    }
}

fn latency_histogram() -> Histogram {
    // 10 µs to ~5 s: a fresh-instance parse is tens of microseconds; the deadline is 50 ms.
    Histogram::new(exponential_buckets(0.000_01, 2.5, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("telehook");
        let requests = Family::<OutcomeLabels, Counter>::default();
        let latency =
            Family::<IntegrationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "webhook_requests",
            "Webhook requests by integration and outcome (ok, rejected, trap, timeout, \
             memory_limit, stack_overflow, invalid, instantiate, unknown_integration, \
             no_active_version, busy, rate_limited, suspended, too_large, storage_error)",
            requests.clone(),
        );
        registry.register(
            "parser_duration_seconds",
            "Time to run a parser in a fresh instance and validate its result",
            latency.clone(),
        );
        let breaker_open = Family::<IntegrationLabels, Gauge>::default();
        registry.register(
            "breaker_open",
            "1 while an integration's parser keeps failing and is not being called",
            breaker_open.clone(),
        );
        let loaded_parsers = Gauge::default();
        registry.register(
            "loaded_parsers",
            "Integrations held in memory, with their parser when a version is active \
             (at most max_loaded_parsers)",
            loaded_parsers.clone(),
        );
        // 1 to 512 events: the event log's largest transaction.
        let event_commits = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "event_commit_size",
            "Events written per event-log transaction: group commit at work when above 1",
            event_commits.clone(),
        );
        let calls_timed_out = Family::<IntegrationLabels, Counter>::default();
        registry.register(
            "calls_timed_out",
            "Calls the host ended because they heard nothing for the call timeout",
            calls_timed_out.clone(),
        );
        let unresolved_events = Family::<IntegrationLabels, Counter>::default();
        registry.register(
            "unresolved_events",
            "Events that named a call never known within the hold, stored unresolved",
            unresolved_events.clone(),
        );
        let stream_clients = Gauge::default();
        registry.register(
            "stream_clients",
            "Clients following the live stream of call updates",
            stream_clients.clone(),
        );
        let forwarding = ForwardMetrics::default();
        registry.register(
            "forward_attempts",
            "Attempts to forward a call update to an endpoint, by result (delivered, failed, \
             gone)",
            forwarding.attempts.clone(),
        );
        registry.register(
            "forward_dead_letters",
            "Call updates an endpoint failed to take on every attempt of the schedule",
            forwarding.dead_letters.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            breaker_open,
            loaded_parsers,
            event_commits,
            calls_timed_out,
            unresolved_events,
            stream_clients,
            forwarding,
            activity: Activity::default(),
        }
    }
}

impl Metrics {
    /// Counts one webhook request; `None` for one that named no registered integration, whose
    /// labels stay empty.
    pub fn request(&self, integration: Option<&IntegrationKey>, outcome: &str) {
        if let Some(key) = integration {
            self.activity.request(key, outcome);
        }
        let labels = integration.map_or(
            IntegrationLabels {
                tenant: String::new(),
                integration: String::new(),
            },
            IntegrationLabels::from,
        );
        self.requests
            .get_or_create(&OutcomeLabels {
                tenant: labels.tenant,
                integration: labels.integration,
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records how long a parser ran.
    pub fn parser_duration(&self, integration: &IntegrationKey, seconds: f64) {
        self.activity.parser_duration(integration, seconds);
        self.latency
            .get_or_create(&integration.into())
            .observe(seconds);
    }

    /// Records whether an integration's circuit breaker is open.
    pub fn breaker_open(&self, integration: &IntegrationKey, open: bool) {
        self.breaker_open
            .get_or_create(&integration.into())
            .set(i64::from(open));
    }

    /// Records how many integrations are held in memory (each with its parser, if active).
    pub fn loaded_parsers(&self, count: usize) {
        self.loaded_parsers
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Where the event log records the size of each commit.
    pub fn event_commits(&self) -> Histogram {
        self.event_commits.clone()
    }

    /// Counts what a sweep of the calls did.
    pub fn swept(&self, swept: &Swept) {
        for key in &swept.timed_out {
            self.calls_timed_out.get_or_create(&key.into()).inc();
        }
        for key in &swept.unresolved {
            self.unresolved_events.get_or_create(&key.into()).inc();
        }
    }

    /// The gauge of clients following the live stream.
    pub fn stream_clients(&self) -> Gauge {
        self.stream_clients.clone()
    }

    /// The forwarders' metrics.
    pub fn forwarding(&self) -> ForwardMetrics {
        self.forwarding.clone()
    }

    /// The integration's requests and parser latencies over the last half hour, oldest first.
    pub fn activity(&self, integration: &IntegrationKey) -> Vec<BucketReport> {
        self.activity.report(integration)
    }

    /// Forgets what was kept in memory of a deleted integration's activity.
    pub fn forget(&self, integration: &IntegrationKey) {
        self.activity.forget(integration);
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
