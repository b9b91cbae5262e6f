//! TypeScript and JavaScript parsers, built by the npm package `@telehook/parser`: it bundles
//! the module with esbuild and componentizes it with componentize-js.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// The SDK's builder as npm installs it, in a `node_modules` beside or above the parser.
const BUILDER: &str = "node_modules/.bin/telehook-parser";

/// Builds the parser module at `file`.
pub fn component(file: &Path) -> Result<Vec<u8>> {
    let Some(builder) = find_builder(file) else {
        bail!(
            "no {BUILDER} beside or above {}: run `npm install @telehook/parser` in the \
             parser's folder",
            file.display()
        );
    };
    let mut command = Command::new("node");
    command.arg(builder).arg("build").arg(file);
    super::run_builder(
        command,
        "telehook-parser",
        "cannot run `node`: Node.js 20 or later builds TypeScript and JavaScript parsers",
    )
}

/// The nearest `node_modules/.bin/telehook-parser`, as Node.js resolves packages.
fn find_builder(file: &Path) -> Option<PathBuf> {
    let file = file.canonicalize().ok()?;
    file.ancestors()
        .skip(1)
        .map(|dir| dir.join(BUILDER))
        .find(|builder| builder.exists())
}
