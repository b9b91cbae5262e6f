//! The persistent registry: tenants, their integrations, parser versions, settings, extension
//! bindings and the event log, in one SQLite database in the data directory.
//!
//! Every change is one transaction, so a crash leaves each row either written or not. The
//! database runs in WAL mode with `synchronous = FULL`: a committed change survives power loss,
//! and readers never wait for the event log's writer. Write transactions begin `IMMEDIATE`: a
//! deferred one that reads before it writes fails with "database is locked" whenever the event
//! log commits in between, which the busy timeout cannot retry.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::limits::IntegrationLimits;
use super::secrets::SettingsKey;
use crate::engine::sandbox::Settings;

mod schema;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The database failed (disk full, corruption, ...).
    #[error("the registry database failed: {0}")]
    Database(#[from] rusqlite::Error),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The thing to change does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The change asked for cannot be made; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A stored value cannot be read back.
    #[error("the registry holds an unreadable {0}")]
    Corrupt(String),
    /// Sealing a setting failed: the operating system's random source did not answer.
    #[error("sealing a setting failed: {0}")]
    Sealing(#[from] std::io::Error),
    /// The settings key does not open the settings the database holds.
    #[error(
        "the settings key does not open the stored settings (setting `{0}`): start with the key \
         file they were sealed with"
    )]
    WrongKey(String),
    /// The database was written by a newer telehook, whose schema this one cannot read.
    #[error(
        "the registry database has schema version {found}, newer than this build's {known}: \
         run the telehook that wrote it"
    )]
    Newer {
        /// The schema version in the database.
        found: i32,
        /// The newest this build knows.
        known: i32,
    },
}

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A tenant: a customer of the platform whose admins manage its own integrations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// The tenant's id (a slug).
    pub id: String,
    /// A display name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// Which integration: an integration's id is its tenant's own name for it (every tenant may
/// call theirs `zadarma`), so only the pair names one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationKey {
    /// The owning tenant.
    pub tenant_id: String,
    /// The integration's id within the tenant.
    pub integration_id: String,
}

impl IntegrationKey {
    /// The key of `tenant_id`'s integration `integration_id`.
    pub fn new(tenant_id: &str, integration_id: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            integration_id: integration_id.to_owned(),
        }
    }
}

/// `tenant/integration`, as in logs: ids never contain `/`.
impl std::fmt::Display for IntegrationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant_id, self.integration_id)
    }
}

/// One telephony integration of a tenant, with its own webhook URL and parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// The integration's id (a slug) within its tenant, part of its webhook URL.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// A display name.
    pub name: String,
    /// The secret part of the webhook URL.
    pub webhook_token: String,
    /// The parser version requests run on, if one was activated.
    pub active_version: Option<u32>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl Integration {
    /// The key that names this integration among all tenants'.
    pub fn key(&self) -> IntegrationKey {
        IntegrationKey::new(&self.tenant_id, &self.id)
    }
}

/// An uploaded parser version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    /// 1, 2, 3... per integration.
    pub version: u32,
    /// The component's SHA-256, which names its file in the component store.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was uploaded (RFC 3339).
    pub uploaded_at: String,
}

/// One extension-to-user binding, in the platform's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The provider's extension (internal number).
    pub extension: String,
    /// The platform user who gets that extension's calls.
    pub user_id: String,
}

/// An entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the log; increases with every append.
    pub seq: i64,
    /// The tenant whose integration received it.
    pub tenant_id: String,
    /// The integration whose webhook it came from.
    pub integration_id: String,
    /// The parser version that produced it.
    pub version: u32,
    /// When the webhook was received (RFC 3339).
    pub received_at: String,
    /// The telephony event, if the parser produced one.
    pub event: Option<serde_json::Value>,
    /// The call record, if the parser produced one.
    pub call_record: Option<serde_json::Value>,
    /// The platform users bound to the call's operators when it was received: who gets the
    /// call card.
    pub users: Vec<String>,
}

/// Where the platform's reading of the event log stands after it confirmed a `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumption {
    /// The last `seq` the platform has confirmed taking: every event up to it.
    pub seq: i64,
    /// How many events this confirmation pruned.
    pub pruned: usize,
}

/// The most events one confirmation prunes, so that it never holds the event log's writer
/// long; what is left goes with the next confirmation.
const PRUNE_BATCH: usize = 10_000;

/// The registry database.
pub struct Registry {
    conn: Mutex<Connection>,
    key: SettingsKey,
}

/// Opens a connection with the pragmas every connection to the database needs (write-ahead
/// log, full sync, foreign keys): the registry and the event log each have their own.
pub fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The current time as RFC 3339 with milliseconds, as stored in `received_at`.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Registry {
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
        if let Some((integration, name, sealed)) = stored {
            let context = setting_context(&integration, &name);
            if key.open(&context, &sealed).is_none() {
                return Err(RegistryError::WrongKey(context));
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            key,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to keep using.
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut conn)
    }

    /// Fails unless the database answers a query.
    pub fn ping(&self) -> Result<()> {
        self.with(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// Creates a tenant whose token hashes to `token_sha256`.
    pub fn create_tenant(&self, id: &str, name: &str, token_sha256: &str) -> Result<Tenant> {
        let created_at = now();
        self.with(|conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO tenants (id, name, token_sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, name, token_sha256, created_at],
            )?;
            if inserted == 0 {
                return Err(RegistryError::Conflict(format!("tenant `{id}`")));
            }
            Ok(Tenant {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at,
            })
        })
    }

    /// Every tenant.
    pub fn tenants(&self) -> Result<Vec<Tenant>> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT id, name, created_at FROM tenants ORDER BY id")?;
            let rows = stmt.query_map([], |row| {
                Ok(Tenant {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The tenant whose token hashes to `token_sha256`.
    pub fn tenant_by_token(&self, token_sha256: &str) -> Result<Option<String>> {
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

    /// Deletes a tenant with all its integrations.
    pub fn delete_tenant(&self, id: &str) -> Result<()> {
        self.with(
            |conn| match conn.execute("DELETE FROM tenants WHERE id = ?1", [id])? {
                0 => Err(RegistryError::NotFound(format!("tenant `{id}`"))),
                _ => Ok(()),
            },
        )
    }

    /// Creates an integration of a tenant.
    pub fn create_integration(
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
                return Err(RegistryError::NotFound(format!("tenant `{tenant_id}`")));
            }
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO integrations (id, tenant_id, name, webhook_token, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, tenant_id, name, webhook_token, created_at],
            )?;
            if inserted == 0 {
                return Err(RegistryError::Conflict(format!("integration `{id}`")));
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

    const INTEGRATION_COLUMNS: &str =
        "id, tenant_id, name, webhook_token, active_version, created_at";

    fn integration_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Integration> {
        Ok(Integration {
            id: row.get(0)?,
            tenant_id: row.get(1)?,
            name: row.get(2)?,
            webhook_token: row.get(3)?,
            active_version: row.get(4)?,
            created_at: row.get(5)?,
        })
    }

    /// A tenant's integrations.
    pub fn integrations(&self, tenant_id: &str) -> Result<Vec<Integration>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM integrations WHERE tenant_id = ?1 ORDER BY id",
                Self::INTEGRATION_COLUMNS
            ))?;
            let rows = stmt.query_map([tenant_id], Self::integration_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One integration.
    pub fn integration(&self, key: &IntegrationKey) -> Result<Option<Integration>> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {} FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                        Self::INTEGRATION_COLUMNS
                    ),
                    [&key.tenant_id, &key.integration_id],
                    Self::integration_row,
                )
                .optional()?)
        })
    }

    /// Every integration called `id`, whichever tenant owns it: the webhook URLs handed out
    /// before ids were per tenant name no tenant, and their token tells the owner apart.
    pub fn integrations_named(&self, id: &str) -> Result<Vec<Integration>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM integrations WHERE id = ?1",
                Self::INTEGRATION_COLUMNS
            ))?;
            let rows = stmt.query_map([id], Self::integration_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Deletes an integration with its versions, settings and bindings.
    pub fn delete_integration(&self, key: &IntegrationKey) -> Result<()> {
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

    /// Replaces the secret part of the integration's webhook URL.
    pub fn set_webhook_token(&self, key: &IntegrationKey, token: &str) -> Result<()> {
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

    /// Registers the next version of an integration's parser, whose component is stored.
    pub fn add_version(&self, key: &IntegrationKey, sha256: &str, size: u64) -> Result<Version> {
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

    /// An integration's versions, oldest first.
    pub fn versions(&self, key: &IntegrationKey) -> Result<Vec<Version>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT version, sha256, size, uploaded_at FROM versions
                 WHERE tenant_id = ?1 AND integration_id = ?2 ORDER BY version",
            )?;
            let rows = stmt.query_map([&key.tenant_id, &key.integration_id], |row| {
                Ok(Version {
                    version: row.get(0)?,
                    sha256: row.get(1)?,
                    size: row.get(2)?,
                    uploaded_at: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Makes `version` the one requests run on, and remembers it for [`Registry::rollback_target`].
    pub fn activate(&self, key: &IntegrationKey, version: u32) -> Result<()> {
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
                return Err(RegistryError::NotFound(format!(
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

    /// The version that was active before the current one, to roll back to.
    pub fn rollback_target(&self, key: &IntegrationKey) -> Result<Option<u32>> {
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

    /// An integration's settings, opened.
    pub fn settings(&self, key: &IntegrationKey) -> Result<Settings> {
        let sealed: Vec<(String, Vec<u8>)> = self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key, value FROM settings WHERE tenant_id = ?1 AND integration_id = ?2",
            )?;
            let rows = stmt.query_map([&key.tenant_id, &key.integration_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        sealed
            .into_iter()
            .map(|(name, value)| {
                let context = setting_context(key, &name);
                match self.key.open(&context, &value) {
                    Some(value) => Ok((name, value)),
                    None => Err(RegistryError::WrongKey(context)),
                }
            })
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) settings, all in one transaction.
    pub fn update_settings(
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

    /// An integration's extension-to-user bindings.
    pub fn bindings(&self, key: &IntegrationKey) -> Result<Vec<Binding>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT extension, user_id FROM bindings
                 WHERE tenant_id = ?1 AND integration_id = ?2 ORDER BY extension",
            )?;
            let rows = stmt.query_map([&key.tenant_id, &key.integration_id], |row| {
                Ok(Binding {
                    extension: row.get(0)?,
                    user_id: row.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// An integration's own limits (all `None` when the admin set none).
    pub fn limits(&self, key: &IntegrationKey) -> Result<IntegrationLimits> {
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
                .map_err(|err| RegistryError::Corrupt(format!("limits of `{key}`: {err}")))
        })
    }

    /// Replaces an integration's own limits.
    pub fn set_limits(&self, key: &IntegrationKey, limits: &IntegrationLimits) -> Result<()> {
        let json = serde_json::to_string(limits)
            .map_err(|err| RegistryError::Corrupt(format!("limits: {err}")))?;
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

    /// Replaces all of an integration's bindings at once, as the platform's API does.
    pub fn replace_bindings(&self, key: &IntegrationKey, bindings: &[Binding]) -> Result<()> {
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

    /// Reads an integration's event log after `after_seq`, oldest first.
    pub fn events(
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

    /// Reads the whole event log, every tenant's, after `after_seq`, oldest first: the feed
    /// the platform consumes, remembering the last `seq` it took.
    pub fn all_events(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.read_events(
            "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after_seq, limit],
        )
    }

    /// The last `seq` the platform has confirmed taking; 0 before it confirmed any.
    pub fn consumed(&self) -> Result<i64> {
        self.with(|conn| {
            Ok(conn
                .query_row("SELECT seq FROM platform_cursor", [], |row| row.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    /// Records that the platform has durably taken every event up to `seq` (a lower `seq`
    /// than already confirmed changes nothing), then prunes up to `PRUNE_BATCH` (10,000) of the
    /// events it has taken that were received before `prune_before` (RFC 3339, as
    /// `received_at`). Events the platform has not confirmed are never pruned.
    pub fn confirm_consumed(&self, seq: i64, prune_before: &str) -> Result<Consumption> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                [],
                |row| row.get(0),
            )?;
            if !(0..=last).contains(&seq) {
                return Err(RegistryError::Invalid(format!(
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
            tx.commit()?;
            Ok(Consumption {
                seq: confirmed,
                pruned,
            })
        })
    }

    fn read_events(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredEvent>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT seq, tenant_id, integration_id, version, received_at, event, call_record,
                        users
                 FROM events {filter}"
            ))?;
            let rows = stmt.query_map(args, |row| {
                let json =
                    |text: Option<String>| text.and_then(|text| serde_json::from_str(&text).ok());
                Ok(StoredEvent {
                    seq: row.get(0)?,
                    tenant_id: row.get(1)?,
                    integration_id: row.get(2)?,
                    version: row.get(3)?,
                    received_at: row.get(4)?,
                    event: json(row.get(5)?),
                    call_record: json(row.get(6)?),
                    users: serde_json::from_str(&row.get::<_, String>(7)?).map_err(|err| {
                        rusqlite::Error::FromSqlConversionFailure(
                            7,
                            rusqlite::types::Type::Text,
                            Box::new(err),
                        )
                    })?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// What a sealed setting is bound to: its tenant, integration and name (ids never contain
/// `/`). Sealing, opening and the migration that seals older values all use this one form.
fn setting_context(integration: &IntegrationKey, name: &str) -> String {
    format!("{integration}/{name}")
}

/// What an operation on a missing integration answers. It names the integration by its id
/// alone: the caller asked within its tenant.
fn not_found(key: &IntegrationKey) -> RegistryError {
    RegistryError::NotFound(format!("integration `{}`", key.integration_id))
}
