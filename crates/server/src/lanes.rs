//! Where parser invocations and other CPU work run, so that no tenant can take the CPU from the
//! webhooks of others.
//!
//! A light invocation runs *in place*, on the async runtime's worker that read the request: a
//! typical parser takes a few microseconds, less than handing it to another thread costs (the
//! WASI streams a parser gets never wait, see the engine's `streams`).
//!
//! Admission ([`crate::admission`]) bounds how many invocations of one integration run at once;
//! on a machine with few cores that still lets one integration whose parser burns its whole
//! CPU budget on every call (an infinite loop, a memory bomb) keep a core busy, and every other
//! tenant's requests then wait for the scheduler. So work that is known to be heavy runs in the
//! *background lane* ([`in_background`]): threads of their own at the lowest CPU priority
//! (Linux's `SCHED_IDLE`), which the kernel runs only on what the webhooks of well-behaved
//! integrations leave over. Heavy work is:
//!
//! - checking an uploaded component, and compiling it when the service compiles in process
//!   (`telehook serve` compiles in a child process of the same class instead, see
//!   [`crate::compiler`]), and trial runs of a version;
//! - invoking the parser of an integration whose recent invocations cost, on average, more than
//!   [`HEAVY_INVOCATION`]: a [`CostMeter`] per integration keeps that average, so a parser that
//!   becomes cheap again comes back in place by itself. An invocation that failed (a trap, a
//!   timeout, a limit, an invalid result) counts as [`FAILED_INVOCATION`] however quickly it
//!   failed: a parser that crashes in microseconds would otherwise run in place, and a flood to
//!   it takes the workers from everyone else (each failure is also logged and recorded).
//!
//! The deadline of a parser is wall-clock time, so a heavy parser on a busy host may time out
//! sooner in CPU terms than it would on an idle one: that is the intended price of being heavy.
//! A thread cannot leave the idle class again without privileges, so the lane has threads of its
//! own, [`BACKGROUND_THREADS`] of them, started on first use and kept for the process's life.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

/// The average invocation cost above which an integration's parser runs in the background
/// lane: five to ten times what the examples take (10 to 20 µs, instantiation included). A
/// parser that logs a thousand lines per request (about 200 µs) measured 2.4x on the good
/// tenant's p99 in place, under a threshold of 250 µs.
pub const HEAVY_INVOCATION: Duration = Duration::from_micros(100);

/// What a failed invocation counts as in the average: one makes a light parser heavy, and
/// after a run of failures about twenty cheap successes make it light again.
pub const FAILED_INVOCATION: Duration = Duration::from_millis(2);

/// Threads of the background lane. Jobs beyond this many wait for one to finish; each
/// integration's own concurrency limit still applies before that.
pub const BACKGROUND_THREADS: usize = 4;

/// Weight of the newest invocation in the average, as a power of two (1/8).
const AVERAGE_SHIFT: u32 = 3;

/// An exponentially weighted average of what an integration's invocations cost.
#[derive(Debug, Default)]
pub struct CostMeter {
    average_us: AtomicU64,
}

impl CostMeter {
    /// Adds one invocation's cost to the average: its duration, or [`FAILED_INVOCATION`] if
    /// it failed and that is more.
    pub fn record(&self, duration: Duration, failed: bool) {
        let cost = if failed {
            duration.max(FAILED_INVOCATION)
        } else {
            duration
        };
        let cost_us = u64::try_from(cost.as_micros()).unwrap_or(u64::MAX);
        // Concurrent updates may lose one another's sample; the average stays an average.
        let average = self.average_us.load(Ordering::Relaxed);
        let updated = average - (average >> AVERAGE_SHIFT) + (cost_us >> AVERAGE_SHIFT);
        self.average_us.store(updated, Ordering::Relaxed);
    }

    /// Whether the next invocation belongs in the background lane.
    pub fn is_heavy(&self) -> bool {
        Duration::from_micros(self.average_us.load(Ordering::Relaxed)) > HEAVY_INVOCATION
    }
}

/// Why background work produced no result.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The operating system would not start the lane's threads.
    #[error("the background lane has no threads")]
    NoThreads,
    /// The job panicked.
    #[error("the background job panicked")]
    Panicked,
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` in the background lane, at the lowest CPU priority, and waits for its result.
///
/// # Errors
/// [`LaneError`] when the lane has no threads or the job panicked.
pub async fn in_background<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LaneError> {
    let (sender, receiver) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = sender.send(job());
    });
    lane().send(job).map_err(|_| LaneError::NoThreads)?;
    receiver.await.map_err(|_| LaneError::Panicked)
}

/// The queue of the background lane; its threads start with the first job.
fn lane() -> &'static Sender<Job> {
    static LANE: OnceLock<Sender<Job>> = OnceLock::new();
    LANE.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..BACKGROUND_THREADS {
            let receiver = Arc::clone(&receiver);
            let started = thread::Builder::new()
                .name(format!("telehook-background-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = next else { return };
                        // A panic drops the job's result sender, which its caller reports.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(err) = started {
                tracing::error!("cannot start a background thread: {err}");
            }
        }
        sender
    })
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on CPU time no normal
/// thread wants, and a normal thread that wakes up takes its core at once. (A low nice value
/// alone is not enough: the kernel may let a running thread finish its time slice, a few
/// milliseconds, before a waking webhook gets the core.)
#[cfg(target_os = "linux")]
pub fn lower_priority() {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let thread = thread_priority::thread_native_id();
    if let Err(err) =
        thread_priority::set_thread_priority_and_policy(thread, ThreadPriority::Min, idle)
    {
        tracing::warn!("cannot lower a background thread's priority: {err:?}");
    }
}

/// Elsewhere the background lane is only a separate thread.
#[cfg(not(target_os = "linux"))]
pub fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_becomes_heavy_after_an_expensive_call_and_light_again_after_cheap_ones() {
        let meter = CostMeter::default();
        for _ in 0..100 {
            meter.record(Duration::from_micros(20), false);
        }
        assert!(!meter.is_heavy());
        meter.record(Duration::from_millis(50), false);
        assert!(meter.is_heavy());
        let mut cheap_calls = 0;
        while meter.is_heavy() {
            meter.record(Duration::from_micros(20), false);
            cheap_calls += 1;
        }
        assert!((5..50).contains(&cheap_calls), "{cheap_calls}");
    }

    #[test]
    fn a_quick_failure_makes_an_integration_heavy() {
        let meter = CostMeter::default();
        for _ in 0..100 {
            meter.record(Duration::from_micros(20), false);
        }
        meter.record(Duration::from_micros(5), true);
        assert!(meter.is_heavy());
        for _ in 0..100 {
            meter.record(Duration::from_micros(5), true);
        }
        let mut cheap_calls = 0;
        while meter.is_heavy() {
            meter.record(Duration::from_micros(20), false);
            cheap_calls += 1;
        }
        assert!((15..30).contains(&cheap_calls), "{cheap_calls}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_work_runs_in_the_idle_class_and_returns_its_result() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let (policy, answer) = in_background(|| (thread_priority::thread_schedule_policy(), 42))
            .await
            .expect("the job runs");
        assert_eq!(
            policy.expect("own policy"),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported() {
        let result = in_background(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(result, Err(LaneError::Panicked)));
    }
}
