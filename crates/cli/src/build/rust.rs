//! A Rust parser's crate made a component: `cargo build` for `wasm32-unknown-unknown`, then
//! the core module wrapped as a component with the contract's types the SDK embedded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The target the SDK recommends: a parser built for it imports nothing but the contract.
const TARGET: &str = "wasm32-unknown-unknown";

/// Makes a core module built against the contract a component.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    // The contract's types travel in the module's `component-type` custom section, which
    // wit-bindgen (the SDK) put there.
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        .context("not a core module built against the parser contract")
}

/// Builds the parser crate whose manifest is `dir/Cargo.toml` in release mode and returns its
/// component. Cargo's own output goes to stderr, so a build error reads as cargo wrote it.
pub fn crate_component(dir: &Path) -> Result<Vec<u8>> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!(
            "{} has no Cargo.toml: give the parser with --module PARSER.wasm",
            dir.display()
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo could not build {}", manifest.display());
    }
    let module = built_module(&output.stdout).with_context(|| {
        format!(
            "cargo built no WebAssembly library from {}: is its crate-type cdylib?",
            manifest.display()
        )
    })?;
    let bytes =
        std::fs::read(&module).with_context(|| format!("cannot read {}", module.display()))?;
    componentize(&bytes).with_context(|| format!("in {}", module.display()))
}

/// The `.wasm` file of the last artifact cargo reported (the crate itself comes last).
fn built_module(messages: &[u8]) -> Option<PathBuf> {
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|file| file.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|file| file.extension().is_some_and(|ext| ext == "wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crates_own_wasm_file_is_found_in_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","filenames":["/t/libserde.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-message","message":{}}"#,
            "\n",
            r#"{"reason":"compiler-artifact","filenames":["/t/wasm32-unknown-unknown/release/zadarma.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            built_module(messages.as_bytes()),
            Some(PathBuf::from(
                "/t/wasm32-unknown-unknown/release/zadarma.wasm"
            ))
        );
        assert_eq!(built_module(b"not json\n"), None);
    }
}
