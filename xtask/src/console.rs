//! The web console's part of `cargo xtask test`: the committed assets must be what
//! `console/` builds today (`npm run build -w console` makes them; the binary embeds them, so
//! that `telehook serve` needs no Node.js), and the browser test needs Chromium.
//!
//! Chromium comes from Debian's `chromium` package, since Playwright cannot download its own
//! browsers here; it is installed when missing and the tests run as root, as in CI.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

/// Where the browser test finds Chromium (`CHROMIUM` overrides it).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Checks the console's assets and makes sure Chromium is there.
pub fn prepare(root: &Path) -> Result<()> {
    run(Command::new("node")
        .current_dir(root)
        .args(["console/build.mjs", "--check"]))
    .context(
        "the console's committed assets are not what `console/` builds: run \
         `npm run build -w console` and commit crates/server/src/http/console/assets",
    )?;
    install_chromium()
}

fn install_chromium() -> Result<()> {
    if std::env::var_os("CHROMIUM").is_some() || Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !root_user {
        bail!(
            "the console's browser test needs Chromium: install Debian's `chromium` package \
             (or set CHROMIUM to a Chromium binary)"
        );
    }
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "chromium"]))
    .context("installing Debian's chromium for the console's browser test")
}
