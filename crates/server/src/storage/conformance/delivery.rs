//! Delivery: the call updates read back by position and filter, pruning, the named
//! consumers, the endpoints and their failures.

use super::Backend;
use crate::delivery::UpdateFilter;
use crate::delivery::forwarder::{Endpoint, Failure};
use crate::delivery::signature::Secret;
use crate::storage::fixtures::start;
use crate::storage::{NewEvent, StorageError, now};

super::conformance!(
    only_updates_past_the_retention_that_every_endpoint_took_are_pruned,
    updates_are_read_by_tenant_by_user_and_at_their_positions,
    a_consumer_position_only_moves_forward,
    endpoints_keep_their_sealed_secret_and_their_state,
    failures_are_recorded_replaced_cleared_and_replayed,
);

fn endpoint(id: &str, tenant_id: Option<&str>, position: i64) -> Endpoint {
    Endpoint {
        id: id.into(),
        tenant_id: tenant_id.map(str::to_owned),
        url: "http://127.0.0.1:9/".into(),
        secret: Secret::generate().expect("random"),
        disabled: None,
        position,
        created_at: now(),
    }
}

async fn only_updates_past_the_retention_that_every_endpoint_took_are_pruned(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let events: Vec<_> = (1..=4).map(|call| start(&format!("c-{call}"))).collect();
    let (_, updates) = writer.append(&events).await.expect("stored");
    assert_eq!(updates.len(), 4);
    storage
        .create_tenant("acme", "Acme", "hash")
        .await
        .expect("a tenant");
    storage
        .create_endpoint(&endpoint("ep_1", Some("acme"), 2))
        .await
        .expect("an endpoint");
    let everything = UpdateFilter::default();

    // Nothing is older than the retention yet.
    assert_eq!(
        storage
            .prune_updates("2000-01-01T00:00:00.000Z")
            .await
            .expect("prunes"),
        0
    );
    // Past it, only what the endpoint has taken goes.
    let later = "2999-01-01T00:00:00.000Z";
    assert_eq!(storage.prune_updates(later).await.expect("prunes"), 2);
    let left = storage
        .call_updates(&everything, 0, 10)
        .await
        .expect("reads");
    assert_eq!(
        left.iter()
            .map(|update| update.position)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    storage
        .set_endpoint_position("ep_1", 4)
        .await
        .expect("moves");
    assert_eq!(storage.prune_updates(later).await.expect("prunes"), 2);
    let left = storage
        .call_updates(&everything, 0, 10)
        .await
        .expect("reads");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        storage.last_update().await.expect("reads"),
        4,
        "pruned or not"
    );
}

async fn updates_are_read_by_tenant_by_user_and_at_their_positions(backend: &Backend) {
    let storage = &backend.storage;
    assert_eq!(storage.last_update().await.expect("reads"), 0);
    let mut writer = backend.writer();
    let of = |tenant: &str, call_id: &str, user: &str| NewEvent {
        tenant_id: tenant.into(),
        users: vec![user.into()],
        ..start(call_id)
    };
    writer
        .append(&[
            of("acme", "c-1", "anna"),
            of("rival", "c-2", "anna"),
            of("acme", "c-3", "bob"),
            of("acme", "c-1", "bob"),
        ])
        .await
        .expect("stored");
    let read = |tenant: Option<&str>, user: Option<&str>, after: i64| {
        let filter = UpdateFilter {
            tenant_id: tenant.map(str::to_owned),
            user: user.map(str::to_owned),
        };
        let storage = std::sync::Arc::clone(storage);
        async move {
            storage
                .call_updates(&filter, after, 10)
                .await
                .expect("reads")
                .iter()
                .map(|update| update.position)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(None, None, 0).await, [1, 2, 3, 4]);
    assert_eq!(read(None, None, 2).await, [3, 4]);
    assert_eq!(read(Some("acme"), None, 0).await, [1, 3, 4]);
    assert_eq!(
        read(Some("acme"), Some("anna"), 0).await,
        [1, 4],
        "c-1 notifies anna too"
    );
    assert_eq!(read(None, Some("anna"), 1).await, [2, 4]);
    assert_eq!(read(Some("rival"), Some("bob"), 0).await, Vec::<i64>::new());

    let at: Vec<i64> = storage
        .call_updates_at(&[3, 1, 99, 1])
        .await
        .expect("reads")
        .iter()
        .map(|update| update.position)
        .collect();
    assert_eq!(
        at,
        [1, 1, 3],
        "oldest first, one for each time it is asked for"
    );
    let update = &storage.call_updates_at(&[2]).await.expect("reads")[0];
    assert_eq!(
        (
            update.tenant_id.as_str(),
            update.integration_id.as_str(),
            update.users.as_slice()
        ),
        ("rival", "pbx", ["anna".to_owned()].as_slice())
    );
}

async fn a_consumer_position_only_moves_forward(backend: &Backend) {
    let storage = &backend.storage;
    assert_eq!(storage.consumer_position("crm").await.expect("reads"), 0);
    storage.set_consumer_position("crm", 5).await.expect("set");
    storage.set_consumer_position("crm", 3).await.expect("set");
    storage
        .set_consumer_position("billing", 1)
        .await
        .expect("set");
    assert_eq!(storage.consumer_position("crm").await.expect("reads"), 5);
    assert_eq!(
        storage.consumer_position("billing").await.expect("reads"),
        1
    );
}

async fn endpoints_keep_their_sealed_secret_and_their_state(backend: &Backend) {
    let storage = &backend.storage;
    let err = storage
        .create_endpoint(&endpoint("ep_1", Some("acme"), 0))
        .await
        .expect_err("no such tenant");
    assert!(
        matches!(&err, StorageError::NotFound(what) if what == "tenant `acme`"),
        "{err}"
    );
    storage
        .create_tenant("acme", "Acme", "hash")
        .await
        .expect("a tenant");
    let first = endpoint("ep_1", Some("acme"), 0);
    let platform = endpoint("ep_2", None, 7);
    storage.create_endpoint(&first).await.expect("created");
    storage.create_endpoint(&platform).await.expect("created");
    let stored = storage.endpoints().await.expect("reads");
    assert_eq!(
        stored
            .iter()
            .map(|endpoint| endpoint.id.as_str())
            .collect::<Vec<_>>(),
        ["ep_1", "ep_2"]
    );
    assert_eq!(stored[0].secret, first.secret);
    assert_eq!(stored[1].tenant_id, None);
    assert_eq!(stored[1].position, 7);

    storage
        .disable_endpoint("ep_1", "it answered 410")
        .await
        .expect("disabled");
    let disabled = storage
        .endpoint("ep_1")
        .await
        .expect("reads")
        .expect("there");
    assert_eq!(disabled.disabled.as_deref(), Some("it answered 410"));
    storage.enable_endpoint("ep_1").await.expect("enabled");
    storage
        .set_endpoint_position("ep_1", 3)
        .await
        .expect("moved");
    let enabled = storage
        .endpoint("ep_1")
        .await
        .expect("reads")
        .expect("there");
    assert_eq!((enabled.disabled, enabled.position), (None, 3));

    for err in [
        storage
            .disable_endpoint("ep_9", "why")
            .await
            .expect_err("missing"),
        storage.enable_endpoint("ep_9").await.expect_err("missing"),
        storage
            .set_endpoint_position("ep_9", 1)
            .await
            .expect_err("missing"),
        storage.delete_endpoint("ep_9").await.expect_err("missing"),
    ] {
        assert!(
            matches!(&err, StorageError::NotFound(what) if what == "endpoint `ep_9`"),
            "{err}"
        );
    }
    assert!(storage.endpoint("ep_9").await.expect("reads").is_none());
    storage.delete_endpoint("ep_2").await.expect("deleted");
    storage.delete_tenant("acme").await.expect("deleted");
    assert!(
        storage.endpoints().await.expect("reads").is_empty(),
        "it went with its tenant"
    );
}

async fn failures_are_recorded_replaced_cleared_and_replayed(backend: &Backend) {
    let storage = &backend.storage;
    storage
        .create_endpoint(&endpoint("ep_1", None, 0))
        .await
        .expect("created");
    let failure = |position: i64, attempts: u32, next: Option<&str>| Failure {
        endpoint_id: "ep_1".into(),
        position,
        call_id: format!("call-{position}"),
        attempts,
        next_attempt_at: next.map(str::to_owned),
        last_status: Some(503),
        last_error: "unavailable".into(),
        failed_at: "2026-12-01T10:00:00.000Z".into(),
    };
    storage
        .record_failure(&failure(2, 1, Some("2026-12-01T10:00:01.000Z")))
        .await
        .expect("recorded");
    storage
        .record_failure(&failure(1, 9, None))
        .await
        .expect("recorded");
    let retried = failure(2, 2, None);
    storage.record_failure(&retried).await.expect("replaced");
    let stored = storage.failures("ep_1").await.expect("reads");
    assert_eq!(stored, [failure(1, 9, None), retried]);

    assert_eq!(
        storage
            .replay_failures("ep_1", Some(2))
            .await
            .expect("replays"),
        1
    );
    assert_eq!(
        storage
            .replay_failures("ep_1", None)
            .await
            .expect("replays"),
        1
    );
    assert_eq!(
        storage
            .replay_failures("ep_1", None)
            .await
            .expect("replays"),
        0
    );
    let replayed = storage.failures("ep_1").await.expect("reads");
    assert!(
        replayed
            .iter()
            .all(|failure| failure.attempts == 0 && !failure.is_dead())
    );

    storage.clear_failure("ep_1", 1).await.expect("cleared");
    assert_eq!(storage.failures("ep_1").await.expect("reads").len(), 1);
    storage.delete_endpoint("ep_1").await.expect("deleted");
    assert!(storage.failures("ep_1").await.expect("reads").is_empty());
}
