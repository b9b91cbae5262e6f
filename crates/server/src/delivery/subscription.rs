//! The library's way to consume call updates: a named consumer whose position is stored, so
//! that a platform embedding the server resumes after a restart exactly where it left off.

use std::sync::Arc;

use super::{CallUpdate, Feed, FeedError, Hub, UpdateFilter};
use crate::storage::Storage;

/// A named consumer's updates, from the position it last acknowledged.
///
/// Updates come in position order; one that was given but not acknowledged before a restart
/// is given again, so a consumer that acknowledges after it has durably handled an update
/// handles each at least once, and one that remembers positions handles each exactly once.
pub struct Subscription {
    feed: Feed,
    storage: Arc<dyn Storage>,
    consumer: String,
}

impl Subscription {
    /// Opens `consumer`'s subscription (a new name starts at the first update), with `filter`.
    pub(crate) async fn open(
        storage: Arc<dyn Storage>,
        hub: &Hub,
        consumer: &str,
        filter: UpdateFilter,
    ) -> Result<Self, FeedError> {
        let after = storage.consumer_position(consumer).await?;
        Ok(Self {
            feed: Feed::new(Arc::clone(&storage), hub, filter, after),
            storage,
            consumer: consumer.to_owned(),
        })
    }

    /// The next update, waiting for one when there is none yet. Cancel-safe.
    pub async fn next(&mut self) -> Result<Arc<CallUpdate>, FeedError> {
        self.feed.next().await
    }

    /// Stores that every update up to `position` has been handled: a subscription opened
    /// later under the same name starts after it. A position lower than one acknowledged
    /// already changes nothing.
    pub async fn ack(&self, position: i64) -> Result<(), FeedError> {
        Ok(self
            .storage
            .set_consumer_position(&self.consumer, position)
            .await?)
    }

    /// The position of the last update given.
    pub fn position(&self) -> i64 {
        self.feed.position()
    }
}
