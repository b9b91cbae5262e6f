//! Several `telehook serve` nodes forming one cluster: a fresh PostgreSQL schema of their own,
//! one NATS server, one settings key, and a data directory (a local cache) each.
//!
//! The database is `TELEHOOK_TEST_POSTGRES` (by default the local server's `test` database,
//! trust authentication), the NATS server `TELEHOOK_TEST_NATS` (by default
//! `nats://127.0.0.1:4222`). A test that cannot reach either fails, saying what to start: a
//! cluster test that skipped would pass without testing the cluster.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use super::{Server, data_dir};

/// The database the tests use when `TELEHOOK_TEST_POSTGRES` does not name one.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The NATS server the tests use when `TELEHOOK_TEST_NATS` does not name one.
const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// A fresh schema in the tests' database, dropped with everything in it when this is dropped.
pub struct TestSchema {
    base: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// Creates `telehook_e2e_<random>` with `psql`; panics, saying what to start, when the
    /// database does not answer.
    pub fn create() -> Self {
        let base =
            std::env::var("TELEHOOK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        let random = RandomState::new().build_hasher().finish();
        let name = format!("telehook_e2e_{random:016x}");
        if let Err(err) = psql(&base, &format!("CREATE SCHEMA {name}")) {
            panic!(
                "the cluster tests need PostgreSQL, and {base} did not create a schema ({err}): \
                 start PostgreSQL there (trust authentication, a database `test`), or set \
                 TELEHOOK_TEST_POSTGRES to the URL of a database they may create schemas in"
            );
        }
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Self { base, name, url }
    }

    /// The URL of a database whose only schema is this one.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // A node killed in a transaction is noticed by PostgreSQL at once, but do not wait on
        // a lock forever if one is still held.
        let sql = format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        );
        if let Err(err) = psql(&self.base, &sql) {
            eprintln!("the test schema {} was left behind: {err}", self.name);
        }
    }
}

/// Runs `sql` with `psql`, stopping at the first error.
fn psql(url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|err| format!("psql could not be run: {err}; install the PostgreSQL client"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The NATS server's URL, once it answers; panics, saying what to start, when it does not.
pub fn nats_url() -> String {
    let url = std::env::var("TELEHOOK_TEST_NATS").unwrap_or_else(|_| DEFAULT_NATS.into());
    let address = url.strip_prefix("nats://").unwrap_or(&url);
    let answers = address.to_socket_addrs().ok().is_some_and(|mut addresses| {
        addresses
            .any(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok())
    });
    assert!(
        answers,
        "the cluster tests need a NATS server with JetStream, and {url} does not answer: start \
         one there (`nats-server -js`), or set TELEHOOK_TEST_NATS to its URL"
    );
    url
}

/// Nodes of one cluster. Dropping it kills the nodes, then drops their schema.
pub struct Cluster {
    // Fields drop in this order: the nodes go before the schema they hold connections to.
    nodes: Vec<Option<Server>>,
    data_dirs: Vec<tempfile::TempDir>,
    key_dir: tempfile::TempDir,
    schema: TestSchema,
}

impl Cluster {
    /// Starts `count` nodes one after the other, each with `flags` beside the cluster's own,
    /// and checks that they share one admin token.
    pub fn start(count: usize, flags: &[&str]) -> Self {
        let help = Command::new(env!("CARGO_BIN_EXE_telehook"))
            .args(["serve", "--help"])
            .output()
            .expect("telehook serve --help runs");
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("--database"),
            "this telehook has no `serve --database`: multi-node mode is not built in yet"
        );
        let nats = nats_url();
        let schema = TestSchema::create();
        let key_dir = data_dir();
        let key_file = key_dir.path().join("settings-key");
        let key_file = key_file
            .to_str()
            .expect("a UTF-8 temporary path")
            .to_owned();
        let mut cluster = Self {
            nodes: Vec::new(),
            data_dirs: Vec::new(),
            key_dir,
            schema,
        };
        for _ in 0..count {
            // Node 1 makes the settings key and the admin token; the others start once it has
            // announced itself (`start_with` waits for that), and take both.
            let dir = data_dir();
            let mut all_flags = vec![
                "--database",
                cluster.schema.url(),
                "--nats",
                &nats,
                "--settings-key-file",
                &key_file,
            ];
            all_flags.extend_from_slice(flags);
            let node = Server::start_with(dir.path(), &all_flags);
            cluster.data_dirs.push(dir);
            cluster.nodes.push(Some(node));
        }
        let first = &cluster.node(0).admin_token;
        for index in 1..count {
            assert_eq!(
                &cluster.node(index).admin_token,
                first,
                "node {index} has an admin token of its own"
            );
        }
        cluster
    }

    /// The database URL the nodes share.
    pub fn database_url(&self) -> &str {
        self.schema.url()
    }

    /// A node that has not been killed.
    pub fn node(&self, index: usize) -> &Server {
        self.nodes[index]
            .as_ref()
            .unwrap_or_else(|| panic!("node {index} was killed"))
    }

    /// SIGKILLs a node: no drain, no clean close, its lease left to expire.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index]
            .take()
            .unwrap_or_else(|| panic!("node {index} was killed already"))
            .crash();
    }
}
