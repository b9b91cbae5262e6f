//! Calls in SQLite: finding the call an event joins, saving what it changed, holding the
//! events that name a call not known yet, and reading calls back for the admin API. The rules
//! are [`crate::calls`]'s; this module only finds the candidates and keeps the rows.

use rusqlite::{Connection, Transaction, params};

use super::{IntegrationKey, NewEvent, Result, collect, first, to_json};
use crate::calls::{Call, CallParties};
use crate::storage::CallFilter;
use crate::storage::append::MAX_CANDIDATES;
use crate::storage::columns::{self, CALL_COLUMNS, HELD_COLUMNS, to_word};

/// The latest call of the integration with the provider's call id `provider_call_id`. The
/// index is named: without statistics the planner would walk the integration's calls in key
/// order to spare itself sorting the one or two rows the index finds.
pub(super) fn by_provider_id(
    tx: &Transaction<'_>,
    key: &IntegrationKey,
    provider_call_id: &str,
) -> Result<Option<Call>> {
    first(
        tx.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_by_provider_id
             WHERE tenant_id = ?1 AND integration_id = ?2 AND provider_call_id = ?3
             ORDER BY id DESC LIMIT 1"
        ))?
        .query(params![key.tenant_id, key.integration_id, provider_call_id])?,
        columns::call,
    )
}

/// The integration's calls of the same parties without a call id with an event since
/// `since`, most recently begun first: the candidates an event without a call id may join.
pub(super) fn by_parties(
    tx: &Transaction<'_>,
    key: &IntegrationKey,
    parties: &CallParties,
    since: &str,
) -> Result<Vec<Call>> {
    collect(
        tx.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_by_parties
             WHERE tenant_id = ?1 AND integration_id = ?2 AND direction = ?3
               AND src_phone = ?4 AND dst_phone = ?5 AND provider_call_id IS NULL
               AND (src_phone_ext IS NULL OR ?6 IS NULL OR src_phone_ext = ?6)
               AND (dst_phone_ext IS NULL OR ?7 IS NULL OR dst_phone_ext = ?7)
               AND last_event_at >= ?8
             ORDER BY id DESC LIMIT ?9"
        ))?
        .query(params![
            key.tenant_id,
            key.integration_id,
            to_word(&parties.direction)?,
            parties.src_phone,
            parties.dst_phone,
            parties.src_phone_ext,
            parties.dst_phone_ext,
            since,
            MAX_CANDIDATES
        ])?,
        columns::call,
    )
}

/// Writes a call, new or changed.
pub(super) fn save(tx: &Transaction<'_>, call: &Call) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO calls ({CALL_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21)
         ON CONFLICT (tenant_id, integration_id, id) DO UPDATE SET
             state = excluded.state, disposition = excluded.disposition,
             closed_by = excluded.closed_by, started_at = excluded.started_at,
             answered_at = excluded.answered_at, ended_at = excluded.ended_at,
             first_event_at = MIN(first_event_at, excluded.first_event_at),
             last_event_at = excluded.last_event_at, users = excluded.users,
             record = excluded.record, first_seq = excluded.first_seq,
             last_seq = excluded.last_seq"
    ))?
    .execute(params![
        call.id,
        call.tenant_id,
        call.integration_id,
        call.provider_call_id,
        to_word(&call.state)?,
        to_word(&call.disposition)?,
        call.closed_by.as_ref().map(to_word).transpose()?,
        to_word(&call.parties.direction)?,
        call.parties.src_phone,
        call.parties.src_phone_ext,
        call.parties.dst_phone,
        call.parties.dst_phone_ext,
        call.started_at,
        call.answered_at,
        call.ended_at,
        call.first_event_at,
        call.last_event_at,
        to_json(&call.users)?,
        call.record.as_ref().map(to_json).transpose()?,
        call.first_seq,
        call.last_seq,
    ])?;
    Ok(())
}

/// Holds an event that names the provider's call `provider_call_id`, not known yet.
pub(super) fn hold(tx: &Transaction<'_>, event: &NewEvent, provider_call_id: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO held_events (tenant_id, integration_id, provider_call_id, version,
                                  received_at, event, call_record, users)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        event.tenant_id,
        event.integration_id,
        provider_call_id,
        event.version,
        event.received_at,
        event.event.as_ref().map(to_json).transpose()?,
        event.call_record.as_ref().map(to_json).transpose()?,
        to_json(&event.users)?,
    ])?;
    Ok(())
}

/// Takes out the events held for the provider's call `provider_call_id`, oldest first.
pub(super) fn take_held(
    tx: &Transaction<'_>,
    key: &IntegrationKey,
    provider_call_id: &str,
) -> Result<Vec<NewEvent>> {
    take(
        tx,
        "tenant_id = ?1 AND integration_id = ?2 AND provider_call_id = ?3",
        params![key.tenant_id, key.integration_id, provider_call_id],
    )
}

/// Takes out the events held since before `before`, for a call that never came, oldest first.
pub(super) fn take_unresolved(tx: &Transaction<'_>, before: &str) -> Result<Vec<NewEvent>> {
    take(tx, "received_at < ?1", params![before])
}

/// Takes out the held events `filter` selects, in the order they came. (A read, then a
/// delete: a statement with `RETURNING` makes SQLite prepare every other statement of the
/// connection again, on every event.)
fn take(
    tx: &Transaction<'_>,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<NewEvent>> {
    let held = collect(
        tx.prepare_cached(&format!(
            "SELECT {HELD_COLUMNS} FROM held_events WHERE {filter} ORDER BY seq"
        ))?
        .query(args)?,
        columns::held,
    )?;
    if !held.is_empty() {
        tx.prepare_cached(&format!("DELETE FROM held_events WHERE {filter}"))?
            .execute(args)?;
    }
    Ok(held)
}

/// The open calls whose last event is older than `before`.
pub(super) fn quiet(tx: &Transaction<'_>, before: &str) -> Result<Vec<Call>> {
    collect(
        tx.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE state != 'ended' AND last_event_at < ?1"
        ))?
        .query([before])?,
        columns::call,
    )
}

/// An integration's calls that pass `filter`, most recently begun first.
pub(super) fn list(
    conn: &Connection,
    key: &IntegrationKey,
    filter: &CallFilter,
) -> Result<Vec<Call>> {
    let state = filter.state.as_ref().map(to_word).transpose()?;
    collect(
        conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = ?1 AND integration_id = ?2
               AND (?3 IS NULL OR state = ?3)
               AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(calls.users) WHERE value = ?4))
               AND (?5 IS NULL OR first_event_at >= ?5)
               AND (?6 IS NULL OR first_event_at < ?6)
               AND (?7 IS NULL OR id < ?7)
             ORDER BY id DESC LIMIT ?8"
        ))?
        .query(params![
            key.tenant_id,
            key.integration_id,
            state,
            filter.user,
            filter.since,
            filter.until,
            filter.before,
            filter.limit
        ])?,
        columns::call,
    )
}

/// One call of an integration.
pub(super) fn one(conn: &Connection, key: &IntegrationKey, id: &str) -> Result<Option<Call>> {
    first(
        conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = ?1 AND integration_id = ?2 AND id = ?3"
        ))?
        .query(params![key.tenant_id, key.integration_id, id])?,
        columns::call,
    )
}
