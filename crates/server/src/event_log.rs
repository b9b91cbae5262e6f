//! The durable event log: where every validated event and call record goes before the provider
//! hears "accepted".
//!
//! Appends are group-committed: one writer thread takes every append waiting at that moment
//! and writes them in one transaction, so a single fsync acknowledges a whole batch and
//! throughput grows with load instead of being capped by the disk's sync rate. Each caller's
//! future resolves only after its batch is committed.
//!
//! The log is also the outbox for what comes after it: the platform reads it in `seq` order
//! (`GET /admin/events?after=SEQ`) and remembers how far it got, so nothing acknowledged can be
//! lost between the host and the platform. The call updates each batch stored are offered on
//! the [`Hub`] once the batch is committed, never before (see [`crate::delivery`]); when
//! several nodes write the log, a commit is only announced, and each node's hub hears the
//! updates of all nodes from its tail of the database, in its order (see [`Announce`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{oneshot, watch};

use crate::delivery::{CallUpdate, Hub, StoredUpdate};
use crate::storage::{Appended, EventWriter, NewEvent, Sweep, Swept};

/// The most appends written in one transaction.
const MAX_BATCH: usize = 512;

/// Why an append was not stored.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The transaction failed; nothing of the batch was stored.
    #[error("the event log could not store the event: {0}")]
    Storage(String),
    /// The writer has stopped (the host is shutting down).
    #[error("the event log is closed")]
    Closed,
}

/// What the commit thread is asked to do.
// Appends are the traffic and sweeps are rare: boxing every append to make the rare variant
// no smaller would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// Store an event.
    Append {
        event: NewEvent,
        stored: oneshot::Sender<Result<Appended, DispatchError>>,
    },
    /// Sweep the calls (see [`EventWriter::sweep`]).
    Sweep {
        sweep: Sweep,
        swept: oneshot::Sender<Result<Swept, DispatchError>>,
    },
}

/// The handle that appends to the log.
pub struct EventLog {
    sender: Option<mpsc::Sender<Work>>,
    writer: Option<thread::JoinHandle<()>>,
    /// Whether the last commit failed (a full disk, a broken database): cleared by the next
    /// one that succeeds.
    failing: Arc<AtomicBool>,
}

impl EventLog {
    /// Starts the commit thread, which owns `writer` (from
    /// [`Storage::event_writer`](crate::storage::Storage::event_writer)) and tells `announce`
    /// of each commit's call updates. The number of events in each commit goes to
    /// `commit_sizes`.
    pub fn start(
        writer: Box<dyn EventWriter>,
        announce: Announce,
        commit_sizes: Histogram,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let failing = Arc::new(AtomicBool::new(false));
        let writer = {
            let failing = Arc::clone(&failing);
            let committed = Committed {
                sizes: commit_sizes,
                failing: Arc::clone(&failing),
                announce,
            };
            thread::Builder::new()
                .name("telehook-event-log".into())
                .spawn(move || write_batches(writer, receiver, &committed))?
        };
        Ok(Self {
            sender: Some(sender),
            writer: Some(writer),
            failing,
        })
    }

    /// Why the log cannot take events now, if it cannot: its writer has stopped, or its last
    /// commit failed.
    pub fn trouble(&self) -> Option<&'static str> {
        if self
            .writer
            .as_ref()
            .is_none_or(thread::JoinHandle::is_finished)
        {
            Some("the event log's writer has stopped")
        } else if self.failing.load(Ordering::Relaxed) {
            Some("the event log's last commit failed")
        } else {
            None
        }
    }

    /// Stores an event durably, unless it repeats a delivery already stored; resolves once
    /// its batch is committed.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, DispatchError> {
        let (stored, done) = oneshot::channel();
        self.send(Work::Append { event, stored })?;
        done.await.map_err(|_| DispatchError::Closed)?
    }

    /// Ends the calls that timed out and stores the held events that stayed unresolved, in a
    /// transaction of the commit thread's between two batches.
    pub async fn sweep(&self, sweep: Sweep) -> Result<Swept, DispatchError> {
        let (swept, done) = oneshot::channel();
        self.send(Work::Sweep { sweep, swept })?;
        done.await.map_err(|_| DispatchError::Closed)?
    }

    fn send(&self, work: Work) -> Result<(), DispatchError> {
        self.sender
            .as_ref()
            .ok_or(DispatchError::Closed)?
            .send(work)
            .map_err(|_| DispatchError::Closed)
    }
}

impl Drop for EventLog {
    /// Lets the writer commit what it was given, then waits for it.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Who hears of the call updates a commit stored.
pub enum Announce {
    /// The hub, offered them at once: the one node that writes the log, whose commits are
    /// all there is, in order.
    Hub(Hub),
    /// Told the last position committed, and nothing else: with several nodes writing, this
    /// node's commits interleave with others' in the log, and a hub offered only its own
    /// would hand a feed position 12 before another node's 11. The node's tail reads the log
    /// on this signal and offers the hub what it reads (see [`crate::delivery::tail`]).
    Position(watch::Sender<i64>),
}

/// Where the commit thread reports what it committed.
struct Committed {
    sizes: Histogram,
    failing: Arc<AtomicBool>,
    announce: Announce,
}

impl Committed {
    /// Offers committed updates on the hub, when anyone listens, or announces their last
    /// position.
    fn offer(&self, updates: Vec<StoredUpdate>) {
        let hub = match &self.announce {
            Announce::Hub(hub) => hub,
            Announce::Position(last) => {
                if let Some(position) = updates.iter().map(|update| update.position).max() {
                    last.send_if_modified(|last| {
                        let newer = position > *last;
                        *last = (*last).max(position);
                        newer
                    });
                }
                return;
            }
        };
        if !hub.is_heard() {
            return;
        }
        let updates: Vec<Arc<CallUpdate>> = updates
            .into_iter()
            .filter_map(|stored| match CallUpdate::try_from(stored) {
                Ok(update) => Some(Arc::new(update)),
                Err(err) => {
                    // The feeds read it from the log, which says what is wrong with it.
                    tracing::error!("a committed call update is not valid JSON: {err}");
                    None
                }
            })
            .collect();
        hub.offer(&updates);
    }
}

fn write_batches(
    mut writer: Box<dyn EventWriter>,
    receiver: mpsc::Receiver<Work>,
    committed: &Committed,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::new();
        let mut sweeps = Vec::new();
        let mut next = Some(first);
        while let Some(work) = next.take() {
            match work {
                Work::Append { event, stored } => batch.push((event, stored)),
                Work::Sweep { sweep, swept } => sweeps.push((sweep, swept)),
            }
            if batch.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit(&mut *writer, batch, committed);
        }
        for (sweep, swept) in sweeps {
            let result = match writer.sweep(&sweep) {
                Ok(mut done) => {
                    committed.offer(std::mem::take(&mut done.updates));
                    Ok(done)
                }
                Err(err) => Err(DispatchError::Storage(err.to_string())),
            };
            let _ = swept.send(result);
        }
    }
}

/// Writes one batch of appends in one transaction and tells each caller what became of it.
fn commit(
    writer: &mut dyn EventWriter,
    batch: Vec<(NewEvent, oneshot::Sender<Result<Appended, DispatchError>>)>,
    committed: &Committed,
) {
    let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| event).collect();
    let written = writer.append(&events);
    committed.failing.store(written.is_err(), Ordering::Relaxed);
    match written {
        Ok((appended, updates)) => {
            #[allow(clippy::cast_precision_loss)] // at most MAX_BATCH
            committed.sizes.observe(batch.len() as f64);
            for ((_, stored), appended) in batch.into_iter().zip(appended) {
                let _ = stored.send(Ok(appended));
            }
            // The providers' answers first: the platform's updates are on their way either
            // way, and would otherwise make every webhook wait for them.
            committed.offer(updates);
        }
        Err(err) => {
            tracing::error!("event log commit failed: {err}");
            for (_, stored) in batch {
                let _ = stored.send(Err(DispatchError::Storage(err.to_string())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use telehook::outcome::{Direction, Disposition, EventType, TelephonyEvent};

    use super::*;
    use crate::secrets::SettingsKey;
    use crate::storage::Storage;
    use crate::storage::sqlite::SqliteStorage;

    fn event() -> NewEvent {
        NewEvent {
            tenant_id: "acme".into(),
            integration_id: "pbx".into(),
            version: 1,
            received_at: "2026-11-26T00:00:00.000Z".into(),
            event: Some(TelephonyEvent {
                event: EventType::NotifyStart,
                direction: Some(Direction::In),
                disposition: Disposition::Unknown,
                src_phone: Some("+79161234567".into()),
                src_phone_ext: None,
                dst_phone: Some("101".into()),
                dst_phone_ext: None,
                call_id: None,
            }),
            call_record: None,
            users: Vec::new(),
            delivery: None,
            calls_since: "2026-11-25T00:00:00.000Z".into(),
        }
    }

    fn delivered(id: &str, repeats_after: &str) -> NewEvent {
        NewEvent {
            delivery: Some(crate::storage::NewDelivery {
                id: id.into(),
                repeats_after: repeats_after.into(),
                answer: format!("answer to {id}"),
            }),
            ..event()
        }
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_stored_once_within_its_window() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(
            &dir.path().join("events.db"),
            SettingsKey::from_bytes(&[0; 32]),
        )
        .expect("opens");
        let log = EventLog::start(
            storage.event_writer(false).expect("a writer"),
            Announce::Hub(Hub::default()),
            Histogram::new([1.0].into_iter()),
        )
        .expect("starts");
        let window = "2026-11-25T00:00:00.000Z";
        assert_eq!(
            log.append(delivered("d-1", window)).await.expect("stored"),
            Appended::Stored(1)
        );
        assert_eq!(
            log.append(delivered("d-1", window))
                .await
                .expect("answered"),
            Appended::Repeat("answer to d-1".into())
        );
        assert_eq!(
            log.append(delivered("d-2", window)).await.expect("stored"),
            Appended::Stored(2)
        );
        // Once the first delivery is older than the window, the same id is a new delivery.
        let later = "2026-11-27T00:00:00.000Z";
        assert_eq!(
            log.append(delivered("d-1", later)).await.expect("stored"),
            Appended::Stored(3)
        );
        let key = crate::storage::IntegrationKey::new("acme", "pbx");
        assert_eq!(storage.events(&key, 0, 10).await.expect("reads").len(), 3);
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_until_one_succeeds() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.db");
        let storage = SqliteStorage::open(&path, SettingsKey::from_bytes(&[0; 32])).expect("opens");
        let log = EventLog::start(
            storage.event_writer(false).expect("a writer"),
            Announce::Hub(Hub::default()),
            Histogram::new([1.0].into_iter()),
        )
        .expect("starts");
        assert_eq!(log.trouble(), None);

        // The table goes away under the writer, and comes back.
        let rename = |from: &str, to: &str| {
            rusqlite::Connection::open(&path)
                .and_then(|conn| conn.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}")))
                .expect("renames");
        };
        rename("events", "events_away");
        let refused = log.append(event()).await;
        assert!(
            matches!(&refused, Err(DispatchError::Storage(why)) if why.contains("no such table")),
            "{refused:?}"
        );
        assert_eq!(log.trouble(), Some("the event log's last commit failed"));

        rename("events_away", "events");
        assert_eq!(
            log.append(event()).await.expect("stored"),
            Appended::Stored(1)
        );
        assert_eq!(log.trouble(), None);
    }
}
