//! The WebAssembly engine, narrowed to what parsers need, and the clock that enforces their
//! deadlines.

use std::thread;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::check;
use crate::contract::{self, Linked};
use crate::error::{LoadError, RuntimeError};
use crate::limits::{EPOCH_TICK, Limits};
use crate::parser::Parser;
use crate::sandbox::{self, Sandbox};

/// Core instances one parser component may contain: its code plus the small shim modules the
/// component model adds around imports.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Linear memories per component: Rust and C parsers have one; adapted ones may have two.
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables per component: the indirect-call table plus shim tables.
const TABLES_PER_COMPONENT: u32 = 4;

/// Linear memory a reused pool slot keeps mapped and resets in place (zeroing it and copying
/// the initial image back) instead of handing the pages back to the kernel, so that the next
/// instance in the slot takes no page faults on it. Where Linux has `PAGEMAP_SCAN` (6.7 and
/// later) only the pages the parser wrote are reset, so the bound can cover an interpreter's
/// heap (kept resident, a TypeScript parser's invocation takes 0.6 ms instead of 0.9) at no
/// cost to a Rust parser, which writes a few pages. Elsewhere all of the bound is reset on every request, so it stays at what a small
/// parser with the SDK's 32 KiB stack touches (BENCHMARKS.md has the measurements).
fn memory_keep_resident_bytes() -> usize {
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        16 << 20
    } else {
        128 * 1024
    }
}
/// The same for tables: 16,384 entries with `PAGEMAP_SCAN`, a JavaScript engine's
/// indirect-call table (7,690) included; else 2,048, more than a small parser's.
fn table_keep_resident_bytes() -> usize {
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        128 * 1024
    } else {
        16 * 1024
    }
}

/// Compiles and runs parsers. Build one per process and share it: it owns the compiled-code
/// configuration, the instance pool and the deadline clock.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: Limits,
}

impl Runtime {
    /// Sets up the engine for these limits and starts its deadline clock.
    pub fn new(limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_config(&engine_config(&limits), limits)
    }

    /// An engine for compiling (for [`Runtime::precompile`]): the same code generation as
    /// [`Runtime::new`], so its artifacts load there, but instances made on demand instead of
    /// from a pool. The pool maps its stacks (2 GiB with the default limits) as writable memory
    /// up front, more than the memory limit the server gives its compiler process. Parsers
    /// loaded here still run under their deadline and their memory, table and stack limits;
    /// only the pool's cap on concurrent instances is missing.
    pub fn compiler(limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_config(&code_config(&limits), limits)
    }

    /// The engine `config` makes, the parser linker and the deadline clock.
    fn with_config(config: &Config, limits: Limits) -> Result<Self, RuntimeError> {
        let engine = Engine::new(config)?;
        let linker = sandbox::linker(&engine)?;
        start_epoch_clock(&engine)?;
        Ok(Self {
            engine,
            linker,
            limits,
        })
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles a component and checks that it is a parser this host can run safely.
    pub fn load(&self, bytes: &[u8]) -> Result<Parser, LoadError> {
        check::bytes(&self.limits, bytes)?;
        let component = Component::new(&self.engine, bytes)
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))?;
        self.parser(&component)
    }

    /// Checks a component as far as it can be without compiling it: its size, that it is a
    /// component rather than a core module, and WebAssembly validation, all in time linear in
    /// the size (unlike compilation), so that malformed uploads are refused without starting a
    /// compiler.
    pub fn validate(&self, bytes: &[u8]) -> Result<(), LoadError> {
        check::bytes(&self.limits, bytes)?;
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(bytes)
            .map(drop)
            .map_err(|err| LoadError::Invalid(err.to_string()))
    }

    /// Compiles a component into an artifact for [`Runtime::load_precompiled`], without the
    /// contract checks, which [`Runtime::load_precompiled`] makes. This is the part of loading
    /// that can take long (cranelift cannot be interrupted), so a host can run it in a process
    /// of its own and stop it after a deadline (`telehook compile`).
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        check::bytes(&self.limits, bytes)?;
        self.engine
            .precompile_component(bytes)
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))
    }

    /// Loads a parser from an artifact made by [`Parser::precompiled`] or
    /// [`Runtime::precompile`], skipping compilation; an artifact from an incompatible engine is
    /// refused, and the caller compiles instead.
    ///
    /// # Safety
    /// The artifact is native code run as is: it must come from one of those two and
    /// must not have been altered since (keep it where only this host writes).
    #[allow(unsafe_code)]
    pub unsafe fn load_precompiled(&self, artifact: &[u8]) -> Result<Parser, LoadError> {
        // SAFETY: the caller guarantees the artifact's origin, as this function's contract says.
        let component = unsafe { Component::deserialize(&self.engine, artifact) }
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))?;
        self.parser(&component)
    }

    /// The checks every component passes, however it was obtained, then linking.
    fn parser(&self, component: &Component) -> Result<Parser, LoadError> {
        check::imports(&self.engine, component)?;
        check::export(&self.engine, component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|err| LoadError::ExportMismatch(format!("{err:#}")))?;
        let linked = Linked::new(instance_pre)?;
        let (_, export) = component
            .get_export(None, contract::EXPORT)
            .ok_or_else(|| LoadError::ExportMismatch("it is not exported".to_owned()))?;
        Ok(Parser {
            linked,
            export,
            limits: self.limits.clone(),
        })
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    // Every webhook gets a fresh instance: the pool keeps slots (and their copy-on-write memory
    // images) ready instead of mapping fresh memory for each one.
    pool.total_component_instances(limits.max_instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_core_instances(limits.max_instances * CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_memories(limits.max_instances * MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_tables(limits.max_instances * TABLES_PER_COMPONENT)
        .max_memory_size(limits.memory_cap_bytes.max(limits.memory_bytes))
        .table_elements(limits.table_elements)
        .linear_memory_keep_resident(memory_keep_resident_bytes())
        .table_keep_resident(table_keep_resident_bytes())
        .pagemap_scan(Enabled::Auto);

    let mut config = code_config(limits);
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true);
    config
}

/// What the compiled code depends on; an artifact loads only into an engine configured alike.
fn code_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config
        // Deadlines by epoch: a counter check at loop heads and calls, far cheaper than fuel.
        .epoch_interruption(true)
        .max_wasm_stack(limits.wasm_stack_bytes)
        // Compile on the calling thread: the service compiles uploads in its low-priority
        // background lane, and compiler threads of their own would escape it.
        .parallel_compilation(false)
        .wasm_component_model(true);
    config
}

/// Ticks the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_clock(engine: &Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    thread::Builder::new()
        .name("telehook-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
