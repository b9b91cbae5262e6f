//! Delivery in SQLite: the call updates the writer appends, read back by position; the named
//! consumers' positions; the endpoints (their secrets sealed, as settings are) and their
//! failures.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Result, StorageError, collect, first};
use crate::calls::Call;
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::{CallUpdate, UpdateFilter};
use crate::secrets::SettingsKey;
use crate::storage::columns::{self, ENDPOINT_COLUMNS, FAILURE_COLUMNS, UPDATE_COLUMNS, assemble};
use crate::storage::sealing;

/// Appends the update of `call` (its users and itself as JSON) after the event at `seq`
/// (none: the host ended it), at `at`; returns its position.
pub(super) fn insert_update(
    tx: &Transaction<'_>,
    call: &Call,
    seq: Option<i64>,
    at: &str,
    users: &str,
    json: &str,
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO call_updates (tenant_id, integration_id, call_id, seq, at, users, call)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        call.tenant_id,
        call.integration_id,
        call.id,
        seq,
        at,
        users,
        json
    ])?;
    Ok(tx.last_insert_rowid())
}

/// The updates after `after` that pass `filter`, oldest first. A tenant's are read by its
/// index; a user's are the tenant's with the user among `users`.
pub(super) fn updates(
    conn: &Connection,
    filter: &UpdateFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<CallUpdate>> {
    const BY_USER: &str = "EXISTS (SELECT 1 FROM json_each(users) WHERE value = ?3)";
    let condition = match (&filter.tenant_id, &filter.user) {
        (Some(_), Some(_)) => format!("tenant_id = ?2 AND position > ?1 AND {BY_USER}"),
        (Some(_), None) => "tenant_id = ?2 AND position > ?1 AND ?3 IS NULL".to_owned(),
        (None, Some(_)) => format!("position > ?1 AND ?2 IS NULL AND {BY_USER}"),
        (None, None) => "position > ?1 AND ?2 IS NULL AND ?3 IS NULL".to_owned(),
    };
    let stored = collect(
        conn.prepare_cached(&format!(
            "SELECT {UPDATE_COLUMNS} FROM call_updates WHERE {condition}
             ORDER BY position LIMIT ?4"
        ))?
        .query(params![after, filter.tenant_id, filter.user, limit])?,
        columns::update,
    )?;
    assemble(stored)
}

/// The updates at `positions` that the log holds, oldest first.
pub(super) fn updates_at(conn: &Connection, positions: &[i64]) -> Result<Vec<CallUpdate>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPDATE_COLUMNS} FROM call_updates WHERE position = ?1"
    ))?;
    let mut stored = Vec::new();
    for position in positions {
        if let Some(update) = first(stmt.query([position])?, columns::update)? {
            stored.push(update);
        }
    }
    stored.sort_by_key(|update| update.position);
    assemble(stored)
}

/// The latest update's position, pruned or not; 0 before the first.
pub(super) fn last_update(conn: &Connection) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'call_updates'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Deletes the updates before `before` among the oldest `batch`, up to the lowest position an
/// endpoint has reached. Updates are made in position order, give or take the few
/// milliseconds between receiving concurrent webhooks, so the oldest by position are the
/// oldest by time.
pub(super) fn prune_updates(conn: &Connection, before: &str, batch: usize) -> Result<usize> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    Ok(conn.execute(
        "DELETE FROM call_updates WHERE position <= MIN(
             (SELECT COALESCE(MAX(position), 0) FROM
                 (SELECT position, at FROM call_updates ORDER BY position LIMIT ?2)
              WHERE at < ?1),
             (SELECT COALESCE(MIN(position), 9223372036854775807) FROM endpoints))",
        params![before, batch],
    )?)
}

/// A consumer's position; 0 before it acknowledged any.
pub(super) fn consumer_position(conn: &Connection, consumer: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT position FROM update_consumers WHERE name = ?1",
            [consumer],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Moves a consumer's position forward (never back).
pub(super) fn set_consumer_position(
    conn: &Connection,
    consumer: &str,
    position: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO update_consumers (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
        params![consumer, position],
    )?;
    Ok(())
}

pub(super) fn create_endpoint(
    conn: &Connection,
    key: &SettingsKey,
    endpoint: &Endpoint,
) -> Result<()> {
    let sealed = sealing::seal_secret(key, endpoint)?;
    conn.execute(
        &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            endpoint.id,
            endpoint.tenant_id,
            endpoint.url,
            sealed,
            endpoint.disabled,
            endpoint.position,
            endpoint.created_at
        ],
    )
    .map_err(|err| match err {
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StorageError::NotFound(format!(
                "tenant `{}`",
                endpoint.tenant_id.as_deref().unwrap_or_default()
            ))
        }
        other => other.into(),
    })?;
    Ok(())
}

pub(super) fn endpoints(
    conn: &Connection,
    key: &SettingsKey,
    id: Option<&str>,
) -> Result<Vec<Endpoint>> {
    collect(
        conn.prepare_cached(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints
             WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at, id"
        ))?
        .query([id])?,
        |row| sealing::endpoint(key, row),
    )
}

/// Runs a change of one endpoint; a missing endpoint is an error.
pub(super) fn change_endpoint(
    conn: &Connection,
    id: &str,
    sql: &str,
    value: Option<&dyn rusqlite::ToSql>,
) -> Result<()> {
    let changed = match value {
        Some(value) => conn.execute(sql, params![id, value])?,
        None => conn.execute(sql, params![id])?,
    };
    if changed == 0 {
        return Err(StorageError::NotFound(format!("endpoint `{id}`")));
    }
    Ok(())
}

pub(super) fn failures(conn: &Connection, endpoint_id: &str) -> Result<Vec<Failure>> {
    collect(
        conn.prepare_cached(&format!(
            "SELECT {FAILURE_COLUMNS} FROM forward_failures WHERE endpoint_id = ?1 ORDER BY position"
        ))?
        .query([endpoint_id])?,
        columns::failure,
    )
}

pub(super) fn record_failure(conn: &Connection, failure: &Failure) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO forward_failures ({FAILURE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        failure.endpoint_id,
        failure.position,
        failure.call_id,
        failure.attempts,
        failure.next_attempt_at,
        failure.last_status,
        failure.last_error,
        failure.failed_at
    ])?;
    Ok(())
}

pub(super) fn clear_failure(conn: &Connection, endpoint_id: &str, position: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM forward_failures WHERE endpoint_id = ?1 AND position = ?2")?
        .execute(params![endpoint_id, position])?;
    Ok(())
}

pub(super) fn replay_failures(
    conn: &Connection,
    endpoint_id: &str,
    position: Option<i64>,
    now: &str,
) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE forward_failures SET attempts = 0, next_attempt_at = ?3
         WHERE endpoint_id = ?1 AND next_attempt_at IS NULL AND (?2 IS NULL OR position = ?2)",
        params![endpoint_id, position, now],
    )?)
}
