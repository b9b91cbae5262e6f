//! The PostgreSQL schema and how a database gets to it.
//!
//! A database records its schema version in `schema_version`, one row. Each migration runs in
//! a transaction of its own that first takes a transaction-scoped advisory lock, so that nodes
//! starting together against a fresh database take turns: the second one waits, then finds the
//! version the first one committed and skips what was done. A failed migration leaves the
//! database at the version before it. The lock is keyed by the schema as well, so that
//! deployments in separate schemas of one database do not wait for each other.
//!
//! Schema 1 is what SQLite's schema 7 holds, written for PostgreSQL. The differences:
//! - every text column compares as bytes (`COLLATE "C"`), as SQLite's do, so that times
//!   (RFC 3339 text, as SQLite keeps them), ids and listings order alike whatever the
//!   database's locale;
//! - JSON stays text, so that what is read back is byte for byte what was written (the call
//!   updates' bodies are copied out as they are); the filters by user cast it to `jsonb`;
//! - the event log and the call updates take their positions from `sequencer` rather than
//!   from a sequence (see [`super`]); held events and activations, which only order among
//!   themselves, keep identity columns;
//! - what the event log's writer stores has no foreign key, as in SQLite, and goes with its
//!   integration by one trigger.

use deadpool_postgres::ClientWrapper;

use super::Result;
use crate::storage::StorageError;

/// The schema this build writes: 1 is the first one.
pub(super) const SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: `MIGRATIONS[n]` takes schema `n` to `n + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_1, SHARED_BY_NODES];

/// The advisory lock migrations take turns on: "th" and "mi" (telehook, migrations).
const MIGRATION_LOCK: i32 = 0x7468_6d69;

/// Schema 1: SQLite's schema 7, as the module says.
const SCHEMA_1: &str = r#"
CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    token_sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE integrations (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    webhook_token TEXT COLLATE "C" NOT NULL,
    active_version BIGINT,
    created_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX integrations_by_id ON integrations (id);
CREATE TABLE versions (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    uploaded_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, version),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE activations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    activated_at TEXT COLLATE "C" NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX activations_by_integration ON activations (tenant_id, integration_id, seq);
CREATE TABLE settings (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, key),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE bindings (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    extension TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, extension),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE integration_limits (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    limits TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);

-- The last position handed out in the event log and among the call updates. The writer
-- locks this row first in every transaction and writes it last (see the backend's docs).
CREATE TABLE sequencer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_position BIGINT NOT NULL
);
INSERT INTO sequencer (id, last_seq, last_position) VALUES (1, 0, 0);

CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    event TEXT COLLATE "C",
    call_record TEXT COLLATE "C",
    users TEXT COLLATE "C" NOT NULL,
    call_id TEXT COLLATE "C",
    unresolved BOOLEAN NOT NULL
);
CREATE INDEX events_by_integration ON events (tenant_id, integration_id, seq);
CREATE TABLE platform_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
CREATE TABLE deliveries (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    delivery_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    answer TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, delivery_id)
);
CREATE INDEX deliveries_by_time ON deliveries (received_at);
CREATE TABLE calls (
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    provider_call_id TEXT COLLATE "C",
    state TEXT COLLATE "C" NOT NULL,
    disposition TEXT COLLATE "C" NOT NULL,
    closed_by TEXT COLLATE "C",
    direction TEXT COLLATE "C" NOT NULL,
    src_phone TEXT COLLATE "C" NOT NULL,
    src_phone_ext TEXT COLLATE "C",
    dst_phone TEXT COLLATE "C" NOT NULL,
    dst_phone_ext TEXT COLLATE "C",
    started_at TEXT COLLATE "C",
    answered_at TEXT COLLATE "C",
    ended_at TEXT COLLATE "C",
    first_event_at TEXT COLLATE "C" NOT NULL,
    last_event_at TEXT COLLATE "C" NOT NULL,
    users TEXT COLLATE "C" NOT NULL,
    record TEXT COLLATE "C",
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, id)
);
CREATE INDEX calls_by_provider_id ON calls (tenant_id, integration_id, provider_call_id, id);
CREATE INDEX calls_by_parties
    ON calls (tenant_id, integration_id, direction, src_phone, dst_phone, last_event_at)
    WHERE provider_call_id IS NULL;
CREATE INDEX calls_open ON calls (last_event_at) WHERE state <> 'ended';
CREATE TABLE held_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    provider_call_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    event TEXT COLLATE "C",
    call_record TEXT COLLATE "C",
    users TEXT COLLATE "C" NOT NULL
);
CREATE INDEX held_by_call ON held_events (tenant_id, integration_id, provider_call_id, seq);
CREATE INDEX held_by_time ON held_events (received_at);
CREATE TABLE call_updates (
    position BIGINT PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    integration_id TEXT COLLATE "C" NOT NULL,
    call_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT,
    at TEXT COLLATE "C" NOT NULL,
    users TEXT COLLATE "C" NOT NULL,
    call TEXT COLLATE "C" NOT NULL
);
CREATE INDEX call_updates_by_tenant ON call_updates (tenant_id, position);
CREATE INDEX call_updates_by_integration ON call_updates (tenant_id, integration_id);

-- What the writer stores goes with its integration (and so with its tenant, whose
-- integrations cascade). The tables are looked up in the schema the function was made in.
CREATE FUNCTION delete_integration_rows() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM deliveries WHERE tenant_id = OLD.tenant_id AND integration_id = OLD.id;
    DELETE FROM calls WHERE tenant_id = OLD.tenant_id AND integration_id = OLD.id;
    DELETE FROM held_events WHERE tenant_id = OLD.tenant_id AND integration_id = OLD.id;
    DELETE FROM call_updates WHERE tenant_id = OLD.tenant_id AND integration_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER integration_rows_go_with_it AFTER DELETE ON integrations
    FOR EACH ROW EXECUTE FUNCTION delete_integration_rows();

CREATE TABLE update_consumers (
    name TEXT COLLATE "C" PRIMARY KEY,
    position BIGINT NOT NULL
);
CREATE TABLE endpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" REFERENCES tenants (id) ON DELETE CASCADE,
    url TEXT COLLATE "C" NOT NULL,
    secret BYTEA NOT NULL,
    disabled TEXT COLLATE "C",
    position BIGINT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX endpoints_by_tenant ON endpoints (tenant_id);
CREATE TABLE forward_failures (
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    call_id TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at TEXT COLLATE "C",
    last_status BIGINT,
    last_error TEXT COLLATE "C" NOT NULL,
    failed_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (endpoint_id, position)
);
"#;

/// Schema 2 (SQLite's 8): what several nodes share besides the registry: the components, so
/// that a version uploaded to one node loads on every other, and the secrets every node must
/// hold alike (the admin token), sealed as settings are.
const SHARED_BY_NODES: &str = r#"
CREATE TABLE components (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    bytes BYTEA NOT NULL
);
CREATE TABLE shared_secrets (
    name TEXT COLLATE "C" PRIMARY KEY,
    sealed BYTEA NOT NULL
);
"#;

/// Brings the database to [`SCHEMA_VERSION`], a migration a transaction, each under the
/// migration lock. A database of a newer schema is refused rather than misread.
pub(super) async fn migrate(client: &mut ClientWrapper) -> Result<()> {
    loop {
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
            &[&MIGRATION_LOCK],
        )
        .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 version INTEGER NOT NULL
             )",
        )
        .await?;
        let found: i32 = match tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        if found == SCHEMA_VERSION {
            tx.commit().await?;
            return Ok(());
        }
        if found > SCHEMA_VERSION {
            tx.rollback().await?;
            return Err(StorageError::Newer {
                found,
                known: SCHEMA_VERSION,
            });
        }
        let step = usize::try_from(found)
            .ok()
            .and_then(|from| MIGRATIONS.get(from))
            .ok_or_else(|| StorageError::Corrupt(format!("schema version {found}")))?;
        tx.batch_execute(step).await?;
        tx.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&(found + 1)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            from = found,
            to = found + 1,
            "migrated the PostgreSQL registry"
        );
    }
}
