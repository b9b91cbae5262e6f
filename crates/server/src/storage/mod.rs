//! Where the service keeps what must outlive it: tenants, integrations, parser versions,
//! settings, bindings, limits, the event log and the platform's position in it.
//!
//! The service speaks to storage through [`Storage`], in its own words, and never sees a
//! database type: a backend is one implementation of this trait (SQLite, [`sqlite`], is the
//! first and the embedded default; PostgreSQL, [`postgres`], is for several nodes sharing one
//! database), so that another one can come without touching the webhook path. Events are
//! written apart, through an [`EventWriter`] that the event log's group-commit thread owns
//! (see [`crate::event_log`]): one transaction per batch of appends.
//!
//! What the backends do alike is written once, here: the writer's correlation flow
//! (`append`), reading rows back (`columns`) and sealing (`sealing`); the backends differ
//! only in their SQL and in how they number the log. The same suite of tests runs on both
//! (`conformance`).
//!
//! The methods are `async` because a backend over the network (a connection pool) must not
//! block the service's threads; SQLite answers from a local file and does its work in place.

mod append;
mod columns;
#[cfg(test)]
pub(crate) mod conformance;
pub mod postgres;
mod sealing;
pub mod sqlite;

use std::time::{Duration, SystemTime};

use serde::Serialize;
use telehook::Settings;
use telehook::outcome::{CallRecord, TelephonyEvent};

use crate::calls::{Call, CallState};
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::{CallUpdate, StoredUpdate, UpdateFilter};
use crate::limits::IntegrationLimits;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database failed (disk full, corruption, a lost connection, ...).
    #[error("the registry database failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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

/// The result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The most events one confirmation prunes, so that it never holds the event log's writer
/// long; what is left goes with the next confirmation. (Also the most call updates one
/// pruning deletes.)
pub(crate) const PRUNE_BATCH: usize = 10_000;

/// What an operation on a missing integration answers. It names the integration by its id
/// alone: the caller asked within its tenant.
pub(crate) fn not_found(key: &IntegrationKey) -> StorageError {
    StorageError::NotFound(format!("integration `{}`", key.integration_id))
}

/// The storage of the service: every read and change it makes, named as the service names
/// them. Each change is atomic: a failed one leaves everything as it was.
#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// Fails unless the database answers: what a readiness probe asks.
    async fn ping(&self) -> Result<()>;

    /// Creates a tenant whose token hashes to `token_sha256`.
    async fn create_tenant(&self, id: &str, name: &str, token_sha256: &str) -> Result<Tenant>;
    /// Every tenant, by id.
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    /// The tenant whose token hashes to `token_sha256`.
    async fn tenant_by_token(&self, token_sha256: &str) -> Result<Option<String>>;
    /// Deletes a tenant with all its integrations.
    async fn delete_tenant(&self, id: &str) -> Result<()>;

    /// Creates an integration of a tenant.
    async fn create_integration(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
        webhook_token: &str,
    ) -> Result<Integration>;
    /// One integration.
    async fn integration(&self, key: &IntegrationKey) -> Result<Option<Integration>>;
    /// A tenant's integrations, by id.
    async fn integrations(&self, tenant_id: &str) -> Result<Vec<Integration>>;
    /// Every integration called `id`, whichever tenant owns it: the webhook URLs handed out
    /// before ids were per tenant name no tenant, and their token tells the owner apart.
    async fn integrations_named(&self, id: &str) -> Result<Vec<Integration>>;
    /// Deletes an integration with its versions, settings and bindings.
    async fn delete_integration(&self, key: &IntegrationKey) -> Result<()>;
    /// Replaces the secret part of the integration's webhook URL.
    async fn set_webhook_token(&self, key: &IntegrationKey, token: &str) -> Result<()>;

    /// Registers the next version of an integration's parser, whose component is stored.
    async fn add_version(&self, key: &IntegrationKey, sha256: &str, size: u64) -> Result<Version>;
    /// An integration's versions, oldest first.
    async fn versions(&self, key: &IntegrationKey) -> Result<Vec<Version>>;
    /// Makes `version` the one requests run on, and remembers it for
    /// [`Storage::rollback_target`].
    async fn activate(&self, key: &IntegrationKey, version: u32) -> Result<()>;
    /// The version that was active before the current one, to roll back to.
    async fn rollback_target(&self, key: &IntegrationKey) -> Result<Option<u32>>;

    /// Keeps a component's bytes under their SHA-256, once however often they are uploaded:
    /// the database is the record of every version's component, so that every node can load
    /// a version whichever node it was uploaded to (each node's data directory only caches
    /// them, with their compiled form).
    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()>;
    /// The bytes of the component stored under `sha256`, if one is.
    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>>;

    /// The value every node of this database shares under `name` (the admin token, the
    /// cluster's id): `candidate` if none is stored yet, stored sealed with the settings key,
    /// so that the first node to ask decides; the stored one otherwise. A node whose key does
    /// not open it is refused with [`StorageError::WrongKey`]: it would not open the settings
    /// either.
    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String>;

    /// An integration's settings, opened (they are sealed at rest).
    async fn settings(&self, key: &IntegrationKey) -> Result<Settings>;
    /// Sets (`Some`) or removes (`None`) settings, all at once.
    async fn update_settings(
        &self,
        key: &IntegrationKey,
        changes: &[(String, Option<String>)],
    ) -> Result<()>;

    /// An integration's extension-to-user bindings, by extension.
    async fn bindings(&self, key: &IntegrationKey) -> Result<Vec<Binding>>;
    /// Replaces all of an integration's bindings at once, as the platform's API does.
    async fn replace_bindings(&self, key: &IntegrationKey, bindings: &[Binding]) -> Result<()>;

    /// An integration's own limits (all `None` when the admin set none).
    async fn limits(&self, key: &IntegrationKey) -> Result<IntegrationLimits>;
    /// Replaces an integration's own limits.
    async fn set_limits(&self, key: &IntegrationKey, limits: &IntegrationLimits) -> Result<()>;

    /// An integration's events after `after_seq`, oldest first.
    async fn events(
        &self,
        key: &IntegrationKey,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Every tenant's events after `after_seq`, oldest first: the feed the platform consumes.
    async fn all_events(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>>;
    /// The last `seq` the platform has confirmed taking; 0 before it confirmed any.
    async fn consumed(&self) -> Result<i64>;
    /// Records that the platform has durably taken every event up to `seq` (a lower `seq`
    /// than already confirmed changes nothing), then prunes a bounded batch of the events it
    /// has taken that were received before `prune_before` (RFC 3339, as `received_at`).
    /// Events the platform has not confirmed are never pruned.
    async fn confirm_consumed(&self, seq: i64, prune_before: &str) -> Result<Consumption>;

    /// A writer of events for the event log's commit thread, on a connection of its own;
    /// without `fsync`, a commit reaches the operating system but is not flushed to the disk
    /// before it returns.
    fn event_writer(&self, fsync: bool) -> Result<Box<dyn EventWriter>>;

    /// An integration's calls that pass `filter`, most recently begun first.
    async fn calls(&self, key: &IntegrationKey, filter: &CallFilter) -> Result<Vec<Call>>;
    /// One call of an integration, with the events of it the log still holds, oldest first.
    async fn call(
        &self,
        key: &IntegrationKey,
        id: &str,
    ) -> Result<Option<(Call, Vec<StoredEvent>)>>;

    // Delivery (see [`crate::delivery`]).

    /// The call updates after `after` that pass `filter`, oldest first.
    async fn call_updates(
        &self,
        filter: &UpdateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<CallUpdate>>;
    /// The call updates at these positions that the log holds, oldest first.
    async fn call_updates_at(&self, positions: &[i64]) -> Result<Vec<CallUpdate>>;
    /// The position of the latest call update; 0 before the first.
    async fn last_update(&self) -> Result<i64>;
    /// Prunes a bounded batch of the oldest call updates made before `before` (RFC 3339) that
    /// every endpoint has taken; returns how many.
    async fn prune_updates(&self, before: &str) -> Result<usize>;
    /// The last position `consumer` acknowledged; 0 before it acknowledged any.
    async fn consumer_position(&self, consumer: &str) -> Result<i64>;
    /// Records that `consumer` handled every update up to `position`; a lower position than
    /// one recorded already changes nothing.
    async fn set_consumer_position(&self, consumer: &str, position: i64) -> Result<()>;

    /// Stores a new endpoint (its secret sealed at rest).
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()>;
    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<Endpoint>>;
    /// One endpoint.
    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>>;
    /// Deletes an endpoint with its failures.
    async fn delete_endpoint(&self, id: &str) -> Result<()>;
    /// Disables an endpoint, saying why.
    async fn disable_endpoint(&self, id: &str, why: &str) -> Result<()>;
    /// Enables an endpoint again.
    async fn enable_endpoint(&self, id: &str) -> Result<()>;
    /// Records that every update up to `position` was delivered to the endpoint or given up
    /// on.
    async fn set_endpoint_position(&self, id: &str, position: i64) -> Result<()>;
    /// The endpoint's failures (retrying and dead), oldest first.
    async fn failures(&self, endpoint_id: &str) -> Result<Vec<Failure>>;
    /// Stores a failure, replacing the one stored of the same update.
    async fn record_failure(&self, failure: &Failure) -> Result<()>;
    /// Forgets the failure of an update that was delivered at last.
    async fn clear_failure(&self, endpoint_id: &str, position: i64) -> Result<()>;
    /// Makes the endpoint's dead letters (all, or the one at `position`) due again, with a
    /// fresh schedule; returns how many.
    async fn replay_failures(&self, endpoint_id: &str, position: Option<i64>) -> Result<usize>;
}

/// Which calls a listing wants; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only calls that notify this platform user.
    pub user: Option<String>,
    /// Only calls in this state.
    pub state: Option<CallState>,
    /// Only calls whose first event was received at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only calls whose first event was received before this time (RFC 3339).
    pub until: Option<String>,
    /// Only calls begun before the call of this id: the next page after it.
    pub before: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// Appends events in batches, each batch one transaction: the storage side of the event log's
/// group commit, owned by its commit thread.
pub trait EventWriter: Send {
    /// Stores every event of `batch` that is not a repeat of a delivery already stored, or
    /// none of them; returns what became of each, in order, and the call updates stored.
    /// Each event joins its call (see [`crate::calls`]); the delivery of an event, the change
    /// to its call and the call's update are stored in the same transaction as the event.
    fn append(&mut self, batch: &[&NewEvent]) -> Result<(Vec<Appended>, Vec<StoredUpdate>)>;

    /// Ends the calls that have heard nothing since `sweep.close_before` (marked `timeout`,
    /// at `sweep.now`), and stores as unresolved the events held since before
    /// `sweep.unresolved_before` for a call that never came.
    fn sweep(&mut self, sweep: &Sweep) -> Result<Swept>;
}

/// What a sweep of the calls is to do; times are RFC 3339.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The time of the sweep.
    pub now: String,
    /// Open calls whose last event is older than this are ended.
    pub close_before: String,
    /// Held events received before this are stored unresolved.
    pub unresolved_before: String,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct Swept {
    /// The calls it ended, by integration.
    pub timed_out: Vec<IntegrationKey>,
    /// The held events it stored unresolved, by integration.
    pub unresolved: Vec<IntegrationKey>,
    /// The updates of the calls it ended.
    pub updates: Vec<StoredUpdate>,
}

/// What became of one appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this position of the log.
    Stored(i64),
    /// Held, durably, until the call it names is known (see [`crate::calls`]).
    Held,
    /// Not stored: its delivery was stored already, within the window, and the provider got
    /// this answer then (the JSON of [`telehook::outcome::HttpResponse`]).
    Repeat(String),
}

/// The provider's delivery an event came in, for telling a retry from a new delivery.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The provider's id of the delivery.
    pub id: String,
    /// A delivery of the same id stored before this time (RFC 3339) is not a repeat any more.
    pub repeats_after: String,
    /// The answer the provider gets, as JSON, to give a repeat.
    pub answer: String,
}

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

/// What is appended to the event log for one accepted webhook: the event, the call record,
/// or both.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The owning tenant.
    pub tenant_id: String,
    /// The integration whose webhook it came from.
    pub integration_id: String,
    /// The parser version that produced it.
    pub version: u32,
    /// When the webhook was received (RFC 3339).
    pub received_at: String,
    /// The telephony event.
    pub event: Option<TelephonyEvent>,
    /// The call record.
    pub call_record: Option<CallRecord>,
    /// The platform users bound to the operators it names; for an event that names only its
    /// call, its call's are taken instead.
    pub users: Vec<String>,
    /// The provider's delivery, when the parser named its id.
    pub delivery: Option<NewDelivery>,
    /// A call found by its parties must have had an event at or after this time (RFC 3339):
    /// the start of the call window.
    pub calls_since: String,
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
    /// Our id of the call it belongs to (the provider's is the event's `call_id`); `None` for
    /// an event stored before calls were kept, and for an unresolved one.
    pub call: Option<String>,
    /// Whether it names a call that never became known within the hold: its direction and
    /// phones are missing, as the parser left them.
    pub unresolved: bool,
}

/// Where the platform's reading of the event log stands after it confirmed a `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumption {
    /// The last `seq` the platform has confirmed taking: every event up to it.
    pub seq: i64,
    /// How many events this confirmation pruned.
    pub pruned: usize,
}

/// The current time as RFC 3339 with milliseconds, the form every stored time takes.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The time `wait` from now in the same form: when something postponed is due.
pub fn from_now(wait: Duration) -> String {
    humantime::format_rfc3339_millis(SystemTime::now() + wait).to_string()
}

/// The time `age` ago in the same form, for comparing with stored times (a retention's or a
/// window's start); the Unix epoch when `age` reaches past it.
pub fn ago(age: Duration) -> String {
    let then = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    humantime::format_rfc3339_millis(then).to_string()
}

/// What tests of storage and its users append.
#[cfg(test)]
pub(crate) mod fixtures {
    use telehook::outcome::{Direction, Disposition, EventType, TelephonyEvent};

    use super::NewEvent;

    /// A start of the call `call_id` of `acme/pbx`, received now, notifying `anna`.
    pub(crate) fn start(call_id: &str) -> NewEvent {
        NewEvent {
            tenant_id: "acme".into(),
            integration_id: "pbx".into(),
            version: 1,
            received_at: super::now(),
            event: Some(TelephonyEvent {
                event: EventType::NotifyStart,
                direction: Some(Direction::In),
                disposition: Disposition::Unknown,
                src_phone: Some("+79161234567".into()),
                src_phone_ext: None,
                dst_phone: Some("101".into()),
                dst_phone_ext: None,
                call_id: Some(call_id.into()),
            }),
            call_record: None,
            users: vec!["anna".into()],
            delivery: None,
            calls_since: "2026-01-01T00:00:00.000Z".into(),
        }
    }
}
