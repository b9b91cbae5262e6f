//! The checks a component passes before it may become a [`Parser`](crate::Parser): its size
//! and kind, what it imports, and what it exports. They need the engine's view of the
//! component, not a [`Runtime`](crate::Runtime), so that loading (in the runtime) depends on
//! them and not the other way round.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::contract;
use crate::error::{LoadError, RefusedImport};
use crate::limits::Limits;
use crate::sandbox::{ImportPolicy, import_policy};

/// The checks that need no compilation: size, magic bytes, component rather than core module.
pub(crate) fn bytes(limits: &Limits, bytes: &[u8]) -> Result<(), LoadError> {
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

/// Every import must be one the sandbox grants; each refused one is named with its reason.
pub(crate) fn imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let refused: Vec<RefusedImport> = component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            let reason = match import_policy(name) {
                ImportPolicy::Granted => return None,
                ImportPolicy::Forbidden(reason) => reason.to_owned(),
                ImportPolicy::OtherContractVersion => format!(
                    "this host serves {}: rebuild the parser against `{}`",
                    contract::PACKAGES
                        .map(|package| format!("`{package}`"))
                        .join(" and "),
                    contract::CURRENT
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

/// The component must export the contract's one function; one built for another world is
/// told which exports it has instead.
pub(crate) fn export(engine: &Engine, component: &Component) -> Result<(), LoadError> {
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
