//! Delivery in SQLite: the call updates the writer appends, read back by position; the named
//! consumers' positions; the endpoints (their secrets sealed, as settings are) and their
//! failures.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{Result, StorageError, parse, to_json};
use crate::calls::Call;
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::signature::Secret;
use crate::delivery::{CallUpdate, StoredUpdate, UpdateFilter};
use crate::secrets::SettingsKey;

const UPDATE_COLUMNS: &str = "position, tenant_id, integration_id, call_id, seq, at, users, call";

/// Appends the update of `call` after the event at `seq` (none: the host ended it), at `at`.
pub(super) fn append_update(
    tx: &Transaction<'_>,
    call: &Call,
    seq: Option<i64>,
    at: &str,
) -> Result<StoredUpdate> {
    let users = to_json(&call.users)?;
    let json = to_json(call)?;
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
    Ok(StoredUpdate {
        position: tx.last_insert_rowid(),
        tenant_id: call.tenant_id.clone(),
        integration_id: call.integration_id.clone(),
        call_id: call.id.clone(),
        seq,
        at: at.to_owned(),
        users: call.users.clone(),
        call: json,
    })
}

fn update_row(row: &Row<'_>) -> rusqlite::Result<StoredUpdate> {
    Ok(StoredUpdate {
        position: row.get(0)?,
        tenant_id: row.get(1)?,
        integration_id: row.get(2)?,
        call_id: row.get(3)?,
        seq: row.get(4)?,
        at: row.get(5)?,
        users: parse(row, 6, true)?,
        call: row.get(7)?,
    })
}

fn assemble(stored: Vec<StoredUpdate>) -> Result<Vec<CallUpdate>> {
    stored
        .into_iter()
        .map(|stored| {
            CallUpdate::try_from(stored)
                .map_err(|err| StorageError::Corrupt(format!("call update: {err}")))
        })
        .collect()
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
    let stored = conn
        .prepare_cached(&format!(
            "SELECT {UPDATE_COLUMNS} FROM call_updates WHERE {condition}
             ORDER BY position LIMIT ?4"
        ))?
        .query_map(
            params![after, filter.tenant_id, filter.user, limit],
            update_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    assemble(stored)
}

/// The updates at `positions` that the log holds, oldest first.
pub(super) fn updates_at(conn: &Connection, positions: &[i64]) -> Result<Vec<CallUpdate>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPDATE_COLUMNS} FROM call_updates WHERE position = ?1"
    ))?;
    let mut stored = Vec::new();
    for position in positions {
        if let Some(update) = stmt.query_row([position], update_row).optional()? {
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

/// What an endpoint's sealed secret is bound to.
fn secret_context(id: &str) -> String {
    format!("endpoint/{id}")
}

pub(super) fn create_endpoint(
    conn: &Connection,
    key: &SettingsKey,
    endpoint: &Endpoint,
) -> Result<()> {
    let sealed = key.seal(&secret_context(&endpoint.id), &endpoint.secret.reveal())?;
    conn.execute(
        "INSERT INTO endpoints (id, tenant_id, url, secret, disabled, position, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, url, secret, disabled, position, created_at FROM endpoints
         WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, String>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(id, tenant_id, url, sealed, disabled, position, created_at)| {
                let context = secret_context(&id);
                let secret = key
                    .open(&context, &sealed)
                    .ok_or_else(|| StorageError::WrongKey(context.clone()))
                    .and_then(|shown| {
                        Secret::parse(&shown).map_err(|err| StorageError::Corrupt(err.to_string()))
                    })?;
                Ok(Endpoint {
                    id,
                    tenant_id,
                    url,
                    secret,
                    disabled,
                    position,
                    created_at,
                })
            },
        )
        .collect()
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

fn failure_row(row: &Row<'_>) -> rusqlite::Result<Failure> {
    Ok(Failure {
        endpoint_id: row.get(0)?,
        position: row.get(1)?,
        call_id: row.get(2)?,
        attempts: row.get(3)?,
        next_attempt_at: row.get(4)?,
        last_status: row.get(5)?,
        last_error: row.get(6)?,
        failed_at: row.get(7)?,
    })
}

pub(super) fn failures(conn: &Connection, endpoint_id: &str) -> Result<Vec<Failure>> {
    Ok(conn
        .prepare_cached(
            "SELECT endpoint_id, position, call_id, attempts, next_attempt_at, last_status,
                    last_error, failed_at
             FROM forward_failures WHERE endpoint_id = ?1 ORDER BY position",
        )?
        .query_map([endpoint_id], failure_row)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn record_failure(conn: &Connection, failure: &Failure) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO forward_failures
             (endpoint_id, position, call_id, attempts, next_attempt_at, last_status,
              last_error, failed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::forwarder::Endpoint;
    use crate::storage::Storage;
    use crate::storage::fixtures::start;
    use crate::storage::sqlite::SqliteStorage;

    #[tokio::test]
    async fn only_updates_past_the_retention_that_every_endpoint_took_are_pruned() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(
            &dir.path().join("telehook.db"),
            SettingsKey::from_bytes(&[0; 32]),
        )
        .expect("opens");
        let mut writer = storage.event_writer(false).expect("a writer");
        let events: Vec<_> = (1..=4).map(|call| start(&format!("c-{call}"))).collect();
        let (_, updates) = writer
            .append(&events.iter().collect::<Vec<_>>())
            .expect("stored");
        assert_eq!(updates.len(), 4);
        storage
            .create_tenant("acme", "Acme", "hash")
            .await
            .expect("a tenant");
        storage
            .create_endpoint(&Endpoint {
                id: "ep_1".into(),
                tenant_id: Some("acme".into()),
                url: "http://127.0.0.1:9/".into(),
                secret: Secret::generate().expect("random"),
                disabled: None,
                position: 2,
                created_at: crate::storage::now(),
            })
            .await
            .expect("an endpoint");
        let everything = UpdateFilter::default();

        // Nothing is older than the retention yet.
        assert_eq!(
            storage
                .prune_updates("2000-01-01T00:00:00.000Z")
                .await
                .expect("prunes"),
            0
        );
        // Past it, only what the endpoint has taken goes.
        let later = "2999-01-01T00:00:00.000Z";
        assert_eq!(storage.prune_updates(later).await.expect("prunes"), 2);
        let left = storage
            .call_updates(&everything, 0, 10)
            .await
            .expect("reads");
        assert_eq!(
            left.iter()
                .map(|update| update.position)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        storage
            .set_endpoint_position("ep_1", 4)
            .await
            .expect("moves");
        assert_eq!(storage.prune_updates(later).await.expect("prunes"), 2);
        let left = storage
            .call_updates(&everything, 0, 10)
            .await
            .expect("reads");
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            storage.last_update().await.expect("reads"),
            4,
            "pruned or not"
        );
    }
}
