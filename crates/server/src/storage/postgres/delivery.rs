//! Delivery in PostgreSQL: the call updates the writer appends, read back by position; the
//! named consumers' positions; the endpoints (their secrets sealed, as settings are) and their
//! failures.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Result, StorageError, batch, count, execute, row, rows};
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::{CallUpdate, UpdateFilter};
use crate::secrets::SettingsKey;
use crate::storage::columns::{
    self, Columns, ENDPOINT_COLUMNS, FAILURE_COLUMNS, UPDATE_COLUMNS, assemble,
};
use crate::storage::sealing;

/// The updates after `after` that pass `filter`, oldest first. A tenant's are read by its
/// index; a user's are the tenant's with the user among `users`. (Every parameter is bound
/// whatever the filter, so that each of the four statements has the same ones.)
pub(super) async fn updates(
    client: &impl GenericClient,
    filter: &UpdateFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<CallUpdate>> {
    const BY_USER: &str = "users::jsonb @> jsonb_build_array($3::text)";
    let condition = match (&filter.tenant_id, &filter.user) {
        (Some(_), Some(_)) => format!("tenant_id = $2 AND position > $1 AND {BY_USER}"),
        (Some(_), None) => "tenant_id = $2 AND position > $1 AND $3::text IS NULL".to_owned(),
        (None, Some(_)) => format!("position > $1 AND $2::text IS NULL AND {BY_USER}"),
        (None, None) => "position > $1 AND $2::text IS NULL AND $3::text IS NULL".to_owned(),
    };
    let stored = rows(
        client,
        &format!(
            "SELECT {UPDATE_COLUMNS} FROM call_updates WHERE {condition}
             ORDER BY position LIMIT $4"
        ),
        &[&after, &filter.tenant_id, &filter.user, &i64::from(limit)],
        columns::update,
    )
    .await?;
    assemble(stored)
}

/// The updates at `positions` that the log holds, oldest first (one for each time its
/// position is asked for).
pub(super) async fn updates_at(
    client: &impl GenericClient,
    positions: &[i64],
) -> Result<Vec<CallUpdate>> {
    let found: HashMap<i64, _> = rows(
        client,
        &format!("SELECT {UPDATE_COLUMNS} FROM call_updates WHERE position = ANY($1)"),
        &[&positions],
        columns::update,
    )
    .await?
    .into_iter()
    .map(|update| (update.position, update))
    .collect();
    let mut stored: Vec<_> = positions
        .iter()
        .filter_map(|position| found.get(position).cloned())
        .collect();
    stored.sort_by_key(|update| update.position);
    assemble(stored)
}

/// Deletes the updates before `before` among the oldest `limit`, up to the lowest position an
/// endpoint has reached (see the SQLite backend's, whose reasoning this keeps).
pub(super) async fn prune_updates(
    client: &impl GenericClient,
    before: &str,
    limit: usize,
) -> Result<usize> {
    let pruned = execute(
        client,
        "DELETE FROM call_updates WHERE position <= LEAST(
             (SELECT COALESCE(MAX(position), 0) FROM
                 (SELECT position, at FROM call_updates ORDER BY position LIMIT $2) AS oldest
              WHERE at < $1),
             (SELECT COALESCE(MIN(position), 9223372036854775807) FROM endpoints))",
        &[&before, &batch(limit)],
    )
    .await?;
    Ok(count(pruned))
}

/// A consumer's position; 0 before it acknowledged any.
pub(super) async fn consumer_position(client: &impl GenericClient, consumer: &str) -> Result<i64> {
    Ok(row(
        client,
        "SELECT position FROM update_consumers WHERE name = $1",
        &[&consumer],
        |row| row.int(0),
    )
    .await?
    .unwrap_or(0))
}

/// Moves a consumer's position forward (never back).
pub(super) async fn set_consumer_position(
    client: &impl GenericClient,
    consumer: &str,
    position: i64,
) -> Result<()> {
    execute(
        client,
        "INSERT INTO update_consumers (name, position) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE
         SET position = GREATEST(update_consumers.position, excluded.position)",
        &[&consumer, &position],
    )
    .await?;
    Ok(())
}

/// Stores a new endpoint. A row it conflicts with, or a tenant that is not there, is
/// answered as SQLite's backend answers it: the tenant is not found.
pub(super) async fn create_endpoint(
    client: &impl GenericClient,
    key: &SettingsKey,
    endpoint: &Endpoint,
) -> Result<()> {
    let sealed = sealing::seal_secret(key, endpoint)?;
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .await?;
    let inserted = client
        .execute(
            &statement,
            &[
                &endpoint.id,
                &endpoint.tenant_id,
                &endpoint.url,
                &sealed,
                &endpoint.disabled,
                &endpoint.position,
                &endpoint.created_at,
            ],
        )
        .await;
    match inserted {
        Err(err) if err.code().is_some_and(is_constraint_violation) => {
            Err(StorageError::NotFound(format!(
                "tenant `{}`",
                endpoint.tenant_id.as_deref().unwrap_or_default()
            )))
        }
        other => Ok(other.map(drop)?),
    }
}

/// Whether an error's state is of class 23, integrity constraint violation.
fn is_constraint_violation(state: &SqlState) -> bool {
    state.code().starts_with("23")
}

/// Every endpoint (or the one of `id`), oldest first.
pub(super) async fn endpoints(
    client: &impl GenericClient,
    key: &SettingsKey,
    id: Option<&str>,
) -> Result<Vec<Endpoint>> {
    rows(
        client,
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints
             WHERE $1::text IS NULL OR id = $1 ORDER BY created_at, id"
        ),
        &[&id],
        |row| sealing::endpoint(key, row),
    )
    .await
}

/// Runs a change of one endpoint (`$1` its id, `$2` the value, if any); a missing endpoint is
/// an error.
pub(super) async fn change_endpoint(
    client: &impl GenericClient,
    id: &str,
    sql: &str,
    value: Option<&(dyn ToSql + Sync)>,
) -> Result<()> {
    let changed = match value {
        Some(value) => execute(client, sql, &[&id, value]).await?,
        None => execute(client, sql, &[&id]).await?,
    };
    if changed == 0 {
        return Err(StorageError::NotFound(format!("endpoint `{id}`")));
    }
    Ok(())
}

/// An endpoint's failures (retrying and dead), oldest first.
pub(super) async fn failures(
    client: &impl GenericClient,
    endpoint_id: &str,
) -> Result<Vec<Failure>> {
    rows(
        client,
        &format!(
            "SELECT {FAILURE_COLUMNS} FROM forward_failures WHERE endpoint_id = $1
             ORDER BY position"
        ),
        &[&endpoint_id],
        columns::failure,
    )
    .await
}

/// Stores a failure, replacing the one stored of the same update.
pub(super) async fn record_failure(client: &impl GenericClient, failure: &Failure) -> Result<()> {
    execute(
        client,
        &format!(
            "INSERT INTO forward_failures ({FAILURE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (endpoint_id, position) DO UPDATE SET
                 call_id = excluded.call_id, attempts = excluded.attempts,
                 next_attempt_at = excluded.next_attempt_at,
                 last_status = excluded.last_status, last_error = excluded.last_error,
                 failed_at = excluded.failed_at"
        ),
        &[
            &failure.endpoint_id,
            &failure.position,
            &failure.call_id,
            &i64::from(failure.attempts),
            &failure.next_attempt_at,
            &failure.last_status.map(i64::from),
            &failure.last_error,
            &failure.failed_at,
        ],
    )
    .await?;
    Ok(())
}

/// Forgets the failure of an update that was delivered at last.
pub(super) async fn clear_failure(
    client: &impl GenericClient,
    endpoint_id: &str,
    position: i64,
) -> Result<()> {
    execute(
        client,
        "DELETE FROM forward_failures WHERE endpoint_id = $1 AND position = $2",
        &[&endpoint_id, &position],
    )
    .await?;
    Ok(())
}

/// Makes the endpoint's dead letters (all, or the one at `position`) due at `now`.
pub(super) async fn replay_failures(
    client: &impl GenericClient,
    endpoint_id: &str,
    position: Option<i64>,
    now: &str,
) -> Result<usize> {
    let replayed = execute(
        client,
        "UPDATE forward_failures SET attempts = 0, next_attempt_at = $3
         WHERE endpoint_id = $1 AND next_attempt_at IS NULL
           AND ($2::bigint IS NULL OR position = $2)",
        &[&endpoint_id, &position, &now],
    )
    .await?;
    Ok(count(replayed))
}
