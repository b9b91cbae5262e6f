//! A node's tail of the call updates, when several nodes write them: what feeds its [`Hub`].
//!
//! With several nodes, this node's commits are only a part of the log, interleaved with the
//! others' (see [`crate::event_log::Announce`]), so the hub is offered what the database
//! holds, in its order: the tail reads every update after the last one it read, when this
//! node commits, when another node says it did ([`crate::cluster::Signal::Committed`]), and
//! every [`POLL`] in case a signal was lost. Positions are handed out in commit order (see
//! [`crate::storage::postgres`]), so reading `after` the last position read never skips one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Hub, UpdateFilter};
use crate::storage::{Storage, StorageError};

/// How often the tail reads the log when no node said it committed: the bound on how late a
/// live stream hears another node's update when NATS lost the signal.
pub const POLL: Duration = Duration::from_secs(1);

/// How many updates the tail reads at a time.
const PAGE: u32 = 500;

/// Follows the log from its end, offering each update on `hub`, for as long as `committed`
/// (this node's event log's announcements) is open. `heard` is woken when another node
/// committed.
pub async fn follow(
    storage: Arc<dyn Storage>,
    hub: Hub,
    mut committed: watch::Receiver<i64>,
    heard: Arc<Notify>,
) {
    let mut after = loop {
        match storage.last_update().await {
            Ok(last) => break last,
            Err(err) => {
                tracing::warn!("the tail of the call updates cannot start: {err}");
                tokio::time::sleep(POLL).await;
            }
        }
    };
    loop {
        if let Err(err) = catch_up(&*storage, &hub, &mut after).await {
            tracing::warn!(after, "the tail of the call updates could not read: {err}");
        }
        tokio::select! {
            changed = committed.changed() => if changed.is_err() { return },
            () = heard.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Offers the hub every update after `after`, moving it on.
async fn catch_up(storage: &dyn Storage, hub: &Hub, after: &mut i64) -> Result<(), StorageError> {
    // The end is read before the hub is asked whether anyone listens: a feed that starts
    // listening after the question reads the log itself, past this end, so skipping to it
    // skips nothing any feed needs.
    let last = storage.last_update().await?;
    if last <= *after {
        return Ok(());
    }
    if !hub.is_heard() {
        *after = last;
        return Ok(());
    }
    while *after < last {
        let page = storage
            .call_updates(&UpdateFilter::default(), *after, PAGE)
            .await?;
        let Some(end) = page.last().map(|update| update.position) else {
            break;
        };
        *after = end;
        hub.offer(&page.into_iter().map(Arc::new).collect::<Vec<_>>());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::hub::Taken;
    use crate::storage::conformance::{Backend, Kind, Writer, key};
    use crate::storage::fixtures;

    /// Two nodes' writers commit, interleaved, into one PostgreSQL database; the tail of a
    /// third node, told only that something was committed, hands its hub every update once,
    /// in position order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tail_offers_every_nodes_updates_once_in_order() {
        let backend = Backend::new(Kind::Postgres).await;
        let mut first = backend.writer();
        let second = backend.reopen(key()).await.expect("a second node");
        let mut second = Writer::of(second.event_writer(false).expect("a writer"));
        let hub = Hub::default();
        let listener = hub.listen(UpdateFilter::default());
        let (announce, committed) = watch::channel(0);
        let heard = Arc::new(Notify::new());
        let tail = tokio::spawn(follow(
            Arc::clone(&backend.storage),
            hub.clone(),
            committed,
            Arc::clone(&heard),
        ));

        let writers = async {
            for round in 0..20 {
                let call = format!("c-{round}");
                first.one(fixtures::start(&call)).await;
                second.one(fixtures::start(&format!("{call}-b"))).await;
                heard.notify_one();
            }
        };
        let mut seen = Vec::new();
        let reader = async {
            while seen.len() < 40 {
                match listener.take().await {
                    Taken::Updates(updates) => {
                        seen.extend(updates.iter().map(|update| update.position));
                    }
                    Taken::Lagged => panic!("the listener lagged"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(writers, reader)
        })
        .await
        .expect("every update reaches the hub");
        assert_eq!(seen, (1..=40).collect::<Vec<i64>>());
        drop(announce);
        tail.await.expect("the tail ends with its event log");
    }
}
