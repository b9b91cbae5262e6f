//! Where uploaded components are compiled, and for how long.
//!
//! Cranelift cannot be interrupted, and a hostile component can keep it busy for minutes or
//! make it allocate gigabytes. The server therefore compiles each upload in a child process
//! (`telehook compile --background`, at the lowest CPU priority) whose memory is capped from
//! its first instruction, and kills it when [`Compiler::Subprocess`]'s deadline passes: the
//! upload is refused with [`LoadError::CompileTimeout`] or [`LoadError::CompileMemory`], and the
//! next upload can start. The artifact the child writes is checked against the contract like
//! any other, in this process.
//!
//! A host embedded as a library may not have the `telehook` binary at hand; it compiles in
//! process ([`Compiler::InProcess`]), in the background lane, without a deadline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::process::{Resource, Rlimit, setrlimit};

use telehook::LoadError;

/// The exit status of `telehook compile` for bytes that are not a valid component; its stderr
/// then holds the reason, as [`LoadError::Invalid`] words it.
pub const INVALID_COMPONENT_EXIT: u8 = 3;

/// The most of the compiler's stderr kept for an error message.
const STDERR_BYTES: usize = 4096;

/// How the service compiles uploads.
#[derive(Debug, Clone)]
pub enum Compiler {
    /// On a thread of this process's background lane, for as long as it takes.
    InProcess,
    /// In a child process, `program compile INPUT --output OUTPUT --background`, stopped after
    /// `timeout`.
    Subprocess {
        /// The `telehook` binary.
        program: PathBuf,
        /// How long one compilation may take.
        timeout: Duration,
        /// The writable memory the compiler process may map, in bytes (`RLIMIT_DATA`: what
        /// its allocator reserves counts, its code does not).
        memory_limit: u64,
    },
}

/// Runs `program compile` on `component` in `scratch`; returns the artifact it wrote.
///
/// # Errors
/// [`LoadError::CompileTimeout`] past `timeout` (the child is killed),
/// [`LoadError::CompileMemory`] when the child ran out of its `memory_limit`,
/// [`LoadError::Invalid`] when the child says the bytes are not a valid component,
/// [`LoadError::Compiler`] when the child could not run or failed otherwise.
pub(crate) async fn in_child(
    program: &Path,
    timeout: Duration,
    memory_limit: u64,
    component: &[u8],
    scratch: &Path,
) -> Result<Vec<u8>, LoadError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "compile-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let files = ScratchFiles([
        scratch.join(format!("{name}.wasm")),
        scratch.join(format!("{name}.cwasm")),
    ]);
    let [input, output] = &files.0;
    let io_error = |what: &str, err: std::io::Error| LoadError::Compiler(format!("{what}: {err}"));
    tokio::fs::write(input, component)
        .await
        .map_err(|err| io_error("cannot hand the component to the compiler", err))?;
    let mut command = tokio::process::Command::new(program);
    command
        .arg("compile")
        .arg(input)
        .arg("--output")
        .arg(output)
        .arg("--background")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Dropping the wait below, when the deadline passes, kills the compiler.
        .kill_on_drop(true);
    let limit = Rlimit {
        current: Some(memory_limit),
        maximum: Some(memory_limit),
    };
    // The limit is set between fork and exec, before the compiler's allocator reserves
    // anything: set later, a reservation already made would count against it or escape it.
    // SAFETY: the closure runs in the forked child, where only async-signal-safe work is
    // allowed; it makes one `prlimit64` system call and neither allocates nor takes locks.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || Ok(setrlimit(Resource::Data, limit)?));
    }
    let child = command
        .spawn()
        .map_err(|err| io_error("cannot start the compiler", err))?;
    let finished = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| LoadError::CompileTimeout { limit: timeout })?
        .map_err(|err| io_error("the compiler vanished", err))?;
    let stderr =
        String::from_utf8_lossy(&finished.stderr[..finished.stderr.len().min(STDERR_BYTES)])
            .trim()
            .to_owned();
    match finished.status.code() {
        Some(0) => tokio::fs::read(output)
            .await
            .map_err(|err| io_error("cannot read the compiled artifact", err)),
        Some(code) if code == i32::from(INVALID_COMPONENT_EXIT) => Err(LoadError::Invalid(stderr)),
        // Rust's words when an allocation fails (before it aborts the process), and the
        // operating system's when a mapping does.
        _ if stderr.contains("memory allocation of")
            || stderr.contains("Cannot allocate memory") =>
        {
            Err(LoadError::CompileMemory {
                limit_bytes: memory_limit,
            })
        }
        _ => Err(LoadError::Compiler(format!(
            "{}: {stderr}",
            finished.status
        ))),
    }
}

/// Files removed when the compilation is over, however it ended.
struct ScratchFiles([PathBuf; 2]);

impl Drop for ScratchFiles {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = std::fs::remove_file(file);
        }
    }
}
