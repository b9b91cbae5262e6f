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
use crate::engine::sandbox::Settings;

/// The schema this build writes, kept in SQLite's `user_version`: 0 is the schema before
/// integration ids were a tenant's own (`integrations.id` unique across tenants), 1 the one
/// before events carried the users to notify.
const SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: `MIGRATIONS[n]` takes schema `n` to `n + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [TENANT_SCOPED_INTEGRATIONS, EVENTS_WITH_USERS];

/// The whole schema, for a new database. An integration is keyed by its tenant and its id, and
/// every table about one integration carries both.
const SCHEMA: &str = "
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE integrations (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    webhook_token TEXT NOT NULL,
    active_version INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE versions (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, version),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    activated_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE settings (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, key),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE bindings (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    extension TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, extension),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE integration_limits (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    limits TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    event TEXT,
    call_record TEXT,
    users TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX events_by_integration ON events (tenant_id, integration_id, seq);
";

/// From schema 1 to 2: each event names the platform users to notify, as a JSON array. Events
/// stored before had nobody resolved.
const EVENTS_WITH_USERS: &str = "ALTER TABLE events ADD COLUMN users TEXT NOT NULL DEFAULT '[]';";

/// From schema 0 to 1: each table about an integration is rebuilt with its tenant in the key,
/// the tenant taken from the integration's row (SQLite's recipe for changing a table's
/// constraints: make the new one, copy, drop the old one, rename). The event log's rows already
/// name their tenant: only its index changes.
const TENANT_SCOPED_INTEGRATIONS: &str = "
CREATE TABLE integrations_v1 (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    webhook_token TEXT NOT NULL,
    active_version INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO integrations_v1 (tenant_id, id, name, webhook_token, active_version, created_at)
    SELECT tenant_id, id, name, webhook_token, active_version, created_at FROM integrations;
CREATE TABLE versions_v1 (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, version),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO versions_v1 (tenant_id, integration_id, version, sha256, size, uploaded_at)
    SELECT i.tenant_id, v.integration_id, v.version, v.sha256, v.size, v.uploaded_at
    FROM versions v JOIN integrations i ON i.id = v.integration_id;
CREATE TABLE activations_v1 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    activated_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO activations_v1 (seq, tenant_id, integration_id, version, activated_at)
    SELECT a.seq, i.tenant_id, a.integration_id, a.version, a.activated_at
    FROM activations a JOIN integrations i ON i.id = a.integration_id;
CREATE TABLE settings_v1 (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, key),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO settings_v1 (tenant_id, integration_id, key, value)
    SELECT i.tenant_id, s.integration_id, s.key, s.value
    FROM settings s JOIN integrations i ON i.id = s.integration_id;
CREATE TABLE bindings_v1 (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    extension TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, extension),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO bindings_v1 (tenant_id, integration_id, extension, user_id)
    SELECT i.tenant_id, b.integration_id, b.extension, b.user_id
    FROM bindings b JOIN integrations i ON i.id = b.integration_id;
CREATE TABLE integration_limits_v1 (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    limits TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO integration_limits_v1 (tenant_id, integration_id, limits)
    SELECT i.tenant_id, l.integration_id, l.limits
    FROM integration_limits l JOIN integrations i ON i.id = l.integration_id;
DROP TABLE versions;
DROP TABLE activations;
DROP TABLE settings;
DROP TABLE bindings;
DROP TABLE integration_limits;
DROP TABLE integrations;
ALTER TABLE integrations_v1 RENAME TO integrations;
ALTER TABLE versions_v1 RENAME TO versions;
ALTER TABLE activations_v1 RENAME TO activations;
ALTER TABLE settings_v1 RENAME TO settings;
ALTER TABLE bindings_v1 RENAME TO bindings;
ALTER TABLE integration_limits_v1 RENAME TO integration_limits;
DROP INDEX events_by_integration;
CREATE INDEX events_by_integration ON events (tenant_id, integration_id, seq);
";

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
    /// A stored value cannot be read back.
    #[error("the registry holds an unreadable {0}")]
    Corrupt(String),
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

/// The registry database.
pub struct Registry {
    conn: Mutex<Connection>,
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
    /// in one transaction: a failed migration leaves the database as it was.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
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

    /// An integration's settings.
    pub fn settings(&self, key: &IntegrationKey) -> Result<Settings> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key, value FROM settings WHERE tenant_id = ?1 AND integration_id = ?2",
            )?;
            let rows = stmt.query_map([&key.tenant_id, &key.integration_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<Result<Settings, _>>()?)
        })
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
                        params![key.tenant_id, key.integration_id, name, value],
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

/// What an operation on a missing integration answers. It names the integration by its id
/// alone: the caller asked within its tenant.
fn not_found(key: &IntegrationKey) -> RegistryError {
    RegistryError::NotFound(format!("integration `{}`", key.integration_id))
}

/// Brings the database to [`SCHEMA_VERSION`]: creates a new one, or migrates an older one.
fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found > SCHEMA_VERSION {
        return Err(RegistryError::Newer {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(found)
        .map_err(|_| RegistryError::Corrupt(format!("schema version {found}")))?;
    let existing: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'integrations')",
        [],
        |row| row.get(0),
    )?;
    // Rebuilding a table that others reference needs the foreign keys off (the pragma cannot
    // change inside a transaction); the transaction checks them before it commits.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = (|| -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if existing {
            for migration in &MIGRATIONS[from..] {
                tx.execute_batch(migration)?;
            }
        } else {
            tx.execute_batch(SCHEMA)?;
        }
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })?;
        if broken > 0 {
            return Err(RegistryError::Corrupt(format!(
                "schema after migrating: {broken} rows refer to rows that do not exist"
            )));
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        if existing {
            tracing::info!(from = found, to = SCHEMA_VERSION, "migrated the registry");
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of the builds before integration ids were per tenant (`user_version` 0).
    const SCHEMA_0: &str = "
        CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
        CREATE TABLE integrations (id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            name TEXT NOT NULL, webhook_token TEXT NOT NULL, active_version INTEGER,
            created_at TEXT NOT NULL);
        CREATE TABLE versions (
            integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
            version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
            uploaded_at TEXT NOT NULL, PRIMARY KEY (integration_id, version));
        CREATE TABLE activations (seq INTEGER PRIMARY KEY AUTOINCREMENT,
            integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
            version INTEGER NOT NULL, activated_at TEXT NOT NULL);
        CREATE TABLE settings (
            integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
            key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (integration_id, key));
        CREATE TABLE bindings (
            integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
            extension TEXT NOT NULL, user_id TEXT NOT NULL,
            PRIMARY KEY (integration_id, extension));
        CREATE TABLE integration_limits (
            integration_id TEXT PRIMARY KEY REFERENCES integrations(id) ON DELETE CASCADE,
            limits TEXT NOT NULL);
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,
            integration_id TEXT NOT NULL, version INTEGER NOT NULL, received_at TEXT NOT NULL,
            event TEXT, call_record TEXT);
        CREATE INDEX events_by_integration ON events (integration_id, seq);

        INSERT INTO tenants VALUES ('acme', 'Acme', 'hash-a', 't0'), ('rival', 'Rival', 'hash-r', 't0');
        INSERT INTO integrations VALUES ('pbx', 'acme', 'PBX', 'token-a', 2, 't1'),
            ('zadarma', 'rival', 'Zadarma', 'token-r', NULL, 't1');
        INSERT INTO versions VALUES ('pbx', 1, 'sha-1', 10, 't2'), ('pbx', 2, 'sha-2', 20, 't3');
        INSERT INTO activations (integration_id, version, activated_at)
            VALUES ('pbx', 1, 't4'), ('pbx', 2, 't5');
        INSERT INTO settings VALUES ('pbx', 'api_secret', 'hunter22');
        INSERT INTO bindings VALUES ('pbx', '101', 'user-7');
        INSERT INTO integration_limits VALUES ('pbx', '{\"timeout_ms\":200}');
        INSERT INTO events (tenant_id, integration_id, version, received_at, event)
            VALUES ('acme', 'pbx', 2, 't6', '{\"src_phone\":\"1\"}');
    ";

    fn database_of_schema_0(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("telehook.db");
        Connection::open(&path)
            .and_then(|conn| conn.execute_batch(SCHEMA_0))
            .expect("the old schema and its rows are written");
        path
    }

    #[test]
    fn a_database_from_before_per_tenant_ids_keeps_everything_it_held() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let registry = Registry::open(&database_of_schema_0(dir.path())).expect("migrates");
        let pbx = IntegrationKey::new("acme", "pbx");

        let integration = registry.integration(&pbx).expect("reads").expect("kept");
        assert_eq!(
            (
                integration.webhook_token.as_str(),
                integration.active_version
            ),
            ("token-a", Some(2))
        );
        let versions: Vec<u32> = registry
            .versions(&pbx)
            .expect("reads")
            .iter()
            .map(|stored| stored.version)
            .collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(registry.rollback_target(&pbx).expect("reads"), Some(1));
        assert_eq!(
            registry.settings(&pbx).expect("reads").get("api_secret"),
            Some("hunter22")
        );
        assert_eq!(registry.bindings(&pbx).expect("reads")[0].user_id, "user-7");
        assert_eq!(registry.limits(&pbx).expect("reads").timeout_ms, Some(200));
        let events = registry.events(&pbx, 0, 10).expect("reads");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].tenant_id, "acme");
        assert!(events[0].users.is_empty(), "nobody was resolved before");
        assert!(
            registry
                .integration(&IntegrationKey::new("rival", "zadarma"))
                .expect("reads")
                .is_some()
        );

        // The point of the migration: the rival may now have a `pbx` of its own, and deleting
        // it leaves acme's intact.
        registry
            .create_integration("rival", "pbx", "PBX", "token-r2")
            .expect("the id is free within the tenant");
        registry
            .update_settings(
                &IntegrationKey::new("rival", "pbx"),
                &[("api_secret".into(), Some("other".into()))],
            )
            .expect("writes");
        registry
            .delete_integration(&IntegrationKey::new("rival", "pbx"))
            .expect("deletes");
        assert_eq!(
            registry.settings(&pbx).expect("reads").get("api_secret"),
            Some("hunter22")
        );
        drop(registry);

        let reopened = Registry::open(&dir.path().join("telehook.db")).expect("opens again");
        assert_eq!(reopened.versions(&pbx).expect("reads").len(), 2);
    }

    #[test]
    fn a_database_of_a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = database_of_schema_0(dir.path());
        Connection::open(&path)
            .and_then(|conn| conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1))
            .expect("marked newer");
        let Err(err) = Registry::open(&path) else {
            panic!("a newer schema was opened");
        };
        assert!(
            matches!(err, RegistryError::Newer { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err}"
        );
        let conn = Connection::open(&path).expect("opens");
        let index: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'events_by_integration'",
                [],
                |row| row.get(0),
            )
            .expect("the index is there");
        assert!(index.contains("(integration_id, seq)"), "{index}");
    }
}
