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
//! lost between the host and the platform.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use prometheus_client::metrics::histogram::Histogram;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

/// The most appends written in one transaction.
const MAX_BATCH: usize = 512;

/// What is appended for one accepted webhook.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The owning tenant.
    pub tenant_id: String,
    /// The integration whose webhook it came from.
    pub integration_id: String,
    /// The parser version that produced it.
    pub version: u32,
    /// When the webhook was received (RFC 3339).
    pub received_at: String,
    /// The telephony event, as JSON.
    pub event: Option<String>,
    /// The call record, as JSON.
    pub call_record: Option<String>,
    /// The platform users to notify, as a JSON array.
    pub users: String,
}

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

struct Append {
    event: NewEvent,
    stored: oneshot::Sender<Result<i64, DispatchError>>,
}

/// The handle that appends to the log.
pub struct EventLog {
    sender: Option<mpsc::Sender<Append>>,
    writer: Option<thread::JoinHandle<()>>,
    /// Whether the last commit failed (a full disk, a broken database): cleared by the next
    /// one that succeeds.
    failing: Arc<AtomicBool>,
}

impl EventLog {
    /// Starts the writer on its own connection to the registry database; with `fsync` off, a
    /// commit reaches the operating system but is not flushed to the disk before it is
    /// acknowledged. The number of events in each commit goes to `commit_sizes`.
    pub fn start(conn: Connection, fsync: bool, commit_sizes: Histogram) -> std::io::Result<Self> {
        if !fsync {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(std::io::Error::other)?;
        }
        let (sender, receiver) = mpsc::channel();
        let failing = Arc::new(AtomicBool::new(false));
        let writer = {
            let failing = Arc::clone(&failing);
            thread::Builder::new()
                .name("telehook-event-log".into())
                .spawn(move || write_batches(conn, receiver, &commit_sizes, &failing))?
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

    /// Stores an event durably; resolves to its sequence number once it is committed.
    pub async fn append(&self, event: NewEvent) -> Result<i64, DispatchError> {
        let (stored, done) = oneshot::channel();
        self.sender
            .as_ref()
            .ok_or(DispatchError::Closed)?
            .send(Append { event, stored })
            .map_err(|_| DispatchError::Closed)?;
        done.await.map_err(|_| DispatchError::Closed)?
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

fn write_batches(
    mut conn: Connection,
    receiver: mpsc::Receiver<Append>,
    sizes: &Histogram,
    failing: &AtomicBool,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(append) => batch.push(append),
                Err(_) => break,
            }
        }
        let written = write_batch(&mut conn, &batch);
        failing.store(written.is_err(), Ordering::Relaxed);
        match written {
            Ok(seqs) => {
                #[allow(clippy::cast_precision_loss)] // at most MAX_BATCH
                sizes.observe(batch.len() as f64);
                for (append, seq) in batch.into_iter().zip(seqs) {
                    let _ = append.stored.send(Ok(seq));
                }
            }
            Err(err) => {
                tracing::error!("event log commit failed: {err}");
                for append in batch {
                    let _ = append
                        .stored
                        .send(Err(DispatchError::Storage(err.to_string())));
                }
            }
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &[Append]) -> rusqlite::Result<Vec<i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut seqs = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events
                 (tenant_id, integration_id, version, received_at, event, call_record, users)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for Append { event, .. } in batch {
            insert.execute(params![
                event.tenant_id,
                event.integration_id,
                event.version,
                event.received_at,
                event.event,
                event.call_record,
                event.users,
            ])?;
            seqs.push(tx.last_insert_rowid());
        }
    }
    tx.commit()?;
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> NewEvent {
        NewEvent {
            tenant_id: "acme".into(),
            integration_id: "pbx".into(),
            version: 1,
            received_at: "2026-11-26T00:00:00.000Z".into(),
            event: Some("{}".into()),
            call_record: None,
            users: "[]".into(),
        }
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_until_one_succeeds() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.db");
        let log = EventLog::start(
            Connection::open(&path).expect("opens"),
            false,
            Histogram::new([1.0].into_iter()),
        )
        .expect("starts");
        assert_eq!(log.trouble(), None);

        let refused = log.append(event()).await;
        assert!(
            matches!(&refused, Err(DispatchError::Storage(why)) if why.contains("no such table")),
            "{refused:?}"
        );
        assert_eq!(log.trouble(), Some("the event log's last commit failed"));

        crate::service::registry::Registry::open(
            &path,
            crate::service::secrets::SettingsKey::from_bytes(&[0; 32]),
        )
        .expect("creates the tables");
        assert_eq!(log.append(event()).await.expect("stored"), 1);
        assert_eq!(log.trouble(), None);
    }
}
