//! One webhook through `generic-json`: a fresh instance + call + validation, side by side with
//! the same parse done natively (serde_json into the same shape, then the same validation);
//! then its tail latency (criterion reports medians, the target is also on the p99); then the
//! invocation stage by stage; then one documented sample of every parser of the catalog and the
//! examples, to see what a parser's own work adds (the README's catalog table); then each of the
//! SDK's signature checks in the sandbox (Ed25519 in the guest and by the host's import), beside
//! a parse that checks nothing.
//!
//! Run with `cargo bench -p telehook --bench invoke`; results go in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use telehook::invoke::Stage;
use telehook::outcome::Outcome;
use telehook::{Limits, Parser, Runtime, Settings, WebhookRequest};

mod native;

/// The ~80-byte body of PERF-NOTES.md, so that the figures compare.
const BODY: &str =
    r#"{"callId":"abc-123","srcPhone":"+79161234567","dstPhone":"101","event":"start"}"#;

/// What the `generic-json` guest does, compiled into the host.
fn native_parse(request: &WebhookRequest) -> Outcome {
    native::parse(&request.body).expect("the benchmark body is valid")
}

/// Invocations timed one by one for the tail latency.
const TAIL_SAMPLES: usize = 100_000;

/// The two builds of `generic-json`: as the SDK recommends (no WASI imports), and for
/// `wasm32-wasip2`, whose standard library imports WASI.
const BUILDS: [(&str, &str); 2] = [
    ("wasm", telehook_test_artifacts::GENERIC_JSON),
    (
        "wasm32-wasip2 build",
        telehook_test_artifacts::GENERIC_JSON_WASIP2,
    ),
];

/// The benchmark webhook: [`BODY`] posted as JSON.
fn benchmark_request() -> WebhookRequest {
    WebhookRequest::new(
        "POST",
        "/hooks/generic-json",
        [("content-type".to_owned(), "application/json".to_owned())],
        BODY.as_bytes().to_vec(),
    )
}

/// A `generic-json` build, checked against the native baseline on `request` with empty
/// settings: the two must agree before they are compared.
fn generic_json(component: &str, request: &WebhookRequest) -> Parser {
    let runtime = Runtime::new(Limits::default()).expect("default limits are valid");
    let bytes = std::fs::read(component).expect("built by the setup");
    let parser = runtime
        .load(&bytes)
        .expect("generic-json fits the contract");
    assert_eq!(
        parser
            .invoke(request, Arc::new(Settings::new()))
            .result
            .ok(),
        Some(native_parse(request)),
        "the guest and the native baseline must agree before they are compared"
    );
    parser
}

fn invocation(c: &mut Criterion) {
    let request = benchmark_request();
    let settings = Arc::new(Settings::new());
    let mut group = c.benchmark_group("generic-json");
    for (build, component) in BUILDS {
        let parser = generic_json(component, &request);
        group.bench_function(format!("{build} fresh instance + call + validate"), |b| {
            b.iter(|| {
                let invocation = parser.invoke(black_box(&request), settings.clone());
                black_box(invocation.result.is_ok())
            });
        });
    }
    group.bench_function("native parse + validate", |b| {
        b.iter(|| black_box(native_parse(black_box(&request))));
    });
    group.finish();
}

/// Times [`TAIL_SAMPLES`] invocations one by one, wasm and native, and prints their
/// percentiles (each timing adds the ~20 ns of reading the clock twice).
fn tail_latency(_: &mut Criterion) {
    let request = benchmark_request();
    let settings = Arc::new(Settings::new());
    let mut runs = Vec::new();
    for (build, component) in BUILDS {
        let parser = generic_json(component, &request);
        let times = time_each(|| {
            parser
                .invoke(black_box(&request), settings.clone())
                .result
                .is_ok()
        });
        runs.push((format!("{build} fresh instance + call + validate"), times));
    }
    runs.push((
        "native".to_owned(),
        time_each(|| native_parse(black_box(&request)).event.is_some()),
    ));
    for (name, mut times) in runs {
        times.sort_unstable();
        let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
        println!(
            "generic-json/{name}: {TAIL_SAMPLES} single invocations: p50 {:.2} µs, p99 {:.2} µs, \
             p99.9 {:.2} µs, max {:.2} µs",
            at(0.5),
            at(0.99),
            at(0.999),
            at(1.0)
        );
    }
}

fn time_each(mut call: impl FnMut() -> bool) -> Vec<Duration> {
    (0..TAIL_SAMPLES)
        .map(|_| {
            let started = Instant::now();
            black_box(call());
            started.elapsed()
        })
        .collect()
}

/// The invocation up to each stage, dropping the store each time: a stage costs the difference
/// to the one before it (creating and dropping an empty store is the first).
fn stages(c: &mut Criterion) {
    let request = benchmark_request();
    let settings = Arc::new(Settings::new());
    let parser = generic_json(telehook_test_artifacts::GENERIC_JSON, &request);
    let mut group = c.benchmark_group("generic-json up to");
    for stage in [
        Stage::Store,
        Stage::Instantiate,
        Stage::Call,
        Stage::Validate,
    ] {
        assert!(parser.invoke_until(stage, &request, settings.clone()));
        group.bench_function(format!("{stage:?}"), |b| {
            b.iter(|| black_box(parser.invoke_until(stage, black_box(&request), settings.clone())));
        });
    }
    group.finish();
}

/// A parser's sample: its request file and the settings it was made with.
fn sample(dir: &std::path::Path, name: &str) -> (WebhookRequest, Settings) {
    let samples = dir.join("samples");
    let text = std::fs::read_to_string(samples.join(format!("{name}.request.json")))
        .expect("the sample exists");
    let request = WebhookRequest::from_json(&text).expect("samples are valid request files");
    let mut settings = Settings::new();
    if let Ok(text) = std::fs::read_to_string(samples.join("settings.json")) {
        let values: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&text).expect("settings.json maps keys to strings");
        for (key, value) in values {
            settings.insert(key, value);
        }
    }
    (request, settings)
}

/// The sample a parser is priced on: the first (by name) that gives an event, so that the
/// figure includes the signature check and the mapping; the first one at all otherwise.
fn representative_sample(dir: &std::path::Path) -> String {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir.join("samples"))
        .expect("every parser has samples")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".expected.json")?
                .to_owned();
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some((name, !expected["event"].is_null()))
        })
        .collect();
    names.sort();
    names
        .iter()
        .find(|(_, has_event)| *has_event)
        .or(names.first())
        .map(|(name, _)| name.clone())
        .expect("every parser has samples")
}

fn every_parser(c: &mut Criterion) {
    let runtime = Runtime::new(Limits::default()).expect("default limits are valid");
    let mut group = c.benchmark_group("parsers");
    for (parser_name, dir) in telehook_test_artifacts::PARSERS {
        let dir = std::path::Path::new(dir);
        let bytes = std::fs::read(telehook_test_artifacts::component(parser_name)).expect("built");
        let parser = runtime.load(&bytes).expect("parsers fit the contract");
        let name = representative_sample(dir);
        let (request, settings) = sample(dir, &name);
        let settings = Arc::new(settings);
        let first = parser.invoke(&request, settings.clone()).result;
        assert!(first.is_ok(), "{parser_name}/{name}: {first:?}");
        group.bench_function(format!("{parser_name}/{name}"), |b| {
            b.iter(|| {
                let invocation = parser.invoke(black_box(&request), settings.clone());
                black_box(invocation.result.is_ok())
            });
        });
    }
    group.finish();
}

/// Every signature check of the SDK inside the sandbox (`tests/guests/crypto-cost`), over a
/// 721-byte Telnyx `call.hangup` body, beside the same parse checking nothing. The signatures
/// were made with Python's `hashlib`, `hmac` and `cryptography` (RFC 8032's TEST 1 key), under
/// the secret below.
fn crypto(c: &mut Criterion) {
    const BODY: &str = include_str!("../../../tests/guests/crypto-cost/body.json");
    const CHECKS: [(&str, &str, &str); 8] = [
        ("none", "x-signature", ""),
        ("sha1", "x-signature", "IUBAjjetK/VlQE/uoUflP3ZwDEk="),
        (
            "sha256",
            "x-signature",
            "+1sNVs/xysyQGhZ6zKIrIzn7kHPhCe/8cU8IDRjgr4I=",
        ),
        ("hmac-sha1", "x-signature", "HraoU9bw5y+4g6zRzymsLMEMPeQ="),
        (
            "hmac-sha256",
            "x-signature",
            "qvv5Lid5bbemQD00vr+sOT5nQX44VY+u2rine2c3HVs=",
        ),
        (
            "jwt-hs256",
            "authorization",
            concat!(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                ".eyJpYXQiOjE3OTYxMTkyMDAsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6ImZiNWIwZDU2Y2ZmMWNhY2M5MDFhMTY3YWNjYTIyYjIzMzlmYjkwNzNlMTA5ZWZmYzcxNGYwODBkMThlMGFmODIifQ",
                ".RgEU9JOeWjVhoZgXs45jJovAJOARKiKvT37CUFVBu8k"
            ),
        ),
        (
            "ed25519-guest",
            "telnyx-signature-ed25519",
            "AC9lcOSuZ3F/rF6HS94Q+Ub0AH05aKMBkrxrBGciTIfjENlJbT2TAqDpD1VEZykNTRa8Y4d2ORuPgXP1d0APAg==",
        ),
        (
            "ed25519-host",
            "telnyx-signature-ed25519",
            "AC9lcOSuZ3F/rF6HS94Q+Ub0AH05aKMBkrxrBGciTIfjENlJbT2TAqDpD1VEZykNTRa8Y4d2ORuPgXP1d0APAg==",
        ),
    ];
    let runtime = Runtime::new(Limits::default()).expect("default limits are valid");
    let bytes = std::fs::read(telehook_test_artifacts::CRYPTO_COST).expect("built");
    let parser = runtime.load(&bytes).expect("fits the contract");
    let mut settings = Settings::new();
    settings.insert("secret", "whsec-benchmark-secret-0123456789");
    settings.insert("public_key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    let settings = Arc::new(settings);
    let mut group = c.benchmark_group("crypto");
    for (check, header, signature) in CHECKS {
        let request = WebhookRequest::new(
            "POST",
            "/hooks/telnyx",
            [
                ("x-check".to_owned(), check.to_owned()),
                ("telnyx-timestamp".to_owned(), "1796119200".to_owned()),
                (header.to_owned(), signature.to_owned()),
            ],
            BODY.trim_end().as_bytes().to_vec(),
        )
        .received_at(std::time::UNIX_EPOCH + Duration::from_secs(1_796_119_200));
        let first = parser.invoke(&request, settings.clone()).result;
        assert!(first.is_ok(), "{check}: {first:?}");
        group.bench_function(check, |b| {
            b.iter(|| {
                black_box(
                    parser
                        .invoke(black_box(&request), settings.clone())
                        .result
                        .is_ok(),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    invocation,
    tail_latency,
    stages,
    every_parser,
    crypto
);
criterion_main!(benches);
