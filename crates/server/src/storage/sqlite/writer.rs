//! The event log's writer: one transaction a batch, in which every event is checked against
//! the deliveries already stored, joins its call (see [`crate::calls`]) and is stored with the
//! call's change, or is held until its call is known.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use telehook::outcome::{Disposition, Parties};

use super::calls as rows;
use super::delivery;
use super::{EventWriter, IntegrationKey, NewEvent, Result, StorageError, to_json};
use crate::calls::{Call, CallParties, Complete, Kind, new_id};
use crate::delivery::StoredUpdate;
use crate::storage::Appended;
use crate::storage::{Sweep, Swept};

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

impl EventWriter for SqliteEventWriter {
    fn append(&mut self, batch: &[&NewEvent]) -> Result<(Vec<Appended>, Vec<StoredUpdate>)> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut updates = Vec::with_capacity(batch.len());
        let appended = batch
            .iter()
            .map(|event| store(&tx, event, &mut updates))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok((appended, updates))
    }

    fn sweep(&mut self, sweep: &Sweep) -> Result<Swept> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut timed_out = Vec::new();
        let mut updates = Vec::new();
        for call in rows::time_out(&tx, &sweep.close_before, &sweep.now)? {
            updates.push(delivery::append_update(&tx, &call, None, &sweep.now)?);
            timed_out.push(IntegrationKey::new(&call.tenant_id, &call.integration_id));
        }
        let mut unresolved = Vec::new();
        for event in rows::take_unresolved(&tx, &sweep.unresolved_before)? {
            insert(&tx, &event, None, true)?;
            unresolved.push(key_of(&event));
        }
        tx.commit()?;
        Ok(Swept {
            timed_out,
            unresolved,
            updates,
        })
    }
}

fn key_of(event: &NewEvent) -> IntegrationKey {
    IntegrationKey::new(&event.tenant_id, &event.integration_id)
}

/// Who called whom in what a parser produced: the event's parties, else the record's.
fn parties(event: &NewEvent) -> Result<Parties<'_>> {
    event
        .event
        .as_ref()
        .map(|event| event.parties())
        .or_else(|| event.call_record.as_ref().map(|record| record.parties()))
        .ok_or_else(|| StorageError::Invalid("an append with neither event nor record".into()))
}

/// What an event is to its call, and the disposition it reports.
fn kind(event: &NewEvent) -> (Kind, Disposition) {
    match (&event.event, &event.call_record) {
        (Some(event), _) => (Kind::Event(event.event), event.disposition),
        (None, Some(record)) => (Kind::Record, record.disposition),
        (None, None) => (Kind::Record, Disposition::Unknown),
    }
}

/// Stores one event of a batch, unless it repeats a delivery already stored; the updates of
/// its call go to `updates`.
fn store(
    tx: &Transaction<'_>,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<Appended> {
    if let Some(answer) = repeat_of(tx, event)? {
        return Ok(Appended::Repeat(answer));
    }
    let appended = correlate(tx, event, updates)?;
    if let Some(delivery) = &event.delivery {
        let seq = match appended {
            Appended::Stored(seq) => Some(seq),
            _ => None,
        };
        tx.prepare_cached(
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
            // A held event has no place in the log yet.
            seq.unwrap_or(0),
            event.received_at,
            delivery.answer,
        ])?;
    }
    Ok(appended)
}

/// Finds or begins the event's call and stores the event with the call's change; holds an
/// event that names only a call not known yet.
fn correlate(
    tx: &Transaction<'_>,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<Appended> {
    let key = key_of(event);
    let parties = parties(event)?;
    let (kind, _) = self::kind(event);
    let full = CallParties::of(&parties);
    let found = match (parties.call_id, &full) {
        (Some(provider_call_id), _) => rows::by_provider_id(tx, &key, provider_call_id)?,
        (None, Some(full)) => {
            rows::by_parties(tx, &key, full, kind, &event.received_at, &event.calls_since)?
        }
        (None, None) => {
            return Err(StorageError::Invalid(
                "an event without a call id must name its parties".into(),
            ));
        }
    };
    let begun = found.is_none();
    let mut call = match (found, full) {
        (Some(call), _) => call,
        (None, Some(full)) => Call::begin(
            new_id(),
            &key.tenant_id,
            &key.integration_id,
            parties.call_id,
            full,
            &event.received_at,
        ),
        (None, None) => {
            let provider_call_id = parties.call_id.unwrap_or_default();
            rows::hold(tx, event, provider_call_id)?;
            return Ok(Appended::Held);
        }
    };
    let seq = attach(tx, &mut call, event, updates)?;
    if let Some(provider_call_id) = parties.call_id.filter(|_| begun) {
        for held in rows::take_held(tx, &key, provider_call_id)? {
            attach(tx, &mut call, &held, updates)?;
        }
    }
    rows::save(tx, &call)?;
    Ok(Appended::Stored(seq))
}

/// Applies an event to its call and stores it in the log, completed from the call when it
/// names only the call, and notifying the call's users then; and the call's update after it.
fn attach(
    tx: &Transaction<'_>,
    call: &mut Call,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<i64> {
    let partial = parties(event)?.names_only_its_call();
    let incomplete = partial
        || event
            .call_record
            .as_ref()
            .is_some_and(|record| record.parties().names_only_its_call());
    // Only an event with gaps is copied to be completed: the others are stored as they came.
    let mut event = Cow::Borrowed(event);
    if incomplete {
        let completed = event.to_mut();
        if let Some(telephony) = &mut completed.event {
            telephony.complete(&call.parties);
        }
        if let Some(record) = &mut completed.call_record {
            record.complete(&call.parties);
        }
    }
    let (kind, disposition) = kind(&event);
    call.apply(
        kind,
        disposition,
        event.call_record.as_ref(),
        &event.users,
        &event.received_at,
    );
    if partial {
        event.to_mut().users.clone_from(&call.users);
    }
    let seq = insert(tx, &event, Some(&call.id), false)?;
    call.logged(seq);
    updates.push(delivery::append_update(
        tx,
        call,
        Some(seq),
        &event.received_at,
    )?);
    Ok(seq)
}

/// Appends an event to the log; returns its position.
fn insert(
    tx: &Transaction<'_>,
    event: &NewEvent,
    call_id: Option<&str>,
    unresolved: bool,
) -> Result<i64> {
    tx.prepare_cached(
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
    Ok(tx.last_insert_rowid())
}

/// The answer given to an earlier delivery of `event`'s delivery id, if one was stored within
/// the window (an earlier one in the same batch included).
fn repeat_of(tx: &Transaction<'_>, event: &NewEvent) -> Result<Option<String>> {
    let Some(delivery) = &event.delivery else {
        return Ok(None);
    };
    Ok(tx
        .prepare_cached(
            "SELECT answer FROM deliveries
             WHERE tenant_id = ?1 AND integration_id = ?2 AND delivery_id = ?3
               AND received_at >= ?4",
        )?
        .query_row(
            params![
                event.tenant_id,
                event.integration_id,
                delivery.id,
                delivery.repeats_after
            ],
            |row| row.get(0),
        )
        .optional()?)
}
