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
///
/// ```no_run
/// # async fn example(service: &telehook_server::Service) -> Result<(), Box<dyn std::error::Error>> {
/// use telehook_server::delivery::UpdateFilter;
///
/// let mut updates = service.subscribe("crm", UpdateFilter::default()).await?;
/// loop {
///     let update = updates.next().await?;
///     // The JSON every path carries: the call after the change, under `data.call`.
///     println!("{} {}", update.call_id, update.body);
///     updates.ack(update.position).await?; // once it is handled for good
/// }
/// # }
/// ```
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

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::histogram::Histogram;

    use super::*;
    use crate::event_log::{Announce, EventLog};
    use crate::secrets::SettingsKey;
    use crate::storage::fixtures::start;
    use crate::storage::sqlite::SqliteStorage;

    /// The service's storage and event log on the database in `dir`, as after a start.
    fn open(dir: &std::path::Path) -> (Arc<dyn Storage>, Hub, EventLog) {
        let storage =
            SqliteStorage::open(&dir.join("telehook.db"), SettingsKey::from_bytes(&[0; 32]))
                .expect("opens");
        let hub = Hub::default();
        let log = EventLog::start(
            storage.event_writer(false).expect("a writer"),
            Announce::Hub(hub.clone()),
            Histogram::new([1.0]),
        )
        .expect("starts");
        (Arc::new(storage), hub, log)
    }

    fn provider_call_id(update: &CallUpdate) -> String {
        let body: serde_json::Value = serde_json::from_str(&update.body).expect("JSON");
        body["data"]["call"]["provider_call_id"]
            .as_str()
            .expect("a call id")
            .to_owned()
    }

    #[tokio::test]
    async fn a_consumer_resumes_after_a_restart_after_what_it_acknowledged() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        {
            let (storage, hub, log) = open(dir.path());
            for call in ["c-1", "c-2", "c-3"] {
                log.append(start(call)).await.expect("stored");
            }
            let mut platform =
                Subscription::open(storage, &hub, "platform", UpdateFilter::default())
                    .await
                    .expect("opens");
            let first = platform.next().await.expect("an update");
            let second = platform.next().await.expect("an update");
            assert_eq!(
                (provider_call_id(&first), provider_call_id(&second)),
                ("c-1".to_owned(), "c-2".to_owned())
            );
            // Only the first is handled when the process dies.
            platform.ack(first.position).await.expect("stored");
        }
        let (storage, hub, log) = open(dir.path());
        let mut platform = Subscription::open(
            Arc::clone(&storage),
            &hub,
            "platform",
            UpdateFilter::default(),
        )
        .await
        .expect("opens");
        let again = platform.next().await.expect("an update");
        assert_eq!(
            provider_call_id(&again),
            "c-2",
            "resumes after the acknowledged one"
        );
        assert_eq!(
            provider_call_id(&platform.next().await.expect("an update")),
            "c-3"
        );

        // Caught up, it waits for what is committed next.
        let waiting = tokio::spawn(async move {
            platform
                .next()
                .await
                .map(|update| provider_call_id(&update))
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        log.append(start("c-4")).await.expect("stored");
        let live = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("in time")
            .expect("joins")
            .expect("an update");
        assert_eq!(live, "c-4");

        // Another name has a place of its own; an older acknowledgement moves nothing back.
        let other = Subscription::open(
            Arc::clone(&storage),
            &hub,
            "archive",
            UpdateFilter::default(),
        )
        .await
        .expect("opens");
        assert_eq!(other.position(), 0);
        let reopen = || {
            Subscription::open(
                Arc::clone(&storage),
                &hub,
                "platform",
                UpdateFilter::default(),
            )
        };
        reopen().await.expect("opens").ack(0).await.expect("stored");
        assert_eq!(reopen().await.expect("opens").position(), 1);
    }
}
