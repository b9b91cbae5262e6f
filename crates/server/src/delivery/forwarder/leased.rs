//! Forwarding when several nodes serve: an endpoint's worker runs on the one node that holds
//! its lease (see [`crate::cluster::lease`]), so that each update is forwarded by one node.
//!
//! Every node keeps a waiter for every enabled endpoint, which asks for the lease every
//! [`RENEW_EVERY`]. The node that gets it reads the endpoint afresh (the last holder stored
//! its position there) and runs the worker as one node does, renewing the lease meanwhile; a
//! renewal that fails stops the worker, which stores its position, and the node waits for the
//! lease again. The next holder resumes from the stored position, so what the last one sent
//! after storing it is sent again, with the same `webhook-id`, as after a crash of one node.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Shared, Worker};
use crate::cluster::lease::{Lease, Leases, RENEW_EVERY};

/// Forwards to the endpoint `id` whenever this node holds its lease, until `stopped`.
pub(super) async fn run(
    shared: Arc<Shared>,
    id: String,
    leases: Leases,
    mut stopped: watch::Receiver<bool>,
) {
    let name = format!("endpoint/{id}");
    loop {
        let lease = match leases.acquire(&name).await {
            Ok(lease) => lease,
            Err(err) => {
                tracing::warn!(endpoint = %id, "asking for the endpoint's lease: {err}");
                None
            }
        };
        let Some(lease) = lease else {
            tokio::select! {
                () = tokio::time::sleep(RENEW_EVERY) => continue,
                _ = stopped.changed() => return,
            }
        };
        match shared.storage.endpoint(&id).await {
            Ok(Some(endpoint)) if endpoint.disabled.is_none() => {
                tracing::info!(endpoint = %id, "this node forwards to the endpoint");
                if forward_while_held(&shared, endpoint, lease, &mut stopped).await {
                    return;
                }
            }
            Ok(_) => {
                // Deleted or disabled on another node, whose signal has not reached this one.
                lease.release().await;
                return;
            }
            Err(err) => {
                tracing::error!(endpoint = %id, "forwarding cannot start: {err}");
                lease.release().await;
                tokio::select! {
                    () = tokio::time::sleep(RENEW_EVERY) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    }
}

/// Runs the endpoint's worker while the lease is held; returns whether `stopped` ended it
/// (else the lease was lost).
async fn forward_while_held(
    shared: &Arc<Shared>,
    endpoint: super::Endpoint,
    mut lease: Lease,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let id = endpoint.id.clone();
    let (stop_worker, worker_stopped) = watch::channel(false);
    let worker = Worker::run(Arc::clone(shared), endpoint, worker_stopped);
    tokio::pin!(worker);
    let mut renewal = tokio::time::interval(RENEW_EVERY);
    renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renewal.tick().await;
    loop {
        tokio::select! {
            () = &mut worker => {
                lease.release().await;
                return true;
            }
            _ = renewal.tick() => {
                if let Err(err) = lease.renew().await {
                    tracing::warn!(endpoint = %id, "another node may forward now: {err}");
                    let _ = stop_worker.send(true);
                    worker.await;
                    return false;
                }
            }
            _ = stopped.changed() => {
                let _ = stop_worker.send(true);
                worker.await;
                lease.release().await;
                return true;
            }
        }
    }
}
