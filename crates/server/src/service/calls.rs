//! The calls side of the service: the sweep that ends calls that went silent and stores the
//! held events whose call never came (see [`crate::calls`]), run on a timer while the service
//! serves.

use std::sync::Arc;
use std::time::Duration;

use super::Service;
use crate::calls::CallRules;
use crate::event_log::DispatchError;
use crate::storage::{Sweep, Swept, ago, now};

/// How often the calls are swept: a quarter of the shorter wait, so that a call or a held
/// event is dealt with at most a quarter late, within bounds that keep a sweep cheap.
fn sweep_interval(rules: &CallRules) -> Duration {
    (rules.timeout.min(rules.unresolved_after) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30))
}

impl Service {
    /// Sweeps the calls once: ends those that heard nothing for the call timeout and stores
    /// the events held longer than the hold as unresolved.
    pub async fn sweep_calls(&self) -> Result<Swept, DispatchError> {
        let swept = self
            .events
            .sweep(Sweep {
                now: now(),
                close_before: ago(self.call_rules.timeout),
                unresolved_before: ago(self.call_rules.unresolved_after),
            })
            .await?;
        for key in &swept.timed_out {
            tracing::info!(integration = %key, "a call heard nothing for the call timeout: ended");
        }
        for key in &swept.unresolved {
            tracing::warn!(
                integration = %key,
                "an event named a call that never became known: stored unresolved"
            );
        }
        self.metrics.swept(&swept);
        Ok(swept)
    }

    /// Sweeps the calls on a timer, for as long as the service serves.
    pub async fn keep_calls(self: Arc<Self>) {
        let mut timer = tokio::time::interval(sweep_interval(&self.call_rules));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            if let Err(err) = self.sweep_calls().await {
                tracing::error!("sweeping the calls failed: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_often_enough_and_not_too_often() {
        let rules = CallRules::default();
        assert_eq!(sweep_interval(&rules), Duration::from_secs(30));
        let quick = CallRules {
            unresolved_after: Duration::from_secs(1),
            ..rules
        };
        assert_eq!(sweep_interval(&quick), Duration::from_millis(250));
    }
}
