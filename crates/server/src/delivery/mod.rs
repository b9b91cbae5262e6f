//! Delivery: every change to a call, from the durable log to the platform, by three paths that
//! all read that log and so can lose nothing it acknowledged.
//!
//! The event log's writer stores a [`CallUpdate`] for every event it attaches to a call, and
//! for every call it ends after the timeout, in the same transaction as the event: its
//! `position` orders all updates, and a consumer that remembers the last position it took
//! resumes exactly after it. Once a batch is committed, its updates are offered on the
//! [`Hub`], so that live consumers hear of them without asking the database; a consumer that
//! starts behind, or falls behind, reads the log itself until it has caught up (see
//! [`feed`]). The hub is a shortcut past the database, never the record.
//!
//! - [`feed`]: a resumable, filtered sequence of updates from a position; the library API
//!   ([`Subscription`]) and the live stream (`GET /stream/calls`) are built on it;
//! - [`forwarder`]: pushes each update to the endpoints the admin configured, signed as
//!   Standard Webhooks sign, retried on a schedule, in order per call;
//! - [`signature`]: the Standard Webhooks signature; [`stream_token`]: the per-user tokens a
//!   browser streams with;
//! - [`tail`]: with several nodes, what offers the hub the updates of all of them.
//!
//! Every path delivers at least once: after a crash, what was sent but not yet recorded as
//! sent is sent again, with the same position (and, to an endpoint, the same `webhook-id`).

pub mod feed;
pub mod forwarder;
pub mod hub;
pub mod runtime;
pub mod signature;
pub mod stream_token;
mod subscription;
pub mod tail;

use serde::Serialize;
use serde_json::value::RawValue;

pub use feed::{Feed, FeedError};
pub use hub::Hub;
pub use subscription::Subscription;

/// A lock of delivery's shared state. What it guards is whole between statements, so a lock
/// poisoned by a panic elsewhere is safe to keep using.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The type of every update, as Standard Webhooks payloads name theirs.
pub const UPDATE_TYPE: &str = "call.updated";

/// One change to a call, as every consumer gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    /// Its place among all updates: increases with every update committed, in commit order.
    pub position: i64,
    /// The tenant whose call it is.
    pub tenant_id: String,
    /// The integration whose events made the call.
    pub integration_id: String,
    /// Our id of the call.
    pub call_id: String,
    /// The platform users the call notifies, after this change.
    pub users: Vec<String>,
    /// The update as JSON: `{"type": "call.updated", "timestamp": ..., "data": {"position",
    /// "tenant", "integration", "seq", "call"}}`, where `seq` is the event that changed the
    /// call (`null` when the host ended it after the timeout) and `call` the whole call after
    /// the change. The stream's `data:` and the forwarded body are these bytes.
    pub body: String,
}

/// An update as the log keeps it, before it has its JSON.
#[derive(Debug, Clone)]
pub struct StoredUpdate {
    /// See [`CallUpdate::position`].
    pub position: i64,
    /// See [`CallUpdate::tenant_id`].
    pub tenant_id: String,
    /// See [`CallUpdate::integration_id`].
    pub integration_id: String,
    /// See [`CallUpdate::call_id`].
    pub call_id: String,
    /// The event that changed the call; `None` when the host ended it after the timeout.
    pub seq: Option<i64>,
    /// When the change happened (RFC 3339): the event's receipt, or the sweep's time.
    pub at: String,
    /// See [`CallUpdate::users`].
    pub users: Vec<String>,
    /// The call after the change, as JSON.
    pub call: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    r#type: &'static str,
    timestamp: &'a str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    position: i64,
    tenant: &'a str,
    integration: &'a str,
    seq: Option<i64>,
    call: &'a RawValue,
}

impl TryFrom<StoredUpdate> for CallUpdate {
    type Error = serde_json::Error;

    /// Wraps the stored call in the update's envelope: the call's JSON is copied, not parsed
    /// again into values.
    fn try_from(stored: StoredUpdate) -> Result<Self, Self::Error> {
        let call: &RawValue = serde_json::from_str(&stored.call)?;
        let body = serde_json::to_string(&Envelope {
            r#type: UPDATE_TYPE,
            timestamp: &stored.at,
            data: Data {
                position: stored.position,
                tenant: &stored.tenant_id,
                integration: &stored.integration_id,
                seq: stored.seq,
                call,
            },
        })?;
        Ok(Self {
            position: stored.position,
            tenant_id: stored.tenant_id,
            integration_id: stored.integration_id,
            call_id: stored.call_id,
            users: stored.users,
            body,
        })
    }
}

/// Which updates a consumer wants; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateFilter {
    /// Only this tenant's.
    pub tenant_id: Option<String>,
    /// Only the updates of calls that notify this user (of the tenant, when one is named).
    pub user: Option<String>,
}

impl UpdateFilter {
    /// Whether `update` passes.
    pub fn passes(&self, update: &CallUpdate) -> bool {
        self.tenant_id
            .as_ref()
            .is_none_or(|tenant| *tenant == update.tenant_id)
            && self
                .user
                .as_ref()
                .is_none_or(|user| update.users.contains(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(position: i64, users: &[&str]) -> StoredUpdate {
        StoredUpdate {
            position,
            tenant_id: "acme".into(),
            integration_id: "pbx".into(),
            call_id: "c-1".into(),
            seq: Some(7),
            at: "2026-12-02T10:00:00.000Z".into(),
            users: users.iter().map(|user| (*user).to_owned()).collect(),
            call: r#"{"id":"c-1","state":"ringing"}"#.into(),
        }
    }

    #[test]
    fn an_update_wraps_its_call_in_the_standard_webhooks_envelope() {
        let update = CallUpdate::try_from(stored(42, &["anna"])).expect("valid");
        let body: serde_json::Value = serde_json::from_str(&update.body).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "call.updated",
                "timestamp": "2026-12-02T10:00:00.000Z",
                "data": {
                    "position": 42, "tenant": "acme", "integration": "pbx", "seq": 7,
                    "call": { "id": "c-1", "state": "ringing" },
                },
            })
        );
    }

    #[test]
    fn a_filter_passes_its_tenant_and_user_only() {
        let update = CallUpdate::try_from(stored(1, &["anna", "boris"])).expect("valid");
        let filter = |tenant: Option<&str>, user: Option<&str>| UpdateFilter {
            tenant_id: tenant.map(str::to_owned),
            user: user.map(str::to_owned),
        };
        assert!(filter(None, None).passes(&update));
        assert!(filter(Some("acme"), Some("boris")).passes(&update));
        assert!(!filter(Some("globex"), None).passes(&update));
        assert!(!filter(Some("acme"), Some("carol")).passes(&update));
    }
}
