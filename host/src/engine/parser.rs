//! Loading a tenant's component: everything is checked here, once, so that a [`Parser`] can
//! only exist for a component this host can run safely.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex};

use crate::engine::contract::{self, ParserPre};
use crate::engine::limits::Limits;
use crate::engine::runtime::Runtime;
use crate::engine::sandbox::{ImportPolicy, Sandbox, import_policy};
use crate::error::{LoadError, RefusedImport};

/// A compiled, checked and pre-linked parser, ready for [`Parser::invoke`].
///
/// Cheap to share between threads; every invocation gets its own fresh instance.
#[derive(Clone)]
pub struct Parser {
    /// Linked against the host's imports, with the export type-checked against the contract.
    pub(crate) pre: ParserPre<Sandbox>,
    /// Where `parse-webhook-request` is, so that an invocation finds it without a lookup.
    pub(crate) export: ComponentExportIndex,
    pub(crate) limits: Limits,
}

impl Parser {
    pub(crate) fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Self, LoadError> {
        check_bytes(runtime.limits(), bytes)?;
        let component = Component::new(runtime.engine(), bytes)
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))?;
        Self::from_component(runtime, &component)
    }

    /// Loads an artifact made by [`Parser::precompiled`], skipping compilation.
    ///
    /// # Safety
    /// The artifact is native code that is run as is: it must come from
    /// [`Parser::precompiled`] (of any engine; an incompatible one is refused) and must not
    /// have been altered since, e.g. because it is kept in storage only this host writes.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn load_precompiled(
        runtime: &Runtime,
        artifact: &[u8],
    ) -> Result<Self, LoadError> {
        // SAFETY: the caller guarantees the artifact's origin, as this function's contract says.
        let component = unsafe { Component::deserialize(runtime.engine(), artifact) }
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))?;
        Self::from_component(runtime, &component)
    }

    /// The same parser under one integration's timeout and memory limit, for hosts that let
    /// admins tune them; both are held to the runtime's caps ([`Limits::timeout_cap`],
    /// [`Limits::memory_cap_bytes`]), because the instance pool is sized for those.
    pub fn with_limits(&self, timeout: std::time::Duration, memory_bytes: usize) -> Self {
        let mut limits = self.limits.clone();
        limits.timeout = timeout.min(limits.timeout_cap.max(limits.timeout));
        limits.memory_bytes = memory_bytes.min(limits.memory_cap_bytes.max(limits.memory_bytes));
        Self {
            pre: self.pre.clone(),
            export: self.export,
            limits,
        }
    }

    /// The limits this parser's invocations run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The compiled parser as bytes, for [`Runtime::load_precompiled`] after a restart.
    pub fn precompiled(&self) -> Result<Vec<u8>, LoadError> {
        self.pre
            .instance_pre()
            .component()
            .serialize()
            .map_err(|err| LoadError::Invalid(format!("{err:#}")))
    }

    /// The checks every component passes, however it was obtained.
    fn from_component(runtime: &Runtime, component: &Component) -> Result<Self, LoadError> {
        let engine = runtime.engine();
        check_imports(engine, component)?;
        check_export(engine, component)?;
        let instance_pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(|err| LoadError::ExportMismatch(format!("{err:#}")))?;
        let pre = ParserPre::new(instance_pre)
            .map_err(|err| LoadError::ExportMismatch(format!("{err:#}")))?;
        let (_, export) = component
            .get_export(None, contract::EXPORT)
            .ok_or_else(|| LoadError::ExportMismatch("it is not exported".to_owned()))?;
        Ok(Self {
            pre,
            export,
            limits: runtime.limits().clone(),
        })
    }
}

/// The checks that need no compilation: size, magic bytes, component rather than core module.
pub(crate) fn check_bytes(limits: &Limits, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() > limits.component_bytes {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: limits.component_bytes,
        });
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let refused: Vec<RefusedImport> = component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            let reason = match import_policy(name) {
                ImportPolicy::Granted => return None,
                ImportPolicy::Forbidden(reason) => reason.to_owned(),
                ImportPolicy::OtherContractVersion => format!(
                    "this host implements `{}`: rebuild the parser against it",
                    contract::PACKAGE
                ),
                ImportPolicy::Unknown => "this host does not provide it; it provides \
                    `telehook:parser/host` and the WASI basics a language runtime needs"
                    .to_owned(),
            };
            Some(RefusedImport {
                name: name.to_owned(),
                reason,
            })
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(LoadError::RefusedImports(refused))
    }
}

fn check_export(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let mut exports = ty.exports(engine);
    match exports.find(|(name, _)| *name == contract::EXPORT) {
        Some((_, export)) if matches!(export.ty, ComponentItem::ComponentFunc(_)) => Ok(()),
        Some(_) => Err(LoadError::ExportMismatch("it is not a function".to_owned())),
        None => {
            let names: Vec<_> = ty.exports(engine).map(|(name, _)| name).collect();
            Err(LoadError::MissingExport {
                exports: if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                },
            })
        }
    }
}
