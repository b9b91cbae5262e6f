//! Project automation, so that the README's quick start is two commands on a fresh machine.
//!
//! - `cargo xtask demo`: build the parsers from source, start `telehook serve` on its
//!   embedded default, register the demo's parsers through the admin API, send every sample request
//!   over HTTP and show the answers, the logged events, the calls, and the call updates the
//!   platform's live stream brought.
//! - `cargo xtask catalog`: the README's catalog table from the last `bench --catalog` run.
//! - `cargo xtask test`: the whole test suite, every crate's (which builds every guest from
//!   source, the TypeScript and Python ones with the SDKs it installs first: see
//!   [`languages`]), and the web console's in a real browser (see [`console`]).
//! - `cargo xtask reliability [--quick] [--only CASE]`: the hostile-input suite against a real
//!   server (`--only` runs the cases whose name contains CASE, or one of CASE,CASE); its
//!   table goes in `RELIABILITY.md` (see [`reliability`]).
//! - `cargo xtask bench [--http|--tenants [N]|--delivery]`: the invocation benchmark
//!   (criterion), the end-to-end HTTP benchmark against the native baselines and `wasmtime
//!   serve` (see [`load`]; the peer is installed into `target/peers` the first time) and the
//!   many-tenants benchmark (see [`tenants`]); `--http` or `--tenants` runs only that one, and
//!   `--tenants N` registers N integrations instead of 1,000; `--delivery` runs only the
//!   delivery benchmark (see [`delivery`]), which the full run leaves out, and `--delivery C
//!   off|streams|endpoint|on` one configuration of it once, to profile; `--catalog` runs only
//!   the invocation benchmark of every catalog parser and of each signature check, and prints the README's
//!   catalog table from its medians (see [`catalog`]); `--languages` the same parse in Rust,
//!   TypeScript and Python beside the Node.js fresh-context peer (see [`languages::bench`]);
//!   `--nodes` one node on SQLite, one on PostgreSQL and two on PostgreSQL side by side (see
//!   [`nodes`]). Results go in `BENCHMARKS.md`.
//!
//! All first make sure the guests' targets (`wasm32-unknown-unknown`, `wasm32-wasip2`) are
//! installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

mod catalog;
mod console;
mod delivery;
mod languages;
mod load;
mod nodes;
mod reliability;
mod server;
mod tenants;

/// The targets guests are built for (see `tests/artifacts/build.rs`).
const GUEST_TARGETS: [&str; 2] = ["wasm32-unknown-unknown", "wasm32-wasip2"];

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_path_buf();
    match task.as_str() {
        "demo" => demo(&root),
        "catalog" => {
            print!("{}", catalog::table(&root)?);
            Ok(())
        }
        "test" => test(&root),
        "reliability" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let only = args
                .iter()
                .position(|arg| arg == "--only")
                .and_then(|at| args.get(at + 1));
            reliability(
                &root,
                args.iter().any(|arg| arg == "--quick"),
                only.map(String::as_str),
            )
        }
        "bench" => {
            let integrations = match std::env::args().nth(3) {
                Some(count) => count
                    .parse()
                    .with_context(|| format!("`{count}` is not a number of integrations"))?,
                None => BENCH_INTEGRATIONS,
            };
            bench(&root, std::env::args().nth(2).as_deref(), integrations)
        }
        _ => bail!(
            "usage: cargo xtask <demo|catalog|test|reliability [--quick] [--only CASE]|bench [--http|--tenants [N]|--delivery|--catalog|--languages|--nodes]>"
        ),
    }
}

fn test(root: &Path) -> Result<()> {
    ensure_guest_targets()?;
    let bin = languages::prepare(root)?;
    console::prepare(root)?;
    // The whole workspace: the catalog's and the examples' own unit tests run natively too.
    run(Command::new(cargo())
        .current_dir(root)
        .env("PATH", languages::path_with(&bin)?)
        .args(["test", "--workspace"]))
}

/// Builds every guest crate (the build script of `tests/artifacts` does it, as for the tests)
/// and returns the folder their components land in.
fn build_guests(root: &Path) -> Result<PathBuf> {
    ensure_guest_targets()?;
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "--quiet",
        "--package",
        "telehook-test-artifacts",
    ]))?;
    Ok(root.join("target/guests/components"))
}

fn reliability(root: &Path, quick: bool, only: Option<&str>) -> Result<()> {
    let components = build_guests(root)?;
    let profile = if quick { "dev" } else { "release" };
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "--package",
        "telehook-cli",
        "--profile",
        profile,
    ]))?;
    let data_dir = root.join("target/reliability-data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let binary = if quick { "debug" } else { "release" };
    reliability::run(&reliability::Setup {
        telehook: &root.join("target").join(binary).join("telehook"),
        components: &components,
        data_dir: &data_dir,
        quick,
        only,
    })
}

/// The engine's criterion benchmark (`crates/engine/benches/invoke.rs`), with `args` after the
/// bench's own (a `--` and a filter, to run part of it).
fn invocation_bench(root: &Path, args: &[&str]) -> Result<()> {
    run(Command::new(cargo())
        .current_dir(root)
        .args(["bench", "--package", "telehook", "--bench", "invoke"])
        .args(args))
}

/// Builds the release `telehook` binary the benchmarks run; returns its path.
fn release_telehook(root: &Path) -> Result<PathBuf> {
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "--release",
        "--package",
        "telehook-cli",
        "--bin",
        "telehook",
    ]))?;
    Ok(root.join("target/release/telehook"))
}

/// Integrations registered by the many-tenants benchmark.
const BENCH_INTEGRATIONS: usize = 1000;

fn bench(root: &Path, only: Option<&str>, integrations: usize) -> Result<()> {
    let components = build_guests(root)?;
    if only == Some("--catalog") {
        invocation_bench(root, &["--", "^(parsers|crypto)/"])?;
        print!("\n{}", catalog::table(root)?);
        return Ok(());
    }
    if only == Some("--languages") {
        let telehook = release_telehook(root)?;
        let bin = languages::prepare(root)?;
        return languages::bench::run(&languages::bench::Setup {
            root,
            telehook: &telehook,
            rust_component: &components.join("generic_json.wasm"),
            scratch: &root.join("target/bench-languages"),
            path: &languages::path_with(&bin)?,
        });
    }
    if only == Some("--nodes") {
        let telehook = release_telehook(root)?;
        return nodes::run(&nodes::Setup {
            telehook: &telehook,
            generic_json: &components.join("generic_json.wasm"),
            scratch: &root.join("target/bench-nodes"),
        });
    }
    if only == Some("--delivery") {
        let telehook = release_telehook(root)?;
        let setup = delivery::Setup {
            telehook: &telehook,
            scripted: &components.join("scripted.wasm"),
            scratch: &root.join("target/bench-delivery"),
        };
        // `--delivery C on|off`: that configuration once, to profile it.
        let args: Vec<String> = std::env::args().skip(3).collect();
        return match args.as_slice() {
            [connections, consumers] => delivery::run_one(
                &setup,
                connections.parse()?,
                delivery::Consumers::parse(consumers)?,
            ),
            _ => delivery::run(&setup),
        };
    }
    if only.is_none() {
        invocation_bench(root, &[])?;
        for fsync in [&[][..], &["--no-fsync"]] {
            run(Command::new(cargo())
                .current_dir(root)
                .args([
                    "run",
                    "--quiet",
                    "--release",
                    "--package",
                    "telehook-server",
                ])
                .args(["--example", "event_log_load", "--"])
                .args(fsync))?;
        }
    }
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "--release",
        "--package",
        "telehook-cli",
        "--bin",
        "telehook",
        "--package",
        "telehook-server",
        "--example",
        "native_server",
    ]))?;
    let release = root.join("target/release");
    let generic_json = components.join("generic_json.wasm");
    if only != Some("--tenants") {
        let wasmtime = install_wasmtime(root)?;
        let peer_component = components.join("wasi_http_generic_json.wasm");
        load::run(&load::Setup {
            telehook: &release.join("telehook"),
            native_server: &release.join("examples/native_server"),
            generic_json: &generic_json,
            wasmtime: &wasmtime,
            peer_component: &peer_component,
            scratch: &root.join("target/bench-http"),
        })?;
    }
    if only != Some("--http") {
        tenants::run(&tenants::Setup {
            telehook: &release.join("telehook"),
            generic_json: &generic_json,
            data_dir: &root.join("target/bench-tenants"),
            integrations,
        })?;
    }
    Ok(())
}

fn demo(root: &Path) -> Result<()> {
    let components = build_guests(root)?;
    run(Command::new(cargo())
        .current_dir(root)
        .args(["build", "--package", "telehook-cli"]))?;

    let data_dir = root.join("target/demo-data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let server = server::Server::start(&root.join("target/debug/telehook"), &data_dir, &[])?;
    server.admin(
        "POST",
        "/tenants",
        &json!({"id": "demo", "name": "Demo tenant"}),
    )?;
    // The platform's live stream, open before the first webhook: every call update it gets.
    let updates: Arc<Mutex<Vec<Value>>> = Arc::default();
    let streamed = Arc::clone(&updates);
    let _stream = delivery::follow(
        &format!("{}/stream/calls?tenant=demo", server.url),
        &[("authorization", &format!("Bearer {}", server.admin_token))],
        move |update| {
            if let Ok(update) = serde_json::from_str(update) {
                streamed
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push(update);
            }
        },
    )?;
    for example in DEMO_PARSERS {
        let samples = parser_dir(root, example).join("samples");
        let module = components.join(format!("{}.wasm", example.replace('-', "_")));
        let webhook = server.register("demo", example, &module, &settings(&samples)?)?;
        // The samples' operators, bound to users, so that the calls name whom they notify.
        server.admin(
            "PUT",
            &format!("/tenants/demo/integrations/{example}/bindings"),
            &json!([
                {"extension": "100", "user_id": "boris"},
                {"extension": "101", "user_id": "anna"},
                {"extension": "102", "user_id": "boris"},
            ]),
        )?;
        println!("\n##### {example}: {webhook}");
        for request in requests_in(&samples)? {
            let name = request.file_name().unwrap_or_default().to_string_lossy();
            println!("\n=== {example}: {name}");
            server.send_sample(&webhook, &request)?;
        }
        let events = server.admin(
            "GET",
            &format!("/tenants/demo/integrations/{example}/events"),
            &Value::Null,
        )?;
        println!(
            "\n--- {example}: event log\n{}",
            serde_json::to_string_pretty(&events)?
        );
        let calls = server.admin(
            "GET",
            &format!("/tenants/demo/integrations/{example}/calls"),
            &Value::Null,
        )?;
        println!("\n--- {example}: calls, the latest first");
        print_calls(&calls);
    }
    print_updates(&updates);
    println!("\nThe components are in {}", components.display());
    println!("The server's data directory is {}", data_dir.display());
    offer_console(&server)
}

/// Where the console shows what the demo did; at a terminal the server keeps running until
/// Enter, so that a person can look, and a script's run ends here.
fn offer_console(server: &server::Server) -> Result<()> {
    use std::io::IsTerminal;
    println!(
        "\nThe console: {}/console (sign in with the admin token {})",
        server.url, server.admin_token
    );
    if std::io::stdin().is_terminal() {
        println!("Press Enter to stop the server.");
        std::io::stdin().read_line(&mut String::new())?;
    }
    Ok(())
}

/// The call updates the live stream brought, once they stop coming, as the platform's call
/// cards would show them.
fn print_updates(updates: &Mutex<Vec<Value>>) {
    let count = || {
        updates
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    };
    let mut seen = count();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if count() == seen {
            break;
        }
        seen = count();
    }
    let updates = updates.lock().unwrap_or_else(|poison| poison.into_inner());
    println!(
        "\n--- the live stream (GET /stream/calls): {seen} call updates as the platform got them"
    );
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    println!("| position | integration | call | state | direction | from | to | pops up for |");
    println!("|---|---|---|---|---|---|---|---|");
    for update in updates.iter() {
        let data = &update["data"];
        let call = &data["call"];
        // Our call ids are UUIDv7s: their ends tell calls apart, their starts are the time.
        let id = text(&call["id"]);
        println!(
            "| {} | {} | ...{} | {} | {} | {} | {} | {} |",
            data["position"],
            text(&data["integration"]),
            &id[id.len().saturating_sub(6)..],
            text(&call["state"]),
            text(&call["direction"]),
            text(&call["src_phone"]),
            text(&call["dst_phone"]),
            users_of(call),
        );
    }
}

/// Whom a call pops up for: its users, or `-`.
fn users_of(call: &Value) -> String {
    let users: Vec<&str> = call["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if users.is_empty() {
        "-".into()
    } else {
        users.join(", ")
    }
}

/// The calls of a listing as a table a person reads at a glance.
fn print_calls(listing: &Value) {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    println!("| state | disposition | direction | from | to | users | recording |");
    println!("|---|---|---|---|---|---|---|");
    for call in listing["calls"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            text(&call["state"]),
            text(&call["disposition"]),
            text(&call["direction"]),
            text(&call["src_phone"]),
            text(&call["dst_phone"]),
            users_of(call),
            text(&call["record"]["call"]),
        );
    }
}

/// `samples/settings.json` holds the integration settings the samples were signed with.
fn settings(samples: &Path) -> Result<Value> {
    let path = samples.join("settings.json");
    if !path.exists() {
        return Ok(json!({}));
    }
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).with_context(|| format!("in {}", path.display()))
}

/// The parsers the demo registers: the documentation's example and two providers of the
/// catalog, enough to show every kind of outcome without a screenful per provider.
const DEMO_PARSERS: &[&str] = &["generic-json", "gravitel", "zadarma"];

/// A parser's folder: in `catalog/` or in `examples/`, each named after its crate.
fn parser_dir(root: &Path, name: &str) -> PathBuf {
    let catalog = root.join("catalog").join(name);
    if catalog.exists() {
        catalog
    } else {
        root.join("examples").join(name)
    }
}

fn requests_in(samples: &Path) -> Result<Vec<PathBuf>> {
    let mut requests: Vec<PathBuf> = std::fs::read_dir(samples)
        .with_context(|| format!("reading {}", samples.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".request.json"))
        .collect();
    requests.sort();
    Ok(requests)
}

/// The version of `wasmtime` the HTTP benchmark compares with: the one telehook embeds.
const PEER_WASMTIME: &str = "48.0.8";

/// `wasmtime` (the CLI, for `wasmtime serve`) in `target/peers`, installed there the first time
/// (it compiles for about ten minutes here).
fn install_wasmtime(root: &Path) -> Result<PathBuf> {
    let peers = root.join("target/peers");
    let wasmtime = peers.join("bin/wasmtime");
    let version = Command::new(&wasmtime).arg("--version").output();
    if let Ok(version) = version
        && String::from_utf8_lossy(&version.stdout).contains(PEER_WASMTIME)
    {
        return Ok(wasmtime);
    }
    println!("installing wasmtime-cli {PEER_WASMTIME} into target/peers (once; about ten minutes)");
    run(Command::new(cargo())
        .args([
            "install",
            "wasmtime-cli",
            "--locked",
            "--version",
            PEER_WASMTIME,
            "--root",
        ])
        .arg(&peers))?;
    Ok(wasmtime)
}

fn ensure_guest_targets() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the guests need the wasm32 targets)")?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in GUEST_TARGETS {
        if !installed.lines().any(|line| line.trim() == target) {
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(status.success(), "{command:?} failed with {status}");
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
