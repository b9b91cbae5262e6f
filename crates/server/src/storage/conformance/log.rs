//! The event log: appending, reading in order, repeats of a delivery, the platform's
//! confirmation and pruning.

use super::Backend;
use crate::storage::fixtures::start;
use crate::storage::{Appended, IntegrationKey, NewDelivery, NewEvent, StorageError};

super::conformance!(
    events_are_read_in_order_per_integration_and_all_together,
    a_repeated_delivery_is_stored_once_within_its_window,
    confirming_consumption_prunes_only_what_the_platform_took,
);

/// A start of `call_id` for another integration.
fn elsewhere(call_id: &str) -> NewEvent {
    NewEvent {
        integration_id: "other".into(),
        ..start(call_id)
    }
}

fn delivered(id: &str, call_id: &str, repeats_after: &str) -> NewEvent {
    NewEvent {
        delivery: Some(NewDelivery {
            id: id.into(),
            repeats_after: repeats_after.into(),
            answer: format!("answer to {id}"),
        }),
        ..start(call_id)
    }
}

async fn events_are_read_in_order_per_integration_and_all_together(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let (appended, updates) = writer
        .append(&[start("c-1"), elsewhere("c-2"), start("c-3")])
        .await
        .expect("stored");
    assert_eq!(
        appended,
        [
            Appended::Stored(1),
            Appended::Stored(2),
            Appended::Stored(3)
        ]
    );
    assert_eq!(
        updates
            .iter()
            .map(|update| update.position)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(writer.one(start("c-4")).await, Appended::Stored(4));

    let pbx = IntegrationKey::new("acme", "pbx");
    let seqs = |events: Vec<crate::storage::StoredEvent>| -> Vec<i64> {
        events.iter().map(|event| event.seq).collect()
    };
    assert_eq!(
        seqs(storage.events(&pbx, 0, 10).await.expect("reads")),
        [1, 3, 4]
    );
    assert_eq!(seqs(storage.events(&pbx, 1, 1).await.expect("reads")), [3]);
    assert_eq!(seqs(storage.all_events(0, 2).await.expect("reads")), [1, 2]);
    assert_eq!(
        seqs(storage.all_events(2, 10).await.expect("reads")),
        [3, 4]
    );

    let first = &storage.all_events(0, 1).await.expect("reads")[0];
    let sent = start("c-1");
    assert_eq!(
        (
            first.tenant_id.as_str(),
            first.integration_id.as_str(),
            first.version
        ),
        ("acme", "pbx", 1)
    );
    assert_eq!(
        first.event,
        Some(serde_json::to_value(&sent.event).expect("JSON"))
    );
    assert_eq!(first.call_record, None);
    assert_eq!(first.users, ["anna"]);
    assert!(first.call.is_some(), "it joined a call");
    assert!(!first.unresolved);
}

async fn a_repeated_delivery_is_stored_once_within_its_window(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let window = "2026-01-01T00:00:00.000Z";
    let (appended, _) = writer
        .append(&[
            delivered("d-1", "c-1", window),
            delivered("d-1", "c-1", window),
        ])
        .await
        .expect("stored");
    assert_eq!(
        appended,
        [
            Appended::Stored(1),
            Appended::Repeat("answer to d-1".into())
        ],
        "a repeat within the same batch too"
    );
    assert_eq!(
        writer.one(delivered("d-1", "c-1", window)).await,
        Appended::Repeat("answer to d-1".into())
    );
    assert_eq!(
        writer.one(delivered("d-2", "c-2", window)).await,
        Appended::Stored(2)
    );
    // Once the first delivery is older than the window, the same id is a new delivery.
    let later = "2999-01-01T00:00:00.000Z";
    assert_eq!(
        writer.one(delivered("d-1", "c-1", later)).await,
        Appended::Stored(3)
    );
    assert_eq!(storage.all_events(0, 10).await.expect("reads").len(), 3);
}

async fn confirming_consumption_prunes_only_what_the_platform_took(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    writer
        .append(&[start("c-1"), start("c-2"), start("c-3")])
        .await
        .expect("stored");
    assert_eq!(storage.consumed().await.expect("reads"), 0);
    let later = "2999-01-01T00:00:00.000Z";
    let err = storage
        .confirm_consumed(4, later)
        .await
        .expect_err("past the log");
    assert!(
        matches!(&err, StorageError::Invalid(why) if why.contains("the last event stored is 3")),
        "{err}"
    );
    // Nothing is older than the retention yet.
    let kept = storage
        .confirm_consumed(1, "2000-01-01T00:00:00.000Z")
        .await
        .expect("confirmed");
    assert_eq!((kept.seq, kept.pruned), (1, 0));
    let pruned = storage.confirm_consumed(2, later).await.expect("confirmed");
    assert_eq!((pruned.seq, pruned.pruned), (2, 2));
    let lower = storage.confirm_consumed(1, later).await.expect("confirmed");
    assert_eq!(
        (lower.seq, lower.pruned),
        (2, 0),
        "a lower seq changes nothing"
    );
    assert_eq!(storage.consumed().await.expect("reads"), 2);
    assert_eq!(
        super::seqs(&**storage).await,
        [3],
        "what the platform has not taken stays"
    );
    assert_eq!(
        writer.one(start("c-4")).await,
        Appended::Stored(4),
        "seqs go on after pruning"
    );
}
