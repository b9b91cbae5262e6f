//! The threads delivery runs on: a runtime of its own whose threads run a notch below the
//! webhooks' priority (nice [`NICE`]), so that when the CPU is short the providers' webhooks,
//! which are acknowledged only once durable, come first, and forwarding catches up with what
//! they leave. Nothing waits on it to be stored: the log has every update already.

use tokio::runtime::{Builder, Handle, Runtime};

/// How much lower delivery's threads run: at nice 5 the kernel gives them about a quarter of a
/// core that the webhooks also want, and all of one they do not.
pub const NICE: i32 = 5;

/// Delivery's runtime; its tasks stop when it is dropped.
#[derive(Debug)]
pub struct DeliveryRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl DeliveryRuntime {
    /// Starts the runtime with `threads` workers.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("telehook-delivery")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Where delivery's tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for DeliveryRuntime {
    /// Stops its tasks without waiting for them: dropping a runtime may happen on another
    /// runtime's thread, where waiting is not allowed.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// On Linux, `setpriority` for the calling process applies to the calling thread alone.
fn lower_priority() {
    if let Err(err) = rustix::process::setpriority_process(None, NICE) {
        tracing::warn!("cannot lower delivery's priority: {err}");
    }
}
