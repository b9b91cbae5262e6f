//! The SQLite backend of [`Storage`], the embedded default: one database file in the data
//! directory.
//!
//! Every change is one transaction, so a crash leaves each row either written or not. The
//! database runs in WAL mode with `synchronous = FULL`: a committed change survives power loss,
//! and readers never wait for the event log's writer, which has a connection of its own. Write
//! transactions begin `IMMEDIATE`: a deferred one that reads before it writes fails with
//! "database is locked" whenever the event log commits in between, which the busy timeout
//! cannot retry. Settings are sealed here, with the key the database was opened with (see
//! [`crate::secrets`]).
//!
//! SQLite answers from a local file in microseconds, so the trait's methods do their work in
//! place rather than on another thread, except those that may wait: the readiness probe
//! (while an admin's change holds the connection), pruning, and the writes delivery makes
//! while webhooks flow (positions, failures), which wait for the event log's writer to let
//! go of the database and must not hold an async worker meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, Rows, TransactionBehavior, params};
use telehook::Settings;

use super::columns::{self, EVENT_COLUMNS, INTEGRATION_COLUMNS, VERSION_COLUMNS, to_json};
use super::sealing::{self, setting_context};
use super::{
    Binding, CallFilter, Consumption, EventWriter, Integration, IntegrationKey, NewEvent,
    PRUNE_BATCH, Result, Storage, StorageError, StoredEvent, Tenant, Version, not_found, now,
};
use crate::calls::Call;
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::{CallUpdate, UpdateFilter};
use crate::limits::IntegrationLimits;
use crate::secrets::SettingsKey;

mod calls;
mod delivery;
mod schema;
mod writer;

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// The SQLite database of the service.
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    key: SettingsKey,
}

/// Opens a connection with the pragmas every connection to the database needs (write-ahead
/// log, full sync, foreign keys): the service and the event log's writer each have their own.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (creating if needed) the registry at `path`, bringing an older schema up to date
    /// in one transaction: a failed migration leaves the database as it was. Settings are
    /// sealed with `key`; a key that does not open the settings already stored is refused
    /// here, before anything is served or written with it.
    pub fn open(path: &Path, key: SettingsKey) -> Result<Self> {
        let mut conn = connect(path)?;
        schema::migrate(&mut conn, &key)?;
        let stored: Option<(IntegrationKey, String, Vec<u8>)> = conn
            .query_row(
                "SELECT tenant_id, integration_id, key, value FROM settings LIMIT 1",
                [],
                |row| {
                    let integration =
                        IntegrationKey::new(&row.get::<_, String>(0)?, &row.get::<_, String>(1)?);
                    Ok((integration, row.get(2)?, row.get(3)?))
                },
            )
            .optional()?;
        sealing::check_key(&key, stored)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            key,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut lock(&self.conn))
    }

    /// Runs `f` on a blocking thread, for what may wait: a long write, or a probe that must
    /// not hold an async worker while an admin's change has the connection.
    async fn off_the_workers<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
            .await
            .map_err(|err| StorageError::Backend(Box::new(err)))?
    }

    fn read_events(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredEvent>> {
        self.with(|conn| {
            collect(
                conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events {filter}"))?
                    .query(args)?,
                columns::event,
            )
        })
    }
}

#[async_trait::async_trait]
impl Storage for SqliteStorage {
    async fn ping(&self) -> Result<()> {
        self.off_the_workers(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn create_tenant(&self, id: &str, name: &str, token_sha256: &str) -> Result<Tenant> {
        let created_at = now();
        self.with(|conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO tenants (id, name, token_sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, name, token_sha256, created_at],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict(format!("tenant `{id}`")));
            }
            Ok(Tenant {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at,
            })
        })
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        self.with(|conn| {
            collect(
                conn.prepare(&format!(
                    "SELECT {} FROM tenants ORDER BY id",
                    columns::TENANT_COLUMNS
                ))?
                .query([])?,
                columns::tenant,
            )
        })
    }

    async fn tenant_by_token(&self, token_sha256: &str) -> Result<Option<String>> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id FROM tenants WHERE token_sha256 = ?1",
                    [token_sha256],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    async fn delete_tenant(&self, id: &str) -> Result<()> {
        self.with(
            |conn| match conn.execute("DELETE FROM tenants WHERE id = ?1", [id])? {
                0 => Err(StorageError::NotFound(format!("tenant `{id}`"))),
                _ => Ok(()),
            },
        )
    }

    async fn create_integration(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
        webhook_token: &str,
    ) -> Result<Integration> {
        let created_at = now();
        self.with(|conn| {
            let tenant_exists: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
                [tenant_id],
                |row| row.get(0),
            )?;
            if !tenant_exists {
                return Err(StorageError::NotFound(format!("tenant `{tenant_id}`")));
            }
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO integrations (id, tenant_id, name, webhook_token, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, tenant_id, name, webhook_token, created_at],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict(format!("integration `{id}`")));
            }
            Ok(Integration {
                id: id.to_owned(),
                tenant_id: tenant_id.to_owned(),
                name: name.to_owned(),
                webhook_token: webhook_token.to_owned(),
                active_version: None,
                created_at,
            })
        })
    }

    async fn integrations(&self, tenant_id: &str) -> Result<Vec<Integration>> {
        self.with(|conn| {
            collect(
                conn.prepare(&format!(
                    "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = ?1 ORDER BY id"
                ))?
                .query([tenant_id])?,
                columns::integration,
            )
        })
    }

    async fn integration(&self, key: &IntegrationKey) -> Result<Option<Integration>> {
        self.with(|conn| {
            first(
                conn.prepare(&format!(
                    "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = ?1 AND id = ?2"
                ))?
                .query([&key.tenant_id, &key.integration_id])?,
                columns::integration,
            )
        })
    }

    async fn integrations_named(&self, id: &str) -> Result<Vec<Integration>> {
        self.with(|conn| {
            collect(
                conn.prepare(&format!(
                    "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = ?1"
                ))?
                .query([id])?,
                columns::integration,
            )
        })
    }

    async fn delete_integration(&self, key: &IntegrationKey) -> Result<()> {
        self.with(|conn| {
            match conn.execute(
                "DELETE FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                [&key.tenant_id, &key.integration_id],
            )? {
                0 => Err(not_found(key)),
                _ => Ok(()),
            }
        })
    }

    async fn set_webhook_token(&self, key: &IntegrationKey, token: &str) -> Result<()> {
        self.with(|conn| {
            match conn.execute(
                "UPDATE integrations SET webhook_token = ?3 WHERE tenant_id = ?1 AND id = ?2",
                [&key.tenant_id, &key.integration_id, token],
            )? {
                0 => Err(not_found(key)),
                _ => Ok(()),
            }
        })
    }

    async fn add_version(&self, key: &IntegrationKey, sha256: &str, size: u64) -> Result<Version> {
        let uploaded_at = now();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let next: u32 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions
                 WHERE tenant_id = ?1 AND integration_id = ?2",
                [&key.tenant_id, &key.integration_id],
                |row| row.get(0),
            )?;
            tx.execute(
                "INSERT INTO versions (tenant_id, integration_id, version, sha256, size, uploaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key.tenant_id, key.integration_id, next, sha256, size, uploaded_at],
            )?;
            tx.commit()?;
            Ok(Version {
                version: next,
                sha256: sha256.to_owned(),
                size,
                uploaded_at,
            })
        })
    }

    async fn versions(&self, key: &IntegrationKey) -> Result<Vec<Version>> {
        self.with(|conn| {
            collect(
                conn.prepare(&format!(
                    "SELECT {VERSION_COLUMNS} FROM versions
                     WHERE tenant_id = ?1 AND integration_id = ?2 ORDER BY version"
                ))?
                .query([&key.tenant_id, &key.integration_id])?,
                columns::version,
            )
        })
    }

    async fn activate(&self, key: &IntegrationKey, version: u32) -> Result<()> {
        let at = now();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM versions
                 WHERE tenant_id = ?1 AND integration_id = ?2 AND version = ?3)",
                params![key.tenant_id, key.integration_id, version],
                |row| row.get(0),
            )?;
            if !exists {
                return Err(StorageError::NotFound(format!(
                    "version {version} of integration `{}`",
                    key.integration_id
                )));
            }
            tx.execute(
                "UPDATE integrations SET active_version = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![key.tenant_id, key.integration_id, version],
            )?;
            tx.execute(
                "INSERT INTO activations (tenant_id, integration_id, version, activated_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key.tenant_id, key.integration_id, version, at],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    async fn rollback_target(&self, key: &IntegrationKey) -> Result<Option<u32>> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT a.version FROM activations a
                     JOIN integrations i ON i.tenant_id = a.tenant_id AND i.id = a.integration_id
                     WHERE a.tenant_id = ?1 AND a.integration_id = ?2
                       AND a.version IS NOT i.active_version
                     ORDER BY a.seq DESC LIMIT 1",
                    [&key.tenant_id, &key.integration_id],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let (sha256, bytes) = (sha256.to_owned(), bytes.to_vec());
        self.off_the_workers(move |conn| {
            conn.execute(
                "INSERT INTO components (sha256, bytes) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![sha256, bytes],
            )?;
            Ok(())
        })
        .await
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let sha256 = sha256.to_owned();
        self.off_the_workers(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT bytes FROM components WHERE sha256 = ?1",
                    [sha256],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String> {
        let sealed = self.key.seal(&sealing::shared_context(name), candidate)?;
        let stored: Vec<u8> = self.with(|conn| {
            conn.execute(
                "INSERT INTO shared_secrets (name, sealed) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![name, sealed],
            )?;
            Ok(conn.query_row(
                "SELECT sealed FROM shared_secrets WHERE name = ?1",
                [name],
                |row| row.get(0),
            )?)
        })?;
        sealing::open_shared(&self.key, name, &stored)
    }

    async fn settings(&self, key: &IntegrationKey) -> Result<Settings> {
        let sealed: Vec<(String, Vec<u8>)> = self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key, value FROM settings WHERE tenant_id = ?1 AND integration_id = ?2",
            )?;
            let rows = stmt.query_map([&key.tenant_id, &key.integration_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        sealing::open_settings(&self.key, key, sealed)
    }

    async fn update_settings(
        &self,
        key: &IntegrationKey,
        changes: &[(String, Option<String>)],
    ) -> Result<()> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (name, value) in changes {
                match value {
                    Some(value) => tx.execute(
                        "INSERT INTO settings (tenant_id, integration_id, key, value)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant_id, integration_id, key)
                         DO UPDATE SET value = excluded.value",
                        params![
                            key.tenant_id,
                            key.integration_id,
                            name,
                            self.key.seal(&setting_context(key, name), value)?
                        ],
                    )?,
                    None => tx.execute(
                        "DELETE FROM settings
                         WHERE tenant_id = ?1 AND integration_id = ?2 AND key = ?3",
                        params![key.tenant_id, key.integration_id, name],
                    )?,
                };
            }
            tx.commit()?;
            Ok(())
        })
    }

    async fn bindings(&self, key: &IntegrationKey) -> Result<Vec<Binding>> {
        self.with(|conn| {
            collect(
                conn.prepare(
                    "SELECT extension, user_id FROM bindings
                     WHERE tenant_id = ?1 AND integration_id = ?2 ORDER BY extension",
                )?
                .query([&key.tenant_id, &key.integration_id])?,
                columns::binding,
            )
        })
    }

    async fn limits(&self, key: &IntegrationKey) -> Result<IntegrationLimits> {
        let stored: Option<String> = self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT limits FROM integration_limits
                     WHERE tenant_id = ?1 AND integration_id = ?2",
                    [&key.tenant_id, &key.integration_id],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        stored.map_or(Ok(IntegrationLimits::default()), |json| {
            serde_json::from_str(&json)
                .map_err(|err| StorageError::Corrupt(format!("limits of `{key}`: {err}")))
        })
    }

    async fn set_limits(&self, key: &IntegrationKey, limits: &IntegrationLimits) -> Result<()> {
        let json = to_json(limits)?;
        self.with(|conn| {
            let changed = conn.execute(
                "INSERT INTO integration_limits (tenant_id, integration_id, limits)
                 SELECT tenant_id, id, ?3 FROM integrations WHERE tenant_id = ?1 AND id = ?2
                 ON CONFLICT (tenant_id, integration_id) DO UPDATE SET limits = excluded.limits",
                params![key.tenant_id, key.integration_id, json],
            )?;
            if changed == 0 {
                return Err(not_found(key));
            }
            Ok(())
        })
    }

    async fn replace_bindings(&self, key: &IntegrationKey, bindings: &[Binding]) -> Result<()> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM bindings WHERE tenant_id = ?1 AND integration_id = ?2",
                [&key.tenant_id, &key.integration_id],
            )?;
            for binding in bindings {
                tx.execute(
                    "INSERT INTO bindings (tenant_id, integration_id, extension, user_id)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        key.tenant_id,
                        key.integration_id,
                        binding.extension,
                        binding.user_id
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    async fn events(
        &self,
        key: &IntegrationKey,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.read_events(
            "WHERE tenant_id = ?1 AND integration_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
            params![key.tenant_id, key.integration_id, after_seq, limit],
        )
    }

    async fn all_events(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.read_events(
            "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after_seq, limit],
        )
    }

    async fn consumed(&self) -> Result<i64> {
        self.with(|conn| {
            Ok(conn
                .query_row("SELECT seq FROM platform_cursor", [], |row| row.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    async fn confirm_consumed(&self, seq: i64, prune_before: &str) -> Result<Consumption> {
        // Pruning deletes up to PRUNE_BATCH rows.
        let prune_before = prune_before.to_owned();
        self.off_the_workers(move |conn| {
            let prune_before = prune_before.as_str();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                [],
                |row| row.get(0),
            )?;
            if !(0..=last).contains(&seq) {
                return Err(StorageError::Invalid(format!(
                    "seq {seq} is not in the event log: the last event stored is {last}"
                )));
            }
            tx.execute(
                "INSERT INTO platform_cursor (id, seq) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                [seq],
            )?;
            let confirmed: i64 =
                tx.query_row("SELECT seq FROM platform_cursor", [], |row| row.get(0))?;
            let pruned = tx.execute(
                "DELETE FROM events WHERE seq IN (
                     SELECT seq FROM events WHERE seq <= ?1 AND received_at < ?2
                     ORDER BY seq LIMIT ?3)",
                params![confirmed, prune_before, PRUNE_BATCH],
            )?;
            // Deliveries are remembered for telling retries apart, which is over long before
            // the events' retention is.
            tx.execute(
                "DELETE FROM deliveries WHERE received_at < ?1",
                [prune_before],
            )?;
            tx.commit()?;
            Ok(Consumption {
                seq: confirmed,
                pruned,
            })
        })
        .await
    }

    async fn calls(&self, key: &IntegrationKey, filter: &CallFilter) -> Result<Vec<Call>> {
        self.with(|conn| calls::list(conn, key, filter))
    }

    async fn call(
        &self,
        key: &IntegrationKey,
        id: &str,
    ) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        let Some(call) = self.with(|conn| calls::one(conn, key, id))? else {
            return Ok(None);
        };
        let events = self.read_events(
            "WHERE tenant_id = ?2 AND integration_id = ?3 AND seq BETWEEN ?4 AND ?5
               AND call_id = ?1
             ORDER BY seq",
            params![
                id,
                key.tenant_id,
                key.integration_id,
                call.first_seq,
                call.last_seq
            ],
        )?;
        Ok(Some((call, events)))
    }

    fn event_writer(&self, fsync: bool) -> Result<Box<dyn EventWriter>> {
        let conn = connect(&self.path)?;
        if !fsync {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(Box::new(writer::SqliteEventWriter::new(conn)?))
    }

    async fn call_updates(
        &self,
        filter: &UpdateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<CallUpdate>> {
        self.with(|conn| delivery::updates(conn, filter, after, limit))
    }

    async fn call_updates_at(&self, positions: &[i64]) -> Result<Vec<CallUpdate>> {
        self.with(|conn| delivery::updates_at(conn, positions))
    }

    async fn last_update(&self) -> Result<i64> {
        self.with(|conn| delivery::last_update(conn))
    }

    async fn prune_updates(&self, before: &str) -> Result<usize> {
        let before = before.to_owned();
        self.off_the_workers(move |conn| delivery::prune_updates(conn, &before, PRUNE_BATCH))
            .await
    }

    async fn consumer_position(&self, consumer: &str) -> Result<i64> {
        self.with(|conn| delivery::consumer_position(conn, consumer))
    }

    async fn set_consumer_position(&self, consumer: &str, position: i64) -> Result<()> {
        let consumer = consumer.to_owned();
        self.off_the_workers(move |conn| delivery::set_consumer_position(conn, &consumer, position))
            .await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        self.with(|conn| delivery::create_endpoint(conn, &self.key, endpoint))
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.with(|conn| delivery::endpoints(conn, &self.key, None))
    }

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        self.with(|conn| Ok(delivery::endpoints(conn, &self.key, Some(id))?.pop()))
    }

    async fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.with(|conn| {
            delivery::change_endpoint(conn, id, "DELETE FROM endpoints WHERE id = ?1", None)
        })
    }

    async fn disable_endpoint(&self, id: &str, why: &str) -> Result<()> {
        self.with(|conn| {
            delivery::change_endpoint(
                conn,
                id,
                "UPDATE endpoints SET disabled = ?2 WHERE id = ?1",
                Some(&why),
            )
        })
    }

    async fn enable_endpoint(&self, id: &str) -> Result<()> {
        self.with(|conn| {
            delivery::change_endpoint(
                conn,
                id,
                "UPDATE endpoints SET disabled = NULL WHERE id = ?1",
                None,
            )
        })
    }

    async fn set_endpoint_position(&self, id: &str, position: i64) -> Result<()> {
        let id = id.to_owned();
        self.off_the_workers(move |conn| {
            delivery::change_endpoint(
                conn,
                &id,
                "UPDATE endpoints SET position = ?2 WHERE id = ?1",
                Some(&position),
            )
        })
        .await
    }

    async fn failures(&self, endpoint_id: &str) -> Result<Vec<Failure>> {
        self.with(|conn| delivery::failures(conn, endpoint_id))
    }

    async fn record_failure(&self, failure: &Failure) -> Result<()> {
        let failure = failure.clone();
        self.off_the_workers(move |conn| delivery::record_failure(conn, &failure))
            .await
    }

    async fn clear_failure(&self, endpoint_id: &str, position: i64) -> Result<()> {
        let endpoint_id = endpoint_id.to_owned();
        self.off_the_workers(move |conn| delivery::clear_failure(conn, &endpoint_id, position))
            .await
    }

    async fn replay_failures(&self, endpoint_id: &str, position: Option<i64>) -> Result<usize> {
        let now = now();
        self.with(|conn| delivery::replay_failures(conn, endpoint_id, position, &now))
    }
}

// SQLite's rows, read as every backend reads its rows.
columns::columns_by!(Row<'_>, get);

/// Every row of a query, each made by `read`.
fn collect<'s, T>(mut rows: Rows<'s>, read: impl Fn(&Row<'s>) -> Result<T>) -> Result<Vec<T>> {
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(read(row)?);
    }
    Ok(all)
}

/// The first row of a query, if any, made by `read`.
fn first<'s, T>(mut rows: Rows<'s>, read: impl Fn(&Row<'s>) -> Result<T>) -> Result<Option<T>> {
    rows.next()?.map(read).transpose()
}

/// The service's connection. A panic while holding the lock cannot leave SQLite half-written
/// (transactions roll back on drop), so a poisoned lock is safe to keep using.
fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poison| poison.into_inner())
}
