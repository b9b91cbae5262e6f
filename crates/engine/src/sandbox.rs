//! What a parser can reach, and nothing more.
//!
//! Each invocation gets a fresh `Sandbox`: the integration's settings (read-only) and a
//! bounded log. A parser built with the SDK for `wasm32-unknown-unknown` imports nothing else.
//! One built for `wasm32-wasip2` also gets the few WASI interfaces Rust's standard library
//! imports there even when the parser never prints: an empty environment, no arguments, no
//! stdin, stdout and stderr captured into bounded buffers, and random bytes for hash-map seeds;
//! that context is made on the first WASI call only. Files, sockets, HTTP and clocks are never
//! linked, and `import_policy` names the reason when a component asks for them, so that a
//! parser's outcome depends only on its request and settings.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::p2::bindings::{cli, random, sync::io};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::contract;
use crate::limits::Limits;
use crate::log::{InvocationLog, LogLevel};
use crate::streams::RuntimeFreeIo;

/// An integration's settings (API keys, secrets), as its parser reads them.
///
/// `Debug` prints the keys only: values are secrets and must never reach a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// Settings with no keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a key.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// Reads a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The keys that are set, in order: what the admin API shows of secrets.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The values, for redacting them from anything shown to people.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The per-invocation state a parser's imports act on.
pub(crate) struct Sandbox {
    settings: Arc<Settings>,
    pub(crate) log: InvocationLog,
    pub(crate) memory: MemoryGuard,
    stdio_bytes: usize,
    /// Made on the first WASI call: a parser that imports none (one built for
    /// `wasm32-unknown-unknown`) does not pay for setting it up.
    wasi: Option<Box<Wasi>>,
    table: ResourceTable,
}

/// The WASI context and the buffers that capture what the parser prints.
struct Wasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Wasi {
    /// The sandbox's WASI state, made on first use.
    fn get(slot: &mut Option<Box<Self>>, stdio_bytes: usize) -> &mut Self {
        slot.get_or_insert_with(|| Box::new(Self::new(stdio_bytes)))
    }

    fn new(stdio_bytes: usize) -> Self {
        let stdout = MemoryOutputPipe::new(stdio_bytes);
        let stderr = MemoryOutputPipe::new(stdio_bytes);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            ctx,
            stdout,
            stderr,
        }
    }
}

impl Sandbox {
    pub(crate) fn new(settings: Arc<Settings>, limits: &Limits) -> Self {
        Self {
            settings,
            log: InvocationLog::new(limits.log_lines, limits.log_line_bytes),
            memory: MemoryGuard::new(limits.memory_bytes, limits.table_elements),
            stdio_bytes: limits.stdio_bytes,
            wasi: None,
            table: ResourceTable::new(),
        }
    }

    /// Ends the invocation: what the parser printed joins its log lines.
    pub(crate) fn into_log(mut self) -> InvocationLog {
        if let Some(wasi) = &self.wasi {
            self.log
                .push_output(LogLevel::Info, &wasi.stdout.contents());
            self.log
                .push_output(LogLevel::Error, &wasi.stderr.contents());
        }
        self.log
    }

    /// What the parser wrote to stderr so far: where a Rust parser's panic message lands.
    pub(crate) fn stderr_text(&self) -> String {
        self.wasi
            .as_ref()
            .map(|wasi| String::from_utf8_lossy(&wasi.stderr.contents()).into_owned())
            .unwrap_or_default()
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = Wasi::get(&mut self.wasi, self.stdio_bytes);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut self.table,
        }
    }
}

/// The contract's `host` interface, which every contract version links to these.
impl Sandbox {
    /// `get-setting`: a setting of the parser's integration.
    pub(crate) fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).map(str::to_owned)
    }

    /// `log`: a line of the invocation's log.
    pub(crate) fn log_line(&mut self, level: LogLevel, message: &str) {
        self.log.push(level, message);
    }

    /// `redact` (0.3): a value of the request the host must never show.
    pub(crate) fn redact(&mut self, secret: &str) {
        self.log.redact(secret);
    }

    /// `verify-ed25519` (0.3): RFC 8032's strict verification, natively. Keys or signatures
    /// of the wrong length or encoding are `false`, as a wrong signature is.
    pub(crate) fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = <[u8; 32]>::try_from(public_key) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .is_ok_and(|key| key.verify_strict(message, &signature).is_ok())
    }
}

/// Enforces the memory and table limits, and remembers a refusal so that the trap that usually
/// follows (a Rust guest aborts when allocation fails) is reported as the limit it was.
pub(crate) struct MemoryGuard {
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) refused: bool,
}

impl MemoryGuard {
    fn new(memory_bytes: usize, table_elements: usize) -> Self {
        Self {
            memory_bytes,
            table_elements,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.table_elements;
        self.refused |= !allowed;
        Ok(allowed)
    }
}

/// Links everything a parser may import: the contract's host interface and the WASI subset
/// described in the module docs.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    contract::add_to_linker(&mut linker)?;

    let l = &mut linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<_, HasTable>(l, table)?;
    io::poll::add_to_linker::<_, HasRuntimeFreeIo>(l, runtime_free_io)?;
    io::streams::add_to_linker::<_, HasRuntimeFreeIo>(l, runtime_free_io)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, Sandbox::cli)?;
    random::random::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    Ok(linker)
}

struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

fn table(sandbox: &mut Sandbox) -> &mut ResourceTable {
    &mut sandbox.table
}

struct HasRuntimeFreeIo;

impl wasmtime::component::HasData for HasRuntimeFreeIo {
    type Data<'a> = RuntimeFreeIo<'a>;
}

fn runtime_free_io(sandbox: &mut Sandbox) -> RuntimeFreeIo<'_> {
    RuntimeFreeIo(&mut sandbox.table)
}

fn random_ctx(sandbox: &mut Sandbox) -> &mut wasmtime_wasi::random::WasiRandomCtx {
    Wasi::get(&mut sandbox.wasi, sandbox.stdio_bytes)
        .ctx
        .random()
}

/// What the host does with one import of a component.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImportPolicy {
    /// Linked by [`linker`].
    Granted,
    /// A capability parsers never get, and why.
    Forbidden(&'static str),
    /// The contract's package, at a version this host does not serve.
    OtherContractVersion,
    /// Not something this host knows.
    Unknown,
}

/// Decides an import by its name (`namespace:package/interface@version`).
pub(crate) fn import_policy(name: &str) -> ImportPolicy {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    let Some((package, interface)) = path.split_once('/') else {
        return ImportPolicy::Unknown;
    };
    match package {
        "telehook:parser" => {
            let known = matches!(interface, "host" | "types");
            let served = contract::PACKAGES
                .iter()
                .any(|package| package.ends_with(&format!("@{version}")));
            match (known, served) {
                (true, true) => ImportPolicy::Granted,
                (true, false) => ImportPolicy::OtherContractVersion,
                (false, _) => ImportPolicy::Unknown,
            }
        }
        "wasi:io" | "wasi:cli" | "wasi:random" if version.starts_with("0.2.") => {
            ImportPolicy::Granted
        }
        "wasi:filesystem" => ImportPolicy::Forbidden("parsers get no file system access"),
        "wasi:sockets" => ImportPolicy::Forbidden("parsers get no network access"),
        "wasi:http" => ImportPolicy::Forbidden("parsers cannot make HTTP requests"),
        "wasi:clocks" => ImportPolicy::Forbidden(
            "parsers get no clocks, so that an outcome depends only on the request and settings",
        ),
        _ => ImportPolicy::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    // RFC 8032 section 7.1, TEST 2, as the SDK's own test of its guest-side check.
    #[test]
    fn the_hosts_ed25519_accepts_the_rfc_vector_and_nothing_else() {
        let key = [
            0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b,
            0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1,
            0x2a, 0xf4, 0x66, 0x0c,
        ];
        let signature = base64::engine::general_purpose::STANDARD
            .decode(
                "kqAJqfDUyrhyDoILX2QlQKKye1QWUD+Ps3YiI+vbadoIWsHkPhWZbkWPNhPQ8R2MOHsurrQwKu6wDSkWErsMAA==",
            )
            .expect("base64");
        assert!(Sandbox::verify_ed25519(&key, &[0x72], &signature));
        assert!(!Sandbox::verify_ed25519(&key, &[0x73], &signature));
        assert!(!Sandbox::verify_ed25519(&key[..31], &[0x72], &signature));
        assert!(!Sandbox::verify_ed25519(&key, &[0x72], &signature[..63]));
    }

    #[test]
    fn imports_are_decided_by_package_and_version() {
        assert_eq!(
            import_policy("telehook:parser/host@0.1.0"),
            ImportPolicy::Granted
        );
        assert_eq!(
            import_policy("telehook:parser/types@0.1.0"),
            ImportPolicy::Granted
        );
        assert_eq!(
            import_policy("telehook:parser/host@0.2.0"),
            ImportPolicy::Granted
        );
        assert_eq!(
            import_policy("telehook:parser/host@0.3.0"),
            ImportPolicy::Granted
        );
        assert_eq!(
            import_policy("telehook:parser/host@0.4.0"),
            ImportPolicy::OtherContractVersion
        );
        assert_eq!(
            import_policy("wasi:cli/stderr@0.2.6"),
            ImportPolicy::Granted
        );
        assert!(matches!(
            import_policy("wasi:filesystem/preopens@0.2.6"),
            ImportPolicy::Forbidden(reason) if reason.contains("file system")
        ));
        assert!(matches!(
            import_policy("wasi:sockets/tcp@0.2.0"),
            ImportPolicy::Forbidden(_)
        ));
        assert_eq!(
            import_policy("wasi:cli/stderr@0.3.0"),
            ImportPolicy::Unknown
        );
        assert_eq!(import_policy("acme:evil/backdoor"), ImportPolicy::Unknown);
        assert_eq!(import_policy("plain-name"), ImportPolicy::Unknown);
    }

    #[test]
    fn settings_debug_hides_values() {
        let settings: Settings = [("api_secret", "hunter2")].into_iter().collect();
        assert_eq!(format!("{settings:?}"), r#"{"api_secret"}"#);
    }
}
