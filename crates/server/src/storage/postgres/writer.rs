//! The event log's writer on PostgreSQL: one transaction a batch, which locks the sequencer
//! first, runs the shared flow of [`crate::storage::append`] over [`PgJournal`] and writes the
//! last positions it handed out back before it commits (see [`super`] for why this keeps
//! positions in commit order across nodes).
//!
//! The writer is called on the event log's own thread, which must block until the commit is
//! done. It owns its connection and a current-thread Tokio runtime that drives it, only
//! while a call is in progress; the `postgres` crate (tokio-postgres behind a blocking API)
//! does the same inside, but would keep the writer from sharing the pool's async SQL and its
//! statement cache. Because a runtime cannot be entered on a thread that is already driving
//! one, [`PostgresEventWriter::connect`] connects on a thread of its own (it is called while
//! the service starts, perhaps on an async worker), and the writer must not be called on an
//! async worker (the event log's thread, and a blocking task, are fine).

use std::time::Duration;

use deadpool_postgres::{ClientWrapper, GenericClient, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};

use super::{Change, Result, StorageError, calls as rows, row};
use crate::calls::{Call, CallParties};
use crate::delivery::StoredUpdate;
use crate::storage::append::{self, Journal};
use crate::storage::columns::{Columns, to_json};
use crate::storage::{Appended, EventWriter, IntegrationKey, NewDelivery, NewEvent, Sweep, Swept};

/// How long the writer waits for a lock (the sequencer, while another node commits) before
/// its batch fails: far longer than any commit takes, so only a stuck session trips it.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The event log's writer: a connection of its own, driven by a runtime of its own.
pub(super) struct PostgresEventWriter {
    /// Always there but while the writer is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    fsync: bool,
    client: ClientWrapper,
    /// Whether the last transaction found the connection gone: the next one connects again.
    lost: bool,
}

impl PostgresEventWriter {
    /// Connects the writer. Without `fsync`, its commits return before they are flushed
    /// (`synchronous_commit = off`): a crash of the database may lose the last moments, never
    /// leave them half-written.
    pub(super) fn connect(config: &tokio_postgres::Config, fsync: bool) -> Result<Self> {
        // Its sessions are told apart from the pool's in `pg_stat_activity`.
        let mut config = config.clone();
        let name = config.get_application_name().unwrap_or("telehook");
        config.application_name(format!("{name} event log"));
        let config = &config;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| StorageError::Backend(Box::new(err)))?;
        let client = std::thread::scope(|scope| {
            scope.spawn(|| runtime.block_on(open(config, fsync))).join()
        })
        .map_err(|_| {
            StorageError::Backend("connecting the event log's writer panicked".into())
        })??;
        Ok(Self {
            runtime: Some(runtime),
            config: config.clone(),
            fsync,
            client,
            lost: false,
        })
    }

    /// Runs `work` in one transaction that holds the sequencer, reconnecting first if the
    /// connection was lost since the last one.
    fn transact<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgJournal<'_>) -> Result<T>,
    ) -> Result<T> {
        let Self {
            runtime,
            config,
            fsync,
            client,
            lost,
        } = self;
        let runtime = runtime
            .as_ref()
            .ok_or_else(|| StorageError::Invalid("the writer is being dropped".into()))?;
        let done = runtime.block_on(async {
            if *lost || client.is_closed() {
                tracing::warn!("the event log's PostgreSQL connection was lost: reconnecting");
                *client = open(config, *fsync).await?;
                *lost = false;
            }
            let tx = client.transaction().await?;
            let done = async {
                let mut journal = PgJournal::begin(&tx).await?;
                let done = work(&mut journal).await?;
                journal.finish().await?;
                Ok(done)
            }
            .await;
            match done {
                Ok(done) => {
                    tx.commit().await?;
                    Ok(done)
                }
                Err(err) => {
                    // Now, not when the connection next runs: until then the sequencer stays
                    // locked, and every node's writer waits.
                    let _ = tx.rollback().await;
                    Err(err)
                }
            }
        });
        if let Err(err) = &done {
            // The connection's task runs only while the writer is called, so the client may
            // not know yet that the server hung up: the error says so.
            *lost = client.is_closed() || connection_lost(err);
        }
        done
    }
}

/// Whether an error means that the connection is gone: it was closed, or the server ended
/// the session (a fatal error: terminated, shut down).
fn connection_lost(err: &StorageError) -> bool {
    let StorageError::Backend(source) = err else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .is_some_and(|err| {
            err.is_closed()
                || err
                    .as_db_error()
                    .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"))
        })
}

impl Drop for PostgresEventWriter {
    /// Lets the runtime go without waiting for it, so that the writer may be dropped anywhere,
    /// an async task included (where a runtime cannot block to shut down).
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection of the writer's, on the runtime that is running this.
async fn open(config: &tokio_postgres::Config, fsync: bool) -> Result<ClientWrapper> {
    let (client, connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!("the event log's PostgreSQL connection failed: {err}");
        }
    });
    let timeout = LOCK_TIMEOUT.as_millis();
    client
        .batch_execute(&format!("SET lock_timeout = {timeout}"))
        .await?;
    if !fsync {
        client.batch_execute("SET synchronous_commit = off").await?;
    }
    Ok(ClientWrapper::new(client, task))
}

impl EventWriter for PostgresEventWriter {
    fn append(&mut self, batch: &[&NewEvent]) -> Result<(Vec<Appended>, Vec<StoredUpdate>)> {
        self.transact(async |journal| append::append(journal, batch).await)
    }

    fn sweep(&mut self, sweep: &Sweep) -> Result<Swept> {
        self.transact(async |journal| append::sweep(journal, sweep).await)
    }
}

/// The rows of one write transaction, and the positions it hands out: the last ones taken,
/// read from the sequencer when the transaction locked it.
///
/// Its writes are held back and sent together, pipelined, before the next read and before
/// the commit: the positions are known before the rows are written, so nothing waits for a
/// write's answer, and the transaction, which every node's writer waits for, takes one round
/// trip for all the writes between two reads rather than one each. (A write that fails fails
/// the batch all the same, at the commit at the latest.)
struct PgJournal<'a> {
    tx: &'a Transaction<'a>,
    last_seq: i64,
    last_position: i64,
    numbered: bool,
    held_back: Vec<(Statement, Change)>,
}

impl<'a> PgJournal<'a> {
    /// Locks the sequencer for the rest of the transaction and reads where it stands.
    async fn begin(tx: &'a Transaction<'a>) -> Result<Self> {
        let (last_seq, last_position) = row(
            tx,
            "SELECT last_seq, last_position FROM sequencer WHERE id = 1 FOR UPDATE",
            &[],
            |row| Ok((row.int(0)?, row.int(1)?)),
        )
        .await?
        .ok_or_else(|| StorageError::Corrupt("sequencer without its row".into()))?;
        Ok(Self {
            tx,
            last_seq,
            last_position,
            numbered: false,
            held_back: Vec::new(),
        })
    }

    /// Holds `change` back until the next read or the commit.
    async fn later(&mut self, change: Change) -> Result<()> {
        let statement = self.tx.prepare_cached(&change.sql).await?;
        self.held_back.push((statement, change));
        Ok(())
    }

    /// Sends every change held back at once and waits for them all.
    async fn send(&mut self) -> Result<&'a Transaction<'a>> {
        let held_back = std::mem::take(&mut self.held_back);
        let tx = self.tx;
        futures_util::future::try_join_all(held_back.iter().map(|(statement, change)| {
            tx.execute_raw(
                statement,
                change
                    .params
                    .iter()
                    .map(|param| &**param as &(dyn ToSql + Sync)),
            )
        }))
        .await?;
        Ok(tx)
    }

    /// Writes the last positions handed out back to the sequencer, if any were, with
    /// everything held back.
    async fn finish(mut self) -> Result<()> {
        if self.numbered {
            self.later(Change {
                sql: "UPDATE sequencer SET last_seq = $1, last_position = $2 WHERE id = 1"
                    .to_owned(),
                params: vec![Box::new(self.last_seq), Box::new(self.last_position)],
            })
            .await?;
        }
        self.send().await?;
        Ok(())
    }
}

impl Journal for PgJournal<'_> {
    async fn repeat_of(
        &mut self,
        key: &IntegrationKey,
        delivery: &NewDelivery,
    ) -> Result<Option<String>> {
        row(
            self.send().await?,
            "SELECT answer FROM deliveries
             WHERE tenant_id = $1 AND integration_id = $2 AND delivery_id = $3
               AND received_at >= $4",
            &[
                &key.tenant_id,
                &key.integration_id,
                &delivery.id,
                &delivery.repeats_after,
            ],
            |row| row.text(0),
        )
        .await
    }

    async fn remember(&mut self, event: &NewEvent, delivery: &NewDelivery, seq: i64) -> Result<()> {
        self.later(Change {
            sql: "INSERT INTO deliveries
                      (tenant_id, integration_id, delivery_id, seq, received_at, answer)
                  VALUES ($1, $2, $3, $4, $5, $6)
                  ON CONFLICT (tenant_id, integration_id, delivery_id) DO UPDATE SET
                      seq = excluded.seq, received_at = excluded.received_at,
                      answer = excluded.answer"
                .to_owned(),
            params: vec![
                Box::new(event.tenant_id.clone()),
                Box::new(event.integration_id.clone()),
                Box::new(delivery.id.clone()),
                Box::new(seq),
                Box::new(event.received_at.clone()),
                Box::new(delivery.answer.clone()),
            ],
        })
        .await
    }

    async fn by_provider_id(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Option<Call>> {
        rows::by_provider_id(self.send().await?, key, provider_call_id).await
    }

    async fn by_parties(
        &mut self,
        key: &IntegrationKey,
        parties: &CallParties,
        since: &str,
    ) -> Result<Vec<Call>> {
        rows::by_parties(self.send().await?, key, parties, since).await
    }

    async fn save(&mut self, call: &Call) -> Result<()> {
        self.later(rows::save(call)?).await
    }

    async fn hold(&mut self, event: &NewEvent, provider_call_id: &str) -> Result<()> {
        self.later(rows::hold(event, provider_call_id)?).await
    }

    async fn take_held(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Vec<NewEvent>> {
        rows::take_held(self.send().await?, key, provider_call_id).await
    }

    async fn take_unresolved(&mut self, before: &str) -> Result<Vec<NewEvent>> {
        rows::take_unresolved(self.send().await?, before).await
    }

    async fn quiet_calls(&mut self, before: &str) -> Result<Vec<Call>> {
        rows::quiet(self.send().await?, before).await
    }

    async fn insert(
        &mut self,
        event: &NewEvent,
        call_id: Option<&str>,
        unresolved: bool,
    ) -> Result<i64> {
        let seq = self.last_seq + 1;
        self.later(Change {
            sql: "INSERT INTO events (seq, tenant_id, integration_id, version, received_at,
                                      event, call_record, users, call_id, unresolved)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                .to_owned(),
            params: vec![
                Box::new(seq),
                Box::new(event.tenant_id.clone()),
                Box::new(event.integration_id.clone()),
                Box::new(i64::from(event.version)),
                Box::new(event.received_at.clone()),
                Box::new(event.event.as_ref().map(to_json).transpose()?),
                Box::new(event.call_record.as_ref().map(to_json).transpose()?),
                Box::new(to_json(&event.users)?),
                Box::new(call_id.map(str::to_owned)),
                Box::new(unresolved),
            ],
        })
        .await?;
        self.last_seq = seq;
        self.numbered = true;
        Ok(seq)
    }

    async fn insert_update(
        &mut self,
        call: &Call,
        seq: Option<i64>,
        at: &str,
        users: &str,
        json: &str,
    ) -> Result<i64> {
        let position = self.last_position + 1;
        self.later(Change {
            sql: "INSERT INTO call_updates
                      (position, tenant_id, integration_id, call_id, seq, at, users, call)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                .to_owned(),
            params: vec![
                Box::new(position),
                Box::new(call.tenant_id.clone()),
                Box::new(call.integration_id.clone()),
                Box::new(call.id.clone()),
                Box::new(seq),
                Box::new(at.to_owned()),
                Box::new(users.to_owned()),
                Box::new(json.to_owned()),
            ],
        })
        .await?;
        self.last_position = position;
        self.numbered = true;
        Ok(position)
    }
}
