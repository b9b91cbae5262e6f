//! The parser SDKs beyond Rust: what `cargo xtask test` installs so that the tests can build
//! TypeScript, JavaScript and Python parsers from source, on a machine with Node.js, Python
//! and the package registries only.
//!
//! - npm: the workspace's packages (`package-lock.json`, `npm ci`): the TypeScript SDK with
//!   componentize-js and esbuild, and the Node.js peer of the benchmarks;
//! - Python: a virtual environment in `target/python` with the Python SDK (`guest-sdk-py`)
//!   and the componentize-py it pins. Its `bin` goes first on the tests' `PATH`, so that
//!   `telehook build parser.py` finds that `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run;

pub mod bench;

/// Installs both SDKs' toolchains; returns the folder to put first on the `PATH`.
pub fn prepare(root: &Path) -> Result<PathBuf> {
    npm_install(root)?;
    python_environment(root)
}

/// `npm ci` unless `node_modules` is already what the lock file says.
fn npm_install(root: &Path) -> Result<()> {
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    let current = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed >= lock,
        _ => false,
    };
    if current {
        return Ok(());
    }
    run(Command::new("npm")
        .current_dir(root)
        .args(["ci", "--no-audit", "--no-fund"]))
    .context("installing the npm workspace (Node.js 20 and npm are needed)")
}

/// `target/python`, with the Python SDK installed from this checkout.
fn python_environment(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/python");
    let bin = venv.join("bin");
    if !bin.join("python3").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("making target/python (Python 3.10 or later is needed)")?;
    }
    run(Command::new(bin.join("python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(root.join("guest-sdk-py")))
    .context("installing the Python SDK into target/python")?;
    Ok(bin)
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

/// `PATH` with `first` before the rest.
pub fn path_with(first: &Path) -> Result<std::ffi::OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(first.to_owned()).chain(std::env::split_paths(&rest)))
        .context("a PATH entry holds a separator")
}
