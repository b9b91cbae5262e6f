//! The web console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! Playwright runs `tests/console/drive.mjs` against the real `telehook serve`, doing what an
//! admin does on a first day: sign in, create an integration, upload the Zadarma parser, set
//! its secret, activate it, watch a call ring, be answered and end on the live page, read why
//! a forged request was refused, try a version, and roll back.
//!
//! Each step is asserted in the script, which writes a screenshot of it under
//! `target/console/` for a person to look at. `cargo xtask test` installs what this needs
//! first (`npm ci`, and `chromium` when it is missing).

use std::path::{Path, PathBuf};
use std::process::Command;

use telehook_test_artifacts::{ZADARMA, parser_dir};

mod support;
use support::{Server, data_dir};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn an_admin_runs_a_zadarma_integration_from_the_console() {
    let dir = data_dir();
    // A trial runs in the background lane, at the lowest CPU priority: on a machine busy
    // building, the 50 ms default deadline is wall time the parser may not get.
    let server = Server::start_with(dir.path(), &["--parser-timeout-ms", "1000"]);
    let screenshots = root().join("target/console");
    // Last run's pictures must not pass for this run's.
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).expect("target/console is writable");

    let output = Command::new("node")
        .arg(root().join("tests/console/drive.mjs"))
        .env("TELEHOOK_URL", &server.url)
        .env("TELEHOOK_ADMIN_TOKEN", &server.admin_token)
        .env("ZADARMA_COMPONENT", ZADARMA)
        .env("ZADARMA_SAMPLES", parser_dir("zadarma").join("samples"))
        .env("SCREENSHOTS", &screenshots)
        .output()
        .expect("node runs (Node.js 20 is needed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser session failed (`cargo xtask test` installs chromium and the npm \
         workspace):\n{stdout}{stderr}"
    );

    let pictures: Vec<PathBuf> = std::fs::read_dir(&screenshots)
        .expect("screenshots were written")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "png"))
        .collect();
    let steps = stdout
        .lines()
        .filter(|line| line.starts_with("ok "))
        .count();
    assert!(steps >= 10, "every step reports itself:\n{stdout}");
    assert!(
        pictures.len() >= steps,
        "a screenshot of each of the {steps} steps, found {}:\n{stdout}",
        pictures.len()
    );
    for picture in &pictures {
        let bytes = std::fs::read(picture).expect("readable");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{} is not a screenshot of a page",
            picture.display()
        );
    }
}

#[test]
fn the_console_is_served_by_the_binary_with_a_strict_policy() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let page = server.send("GET", "/console", None, &[], Vec::new());
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/console/console.js"), "{}", page.body);
    let policy = page.headers["content-security-policy"]
        .to_str()
        .expect("ASCII");
    assert!(
        policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    // The browser asks again on every load and gets `304` while its copy is this build's.
    let etag = page.headers["etag"].to_str().expect("ASCII").to_owned();
    let again = server.send(
        "GET",
        "/console/",
        None,
        &[("if-none-match", &etag)],
        Vec::new(),
    );
    assert_eq!(again.status, 304);
    for file in ["/console/console.js", "/console/console.css"] {
        let reply = server.send("GET", file, None, &[], Vec::new());
        assert_eq!(reply.status, 200, "{file}");
        assert!(reply.body.len() > 1000, "{file} is the built asset");
    }
    let missing = server.send("GET", "/console/secrets.txt", None, &[], Vec::new());
    assert_eq!(missing.status, 404);
}
