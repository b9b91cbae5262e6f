//! `telehook`: the webhook server, and the tenant's development loop for parsers. The
//! command is a crate of its own so that the engine (`telehook`) and the server
//! (`telehook-server`) stay libraries an embedder takes without it.
//!
//! - `telehook serve`: the multi-tenant webhook server with its admin API;
//! - `telehook check PARSER.wasm`: does this component fit the contract?
//! - `telehook run --module PARSER.wasm --request REQUEST.json [--setting KEY=VALUE]...`: run
//!   the parser on one request and print the validated outcome as JSON;
//! - `telehook test DIR`: run every sample of a parser and print which pass.

mod build;
mod config;
mod latency;
mod samples;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser as _, Subcommand};
use telehook::{
    InvocationLog, InvokeError, Limits, LoadError, LogLevel, Parser, Runtime, WebhookRequest,
};
use telehook_server::compiler::{Compiler, INVALID_COMPONENT_EXIT};
use telehook_server::http;
use telehook_server::{Service, ServiceConfig};
use tokio::net::TcpListener;

/// mimalloc instead of the system allocator: each webhook allocates and frees many small
/// buffers across the runtime's threads, and glibc's arenas spent about a tenth of the server's
/// time in them at 64 connections (BENCHMARKS.md, step 8).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, so that scripts can tell a broken setup from a parser's verdict.
mod exit {
    /// telehook could not do the job: unreadable files, a component that fails the check.
    pub const FAILED: u8 = 1;
    /// The parser refused the request (its own `parse-error`).
    pub const REJECTED: u8 = 3;
    /// The parser crashed, or hit a time or memory limit.
    pub const CRASHED: u8 = 4;
    /// The parser returned a result that breaks the contract's rules.
    pub const INVALID: u8 = 5;
    /// `telehook test`: at least one sample did not give its expected outcome.
    pub const SAMPLES_FAILED: u8 = 6;
    /// The parser found an integration setting missing or wrong (give it with `--setting`).
    pub const MISCONFIGURED: u8 = 7;
}

/// Runs tenant-written WebAssembly parsers for telephony webhooks.
#[derive(clap::Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve webhooks and the admin API.
    Serve(Box<config::ServeArgs>),
    /// Check that a component implements the parser contract and imports nothing forbidden.
    Check {
        /// The parser component (.wasm).
        module: PathBuf,
    },
    /// Compile a component into an artifact for this host, without the contract checks (the
    /// server runs this for each upload, in a child process it stops after a deadline).
    Compile {
        /// The component (.wasm).
        component: PathBuf,
        /// Where to write the artifact.
        #[arg(long)]
        output: PathBuf,
        /// Run at the lowest CPU priority, on what other work leaves over.
        #[arg(long)]
        background: bool,
    },
    /// Build a parser from its source (a Rust crate's folder, a `.ts`/`.js` module, a `.py`
    /// module) into a component, and check it fits the contract.
    Build {
        /// The crate's folder, or the module (`parser.ts`, `parser.js`, `parser.py`).
        source: PathBuf,
        /// Where to write the component; beside the source when not given.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Make a parser built for `wasm32-unknown-unknown` (a core module) a component, ready for
    /// `check`, `run` and upload.
    Componentize {
        /// The core module (.wasm) that `cargo build --target wasm32-unknown-unknown` made.
        module: PathBuf,
        /// Where to write the component.
        #[arg(long)]
        output: PathBuf,
    },
    /// Run a parser on one request and print the validated outcome as JSON.
    Run {
        /// The parser component (.wasm).
        #[arg(long)]
        module: PathBuf,
        /// The request: {"method", "url", "headers": {...}, "body" | "body_base64"}.
        #[arg(long)]
        request: PathBuf,
        /// An integration setting the parser can read, e.g. `api_secret=...`.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
        settings: Vec<(String, String)>,
        /// When the request was received (RFC 3339, e.g. `2026-12-01T10:00:00Z`), the clock
        /// the parser reads: the same request at the same time gives the same outcome. Wins
        /// over the request file's `received_at`; the current time when neither gives one.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        now: Option<std::time::SystemTime>,
        /// Run the request this many times more, each in a fresh instance as the server runs
        /// it, and print the invocation's latency (p50, p99, max) to stderr: what the parser
        /// costs per webhook on this machine.
        #[arg(long, value_name = "N")]
        repeat: Option<u32>,
    },
    /// Run every sample of a parser (`DIR/samples/NAME.request.json` against
    /// `NAME.expected.json`, with `settings.json`) and print a table of pass and fail, with a
    /// diff for each failure; exits non-zero when any fails.
    Test {
        /// The parser's folder (a crate, or one with parser.ts, parser.js or parser.py), or
        /// any folder of samples.
        dir: PathBuf,
        /// The parser component (.wasm); without it, the parser in DIR is built (as by
        /// `telehook build`).
        #[arg(long)]
        module: Option<PathBuf>,
        /// A setting that replaces or adds to `settings.json`'s, e.g. `api_secret=...`.
        #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
        settings: Vec<(String, String)>,
        /// The receive time of every sample (RFC 3339), over each request file's own.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        now: Option<std::time::SystemTime>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; `check` and `run` print failures themselves, and the
    // library's warnings would repeat them.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TELEHOOK_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            let config = config::ServeConfig::resolve(*args)?;
            tokio::runtime::Runtime::new()?.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { module } => {
            load(&Runtime::new(Limits::default())?, &module)?;
            say(format_args!(
                "{}: fits the parser contract\n",
                module.display()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { source, output } => {
            let source = build::Source::find(&source)?;
            let component = source.build()?;
            let size = component.len();
            Runtime::new(Limits::default())?
                .load(&component)
                .context("the component built does not fit the parser contract")?;
            let output = output.unwrap_or_else(|| source.default_output());
            std::fs::write(&output, component)
                .with_context(|| format!("cannot write {}", output.display()))?;
            say(format_args!(
                "{}: built, {:.1} MiB, fits the parser contract\n",
                output.display(),
                size as f64 / f64::from(1 << 20)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Componentize { module, output } => {
            let bytes = std::fs::read(&module)
                .with_context(|| format!("cannot read {}", module.display()))?;
            let component =
                build::componentize(&bytes).with_context(|| format!("in {}", module.display()))?;
            std::fs::write(&output, component)
                .with_context(|| format!("cannot write {}", output.display()))?;
            say(format_args!("{}: written\n", output.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile {
            component,
            output,
            background,
        } => {
            if background {
                telehook_server::lanes::lower_priority();
            }
            let bytes = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            // The server checked the size against its own limit before asking. No instance pool:
            // its stacks alone map 2 GiB, beyond the memory limit the server sets for this child.
            let runtime = Runtime::compiler(Limits {
                component_bytes: usize::MAX,
                ..Limits::default()
            })?;
            match runtime.precompile(&bytes) {
                Ok(artifact) => {
                    std::fs::write(&output, artifact)
                        .with_context(|| format!("cannot write {}", output.display()))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(LoadError::Invalid(reason)) => {
                    eprintln!("{reason}");
                    Ok(ExitCode::from(INVALID_COMPONENT_EXIT))
                }
                Err(err) => Err(err.into()),
            }
        }
        Command::Run {
            module,
            request,
            settings,
            now,
            repeat,
        } => {
            let parser = load(&Runtime::new(Limits::default())?, &module)?;
            let json = std::fs::read_to_string(&request)
                .with_context(|| format!("cannot read {}", request.display()))?;
            let mut request = WebhookRequest::from_json(&json)
                .with_context(|| format!("in {}", request.display()))?;
            if let Some(now) = now {
                request = request.received_at(now);
            }
            let settings = Arc::new(settings.into_iter().collect());
            let invocation = parser.invoke(&request, Arc::clone(&settings));
            print_log(&invocation.log);
            if let Some(runs) = repeat {
                eprintln!("{}", latency::measure(&parser, &request, &settings, runs));
            }
            match invocation.result {
                Ok(outcome) => {
                    say(format_args!(
                        "{}\n",
                        serde_json::to_string_pretty(&outcome)?
                    ))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    Ok(ExitCode::from(exit_code(&err)))
                }
            }
        }
        Command::Test {
            dir,
            module,
            settings,
            now,
        } => {
            let runtime = Runtime::new(Limits::default())?;
            let parser = match module {
                Some(module) => load(&runtime, &module)?,
                None => runtime
                    .load(&build::Source::find(&dir)?.build()?)
                    .with_context(|| {
                        format!("the parser built from {} is not usable", dir.display())
                    })?,
            };
            let folder = samples::folder(&dir);
            let mut all_settings = samples::settings(&folder)?;
            for (key, value) in settings {
                all_settings.insert(key, value);
            }
            let verdicts = samples::run_all(&parser, &folder, all_settings, now)?;
            say(samples::report(&verdicts))?;
            Ok(
                if verdicts.iter().all(|verdict| verdict.failure.is_none()) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(exit::SAMPLES_FAILED)
                },
            )
        }
    }
}

async fn serve(config: config::ServeConfig) -> Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let url = http::local_url(&listener)?;
    let first_start = !config.data_dir.join("admin-token").exists();
    let service_config = ServiceConfig {
        data_dir: config.data_dir.clone(),
        public_url: config.public_url.unwrap_or_else(|| url.clone()),
        limits: config.limits,
        admission: config.admission,
        breaker: config.breaker,
        fsync_events: config.fsync_events,
        max_loaded_parsers: config.max_loaded_parsers,
        event_retention: config.event_retention,
        delivery_window: config.delivery_window,
        calls: config.calls,
        forwarding: config.forwarding,
        settings_key_file: config.settings_key_file,
        compiler: Compiler::Subprocess {
            program: std::env::current_exe().context("cannot find the telehook binary")?,
            timeout: config.compile_timeout,
            memory_limit: config.compile_memory_limit,
        },
    };
    let service = match &config.shared {
        None => Service::open(service_config)
            .with_context(|| format!("cannot open {}", config.data_dir.display()))?,
        Some(shared) => Service::open_shared(service_config, &shared.database, &shared.nats)
            .await
            .context("cannot join the nodes of the shared database")?,
    };
    say(format_args!("telehook listening on {url}\n"))?;
    say(format_args!(
        "data directory: {}\n",
        config.data_dir.display()
    ))?;
    if let Some(shared) = &config.shared {
        say(format_args!(
            "sharing the database {} with the nodes heard on {}\n",
            redact_password(&shared.database),
            shared.nats
        ))?;
    }
    if first_start {
        say(format_args!(
            "admin token (also in the data directory): {}\n",
            service.admin_token()
        ))?;
    }
    http::serve(listener, Arc::new(service), config.http, shutdown_signal()).await?;
    Ok(())
}

/// A database URL to print: without its password, if it has one. The credentials are what
/// stands before the first `@` of the authority (an `@` in them is percent-encoded; one in
/// the query is not theirs).
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match authority.split_once('@') {
        Some((credentials, _)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[credentials.len()..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn load(runtime: &Runtime, path: &Path) -> Result<Parser> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    runtime
        .load(&bytes)
        .with_context(|| format!("{} is not a usable parser", path.display()))
}

fn exit_code(err: &InvokeError) -> u8 {
    match err {
        InvokeError::Rejected { .. } => exit::REJECTED,
        InvokeError::Misconfigured { .. } => exit::MISCONFIGURED,
        InvokeError::Invalid(_) => exit::INVALID,
        _ => exit::CRASHED,
    }
}

/// The parser's own log goes to stderr, so that stdout stays the outcome's JSON.
fn print_log(log: &InvocationLog) {
    for line in &log.lines {
        let level = match line.level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("parser {level}: {}", line.message);
    }
    if log.dropped > 0 {
        eprintln!("parser log: {} more lines dropped", log.dropped);
    }
}

/// Writes to stdout. A reader that went away (`telehook run ... | head`) is not an error: the
/// command goes on quietly, as Unix tools do, instead of panicking as `println!` would.
fn say(text: impl std::fmt::Display) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn parse_setting(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => bail!("expected KEY=VALUE, got `{text}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn a_database_url_is_printed_without_its_password() {
        assert_eq!(
            redact_password("postgres://telehook:s3cret@db:5432/telehook"),
            "postgres://telehook:***@db:5432/telehook"
        );
        assert_eq!(
            redact_password("postgres://u:p@db/telehook?options=-c%20x%3Da@b"),
            "postgres://u:***@db/telehook?options=-c%20x%3Da@b"
        );
        for url in [
            "postgres://telehook@db/telehook",
            "postgres://db/telehook",
            "postgres://db/telehook?options=a@b:c",
        ] {
            assert_eq!(redact_password(url), url);
        }
    }
}
