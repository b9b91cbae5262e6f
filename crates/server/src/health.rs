//! A circuit breaker per integration: a parser that keeps failing stops being called for a while,
//! so that it does not burn the host's time on requests it will fail anyway.
//!
//! - **Closed** (normal): every request runs the parser. A parser failure (a trap, a timeout, a
//!   memory or stack limit, an invalid result) counts; a success or a refusal (`parse-error`,
//!   the parser's own decision) resets the count.
//! - **Open**: after [`BreakerConfig::threshold`] failures in a row, requests are answered
//!   `503` with `retry-after` without running the parser, for [`BreakerConfig::cooldown`].
//! - **Half-open**: after the cooldown, one request runs the parser as a probe; a success closes
//!   the breaker, a failure opens it for another cooldown.
//!
//! An admin restores an open breaker at once with `POST I/health/reset`; activating a version or
//! rolling back starts the new version with a closed breaker. The state and the last errors are
//! shown by `GET I/health`, and `telehook_breaker_open` is 1 in `/metrics` while it is open.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::storage::now;

/// Failures in a row that open the breaker, unless configured otherwise.
pub const DEFAULT_THRESHOLD: u32 = 20;
/// How long an open breaker refuses requests, unless configured otherwise.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// How many recent failures the admin API shows.
pub const LAST_ERRORS: usize = 10;
/// A probe that has given no verdict after this long (the host was too busy to start it) no
/// longer holds the others back.
const PROBE_PATIENCE: Duration = Duration::from_secs(5);

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Parser failures in a row that open the breaker; 0 never opens it.
    pub threshold: u32,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

/// One failure, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// When it happened (RFC 3339).
    pub at: String,
    /// The kind: `trap`, `timeout`, `memory_limit`, `stack_overflow`, `invalid`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A setting the parser reported missing or wrong (contract 0.3): what the admin must fix.
#[derive(Debug, Clone, Serialize)]
pub struct SettingProblem {
    /// When the parser last reported it (RFC 3339).
    pub at: String,
    /// The setting's key.
    pub setting: String,
    /// The parser's words.
    pub message: String,
}

/// The breaker's state for the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Failures since the breaker was created (start, activation or reset).
    pub total_failures: u64,
    /// Milliseconds until an open breaker lets a probe through.
    pub retry_in_ms: Option<u64>,
    /// The most recent failures, newest last.
    pub last_errors: Vec<Failure>,
    /// The setting the parser last found missing or wrong, until a request succeeds.
    pub misconfigured: Option<SettingProblem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { since: Instant },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive: u32,
    total: u64,
    last_errors: VecDeque<Failure>,
    misconfigured: Option<SettingProblem>,
}

/// The breaker of one integration's active version.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive: 0,
                total: 0,
                last_errors: VecDeque::with_capacity(LAST_ERRORS),
                misconfigured: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few counters, consistent after every statement.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a request run the parser? `Err` says when to retry.
    pub fn allow(&self) -> Result<(), Duration> {
        let mut inner = self.inner();
        let now = Instant::now();
        match inner.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::HalfOpen { since } if now < since + PROBE_PATIENCE => {
                Err(Duration::from_secs(1))
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                inner.state = State::HalfOpen { since: now };
                Ok(())
            }
        }
    }

    /// The parser ran and did its job (or refused the request on its own terms); returns true
    /// when this success closed an open breaker.
    pub fn succeeded(&self) -> bool {
        let mut inner = self.inner();
        let was_open = inner.state != State::Closed;
        inner.state = State::Closed;
        inner.consecutive = 0;
        inner.misconfigured = None;
        was_open
    }

    /// The parser found a setting missing or wrong. Not the parser's failure, so the count
    /// that opens the breaker does not move; the health report names the setting until a
    /// request succeeds.
    pub fn misconfigured(&self, setting: &str, message: &str) {
        self.inner().misconfigured = Some(SettingProblem {
            at: now(),
            setting: setting.to_owned(),
            message: message.to_owned(),
        });
    }

    /// The parser failed; returns true when this failure opened the breaker.
    pub fn failed(&self, kind: &'static str, message: &str) -> bool {
        let mut inner = self.inner();
        inner.consecutive = inner.consecutive.saturating_add(1);
        inner.total += 1;
        if inner.last_errors.len() == LAST_ERRORS {
            inner.last_errors.pop_front();
        }
        inner.last_errors.push_back(Failure {
            at: now(),
            kind,
            message: message.to_owned(),
        });
        let opens = match inner.state {
            State::HalfOpen { .. } => true,
            State::Closed => {
                self.config.threshold > 0 && inner.consecutive >= self.config.threshold
            }
            State::Open { .. } => false,
        };
        if opens {
            inner.state = State::Open {
                until: Instant::now() + self.config.cooldown,
            };
        }
        opens
    }

    /// Closes the breaker at once: an admin's word that the parser may be called again.
    pub fn reset(&self) {
        let mut inner = self.inner();
        inner.state = State::Closed;
        inner.consecutive = 0;
    }

    /// Whether requests are being refused.
    pub fn is_open(&self) -> bool {
        !matches!(self.inner().state, State::Closed)
    }

    /// The state and last errors, for the admin API.
    pub fn report(&self) -> HealthReport {
        let inner = self.inner();
        let (state, retry_in) = match inner.state {
            State::Closed => ("closed", None),
            State::Open { until } => (
                "open",
                Some(until.saturating_duration_since(Instant::now())),
            ),
            State::HalfOpen { .. } => ("half_open", None),
        };
        HealthReport {
            state,
            consecutive_failures: inner.consecutive,
            total_failures: inner.total,
            retry_in_ms: retry_in.map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            last_errors: inner.last_errors.iter().cloned().collect(),
            misconfigured: inner.misconfigured.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(BreakerConfig {
            threshold,
            cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_until_the_cooldown() {
        let breaker = breaker(3, 60_000);
        assert!(!breaker.failed("trap", "one"));
        assert!(!breaker.failed("timeout", "two"));
        assert!(breaker.allow().is_ok());
        assert!(breaker.failed("trap", "three"));
        let wait = breaker.allow().expect_err("open");
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        let report = breaker.report();
        assert_eq!((report.state, report.consecutive_failures), ("open", 3));
        assert_eq!(
            report.last_errors.last().map(|f| f.message.as_str()),
            Some("three")
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = breaker(2, 60_000);
        breaker.failed("trap", "one");
        breaker.succeeded();
        assert!(!breaker.failed("trap", "two"), "the count started again");
    }

    #[test]
    fn after_the_cooldown_one_probe_decides() {
        let breaker = breaker(1, 0);
        assert!(breaker.failed("trap", "boom"));
        assert!(breaker.allow().is_ok(), "the probe runs");
        assert!(breaker.allow().is_err(), "only one probe at a time");
        assert!(
            breaker.failed("trap", "still broken"),
            "a failed probe reopens"
        );
        assert!(breaker.allow().is_ok(), "cooldown 0: the next probe");
        assert!(breaker.succeeded(), "the probe closed it");
        assert!(!breaker.is_open());
        assert!(breaker.allow().is_ok());
    }

    #[test]
    fn a_missing_setting_is_reported_until_a_success_and_never_opens() {
        let breaker = breaker(1, 60_000);
        breaker.misconfigured(
            "api_secret",
            "the integration setting `api_secret` is not set",
        );
        breaker.misconfigured(
            "api_secret",
            "the integration setting `api_secret` is not set",
        );
        assert!(!breaker.is_open());
        let report = breaker.report();
        assert_eq!(
            report
                .misconfigured
                .map(|problem| problem.setting)
                .as_deref(),
            Some("api_secret")
        );
        breaker.succeeded();
        assert!(breaker.report().misconfigured.is_none());
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = breaker(0, 60_000);
        for _ in 0..100 {
            assert!(!breaker.failed("timeout", "slow"));
        }
        assert!(breaker.allow().is_ok());
    }
}
