//! Several nodes on one database: how each hears what the others did.
//!
//! The database is the record of everything, so a node that hears nothing still serves
//! correctly, only later: it would re-read a changed integration on its periodic recheck, pick
//! up another node's call updates on its tail's poll, and take over an endpoint when its
//! lease expires. NATS makes "later" milliseconds:
//!
//! - [`Signal`]s over core NATS subjects: an integration or an endpoint changed (every other
//!   node reloads it), call updates were committed up to a position (every other node's tail
//!   reads them from the database). They are wake-ups, not records: one that is lost costs
//!   time, never data, and what they name is always read back from the database;
//! - [`lease`]: which node forwards to an endpoint, as keys with a time to live in a JetStream
//!   key-value bucket, so that each update is forwarded by one node at a time, and by another
//!   one within the lease's life when that node dies. What was delivered is the database's
//!   endpoint position, not the bucket's.
//!
//! The subjects and the bucket are named after an id the first node stores in the database
//! ([`Storage::shared_secret`]), so that the nodes of one database find each other, and those
//! of another database on the same NATS server never hear them.

pub mod lease;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::storage::{Storage, StorageError};
pub use lease::{Lease, Leases};

/// How long connecting to NATS may take before starting fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The cluster's id could not be read from (or stored in) the database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// NATS did not answer.
    #[error("NATS at {url} did not answer: {source}")]
    Connect {
        /// The server asked.
        url: String,
        /// Why not.
        source: async_nats::ConnectError,
    },
    /// NATS refused what the node needs of it (a subscription, the lease bucket).
    #[error("NATS refused {what}: {message}")]
    Refused {
        /// What was asked.
        what: &'static str,
        /// What the server or client said.
        message: String,
    },
}

/// What one node tells the others; every node reads back from the database what it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// An integration was changed or deleted: its route must be rebuilt.
    Integration {
        /// The integration's tenant.
        tenant: String,
        /// The integration's id.
        integration: String,
    },
    /// An endpoint was created, changed, deleted, or had failures replayed: its forwarding
    /// must start afresh.
    Endpoint {
        /// The endpoint's id.
        id: String,
    },
    /// Call updates were committed, up to `position`.
    Committed {
        /// The last position committed.
        position: i64,
    },
}

/// A signal with the node that sent it, so that a node skips its own.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(flatten)]
    signal: Signal,
}

/// This node's membership of its cluster: cheap to clone, every clone the same.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    subject: String,
    node: String,
    leases: Leases,
    /// Woken when the connection to NATS is made again: what was said meanwhile is lost, so
    /// the node re-reads what the signals would have told it.
    reconnected: Arc<Notify>,
}

impl Cluster {
    /// Joins the cluster of the nodes that share `storage`, through the NATS server at
    /// `nats_url`.
    pub async fn join(nats_url: &str, storage: &dyn Storage) -> Result<Self, ClusterError> {
        let id = storage
            .shared_secret("cluster-id", &uuid::Uuid::now_v7().simple().to_string())
            .await?;
        let node = uuid::Uuid::now_v7().simple().to_string();
        let reconnected = Arc::new(Notify::new());
        let on_event = Arc::clone(&reconnected);
        // The first connection is no reconnection: nothing was missed before it.
        let connected_before = Arc::new(AtomicBool::new(false));
        let client = async_nats::ConnectOptions::new()
            .name(format!("telehook {node}"))
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(move |event| {
                let on_event = Arc::clone(&on_event);
                let connected_before = Arc::clone(&connected_before);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            if connected_before.swap(true, Ordering::Relaxed) {
                                on_event.notify_one();
                            }
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("lost NATS: changes by other nodes are seen late");
                        }
                        other => tracing::info!("NATS: {other}"),
                    }
                }
            })
            .connect(nats_url)
            .await
            .map_err(|source| ClusterError::Connect {
                url: nats_url.to_owned(),
                source,
            })?;
        let leases = Leases::open(jetstream::new(client.clone()), &id, &node).await?;
        tracing::info!(cluster = %id, node = %node, "joined the cluster");
        Ok(Self {
            client,
            subject: format!("telehook.{id}"),
            node,
            leases,
            reconnected,
        })
    }

    /// Where endpoints' forwarding is leased.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Tells the other nodes; a signal that cannot be sent is logged and dropped (the others
    /// see the change on their periodic re-read).
    pub async fn tell(&self, signal: Signal) {
        let envelope = Envelope {
            node: self.node.clone(),
            signal,
        };
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!("a signal could not be written: {err}");
                return;
            }
        };
        if let Err(err) = self
            .client
            .publish(self.subject.clone(), payload.into())
            .await
        {
            tracing::warn!(signal = ?envelope.signal, "a signal to the other nodes was lost: {err}");
        }
    }

    /// The other nodes' signals, as they come.
    pub async fn signals(&self) -> Result<Signals, ClusterError> {
        let subscriber = self
            .client
            .subscribe(self.subject.clone())
            .await
            .map_err(|err| ClusterError::Refused {
                what: "the subscription to the other nodes' signals",
                message: err.to_string(),
            })?;
        Ok(Signals {
            subscriber,
            node: self.node.clone(),
        })
    }

    /// Resolves when the connection to NATS was made again after it was lost.
    pub async fn reconnected(&self) {
        self.reconnected.notified().await;
    }
}

/// The signals of the other nodes.
pub struct Signals {
    subscriber: async_nats::Subscriber,
    node: String,
}

impl Signals {
    /// The next signal of another node; `None` once the connection is closed for good.
    pub async fn next(&mut self) -> Option<Signal> {
        while let Some(message) = self.subscriber.next().await {
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) if envelope.node == self.node => {}
                Ok(envelope) => return Some(envelope.signal),
                Err(err) => tracing::warn!("a signal that is not ours was ignored: {err}"),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_names_its_kind_and_its_sender() {
        let envelope = Envelope {
            node: "n-1".into(),
            signal: Signal::Integration {
                tenant: "acme".into(),
                integration: "pbx".into(),
            },
        };
        let json = serde_json::to_value(&envelope).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "node": "n-1", "signal": "integration", "tenant": "acme", "integration": "pbx",
            })
        );
        let back: Envelope = serde_json::from_value(json).expect("read back");
        assert_eq!(back.signal, envelope.signal);
        let committed: Envelope =
            serde_json::from_str(r#"{"node":"n-2","signal":"committed","position":42}"#)
                .expect("read");
        assert_eq!(committed.signal, Signal::Committed { position: 42 });
    }
}
