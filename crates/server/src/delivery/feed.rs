//! A resumable sequence of call updates: from a position, in position order, each once.
//!
//! A feed listens on the [`Hub`] before it reads the log, then reads the log in pages until a
//! page comes back empty; from then on it takes the hub's batches, skipping what it has
//! already read. Every update committed after it began listening reaches it one way or the
//! other, so there is no gap between catching up and following; a feed that lags past what
//! the hub keeps goes back to reading the log.

use std::collections::VecDeque;
use std::sync::Arc;

use super::hub::{Listener, Taken};
use super::{CallUpdate, Hub, UpdateFilter};
use crate::storage::{Storage, StorageError};

/// How many updates a feed reads from the log at a time while it catches up.
const PAGE: u32 = 500;

/// Why a feed could not give its next update.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The log could not be read; the feed may be asked again.
    #[error("reading the call updates failed: {0}")]
    Storage(#[from] StorageError),
}

/// Updates after a position that pass a filter, in order.
pub struct Feed {
    storage: Arc<dyn Storage>,
    live: Arc<Listener>,
    filter: UpdateFilter,
    after: i64,
    /// Whether the last read of the log found nothing new: the hub has the rest.
    caught_up: bool,
    ready: VecDeque<Arc<CallUpdate>>,
}

impl Feed {
    /// The updates after `after` (0 for all) that pass `filter`.
    pub fn new(storage: Arc<dyn Storage>, hub: &Hub, filter: UpdateFilter, after: i64) -> Self {
        Self {
            live: hub.listen(filter.clone()),
            storage,
            filter,
            after,
            caught_up: false,
            ready: VecDeque::new(),
        }
    }

    /// The position of the last update given: where a new feed would resume.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The next update, waiting for one to be committed when there is none yet. Cancel-safe:
    /// an update is taken from the feed only when this returns it.
    pub async fn next(&mut self) -> Result<Arc<CallUpdate>, FeedError> {
        loop {
            if let Some(update) = self.ready.pop_front() {
                self.after = update.position;
                return Ok(update);
            }
            if self.caught_up {
                match self.live.take().await {
                    Taken::Updates(updates) => {
                        let after = self.after;
                        self.ready
                            .extend(updates.into_iter().filter(|update| update.position > after));
                    }
                    Taken::Lagged => {
                        tracing::debug!("a feed fell behind: reading the log");
                        self.caught_up = false;
                    }
                }
            } else {
                let page = self
                    .storage
                    .call_updates(&self.filter, self.after, PAGE)
                    .await?;
                self.caught_up = page.is_empty();
                self.ready.extend(page.into_iter().map(Arc::new));
            }
        }
    }
}
