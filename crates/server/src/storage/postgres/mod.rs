//! The PostgreSQL backend of [`Storage`]: one database that several nodes share.
//!
//! It behaves as the SQLite backend does, method for method and byte for byte: the same rows
//! (see [`schema`]), the same text out (times are kept as the RFC 3339 text the service
//! writes, compared as bytes; JSON is kept as the text it was written as), the same
//! correlation of events into calls (the flow is shared, see `storage::append`). Settings and
//! endpoint secrets are sealed with the key it was connected with.
//!
//! # Positions in commit order
//!
//! A reader follows the event log and the call updates by position (`after=N`), so a row must
//! never become visible after a row with a greater position has been: a reader that saw the
//! greater one would skip the smaller one for good. A sequence (`BIGSERIAL`) hands its numbers
//! out at insert, and concurrent transactions commit in any order, so it does not do.
//!
//! Here every transaction of the event log's writer (an append or a sweep) first locks the one
//! row of `sequencer` (`SELECT ... FOR UPDATE`), numbers what it stores from the positions it
//! read there, writes the last ones back and commits. The row lock is held until the commit
//! and released only after the commit is visible to every snapshot, so the next writer, on
//! this node or another, reads the numbers only after the previous batch is visible: positions
//! are handed out in commit order, without gaps (a transaction that rolls back hands back its
//! numbers with it). Numbering at the end of the transaction instead would not do: an event's
//! position is already needed within it (its call keeps its first and last positions, its
//! delivery and its update name it, and the update's JSON carries the call).
//!
//! The same lock makes the writers of all nodes take turns, which correlation needs as much:
//! two nodes looking for the call of the same call id at once would each begin one. In turn,
//! each writer's transaction sees everything committed before it, as SQLite's single writer
//! does, so correlation decides alike on either backend. The price is that the commits of all
//! nodes are serial; each is a group commit of many webhooks (see [`crate::event_log`]).
//! Readers never wait for the lock: they read committed rows.
//!
//! # Connections
//!
//! The service's reads and changes run on a pool (deadpool-postgres over tokio-postgres),
//! so that a slow query holds one connection and no thread. The event log's writer is a
//! connection of its own driven by a current-thread Tokio runtime it owns (see [`writer`]),
//! because it runs on the event log's thread, outside any runtime, and must block there
//! until its commit is done; with tokio-postgres there too, the writer and the pool share
//! their SQL (the functions here take either).

use std::time::Duration;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use telehook::Settings;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::columns::{
    self, Columns, EVENT_COLUMNS, INTEGRATION_COLUMNS, TENANT_COLUMNS, VERSION_COLUMNS, to_json,
};
use super::sealing::{self, setting_context};
use super::{
    Binding, CallFilter, Consumption, EventWriter, Integration, IntegrationKey, PRUNE_BATCH,
    Result, Storage, StorageError, StoredEvent, Tenant, Version, not_found, now,
};
use crate::calls::Call;
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::{CallUpdate, UpdateFilter};
use crate::limits::IntegrationLimits;
use crate::secrets::SettingsKey;

mod calls;
mod delivery;
mod schema;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod writer;

impl From<tokio_postgres::Error> for StorageError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Backend(Box::new(err))
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// How long connecting may take when the URL does not say (`connect_timeout`): a database
/// that does not answer is an error, not a wait of minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections the service's pool holds: its queries are short, and every node has
/// its own pool (and the writer its own connection) against the server's limit.
const POOL_SIZE: usize = 16;

/// How long a query waits for a connection of the pool before it fails.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The PostgreSQL database of the service.
pub struct PostgresStorage {
    pool: Pool,
    config: tokio_postgres::Config,
    key: SettingsKey,
}

impl PostgresStorage {
    /// Connects to the database at `url` (`postgres://user@host:port/database?...`, as libpq
    /// takes it), bringing its schema up to date (see [`schema`]). Settings are sealed with
    /// `key`; a key that does not open the settings already stored is refused here, before
    /// anything is served or written with it.
    pub async fn connect(url: &str, key: SettingsKey) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StorageError::Invalid(format!("the PostgreSQL URL: {err}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("telehook");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|err| StorageError::Invalid(format!("the PostgreSQL pool: {err}")))?;
        let storage = Self { pool, config, key };
        let mut client = storage.client().await?;
        schema::migrate(&mut client).await?;
        let stored = client
            .query_opt(
                "SELECT tenant_id, integration_id, key, value FROM settings LIMIT 1",
                &[],
            )
            .await?
            .map(|row| -> Result<_> {
                let integration = IntegrationKey::new(&row.text(0)?, &row.text(1)?);
                Ok((integration, row.text(2)?, row.bytes(3)?))
            })
            .transpose()?;
        sealing::check_key(&storage.key, stored)?;
        drop(client);
        Ok(storage)
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    async fn read_events(
        &self,
        filter: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredEvent>> {
        let client = self.client().await?;
        rows(
            &client,
            &format!("SELECT {EVENT_COLUMNS} FROM events {filter}"),
            params,
            columns::event,
        )
        .await
    }
}

#[async_trait::async_trait]
impl Storage for PostgresStorage {
    async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn create_tenant(&self, id: &str, name: &str, token_sha256: &str) -> Result<Tenant> {
        let created_at = now();
        let inserted = execute(
            &self.client().await?,
            "INSERT INTO tenants (id, name, token_sha256, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&id, &name, &token_sha256, &created_at],
        )
        .await?;
        if inserted == 0 {
            return Err(StorageError::Conflict(format!("tenant `{id}`")));
        }
        Ok(Tenant {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at,
        })
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        rows(
            &self.client().await?,
            &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"),
            &[],
            columns::tenant,
        )
        .await
    }

    async fn tenant_by_token(&self, token_sha256: &str) -> Result<Option<String>> {
        row(
            &self.client().await?,
            "SELECT id FROM tenants WHERE token_sha256 = $1",
            &[&token_sha256],
            |row| row.text(0),
        )
        .await
    }

    async fn delete_tenant(&self, id: &str) -> Result<()> {
        match execute(
            &self.client().await?,
            "DELETE FROM tenants WHERE id = $1",
            &[&id],
        )
        .await?
        {
            0 => Err(StorageError::NotFound(format!("tenant `{id}`"))),
            _ => Ok(()),
        }
    }

    async fn create_integration(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
        webhook_token: &str,
    ) -> Result<Integration> {
        let created_at = now();
        let client = self.client().await?;
        let tenant_exists = row(
            &client,
            "SELECT 1 FROM tenants WHERE id = $1",
            &[&tenant_id],
            |_| Ok(()),
        )
        .await?
        .is_some();
        if !tenant_exists {
            return Err(StorageError::NotFound(format!("tenant `{tenant_id}`")));
        }
        let inserted = execute(
            &client,
            "INSERT INTO integrations (id, tenant_id, name, webhook_token, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&id, &tenant_id, &name, &webhook_token, &created_at],
        )
        .await?;
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
    }

    async fn integration(&self, key: &IntegrationKey) -> Result<Option<Integration>> {
        row(
            &self.client().await?,
            &format!(
                "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND id = $2"
            ),
            &[&key.tenant_id, &key.integration_id],
            columns::integration,
        )
        .await
    }

    async fn integrations(&self, tenant_id: &str) -> Result<Vec<Integration>> {
        rows(
            &self.client().await?,
            &format!(
                "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 ORDER BY id"
            ),
            &[&tenant_id],
            columns::integration,
        )
        .await
    }

    async fn integrations_named(&self, id: &str) -> Result<Vec<Integration>> {
        rows(
            &self.client().await?,
            &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1"),
            &[&id],
            columns::integration,
        )
        .await
    }

    async fn delete_integration(&self, key: &IntegrationKey) -> Result<()> {
        match execute(
            &self.client().await?,
            "DELETE FROM integrations WHERE tenant_id = $1 AND id = $2",
            &[&key.tenant_id, &key.integration_id],
        )
        .await?
        {
            0 => Err(not_found(key)),
            _ => Ok(()),
        }
    }

    async fn set_webhook_token(&self, key: &IntegrationKey, token: &str) -> Result<()> {
        match execute(
            &self.client().await?,
            "UPDATE integrations SET webhook_token = $3 WHERE tenant_id = $1 AND id = $2",
            &[&key.tenant_id, &key.integration_id, &token],
        )
        .await?
        {
            0 => Err(not_found(key)),
            _ => Ok(()),
        }
    }

    async fn add_version(&self, key: &IntegrationKey, sha256: &str, size: u64) -> Result<Version> {
        let uploaded_at = now();
        let stored_size = i64::try_from(size)
            .map_err(|_| StorageError::Invalid(format!("a component of {size} bytes")))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The integration's row is locked so that two uploads take turns for the next number.
        lock_integration(&tx, key).await?;
        let next: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions
                 WHERE tenant_id = $1 AND integration_id = $2",
                &[&key.tenant_id, &key.integration_id],
            )
            .await?
            .int(0)?;
        tx.execute(
            "INSERT INTO versions (tenant_id, integration_id, version, sha256, size, uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &key.tenant_id,
                &key.integration_id,
                &next,
                &sha256,
                &stored_size,
                &uploaded_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Version {
            version: u32::try_from(next)
                .map_err(|_| StorageError::Corrupt(format!("version {next}")))?,
            sha256: sha256.to_owned(),
            size,
            uploaded_at,
        })
    }

    async fn versions(&self, key: &IntegrationKey) -> Result<Vec<Version>> {
        rows(
            &self.client().await?,
            &format!(
                "SELECT {VERSION_COLUMNS} FROM versions
                 WHERE tenant_id = $1 AND integration_id = $2 ORDER BY version"
            ),
            &[&key.tenant_id, &key.integration_id],
            columns::version,
        )
        .await
    }

    async fn activate(&self, key: &IntegrationKey, version: u32) -> Result<()> {
        let at = now();
        let version = i64::from(version);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Activations of one integration take turns, so that the latest is the active one.
        lock_integration(&tx, key).await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM versions
                 WHERE tenant_id = $1 AND integration_id = $2 AND version = $3",
                &[&key.tenant_id, &key.integration_id, &version],
            )
            .await?
            .is_some();
        if !exists {
            return Err(StorageError::NotFound(format!(
                "version {version} of integration `{}`",
                key.integration_id
            )));
        }
        tx.execute(
            "UPDATE integrations SET active_version = $3 WHERE tenant_id = $1 AND id = $2",
            &[&key.tenant_id, &key.integration_id, &version],
        )
        .await?;
        tx.execute(
            "INSERT INTO activations (tenant_id, integration_id, version, activated_at)
             VALUES ($1, $2, $3, $4)",
            &[&key.tenant_id, &key.integration_id, &version, &at],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rollback_target(&self, key: &IntegrationKey) -> Result<Option<u32>> {
        row(
            &self.client().await?,
            "SELECT a.version FROM activations a
             JOIN integrations i ON i.tenant_id = a.tenant_id AND i.id = a.integration_id
             WHERE a.tenant_id = $1 AND a.integration_id = $2
               AND a.version IS DISTINCT FROM i.active_version
             ORDER BY a.seq DESC LIMIT 1",
            &[&key.tenant_id, &key.integration_id],
            |row| row.number(0),
        )
        .await
    }

    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        execute(
            &self.client().await?,
            "INSERT INTO components (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha256, &bytes],
        )
        .await?;
        Ok(())
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        row(
            &self.client().await?,
            "SELECT bytes FROM components WHERE sha256 = $1",
            &[&sha256],
            |row| row.bytes(0),
        )
        .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String> {
        let client = self.client().await?;
        let sealed = self.key.seal(&sealing::shared_context(name), candidate)?;
        execute(
            &client,
            "INSERT INTO shared_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &sealed],
        )
        .await?;
        let stored = row(
            &client,
            "SELECT sealed FROM shared_secrets WHERE name = $1",
            &[&name],
            |row| row.bytes(0),
        )
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("shared secret `{name}`")))?;
        sealing::open_shared(&self.key, name, &stored)
    }

    async fn settings(&self, key: &IntegrationKey) -> Result<Settings> {
        let sealed = rows(
            &self.client().await?,
            "SELECT key, value FROM settings WHERE tenant_id = $1 AND integration_id = $2",
            &[&key.tenant_id, &key.integration_id],
            |row| Ok((row.text(0)?, row.bytes(1)?)),
        )
        .await?;
        sealing::open_settings(&self.key, key, sealed)
    }

    async fn update_settings(
        &self,
        key: &IntegrationKey,
        changes: &[(String, Option<String>)],
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (name, value) in changes {
            match value {
                Some(value) => {
                    let sealed = self.key.seal(&setting_context(key, name), value)?;
                    execute(
                        &tx,
                        "INSERT INTO settings (tenant_id, integration_id, key, value)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (tenant_id, integration_id, key)
                         DO UPDATE SET value = excluded.value",
                        &[&key.tenant_id, &key.integration_id, name, &sealed],
                    )
                    .await?
                }
                None => {
                    execute(
                        &tx,
                        "DELETE FROM settings
                         WHERE tenant_id = $1 AND integration_id = $2 AND key = $3",
                        &[&key.tenant_id, &key.integration_id, name],
                    )
                    .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bindings(&self, key: &IntegrationKey) -> Result<Vec<Binding>> {
        rows(
            &self.client().await?,
            "SELECT extension, user_id FROM bindings
             WHERE tenant_id = $1 AND integration_id = $2 ORDER BY extension",
            &[&key.tenant_id, &key.integration_id],
            columns::binding,
        )
        .await
    }

    async fn replace_bindings(&self, key: &IntegrationKey, bindings: &[Binding]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            "DELETE FROM bindings WHERE tenant_id = $1 AND integration_id = $2",
            &[&key.tenant_id, &key.integration_id],
        )
        .await?;
        for binding in bindings {
            execute(
                &tx,
                "INSERT INTO bindings (tenant_id, integration_id, extension, user_id)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &key.tenant_id,
                    &key.integration_id,
                    &binding.extension,
                    &binding.user_id,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn limits(&self, key: &IntegrationKey) -> Result<IntegrationLimits> {
        let stored = row(
            &self.client().await?,
            "SELECT limits FROM integration_limits WHERE tenant_id = $1 AND integration_id = $2",
            &[&key.tenant_id, &key.integration_id],
            |row| row.text(0),
        )
        .await?;
        stored.map_or(Ok(IntegrationLimits::default()), |json| {
            serde_json::from_str(&json)
                .map_err(|err| StorageError::Corrupt(format!("limits of `{key}`: {err}")))
        })
    }

    async fn set_limits(&self, key: &IntegrationKey, limits: &IntegrationLimits) -> Result<()> {
        let json = to_json(limits)?;
        let changed = execute(
            &self.client().await?,
            "INSERT INTO integration_limits (tenant_id, integration_id, limits)
             SELECT tenant_id, id, $3 FROM integrations WHERE tenant_id = $1 AND id = $2
             ON CONFLICT (tenant_id, integration_id) DO UPDATE SET limits = excluded.limits",
            &[&key.tenant_id, &key.integration_id, &json],
        )
        .await?;
        if changed == 0 {
            return Err(not_found(key));
        }
        Ok(())
    }

    async fn events(
        &self,
        key: &IntegrationKey,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.read_events(
            "WHERE tenant_id = $1 AND integration_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            &[
                &key.tenant_id,
                &key.integration_id,
                &after_seq,
                &i64::from(limit),
            ],
        )
        .await
    }

    async fn all_events(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.read_events(
            "WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after_seq, &i64::from(limit)],
        )
        .await
    }

    async fn consumed(&self) -> Result<i64> {
        Ok(row(
            &self.client().await?,
            "SELECT seq FROM platform_cursor",
            &[],
            |row| row.int(0),
        )
        .await?
        .unwrap_or(0))
    }

    async fn confirm_consumed(&self, seq: i64, prune_before: &str) -> Result<Consumption> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let last = tx
            .query_one("SELECT last_seq FROM sequencer", &[])
            .await?
            .int(0)?;
        if !(0..=last).contains(&seq) {
            return Err(StorageError::Invalid(format!(
                "seq {seq} is not in the event log: the last event stored is {last}"
            )));
        }
        let confirmed = tx
            .query_one(
                "INSERT INTO platform_cursor (id, seq) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET seq = GREATEST(platform_cursor.seq, excluded.seq)
                 RETURNING seq",
                &[&seq],
            )
            .await?
            .int(0)?;
        let pruned = tx
            .execute(
                "DELETE FROM events WHERE seq IN (
                     SELECT seq FROM events WHERE seq <= $1 AND received_at < $2
                     ORDER BY seq LIMIT $3)",
                &[&confirmed, &prune_before, &batch(PRUNE_BATCH)],
            )
            .await?;
        // Deliveries are remembered for telling retries apart, which is over long before
        // the events' retention is.
        tx.execute(
            "DELETE FROM deliveries WHERE received_at < $1",
            &[&prune_before],
        )
        .await?;
        tx.commit().await?;
        Ok(Consumption {
            seq: confirmed,
            pruned: count(pruned),
        })
    }

    fn event_writer(&self, fsync: bool) -> Result<Box<dyn EventWriter>> {
        Ok(Box::new(writer::PostgresEventWriter::connect(
            &self.config,
            fsync,
        )?))
    }

    async fn calls(&self, key: &IntegrationKey, filter: &CallFilter) -> Result<Vec<Call>> {
        calls::list(&self.client().await?, key, filter).await
    }

    async fn call(
        &self,
        key: &IntegrationKey,
        id: &str,
    ) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        let Some(call) = calls::one(&self.client().await?, key, id).await? else {
            return Ok(None);
        };
        let events = self
            .read_events(
                "WHERE tenant_id = $2 AND integration_id = $3 AND seq BETWEEN $4 AND $5
                   AND call_id = $1
                 ORDER BY seq",
                &[
                    &id,
                    &key.tenant_id,
                    &key.integration_id,
                    &call.first_seq,
                    &call.last_seq,
                ],
            )
            .await?;
        Ok(Some((call, events)))
    }

    async fn call_updates(
        &self,
        filter: &UpdateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<CallUpdate>> {
        delivery::updates(&self.client().await?, filter, after, limit).await
    }

    async fn call_updates_at(&self, positions: &[i64]) -> Result<Vec<CallUpdate>> {
        delivery::updates_at(&self.client().await?, positions).await
    }

    async fn last_update(&self) -> Result<i64> {
        Ok(self
            .client()
            .await?
            .query_one("SELECT last_position FROM sequencer", &[])
            .await?
            .int(0)?)
    }

    async fn prune_updates(&self, before: &str) -> Result<usize> {
        delivery::prune_updates(&self.client().await?, before, PRUNE_BATCH).await
    }

    async fn consumer_position(&self, consumer: &str) -> Result<i64> {
        delivery::consumer_position(&self.client().await?, consumer).await
    }

    async fn set_consumer_position(&self, consumer: &str, position: i64) -> Result<()> {
        delivery::set_consumer_position(&self.client().await?, consumer, position).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        delivery::create_endpoint(&self.client().await?, &self.key, endpoint).await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        delivery::endpoints(&self.client().await?, &self.key, None).await
    }

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        Ok(
            delivery::endpoints(&self.client().await?, &self.key, Some(id))
                .await?
                .pop(),
        )
    }

    async fn delete_endpoint(&self, id: &str) -> Result<()> {
        delivery::change_endpoint(
            &self.client().await?,
            id,
            "DELETE FROM endpoints WHERE id = $1",
            None,
        )
        .await
    }

    async fn disable_endpoint(&self, id: &str, why: &str) -> Result<()> {
        delivery::change_endpoint(
            &self.client().await?,
            id,
            "UPDATE endpoints SET disabled = $2 WHERE id = $1",
            Some(&why),
        )
        .await
    }

    async fn enable_endpoint(&self, id: &str) -> Result<()> {
        delivery::change_endpoint(
            &self.client().await?,
            id,
            "UPDATE endpoints SET disabled = NULL WHERE id = $1",
            None,
        )
        .await
    }

    async fn set_endpoint_position(&self, id: &str, position: i64) -> Result<()> {
        delivery::change_endpoint(
            &self.client().await?,
            id,
            "UPDATE endpoints SET position = $2 WHERE id = $1",
            Some(&position),
        )
        .await
    }

    async fn failures(&self, endpoint_id: &str) -> Result<Vec<Failure>> {
        delivery::failures(&self.client().await?, endpoint_id).await
    }

    async fn record_failure(&self, failure: &Failure) -> Result<()> {
        delivery::record_failure(&self.client().await?, failure).await
    }

    async fn clear_failure(&self, endpoint_id: &str, position: i64) -> Result<()> {
        delivery::clear_failure(&self.client().await?, endpoint_id, position).await
    }

    async fn replay_failures(&self, endpoint_id: &str, position: Option<i64>) -> Result<usize> {
        let now = now();
        delivery::replay_failures(&self.client().await?, endpoint_id, position, &now).await
    }
}

/// Locks an integration's row until the transaction ends, for changes that must take turns.
async fn lock_integration(tx: &impl GenericClient, key: &IntegrationKey) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM integrations WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        &[&key.tenant_id, &key.integration_id],
    )
    .await?;
    Ok(())
}

// PostgreSQL's rows, read as every backend reads its rows.
columns::columns_by!(Row, try_get);

/// Every row of a query (a statement prepared once per connection), each made by `read`.
async fn rows<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let statement = client.prepare_cached(sql).await?;
    client
        .query(&statement, params)
        .await?
        .iter()
        .map(read)
        .collect()
}

/// The first row of a query, if any, made by `read`.
async fn row<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: impl Fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    let statement = client.prepare_cached(sql).await?;
    client
        .query_opt(&statement, params)
        .await?
        .as_ref()
        .map(read)
        .transpose()
}

/// Runs a change; returns how many rows it changed.
async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// A change the event log's writer sends later, pipelined with the others it holds (see
/// [`writer`]): its statement and its values, owned until they are sent.
pub(super) struct Change {
    sql: String,
    params: Vec<Box<dyn ToSql + Send + Sync>>,
}

/// A batch size as the `LIMIT` it is bound to.
fn batch(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A count of rows as the service counts them.
fn count(rows: u64) -> usize {
    usize::try_from(rows).unwrap_or(usize::MAX)
}
