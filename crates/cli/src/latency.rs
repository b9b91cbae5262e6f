//! `telehook run --repeat N`: what one invocation of a parser costs, measured as the server
//! pays it (a fresh instance, the call, the validation), so that a tenant sees the price of a
//! change before uploading it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use telehook::{Parser, Settings, WebhookRequest};

/// The percentiles of a run of invocations.
pub struct Latency {
    runs: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Invokes `parser` on `request` `runs` times (at least once), timing each.
pub fn measure(
    parser: &Parser,
    request: &WebhookRequest,
    settings: &Arc<Settings>,
    runs: u32,
) -> Latency {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let started = Instant::now();
            let invocation = parser.invoke(request, Arc::clone(settings));
            std::hint::black_box(invocation.result.is_ok());
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |quantile: f64| times[((times.len() - 1) as f64 * quantile).round() as usize];
    Latency {
        runs: times.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        write!(
            f,
            "{} invocations: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            self.runs,
            us(self.p50),
            us(self.p99),
            us(self.max)
        )
    }
}
