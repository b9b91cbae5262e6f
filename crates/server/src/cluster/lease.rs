//! Leases: work that one node at a time must do (forwarding to an endpoint), held as a key of
//! a JetStream key-value bucket whose entries live [`LEASE_TTL`].
//!
//! A node takes a lease by creating its key, which fails while another node's entry lives,
//! and keeps it by updating the key every [`RENEW_EVERY`] against the revision it last wrote:
//! an update that finds another revision (the entry expired and another node took it) tells
//! it the lease is lost, and it stops. A node that dies stops renewing, and its entry expires
//! after [`LEASE_TTL`], when the next node that asks gets it. So two nodes hold one lease at
//! once only while a node that stopped hearing NATS has not yet noticed (at most a renewal
//! period after it expired); the work itself must bear that, as forwarding does: what it
//! resumes from is the position the database holds, and a repeat carries the same id.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use super::ClusterError;

/// How long a lease lives without renewal: how long a dead node's work waits for another.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// How often a held lease is renewed: a third of its life, so that one late renewal does
/// not lose it.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// How long a renewal may take before it counts as failed.
const RENEW_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a lease could not be asked for, or was lost.
#[derive(Debug, thiserror::Error)]
#[error("the lease `{key}`: {message}")]
pub struct LeaseError {
    key: String,
    message: String,
}

/// The cluster's leases.
#[derive(Clone)]
pub struct Leases {
    bucket: kv::Store,
    node: String,
}

/// A lease this node holds.
pub struct Lease {
    bucket: kv::Store,
    key: String,
    node: String,
    revision: u64,
}

impl Leases {
    /// The cluster's bucket of leases, created by the first node that asks.
    pub(super) async fn open(
        jetstream: jetstream::Context,
        cluster: &str,
        node: &str,
    ) -> Result<Self, ClusterError> {
        let bucket = format!("telehook-{cluster}-leases");
        // The bucket's stream is made here as `create_key_value` would make it: that call
        // first reads the account's limits, whose answer from a 2.9 server this client does
        // not parse. The settings are a key-value bucket's: one value a key, rollups,
        // direct gets, no deletes but markers.
        let refused = |err: &dyn std::fmt::Display| ClusterError::Refused {
            what: "the bucket of leases",
            message: err.to_string(),
        };
        jetstream
            .get_or_create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("which telehook node does what".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age: LEASE_TTL,
                duplicate_window: LEASE_TTL,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|err| refused(&err))?;
        let store = jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|err| refused(&err))?;
        Ok(Self {
            bucket: store,
            node: node.to_owned(),
        })
    }

    /// Takes the lease of `name` if no other node holds it; `None` if one does.
    pub async fn acquire(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        let key = key_of(name);
        match self.bucket.create(&key, self.node.clone().into()).await {
            Ok(revision) => Ok(Some(Lease {
                bucket: self.bucket.clone(),
                key,
                node: self.node.clone(),
                revision,
            })),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(LeaseError {
                key,
                message: err.to_string(),
            }),
        }
    }
}

impl Lease {
    /// Keeps the lease for another [`LEASE_TTL`]; an error means it is lost (or may be: one
    /// that cannot be renewed is treated as lost), and the work must stop.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        let lost = |message: String| LeaseError {
            key: self.key.clone(),
            message,
        };
        let update = self
            .bucket
            .update(&self.key, self.node.clone().into(), self.revision);
        match tokio::time::timeout(RENEW_TIMEOUT, update).await {
            Ok(Ok(revision)) => {
                self.revision = revision;
                Ok(())
            }
            Ok(Err(err)) => Err(lost(err.to_string())),
            Err(_) => Err(lost(format!("no renewal within {RENEW_TIMEOUT:?}"))),
        }
    }

    /// Gives the lease up, so that another node need not wait for it to expire; one that was
    /// lost meanwhile is left to its new holder.
    pub async fn release(self) {
        if let Err(err) = self
            .bucket
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
        {
            tracing::debug!(key = %self.key, "a lease was not released: {err}");
        }
    }
}

/// A key for any name: keys take only `[-/_=.a-zA-Z0-9]`, ids may hold more.
fn key_of(name: &str) -> String {
    format!("lease.{}", hex::encode(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NATS server the tests use, unless `TELEHOOK_TEST_NATS` names another.
    fn nats_url() -> String {
        std::env::var("TELEHOOK_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
    }

    /// The leases of a node of a cluster of its own (a fresh bucket).
    async fn node(cluster: &str, node: &str) -> Leases {
        let url = nats_url();
        let client = async_nats::connect(&url).await.unwrap_or_else(|err| {
            panic!(
                "the lease tests need NATS with JetStream and {url} does not answer ({err}): \
                 start it, or set TELEHOOK_TEST_NATS"
            )
        });
        Leases::open(jetstream::new(client), cluster, node)
            .await
            .expect("the bucket")
    }

    #[tokio::test]
    async fn one_node_holds_a_lease_until_it_releases_it_or_stops_renewing() {
        let cluster = uuid::Uuid::now_v7().simple().to_string();
        let (a, b) = (node(&cluster, "a").await, node(&cluster, "b").await);
        let mut held = a
            .acquire("endpoint/ep_1")
            .await
            .expect("asked")
            .expect("free");
        assert!(b.acquire("endpoint/ep_1").await.expect("asked").is_none());
        assert!(
            b.acquire("endpoint/ep_2").await.expect("asked").is_some(),
            "another name is another lease"
        );
        held.renew().await.expect("renewed");
        held.renew().await.expect("renewed again");
        assert!(b.acquire("endpoint/ep_1").await.expect("asked").is_none());
        held.release().await;
        let taken = b.acquire("endpoint/ep_1").await.expect("asked");
        assert!(taken.is_some(), "a released lease is free at once");

        // b stops renewing, as a node that died: its lease expires, a takes it, and b's late
        // renewal finds it lost.
        let mut stale = taken.expect("held");
        tokio::time::sleep(LEASE_TTL + Duration::from_secs(2)).await;
        let retaken = a.acquire("endpoint/ep_1").await.expect("asked");
        assert!(retaken.is_some(), "an expired lease is free");
        assert!(
            stale.renew().await.is_err(),
            "the dead holder's lease is lost"
        );
    }

    #[test]
    fn any_name_makes_a_valid_key_and_names_stay_apart() {
        let valid = |key: &str| {
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
        };
        for name in ["endpoint/ep 1", "ep_1", "ünïcode:*>"] {
            assert!(valid(&key_of(name)), "{}", key_of(name));
        }
        assert_ne!(key_of("ep 1"), key_of("ep_1"));
    }
}
