//! Each integration's recent activity in ten-second buckets: requests by outcome and the
//! parser's latency, for the console's charts.
//!
//! Prometheus keeps totals since the process started and needs a scraper to turn them into a
//! history; a person opening an integration's page wants the shape of the last half hour at
//! once. Only buckets that saw a request are kept, so an idle integration costs nothing, and a
//! bucket's latencies are counted in quarter-octave bins (about 19% wide), which bounds its
//! size whatever the traffic.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::storage::IntegrationKey;

/// The width of a bucket.
pub const BUCKET_SECS: u64 = 10;

/// How far back the activity reaches: half an hour.
pub const WINDOW_SECS: u64 = 30 * 60;

/// Latency bins per doubling: each bin is 2^(1/4) (about 1.19) times as wide as the one before.
const BINS_PER_OCTAVE: f64 = 4.0;

/// The recent activity of every integration that had some.
#[derive(Default)]
pub struct Activity {
    integrations: Mutex<HashMap<IntegrationKey, VecDeque<Bucket>>>,
}

/// Ten seconds of one integration's requests.
#[derive(Debug, Default)]
struct Bucket {
    /// Unix seconds at which the bucket begins, a multiple of [`BUCKET_SECS`].
    start: u64,
    outcomes: BTreeMap<String, u64>,
    /// Parser latencies: bin -> count (see [`bin`]).
    latency: BTreeMap<u16, u64>,
}

/// One bucket as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketReport {
    /// When the bucket begins (RFC 3339, UTC).
    pub at: String,
    /// Requests by outcome, as the `telehook_webhook_requests` metric counts them.
    pub outcomes: BTreeMap<String, u64>,
    /// The median parser latency, microseconds (the upper edge of its bin); absent when no
    /// parser ran in the bucket.
    pub p50_us: Option<u64>,
    /// The 99th percentile parser latency, microseconds.
    pub p99_us: Option<u64>,
}

impl Activity {
    /// Counts a request that came to `outcome`.
    pub fn request(&self, key: &IntegrationKey, outcome: &str) {
        self.record(key, now_secs(), |bucket| {
            *bucket.outcomes.entry(outcome.to_owned()).or_default() += 1;
        });
    }

    /// Records how long a parser ran.
    pub fn parser_duration(&self, key: &IntegrationKey, seconds: f64) {
        self.record(key, now_secs(), |bucket| {
            *bucket.latency.entry(bin(seconds * 1e6)).or_default() += 1;
        });
    }

    /// The integration's buckets within the window, oldest first.
    pub fn report(&self, key: &IntegrationKey) -> Vec<BucketReport> {
        self.report_at(key, now_secs())
    }

    fn record(&self, key: &IntegrationKey, now: u64, change: impl FnOnce(&mut Bucket)) {
        let start = now - now % BUCKET_SECS;
        let mut integrations = self.integrations.lock().unwrap_or_else(|p| p.into_inner());
        // Every request records here twice: the key is copied only for an integration's first.
        if !integrations.contains_key(key) {
            integrations.insert(key.clone(), VecDeque::new());
        }
        let Some(buckets) = integrations.get_mut(key) else {
            return;
        };
        if buckets.back().is_none_or(|last| last.start < start) {
            buckets.push_back(Bucket {
                start,
                ..Bucket::default()
            });
        }
        let oldest = now.saturating_sub(WINDOW_SECS);
        while buckets.front().is_some_and(|first| first.start < oldest) {
            buckets.pop_front();
        }
        // Requests finish out of order by a few microseconds around a bucket's edge: a late
        // one counts in the newest bucket rather than reopening the one before.
        if let Some(bucket) = buckets.back_mut() {
            change(bucket);
        }
    }

    fn report_at(&self, key: &IntegrationKey, now: u64) -> Vec<BucketReport> {
        let oldest = now.saturating_sub(WINDOW_SECS);
        let integrations = self.integrations.lock().unwrap_or_else(|p| p.into_inner());
        integrations
            .get(key)
            .into_iter()
            .flatten()
            .filter(|bucket| bucket.start >= oldest)
            .map(Bucket::report)
            .collect()
    }

    /// Forgets a deleted integration's activity.
    pub fn forget(&self, key: &IntegrationKey) {
        let mut integrations = self.integrations.lock().unwrap_or_else(|p| p.into_inner());
        integrations.remove(key);
    }
}

impl Bucket {
    fn report(&self) -> BucketReport {
        BucketReport {
            at: humantime::format_rfc3339_seconds(
                UNIX_EPOCH + std::time::Duration::from_secs(self.start),
            )
            .to_string(),
            outcomes: self.outcomes.clone(),
            p50_us: self.percentile(0.50),
            p99_us: self.percentile(0.99),
        }
    }

    /// The upper edge of the bin that holds the `quantile` of this bucket's latencies.
    fn percentile(&self, quantile: f64) -> Option<u64> {
        let total: u64 = self.latency.values().sum();
        // The rank of the wanted sample, 1-based: the median of 3 is the 2nd.
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        self.latency.iter().find_map(|(&bin, &count)| {
            seen += count;
            (seen >= rank).then(|| upper_edge(bin))
        })
    }
}

/// The bin of a latency in microseconds: bin `b` holds latencies up to 2^(b/4) µs, bin 0
/// everything up to 1 µs.
fn bin(micros: f64) -> u16 {
    if micros <= 1.0 {
        return 0;
    }
    // At most 2^16 bins: 2^(65535/4) µs is longer than anything a deadline lets run.
    (micros.log2() * BINS_PER_OCTAVE)
        .ceil()
        .min(f64::from(u16::MAX)) as u16
}

fn upper_edge(bin: u16) -> u64 {
    (f64::from(bin) / BINS_PER_OCTAVE).exp2().round() as u64
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IntegrationKey {
        IntegrationKey::new("acme", "pbx")
    }

    #[test]
    fn buckets_count_outcomes_and_keep_half_an_hour() {
        let activity = Activity::default();
        let start = 1_800_000_000;
        for (at, outcome) in [(start, "ok"), (start + 3, "ok"), (start + 9, "rejected")] {
            activity.record(&key(), at, |bucket| {
                *bucket.outcomes.entry(outcome.into()).or_default() += 1;
            });
        }
        activity.record(&key(), start + 10, |bucket| {
            *bucket.outcomes.entry("ok".into()).or_default() += 1;
        });
        let report = activity.report_at(&key(), start + 10);
        assert_eq!(report.len(), 2);
        assert_eq!(report[0].at, "2027-01-15T08:00:00Z");
        assert_eq!(report[0].outcomes["ok"], 2);
        assert_eq!(report[0].outcomes["rejected"], 1);
        assert_eq!(report[1].outcomes["ok"], 1);
        assert_eq!(report[0].p50_us, None, "no parser ran");

        // Half an hour later the first buckets are out of the window, shown or stored.
        assert_eq!(activity.report_at(&key(), start + WINDOW_SECS + 5).len(), 1);
        activity.record(&key(), start + WINDOW_SECS + 15, |_| {});
        let stored = activity.integrations.lock().unwrap()[&key()].len();
        assert_eq!(stored, 1, "only the new bucket is kept");
        assert!(
            activity
                .report_at(&IntegrationKey::new("acme", "other"), start)
                .is_empty()
        );
    }

    #[test]
    fn percentiles_come_from_quarter_octave_bins() {
        let mut bucket = Bucket::default();
        // 98 fast parses of 10 µs and two slow ones of 1 ms.
        for micros in std::iter::repeat_n(10.0, 98).chain([1000.0, 1000.0]) {
            *bucket.latency.entry(bin(micros)).or_default() += 1;
        }
        let p50 = bucket.percentile(0.50).unwrap();
        let p99 = bucket.percentile(0.99).unwrap();
        assert!((10..=12).contains(&p50), "p50 {p50}");
        assert!((1000..=1190).contains(&p99), "p99 {p99}");
        assert_eq!(bin(0.5), 0);
        assert_eq!(upper_edge(bin(16.0)), 16);
    }
}
