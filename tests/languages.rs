//! Parsers in TypeScript, JavaScript and Python, built from source with `telehook build` (the
//! SDKs' own toolchains: componentize-js, componentize-py) and run by the real binary: the
//! ports of the Rust parsers pass the Rust parsers' samples, the platform's documentation
//! example builds unchanged, and what each SDK promises (the request's shape, the log, the
//! clock, refusals and crashes) holds.
//!
//! `cargo xtask test` installs what these need first (`npm ci`, and the Python SDK in
//! `target/python`, whose `bin` it puts first on the `PATH`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn telehook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_telehook"))
        .args(args)
        .output()
        .expect("the telehook binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A parser's folder built with `telehook build` into a temporary directory.
struct Built {
    _dir: tempfile::TempDir,
    component: PathBuf,
}

fn build(parser: &str) -> Built {
    let source = root().join(parser);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let component = dir.path().join("parser.wasm");
    let output = telehook(&[
        "build",
        source.to_str().expect("UTF-8"),
        "--output",
        component.to_str().expect("UTF-8"),
    ]);
    assert!(
        output.status.success(),
        "telehook build {parser} failed (run `cargo xtask test`, which installs the SDKs' \
         toolchains):\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("fits the parser contract"),
        "{}",
        text(&output.stdout)
    );
    Built {
        _dir: dir,
        component,
    }
}

/// Builds the parser in `parser` and runs `telehook test` on its samples: every one passes.
fn passes_its_samples(parser: &str) -> Built {
    let built = build(parser);
    let output = telehook(&[
        "test",
        root().join(parser).to_str().expect("UTF-8"),
        "--module",
        built.component.to_str().expect("UTF-8"),
    ]);
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "{parser}:\n{report}{}",
        text(&output.stderr)
    );
    assert!(report.ends_with(" 0 failed\n"), "{parser}:\n{report}");
    built
}

/// `telehook run` of a request made on the spot; its exit code and stderr.
fn run(component: &Path, request: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("request.json");
    std::fs::write(&file, request).expect("write the request");
    let output = telehook(&[
        "run",
        "--module",
        component.to_str().expect("UTF-8"),
        "--request",
        file.to_str().expect("UTF-8"),
    ]);
    (output.status.code(), text(&output.stderr))
}

fn case(name: &str) -> String {
    format!(r#"{{"method": "GET", "url": "/hooks/t0k3n?case={name}"}}"#)
}

/// The exit code of `telehook run` for a parser that crashed.
const CRASHED: Option<i32> = Some(4);
/// The exit code of `telehook run` for a misconfigured integration.
const MISCONFIGURED: Option<i32> = Some(7);

#[test]
fn the_typescript_ports_pass_the_rust_parsers_samples() {
    for parser in [
        "examples/typescript/generic-json",
        "examples/typescript/gravitel",
        "examples/typescript/zadarma",
    ] {
        passes_its_samples(parser);
    }
}

#[test]
fn the_python_port_passes_the_rust_parsers_samples() {
    passes_its_samples("examples/python/generic-json");
}

/// The documentation's example, as the page gives it plus the SDK's import line.
#[test]
fn the_platforms_documentation_example_builds_and_runs_unchanged() {
    passes_its_samples("tests/typescript/documentation-example");
}

/// The request as `FetchRequest`, `console` in the log, `Date` at the receive time, timers that
/// do not wait, refusals (samples); then every kind of crash named in the answer.
#[test]
fn a_typescript_parser_gets_what_the_sdk_promises() {
    let built = passes_its_samples("tests/typescript/behaviours");
    for (name, message) in [
        (
            "type-error",
            "uncaught TypeError: can't access property \"field\", missing is undefined",
        ),
        ("throw-string", "uncaught exception: a plain string"),
        (
            "bad-result",
            "uncaught ResultError: the parser's result is invalid at `event.event`: NotifyStart \
             is not one of notify-start, notify-answer, notify-end",
        ),
    ] {
        let (code, stderr) = run(&built.component, &case(name));
        assert_eq!(code, CRASHED, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("error: the parser crashed: {message}\n")),
            "{name}: {stderr}"
        );
    }
    let (code, stderr) = run(&built.component, &case("setting"));
    assert_eq!(code, MISCONFIGURED, "{stderr}");
    assert!(stderr.contains("setting `api_secret`"), "{stderr}");
}

#[test]
fn a_python_parser_gets_what_the_sdk_promises() {
    let built = passes_its_samples("tests/python/behaviours");
    for (name, message) in [
        ("key-error", "uncaught KeyError: 'missing'"),
        (
            "bad-result",
            "uncaught ResultError: the parser's result is invalid at `event.event`: \
             'NotifyStart' is not one of notify-start, notify-answer, notify-end",
        ),
    ] {
        let (code, stderr) = run(&built.component, &case(name));
        assert_eq!(code, CRASHED, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("error: the parser crashed: {message}\n")),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("Traceback"), "{name}: {stderr}");
    }
    let (code, stderr) = run(&built.component, &case("setting"));
    assert_eq!(code, MISCONFIGURED, "{stderr}");
}

/// A TypeScript error stops the build with the file, line and column, and writes nothing.
#[test]
fn a_broken_typescript_parser_is_refused_with_its_line() {
    let dir = tempfile::Builder::new()
        .prefix("broken-")
        .tempdir_in(root().join("target"))
        .expect("a directory under target/, where the workspace's node_modules is found");
    let source = dir.path().join("parser.ts");
    std::fs::write(
        &source,
        "async function VoipParseWebhookRequest(request) {\n  return { event: ;\n}\n",
    )
    .expect("write the parser");
    let output = telehook(&["build", source.to_str().expect("UTF-8")]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("parser.ts:2:"), "{stderr}");
    assert!(!dir.path().join("parser.wasm").exists());
}

/// The TypeScript parsers type-check against the SDK's declarations (`tsconfig.json` at the
/// root: the examples, the test parsers, and the platform's global types for the
/// documentation's example), as a tenant's editor checks them.
#[test]
fn the_typescript_parsers_type_check_against_the_sdks_declarations() {
    let output = Command::new("npm")
        .args(["run", "--silent", "typecheck"])
        .current_dir(root())
        .output()
        .expect("npm runs");
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}
