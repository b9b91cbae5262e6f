//! A `telehook serve` child process and the HTTP calls an admin and a provider make, for the
//! demo, the reliability suite and the benchmarks.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use ureq::http::{Method, Request};

/// The ~80-byte webhook of PERF-NOTES.md, which the `generic-json` example parses: every
/// measurement sends it, so that the figures compare.
pub const WEBHOOK_BODY: &str =
    r#"{"callId":"abc-123","srcPhone":"+79161234567","dstPhone":"101","event":"start"}"#;

/// Latencies of sequential webhook requests, how many were not answered `200`, and what the
/// first of those got.
#[derive(Default)]
pub struct Latencies {
    pub latencies: Vec<Duration>,
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl Latencies {
    /// Sends [`WEBHOOK_BODY`] to `webhook`, one request after another, for `duration`.
    pub fn measure(agent: &ureq::Agent, webhook: &str, duration: Duration) -> Self {
        let mut measured = Self::default();
        let until = Instant::now() + duration;
        while Instant::now() < until {
            let started = Instant::now();
            let failure = match agent
                .post(webhook)
                .header("content-type", "application/json")
                .send(WEBHOOK_BODY)
            {
                Ok(response) if response.status() == 200 => None,
                Ok(mut response) => Some(format!(
                    "{} {}",
                    response.status(),
                    response.body_mut().read_to_string().unwrap_or_default()
                )),
                Err(err) => Some(format!("error: {err}")),
            };
            measured.latencies.push(started.elapsed());
            if let Some(failure) = failure {
                measured.failures += 1;
                measured.first_failure.get_or_insert(failure);
            }
        }
        measured
    }

    /// The latency below which a fraction `p` of the requests were answered.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
}

/// A server process that announces its URL on a line of its standard output, stopped with
/// SIGTERM when dropped.
pub struct Process {
    child: Child,
    pub url: String,
}

impl Process {
    /// Starts `command` and waits for the line `{announcement}{url}`.
    pub fn start(command: &mut Command, announcement: &str) -> Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line?;
            println!("server: {line}");
            if let Some(found) = line.strip_prefix(announcement) {
                url = Some(found.to_owned());
                break;
            }
        }
        let url = url.with_context(|| format!("{command:?} did not announce its URL"))?;
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, url })
    }

    /// Starts `command`, which serves on `address` but announces nothing on stdout (a peer
    /// such as `wasmtime serve`), and waits until `address` takes connections.
    pub fn start_listening(command: &mut Command, address: SocketAddr) -> Result<Self> {
        let mut child = command
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let started = Instant::now();
        while TcpStream::connect(address).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("{command:?} exited with {status} before listening");
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "{command:?} did not listen on {address} within a minute"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            url: format!("http://{address}"),
        })
    }

    /// The process id, e.g. to read its resident memory.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// `telehook serve` on a free loopback port.
pub struct Server {
    process: Process,
    pub url: String,
    pub admin_token: String,
    pub agent: ureq::Agent,
}

impl Server {
    /// Starts the server with `flags` added to its command line.
    pub fn start(telehook: &Path, data_dir: &Path, flags: &[&str]) -> Result<Self> {
        let process = Process::start(
            Command::new(telehook)
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(data_dir)
                .args(flags),
            "telehook listening on ",
        )?;
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Self {
            url: process.url.clone(),
            process,
            admin_token,
            agent,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// An admin API call; fails on any non-2xx answer, printing it.
    pub fn admin(&self, method: &str, path: &str, body: &Value) -> Result<Value> {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.admin_bytes(method, path, body)
    }

    /// An admin API call with a raw body, e.g. a component upload.
    pub fn admin_bytes(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Value> {
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes())?)
            .uri(format!("{}/admin{path}", self.url))
            .header("authorization", format!("Bearer {}", self.admin_token))
            .body(body)?;
        let mut response = self.agent.run(request)?;
        let text = response.body_mut().read_to_string()?;
        if !response.status().is_success() {
            bail!("{method} {path}: {} {text}", response.status());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Creates an integration running `module` with `settings`; returns its webhook URL.
    pub fn register(
        &self,
        tenant: &str,
        id: &str,
        module: &Path,
        settings: &Value,
    ) -> Result<String> {
        let base = format!("/tenants/{tenant}/integrations");
        let integration = self.admin("POST", &base, &json!({ "id": id }))?;
        let base = format!("{base}/{id}");
        let version =
            self.admin_bytes("POST", &format!("{base}/versions"), std::fs::read(module)?)?;
        println!("uploaded {}: {version}", module.display());
        self.admin("PATCH", &format!("{base}/settings"), settings)?;
        self.admin("POST", &format!("{base}/versions/1/activate"), &Value::Null)?;
        integration["webhook_url"]
            .as_str()
            .map(str::to_owned)
            .context("the integration has a webhook URL")
    }

    /// How many events the integration `id` of tenant `tenant` has logged.
    pub fn count_events(&self, tenant: &str, id: &str) -> Result<usize> {
        let mut after = 0;
        let mut count = 0;
        loop {
            let page = self.admin(
                "GET",
                &format!("/tenants/{tenant}/integrations/{id}/events?after={after}&limit=1000"),
                &Value::Null,
            )?;
            let events = page.as_array().context("a list of events")?;
            let Some(last) = events.last() else {
                return Ok(count);
            };
            count += events.len();
            after = last["seq"].as_i64().context("events have a seq")?;
        }
    }

    /// Sends a sample request file to the webhook URL, keeping its query, and prints the answer.
    pub fn send_sample(&self, webhook: &str, sample: &Path) -> Result<()> {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(sample)?)?;
        let query = sample["url"]
            .as_str()
            .and_then(|url| url.split_once('?'))
            .map(|(_, query)| format!("?{query}"))
            .unwrap_or_default();
        let method = sample["method"].as_str().context("a method")?;
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes())?)
            .uri(format!("{webhook}{query}"));
        if let Some(headers) = sample["headers"].as_object() {
            for (name, value) in headers {
                request = request.header(name, value.as_str().unwrap_or_default());
            }
        }
        let body = sample["body"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        let mut response = self.agent.run(request.body(body)?)?;
        let text = response.body_mut().read_to_string()?;
        println!("{method} {webhook}{query}");
        println!("-> HTTP {} {text}", response.status());
        Ok(())
    }
}

/// The resident memory of process `pid`, from `/proc/PID/status`.
pub fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/PID/status")?;
    Ok(kib * 1024)
}
