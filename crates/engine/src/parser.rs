//! A loaded parser: a component that passed every check ([`crate::check`]) and is linked
//! against the sandbox, so that a [`Parser`] can only exist for a component this host can run
//! safely. [`Runtime::load`](crate::Runtime::load) makes one.

use wasmtime::component::ComponentExportIndex;

use crate::contract::Linked;
use crate::error::LoadError;
use crate::limits::Limits;

/// A compiled, checked and pre-linked parser, ready for [`Parser::invoke`].
///
/// Cheap to share between threads; every invocation gets its own fresh instance.
#[derive(Clone)]
pub struct Parser {
    /// Linked against the host's imports, with the export type-checked against the contract
    /// version it was built for.
    pub(crate) linked: Linked,
    /// Where `parse-webhook-request` is, so that an invocation finds it without a lookup.
    pub(crate) export: ComponentExportIndex,
    pub(crate) limits: Limits,
}

impl Parser {
    /// The same parser under one integration's timeout and memory limit, for hosts that let
    /// admins tune them; both are held to the runtime's caps ([`Limits::timeout_cap`],
    /// [`Limits::memory_cap_bytes`]), because the instance pool is sized for those.
    pub fn with_limits(&self, timeout: std::time::Duration, memory_bytes: usize) -> Self {
        let mut limits = self.limits.clone();
        limits.timeout = timeout.min(limits.timeout_cap.max(limits.timeout));
        limits.memory_bytes = memory_bytes.min(limits.memory_cap_bytes.max(limits.memory_bytes));
        Self {
            linked: self.linked.clone(),
            export: self.export,
            limits,
        }
    }

    /// The limits this parser's invocations run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The contract version the parser was built against, e.g. `telehook:parser@0.1.0`.
    pub fn contract(&self) -> &'static str {
        self.linked.package()
    }

    /// The compiled parser as bytes, for [`Runtime::load_precompiled`](crate::Runtime::load_precompiled)
    /// after a restart.
    pub fn precompiled(&self) -> Result<Vec<u8>, LoadError> {
        self.linked
            .instance_pre()
            .component()
            .serialize()
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))
    }
}
