//! The event log's writer: one `IMMEDIATE` transaction a batch, in which the shared flow of
//! [`crate::storage::append`] checks, correlates and stores each event through the rows of
//! [`SqliteJournal`]. SQLite has one writer at a time, so positions are assigned in commit
//! order by `AUTOINCREMENT` itself.

use std::future::Future;

use futures_util::FutureExt;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::calls as rows;
use super::delivery;
use super::{EventWriter, IntegrationKey, NewEvent, Result, StorageError, to_json};
use crate::calls::{Call, CallParties};
use crate::delivery::StoredUpdate;
use crate::storage::append::{self, Journal};
use crate::storage::{Appended, NewDelivery, Sweep, Swept};

/// The writer's own connection, so that its commits never wait on the service's.
pub(super) struct SqliteEventWriter(Connection);

impl SqliteEventWriter {
    /// The writer on `conn`, with the query planner's stability guarantee on: without it,
    /// SQLite prepares a statement again whenever a value bound to it could change its plan,
    /// which for the writer's lookups by call id is every event. The write-ahead log is
    /// checkpointed every 4,000 pages rather than 1,000: each event also writes its call, and a
    /// checkpoint's cost is per checkpoint as much as per page.
    pub(super) fn new(conn: Connection) -> Result<Self> {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
        Ok(Self(conn))
    }
}

/// Runs the shared flow over SQLite's journal, whose every step is done in place: the future
/// is ready when first polled.
fn in_place<T>(flow: impl Future<Output = Result<T>>) -> Result<T> {
    flow.now_or_never().unwrap_or_else(|| {
        Err(StorageError::Invalid(
            "a step of the SQLite writer waited, which none does".into(),
        ))
    })
}

impl EventWriter for SqliteEventWriter {
    fn append(&mut self, batch: &[&NewEvent]) -> Result<(Vec<Appended>, Vec<StoredUpdate>)> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored = in_place(append::append(&mut SqliteJournal(&tx), batch))?;
        tx.commit()?;
        Ok(stored)
    }

    fn sweep(&mut self, sweep: &Sweep) -> Result<Swept> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let swept = in_place(append::sweep(&mut SqliteJournal(&tx), sweep))?;
        tx.commit()?;
        Ok(swept)
    }
}

/// The rows of one SQLite write transaction.
struct SqliteJournal<'a>(&'a Transaction<'a>);

impl Journal for SqliteJournal<'_> {
    async fn repeat_of(
        &mut self,
        key: &IntegrationKey,
        delivery: &NewDelivery,
    ) -> Result<Option<String>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT answer FROM deliveries
                 WHERE tenant_id = ?1 AND integration_id = ?2 AND delivery_id = ?3
                   AND received_at >= ?4",
            )?
            .query_row(
                params![
                    key.tenant_id,
                    key.integration_id,
                    delivery.id,
                    delivery.repeats_after
                ],
                |row| row.get(0),
            )
            .optional()?)
    }

    async fn remember(&mut self, event: &NewEvent, delivery: &NewDelivery, seq: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO deliveries
                     (tenant_id, integration_id, delivery_id, seq, received_at, answer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, integration_id, delivery_id) DO UPDATE SET
                     seq = excluded.seq, received_at = excluded.received_at,
                     answer = excluded.answer",
            )?
            .execute(params![
                event.tenant_id,
                event.integration_id,
                delivery.id,
                seq,
                event.received_at,
                delivery.answer,
            ])?;
        Ok(())
    }

    async fn by_provider_id(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Option<Call>> {
        rows::by_provider_id(self.0, key, provider_call_id)
    }

    async fn by_parties(
        &mut self,
        key: &IntegrationKey,
        parties: &CallParties,
        since: &str,
    ) -> Result<Vec<Call>> {
        rows::by_parties(self.0, key, parties, since)
    }

    async fn save(&mut self, call: &Call) -> Result<()> {
        rows::save(self.0, call)
    }

    async fn hold(&mut self, event: &NewEvent, provider_call_id: &str) -> Result<()> {
        rows::hold(self.0, event, provider_call_id)
    }

    async fn take_held(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Vec<NewEvent>> {
        rows::take_held(self.0, key, provider_call_id)
    }

    async fn take_unresolved(&mut self, before: &str) -> Result<Vec<NewEvent>> {
        rows::take_unresolved(self.0, before)
    }

    async fn quiet_calls(&mut self, before: &str) -> Result<Vec<Call>> {
        rows::quiet(self.0, before)
    }

    async fn insert(
        &mut self,
        event: &NewEvent,
        call_id: Option<&str>,
        unresolved: bool,
    ) -> Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO events (tenant_id, integration_id, version, received_at, event,
                                     call_record, users, call_id, unresolved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                event.tenant_id,
                event.integration_id,
                event.version,
                event.received_at,
                event.event.as_ref().map(to_json).transpose()?,
                event.call_record.as_ref().map(to_json).transpose()?,
                to_json(&event.users)?,
                call_id,
                unresolved,
            ])?;
        Ok(self.0.last_insert_rowid())
    }

    async fn insert_update(
        &mut self,
        call: &Call,
        seq: Option<i64>,
        at: &str,
        users: &str,
        json: &str,
    ) -> Result<i64> {
        delivery::insert_update(self.0, call, seq, at, users, json)
    }
}
