//! Fairness between integrations: each one gets its own share of the host, so that a flood to
//! one integration, or one slow parser, is answered `429`/`503` for that integration alone while
//! the others keep their latency.
//!
//! Every integration has a [`Gate`] with three limits:
//! - a **rate budget** (token bucket: `rate_per_second`, refilled continuously, up to `burst`);
//!   a request over budget is refused at once with `429` and `retry-after`;
//! - a **concurrency limit**: at most `max_concurrency` of its requests run parsers at once;
//! - a **bounded queue**: up to `max_queue` more wait, each at most [`AdmissionLimits::queue_wait`],
//!   for a running one to finish; past that the request is refused with `503` and `retry-after`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests of one integration that may run parsers at once, unless configured otherwise: every
/// core but one, so that no single integration, however busy or slow, can occupy the whole
/// machine (on two cores: one at a time).
pub fn default_max_concurrency() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(cores.saturating_sub(1).max(1)).unwrap_or(u32::MAX)
}
/// Requests of one integration that may wait for a running one, unless configured otherwise.
pub const DEFAULT_MAX_QUEUE: u32 = 64;
/// How long a queued request waits for its turn before it is refused.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// The admission limits of one integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionLimits {
    /// Requests that may run parsers at once.
    pub max_concurrency: u32,
    /// Requests that may wait for a running one.
    pub max_queue: u32,
    /// How long a queued request waits before it is refused.
    #[serde(rename = "queue_wait_ms", with = "millis")]
    pub queue_wait: Duration,
    /// Sustained requests per second; `None` for no rate budget.
    pub rate_per_second: Option<u32>,
    /// Requests that may arrive at once on a full budget; defaults to one second's worth.
    pub burst: Option<u32>,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_concurrency: default_max_concurrency(),
            max_queue: DEFAULT_MAX_QUEUE,
            queue_wait: DEFAULT_QUEUE_WAIT,
            rate_per_second: None,
            burst: None,
        }
    }
}

/// `queue_wait` as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(wait: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the integration's rate budget; the next request fits after `retry_after`.
    RateLimited {
        /// When the budget has room again.
        retry_after: Duration,
    },
    /// Every running slot is taken and the queue is full, or the wait ran out.
    Busy,
}

/// The admission state of one integration. It outlives route changes (a new version or new
/// settings), so in-flight requests and the rate budget carry over.
pub struct Gate {
    limits: AdmissionLimits,
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    budget: Option<DefaultDirectRateLimiter>,
}

impl Gate {
    /// A gate with nothing running and a full budget.
    pub fn new(limits: AdmissionLimits) -> Self {
        let budget = limits
            .rate_per_second
            .and_then(NonZeroU32::new)
            .map(|rate| {
                let burst = limits.burst.and_then(NonZeroU32::new).unwrap_or(rate);
                RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
            });
        Self {
            limits,
            running: Arc::new(Semaphore::new(limits.max_concurrency as usize)),
            waiting: AtomicUsize::new(0),
            budget,
        }
    }

    /// The limits this gate enforces.
    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// Lets a request in, possibly after a wait in the queue; the permit is its running slot
    /// and is returned when dropped.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if let Some(budget) = &self.budget {
            budget.check().map_err(|not_until| Refusal::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })?;
        }
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(permit);
        }
        let queued = Queued::join(&self.waiting);
        if queued.ahead >= self.limits.max_queue as usize {
            return Err(Refusal::Busy);
        }
        let turn = Arc::clone(&self.running).acquire_owned();
        match tokio::time::timeout(self.limits.queue_wait, turn).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal::Busy),
        }
    }
}

/// A place in the queue, left when dropped.
struct Queued<'a> {
    waiting: &'a AtomicUsize,
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicUsize) -> Self {
        let ahead = waiting.fetch_add(1, Ordering::AcqRel);
        Self { waiting, ahead }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_concurrency: u32, max_queue: u32) -> AdmissionLimits {
        AdmissionLimits {
            max_concurrency,
            max_queue,
            queue_wait: Duration::from_millis(200),
            ..AdmissionLimits::default()
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let gate = Gate::new(limits(1, 0));
        let running = gate.admit().await.expect("a free slot");
        assert_eq!(gate.admit().await.err(), Some(Refusal::Busy));
        drop(running);
        assert!(gate.admit().await.is_ok(), "the slot is free again");
    }

    #[tokio::test]
    async fn a_queued_request_runs_when_a_slot_frees() {
        let gate = Arc::new(Gate::new(limits(1, 1)));
        let running = gate.admit().await.expect("a free slot");
        let queued = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(running);
        assert_eq!(queued.await.expect("joins"), Ok(()));
    }

    #[tokio::test]
    async fn a_queued_request_gives_up_after_the_wait() {
        let gate = Gate::new(limits(1, 4));
        let _running = gate.admit().await.expect("a free slot");
        assert_eq!(gate.admit().await.err(), Some(Refusal::Busy));
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0, "it left the queue");
    }

    #[tokio::test]
    async fn the_rate_budget_allows_its_burst_then_says_when_to_retry() {
        let gate = Gate::new(AdmissionLimits {
            rate_per_second: Some(2),
            burst: Some(3),
            ..AdmissionLimits::default()
        });
        for _ in 0..3 {
            assert!(gate.admit().await.is_ok());
        }
        match gate.admit().await {
            Err(Refusal::RateLimited { retry_after }) => {
                assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
            }
            other => panic!("expected a rate refusal, got {other:?}"),
        }
    }
}
