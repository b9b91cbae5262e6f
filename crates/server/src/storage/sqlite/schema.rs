//! The registry's schema and how a database gets to it.
//!
//! A database records its schema version in SQLite's `user_version`. A new database is created
//! at schema 0 and migrated like any other, so every database, whenever it was created, went
//! through the same steps; the current schema is schema 0 with [`MIGRATIONS`] applied. An
//! integration is keyed by its tenant and its id, and every table about one integration
//! carries both.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::{IntegrationKey, Result, StorageError, setting_context};
use crate::secrets::SettingsKey;

/// The schema this build writes: 0 is the first one, where integration ids were unique across
/// tenants; 1 made them per tenant; 2 gave events the users to notify; 3 added the platform's
/// cursor in the event log; 4 sealed the settings; 5 added the deliveries already stored; 6
/// added calls, and the events held until their call is known; 7 added the call updates and
/// their delivery.
pub(super) const SCHEMA_VERSION: i32 = 8;

/// One step from a schema to the next.
enum Migration {
    /// Statements.
    Sql(&'static str),
    /// Seals every setting stored in plain text (see [`crate::secrets`]).
    SealSettings,
}

/// The migrations, in order: `MIGRATIONS[n]` takes schema `n` to `n + 1`.
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [
    Migration::Sql(TENANT_SCOPED_INTEGRATIONS),
    Migration::Sql(EVENTS_WITH_USERS),
    Migration::Sql(PLATFORM_CURSOR),
    Migration::SealSettings,
    Migration::Sql(DELIVERIES),
    Migration::Sql(CALLS),
    Migration::Sql(DELIVERY),
    Migration::Sql(SHARED_BY_NODES),
];

/// Schema 0, as the first builds wrote it.
pub(super) const SCHEMA_0: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS integrations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    webhook_token TEXT NOT NULL,
    active_version INTEGER,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (integration_id, version)
);
CREATE TABLE IF NOT EXISTS activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    activated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (integration_id, key)
);
CREATE TABLE IF NOT EXISTS bindings (
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    extension TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (integration_id, extension)
);
CREATE TABLE IF NOT EXISTS integration_limits (
    integration_id TEXT PRIMARY KEY REFERENCES integrations(id) ON DELETE CASCADE,
    limits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    event TEXT,
    call_record TEXT
);
CREATE INDEX IF NOT EXISTS events_by_integration ON events (integration_id, seq);
";

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

/// From schema 1 to 2: each event names the platform users to notify, as a JSON array. Events
/// stored before had nobody resolved.
const EVENTS_WITH_USERS: &str = "ALTER TABLE events ADD COLUMN users TEXT NOT NULL DEFAULT '[]';";

/// From schema 2 to 3: how far the platform has read the event log (one row, once it has
/// confirmed anything). Only events at or before it may be pruned.
const PLATFORM_CURSOR: &str = "
CREATE TABLE platform_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
";

/// From schema 4 to 5: the deliveries whose events are stored, by the provider's delivery id,
/// with the answer the provider got, so that a retry of one is answered alike and stored once.
/// No foreign key: the event log's writer inserts these, and a batch must not fail because one
/// of its integrations was deleted meanwhile; a trigger deletes an integration's deliveries with
/// it instead (a tenant's too: its integrations' cascade fires it).
const DELIVERIES: &str = "
CREATE TABLE deliveries (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    answer TEXT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, delivery_id)
);
CREATE INDEX deliveries_by_time ON deliveries (received_at);
CREATE TRIGGER deliveries_go_with_their_integration AFTER DELETE ON integrations
BEGIN
    DELETE FROM deliveries WHERE tenant_id = old.tenant_id AND integration_id = old.id;
END;
";

/// From schema 5 to 6: the calls the events were correlated into (see [`crate::calls`]), each
/// event's call, and the events that name a call not known yet, held until it is. Events
/// stored before belong to no call. Like deliveries, these are written by the event log's
/// writer and go with their integration by trigger. Every index of `calls` costs the event
/// log a page write per commit, so there are few: the key orders an integration's calls by our
/// id (a UUIDv7, so by creation); calls with a provider's call id are found by it, the others
/// by their parties within the call window (a range of `last_event_at`, so that a pair of
/// numbers with a long history costs no more than one with a short one); the open calls are
/// indexed by a column that changes only when they end, for the sweep. (The index by call id
/// is not partial: a statement whose use of a partial index depends on a bound value is
/// prepared again whenever the value changes, every event.) A call's users and its record are
/// JSON, read whole. A call's events are read back by the integration's index of the log,
/// between the positions of its first and last events that the call keeps, rather than by an
/// index of their own that every event would pay for. The delivery of an event that was held has `seq` 0: it had no place in the log
/// when the delivery was stored.
const CALLS: &str = "
CREATE TABLE calls (
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    id TEXT NOT NULL,
    provider_call_id TEXT,
    state TEXT NOT NULL,
    disposition TEXT NOT NULL,
    closed_by TEXT,
    direction TEXT NOT NULL,
    src_phone TEXT NOT NULL,
    src_phone_ext TEXT,
    dst_phone TEXT NOT NULL,
    dst_phone_ext TEXT,
    started_at TEXT,
    answered_at TEXT,
    ended_at TEXT,
    first_event_at TEXT NOT NULL,
    last_event_at TEXT NOT NULL,
    users TEXT NOT NULL,
    record TEXT,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, id)
) WITHOUT ROWID;
CREATE INDEX calls_by_provider_id ON calls (tenant_id, integration_id, provider_call_id);
CREATE INDEX calls_by_parties
    ON calls (tenant_id, integration_id, direction, src_phone, dst_phone, last_event_at)
    WHERE provider_call_id IS NULL;
CREATE INDEX calls_open ON calls (state) WHERE state != 'ended';
ALTER TABLE events ADD COLUMN call_id TEXT;
ALTER TABLE events ADD COLUMN unresolved INTEGER NOT NULL DEFAULT 0;
CREATE TABLE held_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    provider_call_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    event TEXT,
    call_record TEXT,
    users TEXT NOT NULL
);
CREATE INDEX held_by_call ON held_events (tenant_id, integration_id, provider_call_id, seq);
CREATE INDEX held_by_time ON held_events (received_at);
CREATE TRIGGER calls_go_with_their_integration AFTER DELETE ON integrations
BEGIN
    DELETE FROM calls WHERE tenant_id = old.tenant_id AND integration_id = old.id;
    DELETE FROM held_events WHERE tenant_id = old.tenant_id AND integration_id = old.id;
END;
";

/// From schema 6 to 7: the call updates (see [`crate::delivery`]), written by the event log's
/// writer with the events (no foreign key, as for calls; they go with their integration by
/// trigger); the positions of the library's named consumers; the endpoints updates are
/// forwarded to, each with how far it got, and the updates an endpoint failed to take. The
/// updates are indexed by tenant for a tenant's stream and endpoint, which read a range of one
/// tenant's positions; a user's stream reads its tenant's and filters by `users`.
const DELIVERY: &str = "
CREATE TABLE call_updates (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    seq INTEGER,
    at TEXT NOT NULL,
    users TEXT NOT NULL,
    call TEXT NOT NULL
);
CREATE INDEX call_updates_by_tenant ON call_updates (tenant_id, position);
CREATE TRIGGER call_updates_go_with_their_integration AFTER DELETE ON integrations
BEGIN
    DELETE FROM call_updates WHERE tenant_id = old.tenant_id AND integration_id = old.id;
END;
CREATE TABLE update_consumers (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret BLOB NOT NULL,
    disabled TEXT,
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE forward_failures (
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT,
    last_status INTEGER,
    last_error TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, position)
);
";

/// Schema 8: the components, kept in the database as its record (the data directory caches
/// them with their compiled form), and the secrets shared by every node of a database, sealed
/// as settings are. One node on SQLite shares them with nobody, but keeps them alike, so that
/// both backends are one interface.
const SHARED_BY_NODES: &str = "
CREATE TABLE components (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);
CREATE TABLE shared_secrets (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);
";

/// Seals the values schema 3 and before stored in plain text, each bound to its setting.
fn seal_settings(tx: &Transaction<'_>, key: &SettingsKey) -> Result<()> {
    let plain: Vec<(String, String, String, String)> = tx
        .prepare("SELECT tenant_id, integration_id, key, value FROM settings")?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (tenant_id, integration_id, name, value) in plain {
        let context = setting_context(&IntegrationKey::new(&tenant_id, &integration_id), &name);
        let sealed = key.seal(&context, &value)?;
        tx.execute(
            "UPDATE settings SET value = ?4
             WHERE tenant_id = ?1 AND integration_id = ?2 AND key = ?3",
            params![tenant_id, integration_id, name, sealed],
        )?;
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`], in one transaction: a failed migration leaves
/// it as it was. A database of a newer schema is refused rather than misread.
pub(super) fn migrate(conn: &mut Connection, key: &SettingsKey) -> Result<()> {
    let found: i32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found > SCHEMA_VERSION {
        return Err(StorageError::Newer {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(found)
        .map_err(|_| StorageError::Corrupt(format!("schema version {found}")))?;
    let existed: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'tenants')",
        [],
        |row| row.get(0),
    )?;
    // Rebuilding a table that others reference needs the foreign keys off (the pragma cannot
    // change inside a transaction); the transaction checks them before it commits.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = (|| -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !existed {
            tx.execute_batch(SCHEMA_0)?;
        }
        for migration in &MIGRATIONS[from..] {
            match migration {
                Migration::Sql(statements) => tx.execute_batch(statements)?,
                Migration::SealSettings => seal_settings(&tx, key)?,
            }
        }
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })?;
        if broken > 0 {
            return Err(StorageError::Corrupt(format!(
                "schema after migrating: {broken} rows refer to rows that do not exist"
            )));
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        let sealed = MIGRATIONS[from..]
            .iter()
            .any(|migration| matches!(migration, Migration::SealSettings));
        if existed && sealed {
            // The plain values are still in the pages the update freed, in the database file
            // and its write-ahead log: rewrite both without them.
            tracing::info!("rewriting the registry without the settings it held in plain text");
            conn.execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )?;
        }
        if existed {
            tracing::info!(from = found, to = SCHEMA_VERSION, "migrated the registry");
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{IntegrationKey, Storage, StorageError};

    /// What a build of schema 0 held: two tenants, one integration with everything an
    /// integration can have, and one without.
    const ROWS_0: &str = "
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

    fn key() -> SettingsKey {
        SettingsKey::from_bytes(&[1; 32])
    }

    fn database_of_schema_0(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("telehook.db");
        Connection::open(&path)
            .and_then(|conn| conn.execute_batch(&format!("{SCHEMA_0}{ROWS_0}")))
            .expect("the old schema and its rows are written");
        path
    }

    #[tokio::test]
    async fn a_database_from_before_per_tenant_ids_keeps_everything_it_held() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let registry =
            SqliteStorage::open(&database_of_schema_0(dir.path()), key()).expect("migrates");
        let pbx = IntegrationKey::new("acme", "pbx");

        let integration = registry
            .integration(&pbx)
            .await
            .expect("reads")
            .expect("kept");
        assert_eq!(
            (
                integration.webhook_token.as_str(),
                integration.active_version
            ),
            ("token-a", Some(2))
        );
        let versions: Vec<u32> = registry
            .versions(&pbx)
            .await
            .expect("reads")
            .iter()
            .map(|stored| stored.version)
            .collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(
            registry.rollback_target(&pbx).await.expect("reads"),
            Some(1)
        );
        assert_eq!(
            registry
                .settings(&pbx)
                .await
                .expect("reads")
                .get("api_secret"),
            Some("hunter22")
        );
        assert_eq!(
            registry.bindings(&pbx).await.expect("reads")[0].user_id,
            "user-7"
        );
        assert_eq!(
            registry.limits(&pbx).await.expect("reads").timeout_ms,
            Some(200)
        );
        let events = registry.events(&pbx, 0, 10).await.expect("reads");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].tenant_id, "acme");
        assert!(events[0].users.is_empty(), "nobody was resolved before");
        assert_eq!(registry.consumed().await.expect("reads"), 0);
        assert!(
            registry
                .integration(&IntegrationKey::new("rival", "zadarma"))
                .await
                .expect("reads")
                .is_some()
        );

        // The point of the migration: the rival may now have a `pbx` of its own, and deleting
        // it leaves acme's intact.
        registry
            .create_integration("rival", "pbx", "PBX", "token-r2")
            .await
            .expect("the id is free within the tenant");
        registry
            .update_settings(
                &IntegrationKey::new("rival", "pbx"),
                &[("api_secret".into(), Some("other".into()))],
            )
            .await
            .expect("writes");
        registry
            .delete_integration(&IntegrationKey::new("rival", "pbx"))
            .await
            .expect("deletes");
        assert_eq!(
            registry
                .settings(&pbx)
                .await
                .expect("reads")
                .get("api_secret"),
            Some("hunter22")
        );
        drop(registry);

        let path = dir.path().join("telehook.db");
        let raw: Vec<u8> = Connection::open(&path)
            .and_then(|conn| {
                conn.query_row(
                    "SELECT value FROM settings WHERE key = 'api_secret'",
                    [],
                    |row| row.get(0),
                )
            })
            .expect("reads the stored value");
        assert!(
            !raw.windows(8).any(|window| window == b"hunter22"),
            "sealed"
        );
        for file in ["telehook.db", "telehook.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(8).any(|window| window == b"hunter22"),
                "{file} still holds the plain value"
            );
        }
        let err = SqliteStorage::open(&path, SettingsKey::from_bytes(&[2; 32]))
            .err()
            .expect("another key is refused");
        assert!(
            matches!(&err, StorageError::WrongKey(setting) if setting == "acme/pbx/api_secret"),
            "{err}"
        );
        let reopened = SqliteStorage::open(&path, key()).expect("opens again");
        assert_eq!(reopened.versions(&pbx).await.expect("reads").len(), 2);
    }

    #[test]
    fn a_database_of_a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = database_of_schema_0(dir.path());
        Connection::open(&path)
            .and_then(|conn| conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1))
            .expect("marked newer");
        let Err(err) = SqliteStorage::open(&path, key()) else {
            panic!("a newer schema was opened");
        };
        assert!(
            matches!(err, StorageError::Newer { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
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
