//! What the end-to-end tests of `telehook serve` share: the real binary started on a data
//! directory and driven over HTTP, and the scripted guest's integration; the live stream as a
//! client reads it (`stream`), endpoints that take forwarded updates (`endpoints`), and
//! several nodes on one PostgreSQL schema and one NATS server (`cluster`).
// Each test target uses its own part of this.
#![allow(dead_code)]

pub mod cluster;
pub mod endpoints;
pub mod stream;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use telehook_test_artifacts::SCRIPTED;
use ureq::http::{Method, Request};

/// A running `telehook serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub admin_token: String,
    pub agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

impl Server {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_telehook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .stdout(Stdio::piped())
            // `TELEHOOK_TEST_SERVER_LOGS=1` shows the servers' logs, to find out why a test
            // failed; they are quiet otherwise.
            .stderr(if std::env::var_os("TELEHOOK_TEST_SERVER_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("telehook serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("telehook listening on ")
                    .map(str::to_owned)
            })
            .expect("the server announces its URL");
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
            .expect("the admin token is written on first start");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            child,
            url,
            admin_token,
            agent,
        }
    }

    /// Sends a request; `path` may be absolute (`http://...`) or relative to the server.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.url)
        };
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("a method"))
            .uri(url);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = self
            .agent
            .run(request.body(body).expect("a valid request"))
            .expect("the server answers");
        Reply {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string().expect("a text body"),
        }
    }

    pub fn admin(&self, method: &str, path: &str, body: Value) -> Reply {
        self.as_token(&self.admin_token.clone(), method, path, body)
    }

    pub fn as_token(&self, token: &str, method: &str, path: &str, body: Value) -> Reply {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.send(method, &format!("/admin{path}"), Some(token), &[], body)
    }

    /// Creates a tenant, returning its token.
    pub fn tenant(&self, id: &str) -> String {
        let reply = self.admin("POST", "/tenants", json!({ "id": id }));
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["token"].as_str().expect("a token").to_owned()
    }

    /// Uploads `bytes` as a new version of an integration.
    pub fn upload(&self, tenant: &str, integration: &str, bytes: Vec<u8>) -> Reply {
        let path = format!("/admin/tenants/{tenant}/integrations/{integration}/versions");
        self.send("POST", &path, Some(&self.admin_token), &[], bytes)
    }

    /// An integration's versions, as the admin API lists them.
    pub fn versions(&self, tenant: &str, integration: &str) -> Vec<Value> {
        let path = format!("/tenants/{tenant}/integrations/{integration}/versions");
        let listed = self.admin("GET", &path, Value::Null);
        assert_eq!(listed.status, 200, "{}", listed.body);
        listed.json().as_array().cloned().unwrap_or_default()
    }

    /// Creates an integration running `wasm`, with `settings`, and returns the path of its
    /// webhook URL, which stays valid when the server restarts on another port.
    pub fn integration(&self, tenant: &str, id: &str, wasm: &str, settings: Value) -> String {
        let base = format!("/tenants/{tenant}/integrations");
        let created = self.admin("POST", &base, json!({ "id": id }));
        assert_eq!(created.status, 201, "{}", created.body);
        let uploaded = self.upload(tenant, id, std::fs::read(wasm).expect("built"));
        assert_eq!(uploaded.status, 201, "{}", uploaded.body);
        let base = format!("{base}/{id}");
        let set = self.admin("PATCH", &format!("{base}/settings"), settings);
        assert_eq!(set.status, 200, "{}", set.body);
        let activated = self.admin("POST", &format!("{base}/versions/1/activate"), Value::Null);
        assert_eq!(activated.status, 200, "{}", activated.body);
        let url = created.json()["webhook_url"]
            .as_str()
            .expect("a webhook URL")
            .to_owned();
        url.strip_prefix(&self.url)
            .unwrap_or_else(|| panic!("{url} is not served by {}", self.url))
            .to_owned()
    }

    pub fn events(&self, tenant: &str, integration: &str) -> Vec<Value> {
        let reply = self.admin(
            "GET",
            &format!("/tenants/{tenant}/integrations/{integration}/events?limit=1000"),
            Value::Null,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json().as_array().expect("a list").clone()
    }

    /// The calls of an integration that `query` selects, and the next page's cursor (`null`
    /// on the last page).
    pub fn calls_page(&self, tenant: &str, integration: &str, query: &str) -> (Vec<Value>, Value) {
        let reply = self.admin(
            "GET",
            &format!("/tenants/{tenant}/integrations/{integration}/calls?{query}"),
            Value::Null,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = reply.json();
        (
            page["calls"].as_array().expect("a list").clone(),
            page["next"].clone(),
        )
    }

    /// Every event of a feed (`/events`, the platform's, or an integration's
    /// `/tenants/T/integrations/I/events`), page by page, oldest first.
    pub fn every_event(&self, feed: &str) -> Vec<Value> {
        let mut events: Vec<Value> = Vec::new();
        loop {
            let after = events
                .last()
                .map_or(0, |event| event["seq"].as_i64().expect("a seq"));
            let page = self.admin(
                "GET",
                &format!("{feed}?after={after}&limit=1000"),
                Value::Null,
            );
            assert_eq!(page.status, 200, "{}", page.body);
            let page = page.json().as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return events;
            }
            events.extend(page);
        }
    }

    /// Stops the server the hard way: no drain, no clean close. Durability must not need one.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary data directory")
}

/// An integration of `tenant` running the scripted guest, its extension 101 bound to `anna`
/// and 102 to `boris`; returns its webhook path.
pub fn scripted_integration(server: &Server, tenant: &str, id: &str) -> String {
    let webhook = server.integration(tenant, id, SCRIPTED, json!({}));
    let bound = server.admin(
        "PUT",
        &format!("/tenants/{tenant}/integrations/{id}/bindings"),
        json!([
            { "extension": "101", "user_id": "anna" },
            { "extension": "102", "user_id": "boris" },
        ]),
    );
    assert_eq!(bound.status, 200, "{}", bound.body);
    webhook
}

/// A server started with `flags`, with tenant `acme` and its integration `pbx` (see
/// [`scripted_integration`]): the data directory, the server and the webhook path.
pub fn scripted_server(flags: &[&str]) -> (tempfile::TempDir, Server, String) {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), flags);
    server.tenant("acme");
    let webhook = scripted_integration(&server, "acme", "pbx");
    (dir, server, webhook)
}

/// Sends the scripted guest the event `form` spells out; it must be accepted.
pub fn happen(server: &Server, webhook: &str, form: &str) {
    let reply = server.send(
        "POST",
        webhook,
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes().to_vec(),
    );
    assert_eq!(reply.status, 200, "{form}: {}", reply.body);
}
