//! Per-integration limits: what an admin may lower or raise for one integration, within the
//! host's caps.
//!
//! | field | default | allowed |
//! |---|---|---|
//! | `timeout_ms` | the host's parser timeout (`--parser-timeout-ms`, 50 ms) | 1 to the host's timeout cap (1 s) |
//! | `memory_bytes` | the host's memory limit (32 MiB) | 1 MiB to the host's memory cap (128 MiB) |
//! | `max_concurrency` | [`default_max_concurrency`]: every core but one | 1 to the host's instance count |
//! | `max_queue` | [`DEFAULT_MAX_QUEUE`] | 0 to [`MAX_QUEUE`] |
//! | `rate_per_second` | none (no budget) | 1 to [`MAX_RATE`] |
//! | `burst` | `rate_per_second` | 1 to [`MAX_RATE`], only with `rate_per_second` |
//!
//! [`default_max_concurrency`]: crate::admission::default_max_concurrency
//! [`DEFAULT_MAX_QUEUE`]: crate::admission::DEFAULT_MAX_QUEUE

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::admission::AdmissionLimits;
use telehook::Limits;

/// The longest queue an integration may have.
pub const MAX_QUEUE: u32 = 10_000;
/// The highest rate budget (and burst) an integration may have.
pub const MAX_RATE: u32 = 1_000_000;
/// The smallest memory limit: below it not even a tiny parser starts.
pub const MIN_MEMORY_BYTES: usize = 1 << 20;

/// An integration's own limits; `None` keeps the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationLimits {
    /// CPU deadline of one invocation, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The largest linear memory of one invocation.
    pub memory_bytes: Option<usize>,
    /// Requests that may run parsers at once.
    pub max_concurrency: Option<u32>,
    /// Requests that may wait for a running one.
    pub max_queue: Option<u32>,
    /// Sustained requests per second.
    pub rate_per_second: Option<u32>,
    /// Requests that may arrive at once on a full budget.
    pub burst: Option<u32>,
}

/// The limits an integration's requests actually run under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveLimits {
    /// CPU deadline of one invocation, in milliseconds.
    pub timeout_ms: u64,
    /// The largest linear memory of one invocation.
    pub memory_bytes: usize,
    /// Admission: concurrency, queue and rate budget.
    #[serde(flatten)]
    pub admission: AdmissionLimits,
}

impl IntegrationLimits {
    /// Every value outside what the host allows, named by field; empty when all fit.
    pub fn violations(&self, host: &Limits) -> Vec<String> {
        let mut broken = Vec::new();
        let mut check = |field: &str, value: Option<u64>, min: u64, max: u64| {
            if let Some(value) = value.filter(|value| !(min..=max).contains(value)) {
                broken.push(format!("`{field}` is {value}, outside {min} to {max}"));
            }
        };
        let cap_ms = u64::try_from(host.timeout_cap.as_millis()).unwrap_or(u64::MAX);
        check("timeout_ms", self.timeout_ms, 1, cap_ms);
        check(
            "memory_bytes",
            self.memory_bytes.map(|bytes| bytes as u64),
            MIN_MEMORY_BYTES as u64,
            host.memory_cap_bytes as u64,
        );
        let concurrency = u64::from(host.max_instances);
        check(
            "max_concurrency",
            self.max_concurrency.map(u64::from),
            1,
            concurrency,
        );
        check(
            "max_queue",
            self.max_queue.map(u64::from),
            0,
            u64::from(MAX_QUEUE),
        );
        let rate = u64::from(MAX_RATE);
        check(
            "rate_per_second",
            self.rate_per_second.map(u64::from),
            1,
            rate,
        );
        check("burst", self.burst.map(u64::from), 1, rate);
        if self.burst.is_some() && self.rate_per_second.is_none() {
            broken.push("`burst` needs `rate_per_second`".to_owned());
        }
        broken
    }

    /// These limits over the host's defaults.
    pub fn resolve(&self, host: &Limits, admission: &AdmissionLimits) -> EffectiveLimits {
        let timeout = self.timeout_ms.map_or(host.timeout, Duration::from_millis);
        EffectiveLimits {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: self.memory_bytes.unwrap_or(host.memory_bytes),
            admission: AdmissionLimits {
                max_concurrency: self.max_concurrency.unwrap_or(admission.max_concurrency),
                max_queue: self.max_queue.unwrap_or(admission.max_queue),
                queue_wait: admission.queue_wait,
                rate_per_second: self.rate_per_second.or(admission.rate_per_second),
                burst: self.burst.or(admission.burst),
            },
        }
    }
}

impl EffectiveLimits {
    /// The host's invocation limits with this integration's timeout and memory.
    pub fn invocation(&self, host: &Limits) -> Limits {
        Limits {
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: self.memory_bytes,
            ..host.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_out_of_range_is_named() {
        let limits = IntegrationLimits {
            timeout_ms: Some(5_000),
            memory_bytes: Some(1024),
            max_concurrency: Some(0),
            max_queue: Some(MAX_QUEUE + 1),
            rate_per_second: None,
            burst: Some(10),
        };
        let broken = limits.violations(&Limits::default());
        assert_eq!(
            broken,
            [
                "`timeout_ms` is 5000, outside 1 to 1000",
                "`memory_bytes` is 1024, outside 1048576 to 134217728",
                "`max_concurrency` is 0, outside 1 to 128",
                "`max_queue` is 10001, outside 0 to 10000",
                "`burst` needs `rate_per_second`",
            ]
        );
    }

    #[test]
    fn unset_values_keep_the_host_defaults() {
        let host = Limits::default();
        let defaults = AdmissionLimits::default();
        let effective = IntegrationLimits {
            timeout_ms: Some(200),
            rate_per_second: Some(50),
            ..IntegrationLimits::default()
        }
        .resolve(&host, &defaults);
        assert_eq!(effective.timeout_ms, 200);
        assert_eq!(effective.memory_bytes, host.memory_bytes);
        assert_eq!(
            effective.admission.max_concurrency,
            defaults.max_concurrency
        );
        assert_eq!(effective.admission.rate_per_second, Some(50));
        assert_eq!(
            effective.invocation(&host).timeout,
            Duration::from_millis(200)
        );
    }
}
