//! The `telehook` binary, driven as a tenant would: `check` and `run` on real components built
//! from source, every example's documented samples, and every way a component can be refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use telehook_test_artifacts::{
    FILE_READER, GENERIC_JSON, HOSTILE, PARSERS, SMUGGLER, WRONG_WORLD, ZADARMA, component,
    parser_dir,
};

fn telehook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_telehook"))
        .args(args)
        .output()
        .expect("the telehook binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telehook-cli-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir is writable");
    let path = dir.join(name);
    fs::write(&path, bytes).expect("temp file is writable");
    path
}

/// `telehook test DIR --module COMPONENT`: every sample in DIR through the component.
fn telehook_test(dir: &Path, component: &Path) -> Output {
    telehook(&[
        "test",
        dir.to_str().expect("UTF-8 path"),
        "--module",
        component.to_str().expect("UTF-8 path"),
    ])
}

/// Every parser of the catalog and the examples passes every one of its samples, as
/// `telehook test` runs them: the table names each sample, and none fails.
#[test]
fn every_parser_passes_its_samples() {
    for (parser, dir) in PARSERS {
        let output = telehook_test(Path::new(dir), Path::new(component(parser)));
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{parser}:\n{report}{}",
            stderr(&output)
        );
        assert!(report.ends_with(" 0 failed\n"), "{parser}:\n{report}");
        assert!(
            report.lines().count() >= 4,
            "{parser} has too few samples:\n{report}"
        );
    }
    assert!(PARSERS.len() >= 3);
}

/// The versioning policy's promise: a parser built against an older contract (0.1.0 before
/// 0.2.0 existed, 0.2.0 before 0.3.0) still loads and gives every sample it was made with the
/// same outcome on this host (`tests/contract-0.1.0/samples/`, the examples' samples as they
/// were then).
#[test]
fn the_examples_built_against_older_contracts_give_the_same_outcomes() {
    for version in OLDER_CONTRACTS {
        for example in OLDER_CONTRACT_EXAMPLES {
            let build = older_build(version, example);
            let samples = older_contract_dir("0.1.0").join("samples").join(example);
            let output = telehook_test(&samples, &build);
            assert!(
                output.status.success(),
                "{example} built against {version}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                stderr(&output)
            );
            let output = telehook(&["check", build.to_str().expect("UTF-8")]);
            assert!(output.status.success(), "{example}: {}", stderr(&output));
        }
    }
}

/// The contract versions whose builds the repository keeps (`tests/contract-VERSION/`).
const OLDER_CONTRACTS: &[&str] = &["0.1.0", "0.2.0"];

/// The parsers built and uploaded against each older contract.
const OLDER_CONTRACT_EXAMPLES: &[&str] = &["generic-json", "gravitel", "zadarma"];

fn older_contract_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(format!("contract-{version}"))
}

/// An example's component as built against an older contract version.
fn older_build(version: &str, example: &str) -> PathBuf {
    older_contract_dir(version).join(format!("{}.wasm", example.replace('-', "_")))
}

/// A sample whose expected outcome is wrong fails `telehook test` with exit code 6, a table
/// that says which, and a diff of the expected and the actual outcome.
#[test]
fn telehook_test_shows_a_diff_for_each_failing_sample() {
    let samples = parser_dir("generic-json").join("samples");
    let dir = tempfile::tempdir().expect("a temp dir");
    for name in ["incoming-call.request.json", "incoming-call.expected.json"] {
        fs::copy(samples.join(name), dir.path().join(name)).expect("copy a sample");
    }
    fs::copy(
        samples.join("liveness-check.request.json"),
        dir.path().join("wrong.request.json"),
    )
    .expect("copy a sample");
    fs::write(
        dir.path().join("wrong.expected.json"),
        r#"{"event": null, "call_record": null, "response": {"status": 418, "headers": []}}"#,
    )
    .expect("write");
    let output = telehook_test(dir.path(), Path::new(GENERIC_JSON));
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(6), "{report}{}", stderr(&output));
    assert!(report.contains("incoming-call  pass\n"), "{report}");
    assert!(report.contains("wrong          FAIL\n"), "{report}");
    assert!(report.contains("--- expected\n+++ actual\n"), "{report}");
    assert!(report.contains("-    \"status\": 418,"), "{report}");
    assert!(report.ends_with("1 passed, 1 failed\n"), "{report}");
}

/// `telehook run ... | head` when `head` has gone: no panic, no complaint, success.
#[test]
fn run_into_a_closed_pipe_exits_quietly() {
    let request = parser_dir("generic-json").join("samples/incoming-call.request.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_telehook"))
        .args(["run", "--module", GENERIC_JSON, "--request"])
        .arg(&request)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the telehook binary runs");
    // The reader goes away before the parser has even loaded.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("it ends");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn check_accepts_every_parser() {
    for (parser, _) in PARSERS {
        let output = telehook(&["check", component(parser)]);
        assert!(output.status.success(), "{parser}: {}", stderr(&output));
        assert!(String::from_utf8_lossy(&output.stdout).ends_with("fits the parser contract\n"));
    }
}

fn check_refuses(path: &Path) -> String {
    let output = telehook(&["check", path.to_str().expect("UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stderr(&output)
}

#[test]
fn check_refuses_random_bytes() {
    let bytes: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let message = check_refuses(&scratch_file("random.wasm", &bytes));
    assert!(
        message.ends_with(
            "is not a usable parser: not a WebAssembly binary: it does not start with the \
             `\\0asm` magic bytes\n"
        ),
        "{message}"
    );
}

#[test]
fn check_refuses_a_core_module() {
    let core_module = b"\0asm\x01\0\0\0";
    let message = check_refuses(&scratch_file("core.wasm", core_module));
    assert!(
        message.contains("this is a core WebAssembly module, not a component"),
        "{message}"
    );
}

/// The SDK's way: a core module built for `wasm32-unknown-unknown`, made a component.
#[test]
fn componentize_makes_a_core_module_a_parser() {
    let component = scratch_file("componentized.wasm", b"");
    let component = component.to_str().expect("a UTF-8 temp path");
    let module = telehook_test_artifacts::GENERIC_JSON_MODULE;
    assert!(!telehook(&["check", module]).status.success());
    let output = telehook(&["componentize", module, "--output", component]);
    assert!(output.status.success(), "{}", stderr(&output));
    let checked = telehook(&["check", component]);
    assert!(checked.status.success(), "{}", stderr(&checked));

    let refused = telehook(&["componentize", HOSTILE, "--output", component]);
    assert!(
        stderr(&refused)
            .contains("hostile.wasm: not a core module built against the parser contract"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn check_refuses_a_truncated_component() {
    let bytes = fs::read(GENERIC_JSON).expect("built");
    let message = check_refuses(&scratch_file("truncated.wasm", &bytes[..bytes.len() / 2]));
    assert!(
        message.contains("not a valid WebAssembly component: failed to parse"),
        "{message}"
    );
}

#[test]
fn check_refuses_a_component_of_another_world() {
    let message = check_refuses(Path::new(WRONG_WORLD));
    assert!(
        message.contains(
            "the component does not export `parse-webhook-request`; it was built for another \
             world (it exports: run)"
        ),
        "{message}"
    );
}

#[test]
fn check_refuses_a_component_that_imports_files() {
    let message = check_refuses(Path::new(FILE_READER));
    assert!(
        message.contains("the component imports what parsers are not granted: "),
        "{message}"
    );
    assert!(
        message.contains("/types@0.2.6` (parsers get no file system access)"),
        "{message}"
    );
    assert!(
        message.contains("`wasi:filesystem/preopens@0.2.6` (parsers get no file system access)"),
        "{message}"
    );
}

#[test]
fn check_refuses_a_component_that_imports_sockets_and_an_unknown_interface() {
    let message = check_refuses(Path::new(SMUGGLER));
    assert!(
        message.contains("/tcp@0.2.6` (parsers get no network access)"),
        "{message}"
    );
    assert!(
        message.contains(
            "`evil:backdoor/door` (this host does not provide it; it provides \
             `telehook:parser/host` and the WASI basics a language runtime needs)"
        ),
        "{message}"
    );
}

fn run_hostile(command: &str) -> Output {
    let request = scratch_file(
        &format!("{command}.request.json"),
        format!(r#"{{"method": "POST", "url": "/hooks/hostile", "body": "{command}"}}"#).as_bytes(),
    );
    telehook(&[
        "run",
        "--module",
        HOSTILE,
        "--request",
        request.to_str().expect("UTF-8 path"),
    ])
}

#[test]
fn run_reports_a_trapping_parser_with_exit_code_4() {
    let output = run_hostile("panic");
    assert_eq!(output.status.code(), Some(4));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("error: the parser crashed: panicked at tests/guests/hostile/src/lib.rs:"),
        "{message}"
    );
}

#[test]
fn run_reports_an_invalid_event_with_exit_code_5() {
    let output = run_hostile("invalid");
    assert_eq!(output.status.code(), Some(5));
    assert!(
        stderr(&output).contains(
            "error: the parser returned an invalid result: event.src_phone: must not be empty; \
             event.src_phone_ext: only allowed when direction is `in`; response.status: 99 is \
             not a final HTTP status (200 to 599); response.headers[0].value: contains '\\r'; \
             allowed are visible ASCII, space and tab (no CR/LF)\n"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_reports_a_refusal_with_exit_code_3() {
    let output = run_hostile("no-such-command");
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output)
            .contains("error: the parser refused the request: unknown command `no-such-command`")
    );
}

#[test]
fn run_names_what_is_wrong_with_a_request_file() {
    let request = scratch_file("bad.request.json", br#"{"method": "POST", "uri": "/"}"#);
    let output = telehook(&[
        "run",
        "--module",
        GENERIC_JSON,
        "--request",
        request.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the request file is not valid: unknown field `uri`"),
        "{}",
        stderr(&output)
    );
}

/// `telehook run` of the Zadarma example on its signed `NOTIFY_START` sample.
fn run_zadarma_notify_start(settings: &[&str]) -> Output {
    let request = parser_dir("zadarma")
        .join("samples")
        .join("notify-start.request.json");
    let mut args = vec![
        "run",
        "--module",
        ZADARMA,
        "--request",
        request.to_str().expect("UTF-8 path"),
    ];
    args.extend(settings);
    telehook(&args)
}

/// A missing setting is the admin's (contract 0.3): its own exit code, and the setting named.
#[test]
fn zadarma_without_its_api_secret_names_the_missing_setting() {
    let output = run_zadarma_notify_start(&[]);
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "error: the integration is misconfigured (setting `api_secret`): the integration \
             setting `api_secret` is not set"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn zadarma_refuses_a_signature_made_with_another_secret() {
    let output = run_zadarma_notify_start(&["--setting", "api_secret=not-the-secret"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("error: the parser refused the request: the `Signature` header"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
}
