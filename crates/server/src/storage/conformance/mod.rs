//! The suite of storage tests that every backend passes alike: each test is written once,
//! as an `async fn` taking a [`Backend`], and [`conformance!`] runs it on SQLite and on
//! PostgreSQL (`...::sqlite::NAME` and `...::postgres::NAME`). A PostgreSQL test gets a schema
//! of its own (see [`crate::storage::postgres::testing`]) and fails when the database does
//! not answer.

mod calls;
mod delivery;
mod log;
mod registry;

use std::sync::Arc;

use crate::delivery::StoredUpdate;
use crate::secrets::SettingsKey;
use crate::storage::postgres::PostgresStorage;
use crate::storage::postgres::testing::TestSchema;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Appended, EventWriter, NewEvent, Result, Storage, Sweep, Swept};

/// Which backend a test runs on.
pub(crate) enum Kind {
    /// A database file in a temporary directory.
    Sqlite,
    /// A schema of its own in the tests' PostgreSQL database.
    Postgres,
}

/// A fresh, empty database of one backend, and the storage on it.
pub(crate) struct Backend {
    /// The storage, as the service holds it.
    pub(crate) storage: Arc<dyn Storage>,
    place: Place,
}

/// Where the database is, kept for as long as the test runs.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestSchema),
}

/// The settings key the suite's databases are opened with.
pub(crate) fn key() -> SettingsKey {
    SettingsKey::from_bytes(&[7; 32])
}

impl Backend {
    /// A fresh database of `kind`.
    pub(crate) async fn new(kind: Kind) -> Self {
        let place = match kind {
            Kind::Sqlite => Place::Sqlite(tempfile::tempdir().expect("a temporary directory")),
            Kind::Postgres => Place::Postgres(TestSchema::create().await),
        };
        let storage = open(&place, key()).await.expect("the database opens");
        Self { storage, place }
    }

    /// The same database opened again with `key`: what a restart, or another node, does.
    pub(crate) async fn reopen(&self, key: SettingsKey) -> Result<Arc<dyn Storage>> {
        open(&self.place, key).await
    }

    /// A writer of the event log on a connection of its own, as the event log's thread has.
    pub(crate) fn writer(&self) -> Writer {
        Writer::of(self.storage.event_writer(false).expect("a writer"))
    }
}

async fn open(place: &Place, key: SettingsKey) -> Result<Arc<dyn Storage>> {
    Ok(match place {
        Place::Sqlite(dir) => Arc::new(SqliteStorage::open(&dir.path().join("telehook.db"), key)?),
        Place::Postgres(schema) => Arc::new(PostgresStorage::connect(schema.url(), key).await?),
    })
}

/// An event writer driven from a test: each call runs on a blocking thread, as the event
/// log's thread runs it (a backend's writer may block on a runtime of its own).
pub(crate) struct Writer(Option<Box<dyn EventWriter>>);

impl Writer {
    /// Drives `writer`.
    pub(crate) fn of(writer: Box<dyn EventWriter>) -> Self {
        Self(Some(writer))
    }

    /// Appends `events` as one batch.
    pub(crate) async fn append(
        &mut self,
        events: &[NewEvent],
    ) -> Result<(Vec<Appended>, Vec<StoredUpdate>)> {
        let events = events.to_vec();
        self.run(move |writer| writer.append(&events.iter().collect::<Vec<_>>()))
            .await
    }

    /// Appends one event; what became of it.
    pub(crate) async fn one(&mut self, event: NewEvent) -> Appended {
        let (mut appended, _) = self.append(&[event]).await.expect("stored");
        appended.pop().expect("one result")
    }

    /// Sweeps the calls.
    pub(crate) async fn sweep(&mut self, sweep: Sweep) -> Result<Swept> {
        self.run(move |writer| writer.sweep(&sweep)).await
    }

    /// Sweeps at `now` the calls quiet since before `before` and the events held since then.
    pub(crate) async fn sweep_at(&mut self, now: &str, before: &str) -> Swept {
        self.sweep(Sweep {
            now: now.into(),
            close_before: before.into(),
            unresolved_before: before.into(),
        })
        .await
        .expect("swept")
    }

    async fn run<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut dyn EventWriter) -> T + Send + 'static,
    ) -> T {
        let mut writer = self
            .0
            .take()
            .expect("the writer is back from its last call");
        let (writer, done) = tokio::task::spawn_blocking(move || {
            let done = work(&mut *writer);
            (writer, done)
        })
        .await
        .expect("the writer's call ends");
        self.0 = Some(writer);
        done
    }
}

/// The seqs of the events the log holds, oldest first.
pub(crate) async fn seqs(storage: &dyn Storage) -> Vec<i64> {
    storage
        .all_events(0, 1_000)
        .await
        .expect("the log reads")
        .iter()
        .map(|event| event.seq)
        .collect()
}

/// Runs each named `async fn(&Backend)` of the module on every backend.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = $crate::storage::conformance::Backend::new(
                        $crate::storage::conformance::Kind::Sqlite,
                    )
                    .await;
                    super::$test(&backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = $crate::storage::conformance::Backend::new(
                        $crate::storage::conformance::Kind::Postgres,
                    )
                    .await;
                    super::$test(&backend).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;
