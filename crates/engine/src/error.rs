//! Everything that can go wrong, as data: callers branch on the variant (the CLI's exit code,
//! the HTTP status a provider gets), people read the message.

use std::time::Duration;

use crate::validate::Violations;

/// The runtime could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The engine rejected the configuration derived from the limits.
    #[error("cannot set up the WebAssembly engine: {0:#}")]
    Engine(#[from] wasmtime::Error),
    /// The thread that enforces deadlines could not start; without it no deadline would fire.
    #[error("cannot start the deadline clock thread: {0}")]
    Clock(#[from] std::io::Error),
}

/// Why a component was refused at load time, before it ever ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The upload is bigger than the host accepts.
    #[error("the component is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The component's size.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    /// A core module, such as `cargo build --target wasm32-unknown-unknown` produces.
    #[error(
        "this is a core WebAssembly module, not a component: make it one with \
         `telehook componentize` (or `wasm-tools component new`)"
    )]
    CoreModule,
    /// The binary is malformed or truncated, or uses features the host does not enable.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// The component imports what this host does not grant; every such import is listed.
    #[error("the component imports what parsers are not granted: {}", list(.0))]
    RefusedImports(Vec<RefusedImport>),
    /// The component does not export the contract's function: it targets another world.
    #[error(
        "the component does not export `parse-webhook-request`; it was built for another world \
         (it exports: {exports})"
    )]
    MissingExport {
        /// What the component exports instead, comma-separated.
        exports: String,
    },
    /// The export exists but with other parameter or result types.
    #[error("the component's `parse-webhook-request` does not match the contract: {0}")]
    ExportMismatch(String),
    /// Compiling took longer than the host allows; the compiler was stopped.
    #[error(
        "compiling the component took longer than the limit of {} s and was stopped; a parser \
         that large or that complex is refused (retry later if the host was very busy)",
        limit.as_secs_f64()
    )]
    CompileTimeout {
        /// The time allowed.
        limit: std::time::Duration,
    },
    /// Compiling needed more memory than the host allows; the compiler was stopped.
    #[error(
        "compiling the component needed more than the limit of {} MiB of memory and was \
         stopped; a parser that large or that complex is refused",
        limit_bytes >> 20
    )]
    CompileMemory {
        /// The compiler process's memory limit, in bytes.
        limit_bytes: u64,
    },
    /// The compiler process failed without saying why the component is invalid (it crashed
    /// or could not be started).
    #[error("the compiler failed: {0}")]
    Compiler(String),
}

/// One import the host will not satisfy, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedImport {
    /// The import's name, e.g. `wasi:filesystem/types@0.2.6`.
    pub name: String,
    /// Why parsers do not get it.
    pub reason: String,
}

fn list(refused: &[RefusedImport]) -> String {
    refused
        .iter()
        .map(|import| format!("`{}` ({})", import.name, import.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an invocation produced no outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The parser refused the request with a message (its `parse-error`).
    #[error("the parser refused the request: {message}")]
    Rejected {
        /// The parser's message.
        message: String,
        /// The status the provider gets: `400` unless the parser named another (401, 403, ...).
        status: u16,
    },
    /// The parser could not do its work because an integration setting is missing or wrong
    /// (contract 0.3): the admin's to fix, not the provider's fault.
    #[error("the integration is misconfigured (setting `{setting}`): {message}")]
    Misconfigured {
        /// The setting the parser named.
        setting: String,
        /// The parser's message.
        message: String,
    },
    /// The parser ran past its time limit and was stopped.
    #[error("the parser ran longer than its limit of {} ms and was stopped", limit.as_millis())]
    Timeout {
        /// The time limit in force.
        limit: Duration,
    },
    /// The parser tried to grow its memory past the limit and then failed.
    #[error("the parser needed more than its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The memory limit in force.
        limit_bytes: usize,
    },
    /// The parser recursed too deeply.
    #[error("the parser overflowed its stack")]
    StackOverflow,
    /// The parser crashed: a panic, an `unreachable`, an out-of-bounds access...
    #[error("the parser crashed: {message}")]
    Trap {
        /// What happened, with the parser's panic message when it printed one.
        message: String,
    },
    /// The parser returned a result that breaks the contract's rules.
    #[error("the parser returned an invalid result: {0}")]
    Invalid(Violations),
    /// The host could not start an instance (for example, every instance slot is busy).
    #[error("could not start the parser: {0}")]
    Instantiate(String),
}

impl InvokeError {
    /// A short, stable name for the kind of failure, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Misconfigured { .. } => "misconfigured",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Trap { .. } => "trap",
            Self::Invalid(_) => "invalid",
            Self::Instantiate(_) => "instantiate",
        }
    }
}

/// Why a request file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not JSON, or not the expected fields.
    #[error("the request file is not valid: {0}")]
    Json(#[source] serde_json::Error),
    /// Both body forms were given.
    #[error("the request file gives both `body` and `body_base64`: give one, not both")]
    TwoBodies,
    /// `body_base64` is not base64.
    #[error("the request file's `body_base64` is not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// `url` is neither a path nor an absolute HTTP URL.
    #[error(
        "the request file's `url` must be a path and query starting with `/` or an absolute \
         `http://` or `https://` URL, got `{0}`"
    )]
    RelativeUrl(String),
    /// `received_at` is not an RFC 3339 time.
    #[error("the request file's `received_at` is not an RFC 3339 time: {0}")]
    ReceivedAt(#[source] humantime::TimestampError),
}
