//! `telehook build`: a parser's source, in any of the languages the SDKs serve, made a
//! component. Each language is built by its own toolchain (cargo, the npm package
//! `@telehook/parser`, the Python package `telehook-parser`); this module tells them apart and
//! hands the source to the right one.

mod javascript;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub use rust::componentize;

/// A parser's source, by the toolchain that builds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// A crate (a folder with `Cargo.toml`), built with cargo for `wasm32-unknown-unknown`.
    Rust(PathBuf),
    /// A TypeScript or JavaScript module, built with the SDK's `telehook-parser build`.
    JavaScript(PathBuf),
    /// A Python module, built with the SDK's `python3 -m telehook_parser build`.
    Python(PathBuf),
}

/// The extensions of a TypeScript or JavaScript parser.
const JAVASCRIPT: [&str; 6] = ["ts", "mts", "cts", "js", "mjs", "cjs"];

impl Source {
    /// What `path` is: a source file by its extension; a folder by what it holds (a crate, or
    /// `parser.ts`, `parser.js`, `parser.py`).
    pub fn find(path: &Path) -> Result<Self> {
        if path.is_dir() {
            if path.join("Cargo.toml").is_file() {
                return Ok(Self::Rust(path.to_owned()));
            }
            for name in ["parser.ts", "parser.js", "parser.py"] {
                let file = path.join(name);
                if file.is_file() {
                    return Self::find(&file);
                }
            }
            bail!(
                "{} holds no parser: a crate (Cargo.toml), parser.ts, parser.js or parser.py",
                path.display()
            );
        }
        let extension = path.extension().and_then(|ext| ext.to_str()).unwrap_or("");
        match extension {
            "py" => Ok(Self::Python(path.to_owned())),
            ext if JAVASCRIPT.contains(&ext) => Ok(Self::JavaScript(path.to_owned())),
            _ if !path.exists() => bail!("{} does not exist", path.display()),
            _ => bail!(
                "{} is not a parser's source: a crate's folder, or a .ts, .js or .py file",
                path.display()
            ),
        }
    }

    /// Builds the component.
    pub fn build(&self) -> Result<Vec<u8>> {
        match self {
            Self::Rust(dir) => rust::crate_component(dir),
            Self::JavaScript(file) => javascript::component(file),
            Self::Python(file) => python::component(file),
        }
    }

    /// Where `telehook build` writes the component when not told: beside a source file, or in
    /// a crate's folder under its name.
    pub fn default_output(&self) -> PathBuf {
        match self {
            Self::Rust(dir) => {
                let name = dir.canonicalize().ok().and_then(|dir| {
                    dir.file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                });
                dir.join(format!("{}.wasm", name.as_deref().unwrap_or("parser")))
            }
            Self::JavaScript(file) | Self::Python(file) => file.with_extension("wasm"),
        }
    }
}

/// Runs a language's own builder, which writes the component to a temporary file, and reads
/// it. The builder's messages go to stderr, so that an error reads as its toolchain wrote it.
fn run_builder(mut command: Command, what: &str, missing: &str) -> Result<Vec<u8>> {
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let output = work.path().join("parser.wasm");
    let status = command
        .arg("--quiet")
        .arg("-o")
        .arg(&output)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status();
    match status {
        Ok(status) if status.success() => {
            std::fs::read(&output).with_context(|| format!("{what} wrote no component"))
        }
        Ok(_) => bail!("{what} could not build the parser"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!("{missing}"),
        Err(err) => Err(err).with_context(|| format!("cannot run {what}")),
    }
}
