//! A schema of its own for each test of the PostgreSQL backend, so that tests run in parallel
//! against one database and leave nothing behind.
//!
//! The database is `TELEHOOK_TEST_POSTGRES` (by default the local server's `test` database);
//! a test that cannot reach it fails and says so: CI runs these against a real server, and a
//! suite that skipped them would pass without testing the backend.

use tokio_postgres::NoTls;

/// The database the tests use when `TELEHOOK_TEST_POSTGRES` does not name one.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The tests' database.
fn base_url() -> String {
    std::env::var("TELEHOOK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A fresh schema, dropped with everything in it when this is dropped.
pub(crate) struct TestSchema {
    base: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// Creates a schema of a random name; panics, saying what to do, when the database does
    /// not answer.
    pub(crate) async fn create() -> Self {
        let base = base_url();
        let name = format!("telehook_test_{}", uuid::Uuid::now_v7().simple());
        let client = connect(&base).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|err| panic!("creating the test schema {name} failed: {err}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Self { base, name, url }
    }

    /// The URL of a database whose only schema is this one.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// A connection to `url`, driven on the current runtime.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "the PostgreSQL tests need a database and {url} does not answer ({err}): start \
                 PostgreSQL there, or set TELEHOOK_TEST_POSTGRES to the URL of a database they \
                 may create schemas in"
            )
        });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

impl Drop for TestSchema {
    /// Drops the schema on a thread of its own: the test's runtime may be gone already, or be
    /// the very one that is dropping this.
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&base, NoTls).await?;
                tokio::spawn(connection);
                // A session of the test still in a transaction (its runtime, blocked here,
                // cannot end it) would hold the drop forever.
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test schema {} was left behind", self.name);
        }
    }
}
