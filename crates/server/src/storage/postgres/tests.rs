//! What only the PostgreSQL backend has to prove: positions that a follower never skips while
//! writers of several nodes commit at once, migrations that nodes starting together run once,
//! and a writer that outlives its connection. (What both backends do alike is in
//! `storage::conformance`.)

use std::collections::BTreeSet;
use std::sync::Arc;

use telehook::outcome::EventType;

use super::PostgresStorage;
use super::testing::{TestSchema, connect};
use crate::delivery::UpdateFilter;
use crate::storage::conformance::{Writer, key, seqs};
use crate::storage::fixtures::start;
use crate::storage::{
    Appended, CallFilter, EventWriter, IntegrationKey, NewDelivery, NewEvent, Storage, StorageError,
};

/// How many writers append at once, half on each of two nodes.
const WRITERS: usize = 4;
/// How many events each writer appends.
const EVENTS_PER_WRITER: usize = 1_500;
/// The sizes of the batches, drawn at random: mostly small, some as the event log makes them
/// under load.
const BATCH_SIZES: [usize; 7] = [1, 1, 2, 3, 8, 16, 64];
/// How many calls the writers share the events of.
const CALLS: usize = 50;
/// How many delivery ids the writers share: a delivery stored by one writer is a repeat to
/// every other.
const DELIVERIES: usize = 300;

/// An event of one of the shared calls, now and then of one of the shared deliveries.
fn random_event(rng: &mut fastrand::Rng) -> NewEvent {
    let mut event = start(&format!("c-{}", rng.usize(..CALLS)));
    if let Some(telephony) = &mut event.event {
        telephony.event = [
            EventType::NotifyStart,
            EventType::NotifyAnswer,
            EventType::NotifyEnd,
        ][rng.usize(..3)];
    }
    if rng.usize(..4) == 0 {
        event.delivery = Some(NewDelivery {
            id: format!("d-{}", rng.usize(..DELIVERIES)),
            repeats_after: "2000-01-01T00:00:00.000Z".into(),
            answer: "ok".into(),
        });
    }
    event
}

/// Appends [`EVENTS_PER_WRITER`] events in batches of random sizes; what became of them.
fn hammer(mut writer: Box<dyn EventWriter>, seed: u64) -> Vec<(NewEvent, Appended, usize)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut results = Vec::with_capacity(EVENTS_PER_WRITER);
    while results.len() < EVENTS_PER_WRITER {
        let size = BATCH_SIZES[rng.usize(..BATCH_SIZES.len())];
        let batch: Vec<NewEvent> = (0..size).map(|_| random_event(&mut rng)).collect();
        let (appended, updates) = writer
            .append(&batch.iter().collect::<Vec<_>>())
            .expect("the batch commits");
        let update_count = updates.len();
        for (index, (event, appended)) in batch.into_iter().zip(appended).enumerate() {
            // The batch's updates are counted once, on its first event.
            results.push((event, appended, if index == 0 { update_count } else { 0 }));
        }
    }
    results
}

/// Reads everything after `after` in pages, checking that each page goes on from the last.
async fn follow(storage: &PostgresStorage, after: &mut (i64, i64)) -> (Vec<i64>, Vec<i64>) {
    let events: Vec<i64> = storage
        .all_events(after.0, 200)
        .await
        .expect("the feed reads")
        .iter()
        .map(|event| event.seq)
        .collect();
    let updates: Vec<i64> = storage
        .call_updates(&UpdateFilter::default(), after.1, 200)
        .await
        .expect("the updates read")
        .iter()
        .map(|update| update.position)
        .collect();
    for (page, last) in [(&events, &mut after.0), (&updates, &mut after.1)] {
        for position in page {
            assert!(position > last, "{position} came after {last}");
            *last = *position;
        }
    }
    (events, updates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_every_event_once_while_writers_of_two_nodes_commit_at_once() {
    let schema = TestSchema::create().await;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(Arc::new(
            PostgresStorage::connect(schema.url(), key())
                .await
                .expect("a node connects"),
        ));
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| {
            let writer = nodes[index % 2].event_writer(false).expect("a writer");
            std::thread::spawn(move || hammer(writer, index as u64))
        })
        .collect();

    let follower = &nodes[0];
    let mut after = (0, 0);
    let (mut seen_events, mut seen_updates) = (Vec::new(), Vec::new());
    loop {
        let finished = writers.iter().all(std::thread::JoinHandle::is_finished);
        let (events, updates) = follow(follower, &mut after).await;
        let idle = events.is_empty() && updates.is_empty();
        seen_events.extend(events);
        seen_updates.extend(updates);
        if finished && idle {
            break;
        }
    }

    let results: Vec<_> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("a writer ends"))
        .collect();
    let mut stored: Vec<i64> = results
        .iter()
        .filter_map(|(_, appended, _)| match appended {
            Appended::Stored(seq) => Some(*seq),
            _ => None,
        })
        .collect();
    stored.sort_unstable();
    let updates: usize = results.iter().map(|(_, _, updates)| updates).sum();
    let total = i64::try_from(stored.len()).expect("a count");
    assert!(total > 4_000, "{total} events stored");
    assert_eq!(
        stored,
        (1..=total).collect::<Vec<_>>(),
        "the writers were handed every seq once, without gaps"
    );
    assert_eq!(
        seen_events, stored,
        "the follower saw every event once, in order"
    );
    let positions = i64::try_from(updates).expect("a count");
    assert_eq!(
        seen_updates,
        (1..=positions).collect::<Vec<_>>(),
        "the follower saw every update once, in order"
    );

    // The writers took turns, so correlation decided as one writer would: one call per call
    // id, and each delivery id stored once, whichever node had it first.
    let calls = follower
        .calls(
            &IntegrationKey::new("acme", "pbx"),
            &CallFilter {
                limit: 1_000,
                ..CallFilter::default()
            },
        )
        .await
        .expect("the calls read");
    let call_ids: BTreeSet<_> = calls
        .iter()
        .filter_map(|call| call.provider_call_id.clone())
        .collect();
    assert_eq!((calls.len(), call_ids.len()), (CALLS, CALLS));
    let mut deliveries = BTreeSet::new();
    for (event, appended, _) in &results {
        if let (Some(delivery), Appended::Stored(_)) = (&event.delivery, appended) {
            assert!(
                deliveries.insert(&delivery.id),
                "{} stored twice",
                delivery.id
            );
        }
    }
    let sent: BTreeSet<_> = results
        .iter()
        .filter_map(|(event, _, _)| event.delivery.as_ref().map(|delivery| &delivery.id))
        .collect();
    assert_eq!(deliveries, sent, "every delivery stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_the_database_once() {
    let schema = TestSchema::create().await;
    let starts = (0..4).map(|_| PostgresStorage::connect(schema.url(), key()));
    for started in futures_util::future::join_all(starts).await {
        started.expect("every node starts");
    }
    let client = connect(schema.url()).await;
    let version: i32 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .expect("the version is recorded")
        .get(0);
    assert_eq!(version, super::schema::SCHEMA_VERSION);
    let sequencers: i64 = client
        .query_one("SELECT COUNT(*) FROM sequencer", &[])
        .await
        .expect("reads")
        .get(0);
    assert_eq!(sequencers, 1, "the schema was made once");
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused_untouched() {
    let schema = TestSchema::create().await;
    drop(
        PostgresStorage::connect(schema.url(), key())
            .await
            .expect("migrates"),
    );
    let client = connect(schema.url()).await;
    client
        .execute("UPDATE schema_version SET version = version + 1", &[])
        .await
        .expect("marked newer");
    let Err(err) = PostgresStorage::connect(schema.url(), key()).await else {
        panic!("a newer schema was opened");
    };
    let known = super::schema::SCHEMA_VERSION;
    assert!(
        matches!(err, StorageError::Newer { found, known: k } if found == known + 1 && k == known),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_that_does_not_answer_or_a_bad_url_is_an_error() {
    let err = PostgresStorage::connect("postgres://postgres@127.0.0.1:1/test", key())
        .await
        .err()
        .expect("nothing listens there");
    assert!(matches!(err, StorageError::Backend(_)), "{err}");
    let err = PostgresStorage::connect("postgres://[::1", key())
        .await
        .err()
        .expect("not a URL");
    assert!(matches!(err, StorageError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn the_writer_connects_again_after_losing_its_connection() {
    let schema = TestSchema::create().await;
    let name = format!("test{}", uuid::Uuid::now_v7().simple());
    let url = format!("{}&application_name={name}", schema.url());
    let storage = PostgresStorage::connect(&url, key())
        .await
        .expect("connects");
    let mut writer = Writer::of(storage.event_writer(false).expect("a writer"));
    assert_eq!(writer.one(start("c-1")).await, Appended::Stored(1));

    let client = connect(schema.url()).await;
    let killed: i64 = client
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&format!("{name} event log")],
        )
        .await
        .expect("terminates")
        .get(0);
    assert_eq!(killed, 1, "the writer's session");
    // The batch that finds the connection gone fails (nothing of it is stored); the next one
    // is written on a new connection.
    let lost = writer.append(&[start("c-2")]).await;
    let next = writer.append(&[start("c-3")]).await.expect("stored");
    let seqs = seqs(&storage).await;
    match lost {
        Err(_) => assert_eq!((next.0, seqs), (vec![Appended::Stored(2)], vec![1, 2])),
        Ok(_) => assert_eq!((next.0, seqs), (vec![Appended::Stored(3)], vec![1, 2, 3])),
    }
}

#[tokio::test]
async fn a_failed_batch_lets_the_other_writers_go_at_once() {
    let schema = TestSchema::create().await;
    let storage = PostgresStorage::connect(schema.url(), key())
        .await
        .expect("connects");
    let mut failing = Writer::of(storage.event_writer(false).expect("a writer"));
    let mut other = Writer::of(storage.event_writer(false).expect("a writer"));
    let mut broken = start("c-1");
    broken.event = None;
    let err = failing
        .append(&[start("c-0"), broken])
        .await
        .expect_err("an append with neither event nor record");
    assert!(matches!(err, StorageError::Invalid(_)), "{err}");
    // The failed batch held the sequencer; the other writer must not wait for it (it would
    // wait out its lock timeout if the rollback were left for the failing writer's next call).
    let started = std::time::Instant::now();
    assert_eq!(other.one(start("c-2")).await, Appended::Stored(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        seqs(&storage).await,
        [1],
        "nothing of the failed batch was stored"
    );
}
