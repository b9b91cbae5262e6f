//! Where the event log hands each committed batch of call updates to the feeds that follow it
//! live, each getting only the updates that pass its filter.
//!
//! A feed's [`Listener`] keeps what was offered to it until the feed takes it; the writer that
//! offers never waits on a feed, and a feed that does not keep up (more than [`INBOX`] updates
//! waiting) is told it lagged and reads the log instead. Only listeners that got something are
//! woken, so a hundred browsers each following one user cost the writer a filter check each,
//! not a hundred wake-ups per commit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::{CallUpdate, UpdateFilter, lock};

/// How many updates a listener holds for its feed before it counts as lagging.
pub const INBOX: usize = 4096;

/// The hub: cheap to clone, every clone the same.
#[derive(Debug, Clone, Default)]
pub struct Hub(Arc<Mutex<Vec<Weak<Listener>>>>);

/// One feed's place at the hub; it stops listening when dropped.
#[derive(Debug)]
pub struct Listener {
    filter: UpdateFilter,
    inbox: Mutex<Inbox>,
    offered: Notify,
}

#[derive(Debug, Default)]
struct Inbox {
    updates: VecDeque<Arc<CallUpdate>>,
    lagged: bool,
}

/// What a listener's feed takes.
#[derive(Debug)]
pub enum Taken {
    /// The updates offered since it last took, in position order.
    Updates(Vec<Arc<CallUpdate>>),
    /// More were offered than the inbox holds: the feed must read the log.
    Lagged,
}

impl Hub {
    /// Starts listening for the updates that pass `filter`: every batch offered after this
    /// call reaches the listener.
    pub fn listen(&self, filter: UpdateFilter) -> Arc<Listener> {
        let listener = Arc::new(Listener {
            filter,
            inbox: Mutex::default(),
            offered: Notify::new(),
        });
        lock(&self.0).push(Arc::downgrade(&listener));
        listener
    }

    /// Whether anyone listens: a batch nobody would take need not be prepared.
    pub fn is_heard(&self) -> bool {
        lock(&self.0)
            .iter()
            .any(|listener| listener.strong_count() > 0)
    }

    /// Offers a committed batch, in position order, to every listener.
    pub fn offer(&self, batch: &[Arc<CallUpdate>]) {
        let mut listeners = lock(&self.0);
        listeners.retain(|listener| listener.strong_count() > 0);
        for listener in listeners.iter().filter_map(Weak::upgrade) {
            if listener.put(batch) {
                listener.offered.notify_one();
            }
        }
    }
}

impl Listener {
    /// Puts what passes the filter in the inbox; returns whether anything did.
    fn put(&self, batch: &[Arc<CallUpdate>]) -> bool {
        let mut passing = batch
            .iter()
            .filter(|update| self.filter.passes(update))
            .peekable();
        if passing.peek().is_none() {
            return false;
        }
        let mut inbox = lock(&self.inbox);
        if !inbox.lagged {
            inbox.updates.extend(passing.cloned());
            if inbox.updates.len() > INBOX {
                inbox.lagged = true;
                inbox.updates = VecDeque::new();
            }
        }
        true
    }

    /// Waits until something was offered, and takes it. Cancel-safe: nothing is taken unless
    /// this returns it.
    pub async fn take(&self) -> Taken {
        loop {
            {
                let mut inbox = lock(&self.inbox);
                if inbox.lagged {
                    inbox.lagged = false;
                    return Taken::Lagged;
                }
                if !inbox.updates.is_empty() {
                    return Taken::Updates(inbox.updates.drain(..).collect());
                }
            }
            self.offered.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(position: i64, user: &str) -> Arc<CallUpdate> {
        Arc::new(CallUpdate {
            position,
            tenant_id: "acme".into(),
            integration_id: "pbx".into(),
            call_id: format!("c-{position}"),
            users: vec![user.into()],
            body: "{}".into(),
        })
    }

    fn positions(taken: Taken) -> Vec<i64> {
        match taken {
            Taken::Updates(updates) => updates.iter().map(|update| update.position).collect(),
            Taken::Lagged => panic!("lagged"),
        }
    }

    #[tokio::test]
    async fn each_listener_gets_what_passes_its_filter_and_a_slow_one_is_told_it_lagged() {
        let hub = Hub::default();
        let anna = hub.listen(UpdateFilter {
            tenant_id: Some("acme".into()),
            user: Some("anna".into()),
        });
        let everything = hub.listen(UpdateFilter::default());
        assert!(hub.is_heard());

        hub.offer(&[update(1, "anna"), update(2, "boris")]);
        hub.offer(&[update(3, "anna")]);
        assert_eq!(positions(anna.take().await), [1, 3]);
        assert_eq!(positions(everything.take().await), [1, 2, 3]);

        // Nothing for anna: she is not woken, and waits for what comes.
        hub.offer(&[update(4, "boris")]);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), anna.take());
        assert!(waiting.await.is_err());

        let flood: Vec<_> = (5..=5 + INBOX as i64)
            .map(|at| update(at, "boris"))
            .collect();
        hub.offer(&flood);
        assert!(matches!(everything.take().await, Taken::Lagged));
        hub.offer(&[update(10_000, "boris")]);
        assert_eq!(positions(everything.take().await), [10_000]);

        drop((anna, everything));
        assert!(!hub.is_heard());
    }
}
