//! Calls: the events of a call joined by its call id or by its parties, the events held until
//! their call is known, the sweep, and the listings of the admin API.

use telehook::outcome::{CallRecord, Direction, Disposition, EventType, TelephonyEvent};

use super::Backend;
use crate::calls::{CallState, ClosedBy};
use crate::delivery::UpdateFilter;
use crate::storage::fixtures::start;
use crate::storage::{Appended, CallFilter, IntegrationKey, NewEvent};

super::conformance!(
    the_events_of_a_call_id_make_one_call_with_an_update_each,
    events_without_a_call_id_join_the_call_of_their_parties,
    an_event_that_names_only_its_call_is_held_until_the_call_is_known,
    a_sweep_ends_quiet_calls_and_stores_what_stayed_held,
    calls_are_listed_newest_first_filtered_and_paged,
    calls_and_their_updates_go_with_their_integration,
);

fn pbx() -> IntegrationKey {
    IntegrationKey::new("acme", "pbx")
}

fn everything() -> CallFilter {
    CallFilter {
        limit: 100,
        ..CallFilter::default()
    }
}

/// An event of `kind` of `call_id` (none: found by its parties), received at `at`.
fn event(kind: EventType, call_id: Option<&str>, at: &str) -> NewEvent {
    let mut event = start(call_id.unwrap_or_default());
    event.received_at = at.into();
    if let Some(telephony) = &mut event.event {
        telephony.event = kind;
        telephony.call_id = call_id.map(str::to_owned);
        if kind == EventType::NotifyEnd {
            telephony.disposition = Disposition::Answered;
        }
    }
    event
}

/// An event of `call_id` that names nothing else, received at `at`.
fn bare(kind: EventType, call_id: &str, at: &str) -> NewEvent {
    NewEvent {
        event: Some(TelephonyEvent {
            event: kind,
            direction: None,
            disposition: Disposition::Unknown,
            src_phone: None,
            src_phone_ext: None,
            dst_phone: None,
            dst_phone_ext: None,
            call_id: Some(call_id.into()),
        }),
        users: Vec::new(),
        ..event(kind, Some(call_id), at)
    }
}

const T0: &str = "2026-12-01T10:00:00.000Z";
const T1: &str = "2026-12-01T10:00:05.000Z";
const T2: &str = "2026-12-01T10:01:00.000Z";
const T3: &str = "2026-12-01T10:02:00.000Z";

/// Begins the call `c-1` at `T0` and holds an end of the unknown `c-2`.
async fn open_call_and_held_event(writer: &mut super::Writer) {
    writer
        .append(&[
            event(EventType::NotifyStart, Some("c-1"), T0),
            bare(EventType::NotifyEnd, "c-2", T0),
        ])
        .await
        .expect("stored");
}

async fn the_events_of_a_call_id_make_one_call_with_an_update_each(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let (_, updates) = writer
        .append(&[
            event(EventType::NotifyStart, Some("c-1"), T0),
            event(EventType::NotifyAnswer, Some("c-1"), T1),
        ])
        .await
        .expect("stored");
    let mut record = event(EventType::NotifyEnd, Some("c-1"), T2);
    record.event = None;
    record.call_record = Some(CallRecord {
        call_id: Some("c-1".into()),
        direction: Some(Direction::In),
        disposition: Disposition::Answered,
        src_phone: Some("+79161234567".into()),
        src_phone_ext: None,
        dst_phone: Some("101".into()),
        dst_phone_ext: None,
        duration: 42,
        call: "rec-1".into(),
    });
    let (_, more) = writer
        .append(&[event(EventType::NotifyEnd, Some("c-1"), T2), record])
        .await
        .expect("stored");

    let calls = storage.calls(&pbx(), &everything()).await.expect("reads");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.provider_call_id.as_deref(), Some("c-1"));
    assert_eq!(
        (call.state, call.disposition, call.closed_by),
        (
            CallState::Ended,
            Disposition::Answered,
            Some(ClosedBy::Provider)
        )
    );
    assert_eq!(
        (
            call.started_at.as_deref(),
            call.answered_at.as_deref(),
            call.ended_at.as_deref()
        ),
        (Some(T0), Some(T1), Some(T2))
    );
    assert_eq!((call.first_seq, call.last_seq), (1, 4));
    assert_eq!(call.record.as_ref().map(|record| record.duration), Some(42));
    assert_eq!(call.users, ["anna"]);

    let (again, events) = storage
        .call(&pbx(), &call.id)
        .await
        .expect("reads")
        .expect("there");
    assert_eq!(&again, call);
    assert_eq!(
        events.iter().map(|event| event.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(
        storage
            .call(&pbx(), "no-such-call")
            .await
            .expect("reads")
            .is_none()
    );

    let positions: Vec<i64> = updates
        .iter()
        .chain(&more)
        .map(|update| update.position)
        .collect();
    assert_eq!(positions, [1, 2, 3, 4]);
    let read = storage
        .call_updates(&UpdateFilter::default(), 0, 10)
        .await
        .expect("reads");
    let last = read.last().expect("updates");
    assert_eq!(last.call_id, call.id);
    let body: serde_json::Value = serde_json::from_str(&last.body).expect("JSON");
    assert_eq!(body["type"], "call.updated");
    assert_eq!(body["data"]["seq"], 4);
    assert_eq!(body["data"]["call"]["state"], "ended");
    assert_eq!(
        last.body,
        crate::delivery::CallUpdate::try_from(more[1].clone())
            .expect("JSON")
            .body,
        "the update reads back as it was written, byte for byte"
    );
}

async fn events_without_a_call_id_join_the_call_of_their_parties(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let since = |mut event: NewEvent| {
        event.calls_since = "2026-12-01T09:00:00.000Z".into();
        event
    };
    writer
        .append(&[
            since(event(EventType::NotifyStart, None, T0)),
            since(event(EventType::NotifyAnswer, None, T1)),
        ])
        .await
        .expect("stored");
    let mut other = since(event(EventType::NotifyStart, None, T1));
    if let Some(telephony) = &mut other.event {
        telephony.src_phone = Some("+79160000000".into());
    }
    writer.append(&[other]).await.expect("stored");
    writer
        .append(&[since(event(EventType::NotifyEnd, None, T2))])
        .await
        .expect("stored");
    let calls = storage.calls(&pbx(), &everything()).await.expect("reads");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let joined = calls
        .iter()
        .find(|call| call.parties.src_phone == "+79161234567")
        .expect("the first parties' call");
    assert_eq!(joined.state, CallState::Ended);
    assert_eq!((joined.first_seq, joined.last_seq), (1, 4));
    assert_eq!(joined.provider_call_id, None);
    // Out of the window, the same parties begin a call of their own.
    let mut late = event(EventType::NotifyStart, None, T3);
    late.calls_since = T3.into();
    writer.append(&[late]).await.expect("stored");
    assert_eq!(
        storage
            .calls(&pbx(), &everything())
            .await
            .expect("reads")
            .len(),
        3
    );
}

async fn an_event_that_names_only_its_call_is_held_until_the_call_is_known(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    assert_eq!(
        writer.one(bare(EventType::NotifyAnswer, "c-9", T1)).await,
        Appended::Held
    );
    assert!(storage.all_events(0, 10).await.expect("reads").is_empty());
    assert_eq!(
        writer
            .one(event(EventType::NotifyStart, Some("c-9"), T0))
            .await,
        Appended::Stored(1)
    );
    let events = storage.all_events(0, 10).await.expect("reads");
    assert_eq!(
        events.len(),
        2,
        "the held event came after its call's first"
    );
    let answer = &events[1];
    assert_eq!(
        answer.event.as_ref().expect("an event")["src_phone"],
        "+79161234567"
    );
    assert_eq!(answer.users, ["anna"], "it notifies its call's users");
    let call = &storage.calls(&pbx(), &everything()).await.expect("reads")[0];
    assert_eq!(call.state, CallState::Answered);
    assert_eq!(answer.call.as_deref(), Some(call.id.as_str()));
    assert_eq!(storage.last_update().await.expect("reads"), 2);
}

async fn a_sweep_ends_quiet_calls_and_stores_what_stayed_held(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    open_call_and_held_event(&mut writer).await;
    let nothing = writer.sweep_at(T1, T0).await;
    assert!(nothing.timed_out.is_empty() && nothing.unresolved.is_empty());
    let swept = writer.sweep_at(T3, T2).await;
    assert_eq!(swept.timed_out, [pbx()]);
    assert_eq!(swept.unresolved, [pbx()]);
    assert_eq!(swept.updates.len(), 1);
    assert_eq!((swept.updates[0].seq, swept.updates[0].position), (None, 2));

    let call = &storage.calls(&pbx(), &everything()).await.expect("reads")[0];
    assert_eq!(
        (call.state, call.closed_by, call.ended_at.as_deref()),
        (CallState::Ended, Some(ClosedBy::Timeout), Some(T3))
    );
    let events = storage.all_events(0, 10).await.expect("reads");
    assert_eq!(events.len(), 2);
    assert!(events[1].unresolved);
    assert_eq!(events[1].call, None);
    // A provider's end that comes later still replaces the host's.
    writer
        .append(&[event(EventType::NotifyEnd, Some("c-1"), T3)])
        .await
        .expect("stored");
    let call = &storage.calls(&pbx(), &everything()).await.expect("reads")[0];
    assert_eq!(call.closed_by, Some(ClosedBy::Provider));
}

async fn calls_are_listed_newest_first_filtered_and_paged(backend: &Backend) {
    let storage = &backend.storage;
    let mut writer = backend.writer();
    let mut bob = event(EventType::NotifyStart, Some("c-2"), T1);
    bob.users = vec!["bob".into()];
    writer
        .append(&[
            event(EventType::NotifyStart, Some("c-1"), T0),
            bob,
            event(EventType::NotifyStart, Some("c-3"), T2),
            event(EventType::NotifyEnd, Some("c-3"), T3),
        ])
        .await
        .expect("stored");
    let ids = |calls: Vec<crate::calls::Call>| -> Vec<String> {
        calls
            .into_iter()
            .filter_map(|call| call.provider_call_id)
            .collect()
    };
    let list = |filter: CallFilter| {
        let storage = std::sync::Arc::clone(storage);
        async move { ids(storage.calls(&pbx(), &filter).await.expect("reads")) }
    };
    assert_eq!(list(everything()).await, ["c-3", "c-2", "c-1"]);
    let first_page = storage
        .calls(
            &pbx(),
            &CallFilter {
                limit: 2,
                ..everything()
            },
        )
        .await
        .expect("reads");
    let next = CallFilter {
        before: Some(first_page[1].id.clone()),
        ..everything()
    };
    assert_eq!(list(next).await, ["c-1"]);
    assert_eq!(
        list(CallFilter {
            user: Some("bob".into()),
            ..everything()
        })
        .await,
        ["c-2"]
    );
    assert_eq!(
        list(CallFilter {
            state: Some(CallState::Ended),
            ..everything()
        })
        .await,
        ["c-3"]
    );
    assert_eq!(
        list(CallFilter {
            since: Some(T1.into()),
            until: Some(T2.into()),
            ..everything()
        })
        .await,
        ["c-2"]
    );
    assert!(
        storage
            .calls(&IntegrationKey::new("acme", "other"), &everything())
            .await
            .expect("reads")
            .is_empty()
    );
}

async fn calls_and_their_updates_go_with_their_integration(backend: &Backend) {
    let storage = &backend.storage;
    storage
        .create_tenant("acme", "Acme", "hash")
        .await
        .expect("a tenant");
    storage
        .create_integration("acme", "pbx", "PBX", "token")
        .await
        .expect("an integration");
    let mut writer = backend.writer();
    open_call_and_held_event(&mut writer).await;
    storage.delete_tenant("acme").await.expect("deleted");
    assert!(
        storage
            .calls(&pbx(), &everything())
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(
        storage
            .call_updates(&UpdateFilter::default(), 0, 10)
            .await
            .expect("reads")
            .is_empty()
    );
    // The log keeps its events for the platform, and the held one went with its call's
    // integration: a sweep finds nothing.
    assert_eq!(storage.all_events(0, 10).await.expect("reads").len(), 1);
    let swept = writer.sweep_at(T3, T2).await;
    assert!(swept.unresolved.is_empty() && swept.timed_out.is_empty());
}
