//! The hard limits every invocation runs under.
//!
//! The defaults suit parsers that turn one webhook into one event: they finish in microseconds
//! and touch a few hundred kilobytes. Each limit is a named constant so that the docs, the
//! error messages and the tests quote the same number.

use std::time::Duration;

/// How long an invocation may run before it is stopped.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// The longest timeout an admin may give one integration.
pub const DEFAULT_TIMEOUT_CAP: Duration = Duration::from_secs(1);
/// The largest linear memory a parser may grow to.
pub const DEFAULT_MEMORY_BYTES: usize = 32 << 20;
/// The largest memory limit an admin may give one integration: the size of an instance slot.
pub const DEFAULT_MEMORY_CAP_BYTES: usize = 128 << 20;
/// The most elements a parser's tables may hold.
pub const DEFAULT_TABLE_ELEMENTS: usize = 20_000;
/// The deepest the wasm stack may grow before the parser traps with a stack overflow.
pub const DEFAULT_WASM_STACK_BYTES: usize = 512 << 10;
/// How many instances may run at once; each is a slot in the pooling allocator.
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// The largest component the host accepts.
pub const DEFAULT_COMPONENT_BYTES: usize = 32 << 20;
/// The most log lines one invocation keeps.
pub const DEFAULT_LOG_LINES: usize = 64;
/// The longest log line kept; longer ones are cut.
pub const DEFAULT_LOG_LINE_BYTES: usize = 1024;
/// How much of a parser's stdout, and of its stderr, is captured.
pub const DEFAULT_STDIO_BYTES: usize = 16 << 10;

/// How often the deadline clock ticks: the granularity of [`Limits::timeout`].
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The limits of a [`crate::Runtime`] and of every invocation it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time an invocation may run, enforced by epoch interruption at
    /// `EPOCH_TICK` granularity.
    pub timeout: Duration,
    /// The longest [`Limits::timeout`] one integration may be given.
    pub timeout_cap: Duration,
    /// The largest linear memory of an instance.
    pub memory_bytes: usize,
    /// The largest [`Limits::memory_bytes`] one integration may be given; every instance slot
    /// of the pool is this big.
    pub memory_cap_bytes: usize,
    /// The most table elements of an instance.
    pub table_elements: usize,
    /// The wasm stack limit.
    pub wasm_stack_bytes: usize,
    /// Instances that may run at once.
    pub max_instances: u32,
    /// The largest component accepted by [`crate::Runtime::load`].
    pub component_bytes: usize,
    /// Log lines kept per invocation.
    pub log_lines: usize,
    /// Bytes kept per log line.
    pub log_line_bytes: usize,
    /// Bytes of stdout, and of stderr, captured per invocation; past that, writes fail.
    pub stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            timeout_cap: DEFAULT_TIMEOUT_CAP,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            memory_cap_bytes: DEFAULT_MEMORY_CAP_BYTES,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            wasm_stack_bytes: DEFAULT_WASM_STACK_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            component_bytes: DEFAULT_COMPONENT_BYTES,
            log_lines: DEFAULT_LOG_LINES,
            log_line_bytes: DEFAULT_LOG_LINE_BYTES,
            stdio_bytes: DEFAULT_STDIO_BYTES,
        }
    }
}

impl Limits {
    /// The timeout in deadline ticks, rounded up, plus one because the current tick may be
    /// about to end.
    pub(crate) fn timeout_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        let ticks = self.timeout.as_nanos().div_ceil(tick) + 1;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up_to_whole_ticks() {
        let limits = |ms| Limits {
            timeout: Duration::from_micros(ms),
            ..Limits::default()
        };
        assert_eq!(limits(50_000).timeout_ticks(), 51);
        assert_eq!(limits(1_500).timeout_ticks(), 3);
    }
}
