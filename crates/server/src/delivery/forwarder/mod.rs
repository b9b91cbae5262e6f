//! Push forwarding: each call update POSTed to the endpoints an admin configured, as Standard
//! Webhooks deliver (the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, see
//! [`super::signature`]).
//!
//! Each enabled endpoint has a worker that follows the log from the endpoint's stored
//! position. Updates of one call go out one at a time, in position order: an update waits
//! until the one before it of the same call was delivered or given up on, while other calls'
//! go ahead. A failed attempt (no answer within the timeout, a status other than 2xx) is
//! retried after the next wait of the schedule, with jitter, or after the endpoint's
//! `Retry-After` if that is longer; after the last one the update is a dead letter, which an
//! admin may replay. A `410 Gone` disables the endpoint at once, until an admin enables it:
//! the update it refused and all after it are then delivered.
//!
//! The endpoint's position (every update up to it delivered or dead) is stored every
//! [`POSITION_EVERY`]; a failure is stored when it happens, with its attempts and its next
//! time. After a crash, what was delivered since the last stored position is delivered again,
//! with the same `webhook-id`: the receiver's key to deduplicate.
//!
//! With several nodes, an endpoint's worker runs on one of them at a time (see [`leased`]).

mod leased;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::signature::Secret;
use super::{CallUpdate, Feed, Hub, UpdateFilter, lock};
use crate::cluster::Leases;
use crate::metrics::ForwardMetrics;
use crate::storage::{Storage, StorageError, from_now, now};

/// How often a worker stores its endpoint's position.
pub const POSITION_EVERY: Duration = Duration::from_millis(200);

/// How many updates a worker holds that are neither delivered nor given up on; past it, it
/// reads no further until some are.
const WINDOW: usize = 4096;

/// How much of an endpoint's answer a failure keeps.
const ANSWER_EXCERPT: usize = 200;

/// How forwarding is set up.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The waits between attempts: after the first failure the first wait, and so on; after
    /// a failure with no wait left, the update is a dead letter.
    pub schedule: Vec<Duration>,
    /// How long an endpoint may take to answer an attempt.
    pub timeout: Duration,
    /// How many attempts an endpoint may have in flight at once (each of another call).
    pub concurrency: usize,
}

/// Svix's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(300),
    Duration::from_secs(1_800),
    Duration::from_secs(7_200),
    Duration::from_secs(18_000),
    Duration::from_secs(36_000),
    Duration::from_secs(36_000),
];

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
            timeout: Duration::from_secs(15),
            concurrency: 64,
        }
    }
}

/// An endpoint updates are forwarded to.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Its id (`ep_` and a UUIDv7's hex).
    pub id: String,
    /// The tenant whose updates it gets; `None` for every tenant's (the platform's endpoint).
    pub tenant_id: Option<String>,
    /// Where updates are POSTed.
    pub url: String,
    /// The signing secret; shown once, when the endpoint is created.
    #[serde(skip)]
    pub secret: Secret,
    /// Why it is disabled, if it is.
    pub disabled: Option<String>,
    /// Every update up to this position was delivered or given up on.
    pub position: i64,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl Endpoint {
    /// The `webhook-id` of the update at `position`: the same on every attempt and replay.
    pub fn delivery_id(&self, position: i64) -> String {
        format!(
            "msg_{}_{position}",
            self.id.strip_prefix("ep_").unwrap_or(&self.id)
        )
    }

    fn filter(&self) -> UpdateFilter {
        UpdateFilter {
            tenant_id: self.tenant_id.clone(),
            user: None,
        }
    }
}

/// An update an endpoint has not taken yet after failing at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The endpoint.
    pub endpoint_id: String,
    /// The update's position.
    pub position: i64,
    /// The update's call.
    pub call_id: String,
    /// The attempts made.
    pub attempts: u32,
    /// When it is tried next (RFC 3339); `None` for a dead letter, tried again only when
    /// replayed.
    pub next_attempt_at: Option<String>,
    /// The last attempt's status, if the endpoint answered.
    pub last_status: Option<u16>,
    /// What went wrong the last time.
    pub last_error: String,
    /// When the last attempt failed (RFC 3339).
    pub failed_at: String,
}

impl Failure {
    /// Whether it was given up on.
    pub fn is_dead(&self) -> bool {
        self.next_attempt_at.is_none()
    }
}

/// What an attempt came to.
#[derive(Debug)]
enum Attempt {
    Delivered,
    /// `410 Gone`: the endpoint wants no more.
    Gone,
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

/// What every worker shares.
struct Shared {
    /// Where the workers run.
    runtime: tokio::runtime::Handle,
    storage: Arc<dyn Storage>,
    hub: Hub,
    client: reqwest::Client,
    config: ForwardConfig,
    metrics: ForwardMetrics,
    /// Where the nodes take turns, when there are several.
    leases: Option<Leases>,
}

/// The workers of every enabled endpoint.
pub struct Forwarders {
    shared: Arc<Shared>,
    workers: Mutex<HashMap<String, Running>>,
    /// Held through a restart, so that two at once cannot leave two workers for one endpoint.
    restarting: tokio::sync::Mutex<()>,
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Why the forwarders could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for forwarding could not be built: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl Forwarders {
    /// The forwarders of the endpoints `storage` keeps; none runs until [`Forwarders::start`].
    /// With `leases` (several nodes), each endpoint's worker runs only on the node holding
    /// its lease.
    pub fn new(
        runtime: tokio::runtime::Handle,
        storage: Arc<dyn Storage>,
        hub: Hub,
        config: ForwardConfig,
        metrics: ForwardMetrics,
        leases: Option<Leases>,
    ) -> Result<Self, ClientError> {
        // No proxy from the environment: endpoints are reached directly, and looking one up
        // costs every request.
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("telehook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                runtime,
                storage,
                hub,
                client,
                config,
                metrics,
                leases,
            }),
            workers: Mutex::default(),
            restarting: tokio::sync::Mutex::default(),
        })
    }

    /// Starts a worker for every enabled endpoint (and restarts those running).
    pub async fn start(&self) -> Result<(), StorageError> {
        for endpoint in self.shared.storage.endpoints().await? {
            self.restart(&endpoint.id).await?;
        }
        Ok(())
    }

    /// Stops the endpoint's worker, if one runs, once it has stored its position.
    pub async fn stop(&self, endpoint_id: &str) {
        let running = lock(&self.workers).remove(endpoint_id);
        if let Some(Running { stop, mut task }) = running {
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Starts the endpoint's worker afresh, from what is stored once the one running has
    /// stopped: after the endpoint was created, enabled, or had failures replayed. A disabled
    /// endpoint gets none.
    pub async fn restart(&self, endpoint_id: &str) -> Result<(), StorageError> {
        let _turn = self.restarting.lock().await;
        self.stop(endpoint_id).await;
        let Some(endpoint) = self.shared.storage.endpoint(endpoint_id).await? else {
            return Ok(());
        };
        if endpoint.disabled.is_some() {
            return Ok(());
        }
        let (stop, stopped) = watch::channel(false);
        let id = endpoint.id.clone();
        let shared = Arc::clone(&self.shared);
        let task = match &self.shared.leases {
            Some(leases) => {
                self.shared
                    .runtime
                    .spawn(leased::run(shared, id.clone(), leases.clone(), stopped))
            }
            None => self
                .shared
                .runtime
                .spawn(Worker::run(shared, endpoint, stopped)),
        };
        lock(&self.workers).insert(id, Running { stop, task });
        Ok(())
    }

    /// Brings the workers in line with the endpoints stored: one for each enabled endpoint
    /// that has none, none for an endpoint deleted or disabled. What another node's signal
    /// would have done, for one that was lost.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let endpoints = self.shared.storage.endpoints().await?;
        let running: Vec<String> = lock(&self.workers).keys().cloned().collect();
        for id in &running {
            let enabled = endpoints
                .iter()
                .any(|endpoint| endpoint.id == *id && endpoint.disabled.is_none());
            if !enabled {
                self.stop(id).await;
            }
        }
        for endpoint in endpoints {
            if endpoint.disabled.is_none() && !running.contains(&endpoint.id) {
                self.restart(&endpoint.id).await?;
            }
        }
        Ok(())
    }

    /// Stops every worker, each once it has stored its position.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = lock(&self.workers).keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }
}

/// An update a worker holds.
struct Held {
    update: Arc<CallUpdate>,
    /// Failed attempts so far.
    attempts: u32,
    /// When a failure stored before the worker started said to try it next.
    not_before: Option<SystemTime>,
    /// Replayed by an admin after it was given up on: behind the endpoint's position, so it
    /// does not hold the position back.
    replayed: bool,
}

/// One endpoint's worker.
struct Worker {
    shared: Arc<Shared>,
    endpoint: Arc<Endpoint>,
    /// The endpoint's URL, parsed once.
    url: reqwest::Url,
    feed: Feed,
    held: BTreeMap<i64, Held>,
    /// How many of `held` came from the feed (not replayed): what [`WINDOW`] bounds.
    followed: usize,
    /// Each call's held updates, oldest first: only the first goes out.
    calls: HashMap<String, VecDeque<i64>>,
    /// Updates at the head of their call, due now.
    due: VecDeque<i64>,
    /// Updates at the head of their call, due later.
    later: BTreeSet<(Instant, i64)>,
    /// Failures stored before the worker started, by position: taken up when the feed reaches
    /// them (a dead one is skipped).
    stored_failures: HashMap<i64, Failure>,
    in_flight: JoinSet<(i64, Attempt)>,
    stored_position: i64,
}

impl Worker {
    async fn run(shared: Arc<Shared>, endpoint: Endpoint, mut stopped: watch::Receiver<bool>) {
        let endpoint = Arc::new(endpoint);
        let mut worker = loop {
            match Self::prepare(&shared, &endpoint).await {
                Ok(worker) => break worker,
                Err(err) => {
                    tracing::error!(endpoint = %endpoint.id, "forwarding cannot start: {err}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
        };
        worker.forward(&mut stopped).await;
        worker.store_position().await;
    }

    /// The worker, with the replayed failures held and the others noted.
    async fn prepare(shared: &Arc<Shared>, endpoint: &Arc<Endpoint>) -> Result<Self, StorageError> {
        let failures = shared.storage.failures(&endpoint.id).await?;
        let url = reqwest::Url::parse(&endpoint.url).map_err(|err| {
            StorageError::Corrupt(format!("endpoint URL `{}`: {err}", endpoint.url))
        })?;
        let mut worker = Self {
            url,
            feed: Feed::new(
                Arc::clone(&shared.storage),
                &shared.hub,
                endpoint.filter(),
                endpoint.position,
            ),
            shared: Arc::clone(shared),
            endpoint: Arc::clone(endpoint),
            held: BTreeMap::new(),
            followed: 0,
            calls: HashMap::new(),
            due: VecDeque::new(),
            later: BTreeSet::new(),
            stored_failures: HashMap::new(),
            in_flight: JoinSet::new(),
            stored_position: endpoint.position,
        };
        let (replayed, ahead): (Vec<Failure>, Vec<Failure>) = failures
            .into_iter()
            .partition(|failure| failure.position <= endpoint.position && !failure.is_dead());
        let positions: Vec<i64> = replayed.iter().map(|failure| failure.position).collect();
        for update in shared.storage.call_updates_at(&positions).await? {
            let failure = replayed
                .iter()
                .find(|failure| failure.position == update.position);
            worker.hold(Arc::new(update), failure, true);
        }
        worker.stored_failures = ahead
            .into_iter()
            .map(|failure| (failure.position, failure))
            .collect();
        Ok(worker)
    }

    async fn forward(&mut self, stopped: &mut watch::Receiver<bool>) {
        let mut store_position = tokio::time::interval(POSITION_EVERY);
        store_position.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.send_due();
            let next_wake = self.later.first().map(|(at, _)| *at);
            let room = self.followed < WINDOW;
            tokio::select! {
                _ = stopped.changed() => return,
                Some(done) = self.in_flight.join_next() => {
                    if let Ok((position, attempt)) = done
                        && self.settle(position, attempt).await.is_break()
                    {
                        return;
                    }
                }
                () = sleep_until(next_wake), if next_wake.is_some() => self.wake(),
                next = self.feed.next(), if room => match next {
                    Ok(update) => self.take(update),
                    Err(err) => {
                        tracing::error!(endpoint = %self.endpoint.id, "forwarding cannot read the log: {err}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = store_position.tick() => self.store_position().await,
            }
        }
    }

    /// Takes an update the feed gave: held, unless it was given up on before the worker
    /// started.
    fn take(&mut self, update: Arc<CallUpdate>) {
        let failure = self.stored_failures.remove(&update.position);
        if failure.as_ref().is_some_and(Failure::is_dead) {
            return;
        }
        self.hold(update, failure.as_ref(), false);
    }

    /// Holds an update, with what a stored failure of it says.
    fn hold(&mut self, update: Arc<CallUpdate>, failure: Option<&Failure>, replayed: bool) {
        let position = update.position;
        let queue = self.calls.entry(update.call_id.clone()).or_default();
        queue.push_back(position);
        let first = queue.len() == 1;
        if !replayed {
            self.followed += 1;
        }
        self.held.insert(
            position,
            Held {
                update,
                attempts: failure.map_or(0, |failure| failure.attempts),
                not_before: failure
                    .and_then(|failure| failure.next_attempt_at.as_deref())
                    .and_then(|at| humantime::parse_rfc3339_weak(at).ok()),
                replayed,
            },
        );
        if first {
            self.schedule(position);
        }
    }

    /// Puts the head of a call where it waits for its turn: due now, or when its stored
    /// failure said, or after the wait its failed attempts earned.
    fn schedule(&mut self, position: i64) {
        let Some(held) = self.held.get(&position) else {
            return;
        };
        let wait = match (held.not_before, held.attempts.checked_sub(1)) {
            (Some(at), _) => at.duration_since(SystemTime::now()).unwrap_or_default(),
            (None, Some(failed)) => self.wait_after(failed as usize, None),
            (None, None) => Duration::ZERO,
        };
        if wait.is_zero() {
            self.due.push_back(position);
        } else {
            self.later.insert((Instant::now() + wait, position));
        }
    }

    fn wait_after(&self, failed: usize, retry_after: Option<Duration>) -> Duration {
        let planned = self
            .shared
            .config
            .schedule
            .get(failed)
            .copied()
            .unwrap_or_default();
        jitter(planned).max(retry_after.unwrap_or_default())
    }

    fn wake(&mut self) {
        let now = Instant::now();
        while let Some(&(at, position)) = self.later.first() {
            if at > now {
                break;
            }
            self.later.pop_first();
            self.due.push_back(position);
        }
    }

    fn send_due(&mut self) {
        while self.in_flight.len() < self.shared.config.concurrency {
            let Some(position) = self.due.pop_front() else {
                return;
            };
            let Some(held) = self.held.get(&position) else {
                continue;
            };
            let update = Arc::clone(&held.update);
            let endpoint = Arc::clone(&self.endpoint);
            let (client, url) = (self.shared.client.clone(), self.url.clone());
            self.in_flight
                .spawn(async move { (position, attempt(&client, &endpoint, url, &update).await) });
        }
    }

    /// Acts on an attempt's outcome; breaks when the endpoint is disabled.
    async fn settle(&mut self, position: i64, attempt: Attempt) -> std::ops::ControlFlow<()> {
        let metrics = &self.shared.metrics;
        match attempt {
            Attempt::Delivered => {
                metrics.attempt("delivered");
                let retried = self
                    .held
                    .get(&position)
                    .is_some_and(|held| held.attempts > 0 || held.replayed);
                self.release(position);
                if retried {
                    let cleared = self
                        .shared
                        .storage
                        .clear_failure(&self.endpoint.id, position);
                    if let Err(err) = cleared.await {
                        tracing::error!(endpoint = %self.endpoint.id, "clearing a delivered failure: {err}");
                    }
                }
            }
            Attempt::Gone => {
                metrics.attempt("gone");
                let why = format!(
                    "{} answered 410 Gone at {}: it wants no more deliveries",
                    self.endpoint.url,
                    now()
                );
                tracing::warn!(endpoint = %self.endpoint.id, "{why}; endpoint disabled");
                let disabled = self
                    .shared
                    .storage
                    .disable_endpoint(&self.endpoint.id, &why);
                if let Err(err) = disabled.await {
                    tracing::error!(endpoint = %self.endpoint.id, "disabling: {err}");
                }
                return std::ops::ControlFlow::Break(());
            }
            Attempt::Failed {
                status,
                error,
                retry_after,
            } => {
                metrics.attempt("failed");
                let Some(held) = self.held.get_mut(&position) else {
                    return std::ops::ControlFlow::Continue(());
                };
                held.attempts += 1;
                let attempts = held.attempts;
                let call_id = held.update.call_id.clone();
                let dead = attempts as usize > self.shared.config.schedule.len();
                let wait = self.wait_after(attempts as usize - 1, retry_after);
                let failure = Failure {
                    endpoint_id: self.endpoint.id.clone(),
                    position,
                    call_id,
                    attempts,
                    next_attempt_at: (!dead).then(|| from_now(wait)),
                    last_status: status,
                    last_error: error,
                    failed_at: now(),
                };
                if dead {
                    metrics.dead_letter();
                    tracing::warn!(
                        endpoint = %self.endpoint.id, position,
                        "an update failed its last attempt ({}): a dead letter", failure.last_error
                    );
                } else {
                    tracing::info!(
                        endpoint = %self.endpoint.id, position, attempts = failure.attempts,
                        "forwarding failed ({}); retrying in {wait:?}", failure.last_error
                    );
                }
                if let Err(err) = self.shared.storage.record_failure(&failure).await {
                    tracing::error!(endpoint = %self.endpoint.id, "recording a failure: {err}");
                }
                if dead {
                    self.release(position);
                } else {
                    self.later.insert((Instant::now() + wait, position));
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    /// Lets go of a delivered or dead update: the next of its call goes out.
    fn release(&mut self, position: i64) {
        let Some(held) = self.held.remove(&position) else {
            return;
        };
        if !held.replayed {
            self.followed -= 1;
        }
        let call = &held.update.call_id;
        let next = self.calls.get_mut(call).and_then(|queue| {
            queue.pop_front();
            queue.front().copied()
        });
        match next {
            Some(next) => self.schedule(next),
            None => {
                self.calls.remove(call);
            }
        }
    }

    /// Every update up to this is delivered or dead: the first held one (replays aside)
    /// bounds it, else the feed's last.
    fn position(&self) -> i64 {
        self.held
            .iter()
            .find(|(_, held)| !held.replayed)
            .map_or(self.feed.position(), |(position, _)| position - 1)
    }

    async fn store_position(&mut self) {
        let position = self.position();
        if position == self.stored_position {
            return;
        }
        match self
            .shared
            .storage
            .set_endpoint_position(&self.endpoint.id, position)
            .await
        {
            Ok(()) => self.stored_position = position,
            Err(err) => {
                tracing::error!(endpoint = %self.endpoint.id, "storing the position: {err}");
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// `wait` give or take a tenth, so that many updates failed at once are not all retried at
/// once.
fn jitter(wait: Duration) -> Duration {
    wait.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// One attempt to deliver `update` to `endpoint`, at its `url`.
async fn attempt(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    url: reqwest::Url,
    update: &CallUpdate,
) -> Attempt {
    let id = endpoint.delivery_id(update.position);
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let signature = endpoint.secret.sign(&id, timestamp, update.body.as_bytes());
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(update.body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(err) => {
            return Attempt::Failed {
                status: None,
                error: describe(&err),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    if status == reqwest::StatusCode::GONE {
        return Attempt::Gone;
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let answer = response.text().await.unwrap_or_default();
    let excerpt: String = answer.chars().take(ANSWER_EXCERPT).collect();
    Attempt::Failed {
        status: Some(status.as_u16()),
        error: format!("the endpoint answered {status}: {excerpt}"),
        retry_after,
    }
}

/// What went wrong with a request that got no answer, with its causes.
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "no answer within the timeout".to_owned()
    } else if err.is_connect() {
        "the endpoint could not be reached".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `url` is one updates may be POSTed to.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(()),
        _ => Err(format!("`{url}` is not an http(s) URL with a host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..1000 {
            let wait = jitter(Duration::from_secs(100));
            assert!(wait >= Duration::from_secs(90) && wait <= Duration::from_secs(110));
        }
    }

    #[test]
    fn only_http_urls_with_a_host_are_endpoints() {
        assert_eq!(check_url("https://platform.example.com/telehook"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:8080/"), Ok(()));
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
