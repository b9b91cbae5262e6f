//! The host library against real guests built from source: every runtime failure a parser can
//! cause is contained in its instance and reported as the typed error it is.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use telehook::invoke::Stage;
use telehook::outcome::{Direction, EventType};
use telehook::{InvokeError, Limits, Parser, Runtime, Settings, WebhookRequest};
use telehook_test_artifacts::{HOSTILE, HOSTILE_WASIP2};

/// The deadline is wall-clock time, and tests share two cores: every case but the deadline
/// ones runs under a deadline no honest parse can miss, so that only the behaviour under test
/// decides the outcome.
const GENEROUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads a build of the hostile parser. It keeps its engine, and so the deadline clock, alive
/// after the runtime that loaded it is dropped.
fn load_hostile(component: &str, limits: Limits) -> Parser {
    let runtime = Runtime::new(limits).expect("the limits are valid");
    let bytes = std::fs::read(component).expect("the hostile guest was built");
    runtime
        .load(&bytes)
        .expect("the hostile guest fits the contract")
}

/// The generous limits most cases run under.
fn generous() -> Limits {
    Limits {
        timeout: GENEROUS_TIMEOUT,
        ..Limits::default()
    }
}

/// The hostile parser as the SDK builds it (`wasm32-unknown-unknown`, no WASI imports) under
/// the default limits but a generous deadline.
fn hostile() -> &'static Parser {
    static PARSER: OnceLock<Parser> = OnceLock::new();
    PARSER.get_or_init(|| load_hostile(HOSTILE, generous()))
}

/// The same parser built for `wasm32-wasip2`: Rust's standard library prints through WASI.
fn hostile_wasip2() -> &'static Parser {
    static PARSER: OnceLock<Parser> = OnceLock::new();
    PARSER.get_or_init(|| load_hostile(HOSTILE_WASIP2, generous()))
}

/// The hostile parser under the default limits, deadline included.
fn hostile_default_deadline() -> &'static Parser {
    static PARSER: OnceLock<Parser> = OnceLock::new();
    PARSER.get_or_init(|| load_hostile(HOSTILE, Limits::default()))
}

fn command(body: &str) -> WebhookRequest {
    WebhookRequest::new("POST", "/hooks/hostile", [], body.as_bytes().to_vec())
}

fn invoke(body: &str) -> telehook::Invocation {
    hostile().invoke(&command(body), Arc::new(Settings::new()))
}

/// Built for `wasm32-wasip2` the panic message comes from stderr; built for
/// `wasm32-unknown-unknown` from the SDK's panic hook, through the log.
#[test]
fn panic_is_a_trap_carrying_the_panic_message() {
    for parser in [hostile(), hostile_wasip2()] {
        let err = parser
            .invoke(&command("panic"), Arc::new(Settings::new()))
            .result
            .unwrap_err();
        let InvokeError::Trap { message } = &err else {
            panic!("expected a trap, got {err:?}");
        };
        assert!(
            message.starts_with("panicked at tests/guests/hostile/src/lib.rs:"),
            "{message}"
        );
        assert!(
            message.ends_with("hostile parser panicked on purpose"),
            "{message}"
        );
    }
}

/// A parser that filled its log before panicking still reports the panic: the message is the
/// last line it sent, past the limit.
#[test]
fn a_panic_after_a_full_log_still_carries_its_message() {
    let invocation = invoke("log-then-panic");
    let err = invocation.result.unwrap_err();
    let InvokeError::Trap { message } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(
        message.ends_with("hostile parser panicked after filling its log"),
        "{message}"
    );
    assert_eq!(invocation.log.lines.len(), 64);
    assert!(invocation.log.dropped > 0);
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    let err = hostile_default_deadline()
        .invoke(&command("loop"), Arc::new(Settings::new()))
        .result
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Timeout { limit } if limit == Limits::default().timeout),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the parser ran longer than its limit of 50 ms and was stopped"
    );
}

/// The compiling runtime (no instance pool) still enforces the deadline and the memory limit
/// on what it loads, and its artifact loads into the pooled runtime. It runs under the
/// generous deadline: without the pool every page of `alloc` is a fresh fault, which on a
/// busy machine can take longer than the default 50 ms.
#[test]
fn a_compiling_runtime_still_enforces_the_limits() {
    let bytes = std::fs::read(HOSTILE).expect("the hostile guest was built");
    let compiler = Runtime::compiler(generous()).expect("the limits are valid");
    let parser = Arc::new(
        compiler
            .load(&bytes)
            .expect("the hostile guest fits the contract"),
    );
    for (body, limited) in [("loop", "timeout"), ("alloc", "memory_limit")] {
        // On a thread of its own, so that a limit not enforced fails the test instead of
        // hanging it.
        let (sender, receiver) = std::sync::mpsc::channel();
        let running = Arc::clone(&parser);
        std::thread::spawn(move || {
            let invocation = running.invoke(&command(body), Arc::new(Settings::new()));
            let _ = sender.send(invocation.result);
        });
        let result = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("`{body}` was not stopped"));
        let err = result.unwrap_err();
        assert_eq!(err.kind(), limited, "{body}: {err:?}");
    }
    let artifact = compiler.precompile(&bytes).expect("compiles");
    let pooled = Runtime::new(generous()).expect("the limits are valid");
    // SAFETY: the artifact was made by `precompile` above and never left this test.
    #[allow(unsafe_code)]
    let loaded = unsafe { pooled.load_precompiled(&artifact) }.expect("the engines agree");
    let err = loaded
        .invoke(&command("panic"), Arc::new(Settings::new()))
        .result
        .unwrap_err();
    assert!(matches!(err, InvokeError::Trap { .. }), "{err:?}");
}

#[test]
fn loops_that_only_call_the_host_or_churn_memory_are_stopped_at_the_deadline() {
    for body in ["host-loop", "churn"] {
        let err = hostile_default_deadline()
            .invoke(&command(body), Arc::new(Settings::new()))
            .result
            .unwrap_err();
        assert!(
            matches!(err, InvokeError::Timeout { .. }),
            "{body}: {err:?}"
        );
    }
}

#[test]
fn thousands_of_headers_and_control_characters_are_refused_by_field() {
    let err = invoke("many-headers").result.unwrap_err();
    assert!(
        err.to_string()
            .contains("response.headers: 10000 headers is more than the limit of 32"),
        "{err}"
    );
    let err = invoke("control-chars").result.unwrap_err();
    let message = err.to_string();
    for field in ["event.src_phone", "event.dst_phone", "event.call_id"] {
        assert!(message.contains(field), "{field} in {message}");
    }
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let err = invoke("alloc").result.unwrap_err();
    assert!(
        matches!(err, InvokeError::MemoryLimit { limit_bytes } if limit_bytes == 32 << 20),
        "{err:?}"
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let err = invoke("recurse").result.unwrap_err();
    assert!(matches!(err, InvokeError::StackOverflow), "{err:?}");
}

#[test]
fn shadow_stack_overflow_is_a_crash_not_a_host_failure() {
    let err = invoke("smash-stack").result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the parser crashed: wasm trap: out of bounds memory access"
    );
}

#[test]
fn invalid_result_lists_every_broken_rule() {
    let err = invoke("invalid").result.unwrap_err();
    let InvokeError::Invalid(violations) = &err else {
        panic!("expected violations, got {err:?}");
    };
    let fields: Vec<&str> = violations.0.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "event.src_phone",
            "event.src_phone_ext",
            "response.status",
            "response.headers[0].value",
        ]
    );
}

#[test]
fn oversized_output_is_refused() {
    let err = invoke("huge").result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the parser returned an invalid result: response.body: 1048576 bytes is longer than \
         the limit of 65536"
    );
}

#[test]
fn log_spam_is_bounded() {
    let invocation = invoke("log");
    assert!(invocation.result.is_ok());
    assert_eq!(invocation.log.lines.len(), Limits::default().log_lines);
    assert_eq!(invocation.log.lines[0].message, "line 0");
    assert_eq!(invocation.log.dropped, 1000 - Limits::default().log_lines);
}

#[test]
fn stdout_and_stderr_are_captured_into_the_log() {
    let invocation = hostile_wasip2().invoke(&command("print"), Arc::new(Settings::new()));
    let messages: Vec<&str> = invocation
        .log
        .lines
        .iter()
        .map(|line| line.message.as_str())
        .collect();
    assert_eq!(messages, ["to stdout", "to stderr"]);
}

#[test]
fn settings_reach_the_parser_and_missing_ones_are_named() {
    let settings: Settings = [("phone", "+79161234567")].into_iter().collect();
    let outcome = hostile()
        .invoke(&command("setting"), Arc::new(settings))
        .result
        .expect("the setting is there");
    let event = outcome.event.expect("an event");
    assert_eq!(event.src_phone.as_deref(), Some("+79161234567"));
    assert_eq!(
        (event.event, event.direction),
        (EventType::NotifyStart, Some(Direction::In))
    );

    // A missing setting is the admin's to fix, not the provider's (contract 0.3).
    let err = invoke("setting").result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the integration is misconfigured (setting `phone`): the integration setting `phone` is \
         not set"
    );
    assert_eq!(err.kind(), "misconfigured");
}

#[test]
fn a_failed_instance_leaves_the_parser_usable() {
    let parser = hostile_default_deadline();
    let settings = Arc::new(Settings::new());
    for body in ["panic", "loop", "alloc", "recurse", "smash-stack"] {
        assert!(
            parser
                .invoke(&command(body), settings.clone())
                .result
                .is_err()
        );
        let after = parser.invoke(&command("log"), settings.clone()).result;
        assert!(after.is_ok(), "after `{body}`: {after:?}");
    }
}

/// The server runs light parsers on the async runtime's worker that read the request; WASI's
/// blocking calls (printing, a panic message on stderr) must work there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parser_may_print_and_panic_on_an_async_runtime_worker() {
    let on_worker = tokio::spawn(async {
        let settings = Arc::new(Settings::new());
        let parser = hostile_wasip2();
        (
            parser.invoke(&command("print"), settings.clone()),
            parser.invoke(&command("panic"), settings),
        )
    });
    let (printed, panicked) = on_worker.await.expect("the invocations do not panic");
    assert!(printed.result.is_ok(), "{:?}", printed.result);
    assert_eq!(printed.log.lines.len(), 2, "{:?}", printed.log);
    let err = panicked.result.unwrap_err();
    assert!(
        err.to_string()
            .contains("hostile parser panicked on purpose"),
        "{err}"
    );
}

/// The benchmark's stage-by-stage entry point stops where it is told, and fails where the
/// invocation would.
#[test]
fn an_invocation_stops_after_the_stage_asked_for() {
    let settings = || Arc::new(Settings::new());
    for stage in [
        Stage::Store,
        Stage::Instantiate,
        Stage::Call,
        Stage::Validate,
    ] {
        assert!(
            hostile().invoke_until(stage, &command("log"), settings()),
            "{stage:?}"
        );
    }
    assert!(hostile().invoke_until(Stage::Instantiate, &command("panic"), settings()));
    assert!(!hostile().invoke_until(Stage::Call, &command("panic"), settings()));
    assert!(hostile().invoke_until(Stage::Call, &command("invalid"), settings()));
    assert!(!hostile().invoke_until(Stage::Validate, &command("invalid"), settings()));
}

#[test]
fn parsers_are_shared_across_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..25).all(|_| invoke("print").result.is_ok())))
        .collect();
    for thread in threads {
        assert!(thread.join().expect("no panic"));
    }
}

/// The server compiles uploads in a child process (`telehook compile`) under the default limits
/// and loads the artifact into a runtime configured by the operator: the two must fit.
#[test]
fn an_artifact_compiled_under_default_limits_loads_under_other_limits() {
    let bytes = std::fs::read(HOSTILE).expect("the hostile guest was built");
    let compiler = Runtime::new(Limits::default()).expect("the limits are valid");
    let artifact = compiler.precompile(&bytes).expect("the guest compiles");
    let operator = Runtime::new(Limits {
        memory_bytes: 8 << 20,
        memory_cap_bytes: 256 << 20,
        wasm_stack_bytes: 128 << 10,
        max_instances: 8,
        table_elements: 5_000,
        timeout: GENEROUS_TIMEOUT,
        ..Limits::default()
    })
    .expect("the limits are valid");
    // SAFETY: the artifact was made by `Runtime::precompile` just above.
    #[allow(unsafe_code)]
    let parser = unsafe { operator.load_precompiled(&artifact) }.expect("the artifact fits");
    let invocation = parser.invoke(&command("log"), Arc::new(Settings::new()));
    assert!(invocation.result.is_ok(), "{:?}", invocation.result);
}

/// A component built against contract 0.1.0 is recognised as such and served through the
/// adapter, with the same outcome as the current build of the same parser.
#[test]
fn a_parser_built_against_contract_0_1_is_served_as_one() {
    let runtime = Runtime::new(Limits::default()).expect("default limits are valid");
    let old = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/contract-0.1.0/generic_json.wasm");
    let old = runtime
        .load(&std::fs::read(old).expect("kept in the repository"))
        .expect("a 0.1.0 parser still loads");
    let new = runtime
        .load(&std::fs::read(telehook_test_artifacts::GENERIC_JSON).expect("built"))
        .expect("loads");
    assert_eq!(old.contract(), "telehook:parser@0.1.0");
    assert_eq!(new.contract(), "telehook:parser@0.3.0");
    let request = WebhookRequest::new(
        "POST",
        "/hooks/acme",
        [("content-type".to_owned(), "application/json".to_owned())],
        br#"{"srcPhone": "+79161234567", "dstPhone": "101"}"#.to_vec(),
    );
    let settings = Arc::new(Settings::new());
    let old = old
        .invoke(&request, Arc::clone(&settings))
        .result
        .expect("parses");
    let new = new.invoke(&request, settings).result.expect("parses");
    assert_eq!(old, new);
}
