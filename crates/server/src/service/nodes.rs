//! With several nodes: what keeps this one in step with the others (see [`crate::cluster`]).
//!
//! A change an admin makes through one node is made in the database, applied to that node's
//! routes and forwarders, and signalled; every other node rebuilds what the signal names from
//! the database. A signal lost (NATS down, a node reconnecting) is made up for by re-reading
//! every loaded route and every endpoint each [`RECHECK`], and at once when the connection to
//! NATS is made again. So a change takes effect on every node within milliseconds, and within
//! [`RECHECK`] when NATS loses its signal.

use std::sync::Arc;
use std::time::Duration;

use super::{Service, ServiceError};
use crate::cluster::{Cluster, Signal};
use crate::delivery::tail;
use crate::storage::IntegrationKey;

/// How often a node re-reads its loaded routes and the endpoints, in case a signal was lost.
pub const RECHECK: Duration = Duration::from_secs(30);

impl Service {
    /// Keeps this node in step with the others for as long as the service serves: feeds its
    /// hub from the log (see [`tail`]), tells the others of its commits, and applies what
    /// they signal. Returns at once for a service that is the only node.
    pub async fn keep_in_step(self: Arc<Self>) {
        let Some(nodes) = &self.nodes else {
            return;
        };
        let follow = tail::follow(
            Arc::clone(&self.storage),
            self.hub.clone(),
            nodes.committed.clone(),
            Arc::clone(&nodes.heard),
        );
        tokio::select! {
            () = follow => {}
            () = announce_commits(&nodes.cluster, nodes.committed.clone()) => {}
            () = self.hear_the_others(&nodes.cluster) => {}
        }
    }

    /// Tells the other nodes that an integration changed, once this node has applied it.
    pub(super) async fn integration_changed(&self, key: &IntegrationKey) {
        if let Some(nodes) = &self.nodes {
            nodes
                .cluster
                .tell(Signal::Integration {
                    tenant: key.tenant_id.clone(),
                    integration: key.integration_id.clone(),
                })
                .await;
        }
    }

    /// Tells the other nodes that an endpoint changed, once this node has applied it.
    pub(super) async fn endpoint_changed(&self, id: &str) {
        if let Some(nodes) = &self.nodes {
            nodes
                .cluster
                .tell(Signal::Endpoint { id: id.to_owned() })
                .await;
        }
    }

    async fn hear_the_others(self: &Arc<Self>, cluster: &Cluster) {
        let mut signals = loop {
            match cluster.signals().await {
                Ok(signals) => break signals,
                Err(err) => {
                    tracing::error!("cannot hear the other nodes: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.tick().await;
        loop {
            tokio::select! {
                signal = signals.next() => match signal {
                    Some(signal) => self.apply(signal),
                    None => {
                        tracing::error!("the signals of the other nodes ended");
                        return;
                    }
                },
                _ = recheck.tick() => self.recheck().await,
                () = cluster.reconnected() => self.recheck().await,
            }
        }
    }

    /// Applies another node's signal. A change is applied on a task of its own: compiling a
    /// version may take seconds, and the signals behind it (another commit to stream) must
    /// not wait for that. Two changes to one integration are still applied in turn (see
    /// `Rebuilds`), each from what the database holds when its turn comes.
    fn apply(self: &Arc<Self>, signal: Signal) {
        let service = Arc::clone(self);
        match signal {
            Signal::Integration {
                tenant,
                integration,
            } => {
                tokio::spawn(async move {
                    let key = IntegrationKey::new(&tenant, &integration);
                    let applied = if service.is_loaded(&key) {
                        service.refresh_route(&key).await
                    } else {
                        service.precompile(&key).await
                    };
                    if let Err(err) = applied {
                        tracing::error!(integration = %key, "applying a changed integration: {err}");
                    }
                });
            }
            Signal::Endpoint { id } => {
                tokio::spawn(async move {
                    if let Err(err) = service.forwarders.restart(&id).await {
                        tracing::error!(endpoint = %id, "restarting a changed endpoint: {err}");
                    }
                });
            }
            Signal::Committed { .. } => {
                if let Some(nodes) = &self.nodes {
                    nodes.heard.notify_one();
                }
            }
        }
    }

    /// Compiles the active version of an integration this node has not loaded into its cache
    /// of artifacts, so that its first webhook here loads it in a millisecond rather than
    /// waiting for the compiler. The route itself is built on that webhook, from what the
    /// database holds then: one built now could be a change behind by then.
    async fn precompile(self: &Arc<Self>, key: &IntegrationKey) -> Result<(), ServiceError> {
        let Some(integration) = self.storage.integration(key).await? else {
            return Ok(());
        };
        if let Some(version) = integration.active_version {
            self.load_version(key, version).await?;
        }
        Ok(())
    }

    fn is_loaded(&self, key: &IntegrationKey) -> bool {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }

    /// Re-reads every loaded route and the endpoints, for the signals that were lost.
    async fn recheck(self: &Arc<Self>) {
        let loaded: Vec<IntegrationKey> = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for key in loaded {
            if let Err(err) = self.refresh_route(&key).await {
                tracing::error!(integration = %key, "re-reading an integration: {err}");
            }
        }
        if let Err(err) = self.forwarders.sync().await {
            tracing::error!("re-reading the endpoints: {err}");
        }
    }
}

/// Tells the other nodes of each position this node's event log commits, coalesced: a signal
/// says "read up to here", so one for the latest of several commits does for all of them.
async fn announce_commits(cluster: &Cluster, mut committed: tokio::sync::watch::Receiver<i64>) {
    while committed.changed().await.is_ok() {
        let position = *committed.borrow_and_update();
        cluster.tell(Signal::Committed { position }).await;
    }
}
