//! Python parsers, built by the Python package `telehook-parser` (`python3 -m telehook_parser
//! build`), which runs componentize-py. The `python3` on the `PATH` builds, so an activated
//! virtual environment's is the one used.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

/// Builds the parser module at `file`.
pub fn component(file: &Path) -> Result<Vec<u8>> {
    let mut command = Command::new("python3");
    command.args(["-m", "telehook_parser", "build"]).arg(file);
    super::run_builder(
        command,
        "telehook_parser (`pip install telehook-parser` if Python says it has no such module)",
        "cannot run `python3`: Python 3.10 or later builds Python parsers",
    )
}
