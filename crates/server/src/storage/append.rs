//! The event log writer's decisions, the same for every backend: inside one transaction, each
//! event is checked against the deliveries already stored, joins its call (see
//! [`crate::calls`]) and is stored with the call's change and update, or is held until its call
//! is known; a sweep ends the calls that went quiet and stores the held events whose call
//! never came.
//!
//! A backend gives the rows, through a [`Journal`] over its open transaction, and numbers
//! what it stores; it begins and commits the transaction around [`append`] and [`sweep`]. So
//! that correlation behaves identically on every backend, this is the only place it is
//! written. The journal's methods are `async` for a backend over the network; SQLite's answer
//! at once.

use std::borrow::Cow;

use telehook::outcome::{Disposition, Parties};

use super::columns::to_json;
use super::{Appended, IntegrationKey, NewDelivery, NewEvent, Result, StorageError, Sweep, Swept};
use crate::calls::{self, Call, CallParties, Complete, Kind, new_id};
use crate::delivery::StoredUpdate;

/// The most calls of the same parties weighed for one event: far more than can overlap.
pub(crate) const MAX_CANDIDATES: u32 = 32;

/// The rows the writer reads and writes, within the transaction of one batch or sweep.
pub(crate) trait Journal {
    /// The answer stored for an earlier delivery of `delivery`'s id to the integration, if one
    /// was stored within the window (an earlier one in the same batch included).
    async fn repeat_of(
        &mut self,
        key: &IntegrationKey,
        delivery: &NewDelivery,
    ) -> Result<Option<String>>;
    /// Remembers the delivery of `event`, stored at `seq` of the log (0 while held), replacing
    /// one of the same id stored before the window.
    async fn remember(&mut self, event: &NewEvent, delivery: &NewDelivery, seq: i64) -> Result<()>;
    /// The latest call of the integration with the provider's call id `provider_call_id`.
    async fn by_provider_id(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Option<Call>>;
    /// The integration's calls without a call id of `parties` (an extension counting only
    /// where both name one) with an event since `since`, most recently begun first, at most
    /// [`MAX_CANDIDATES`].
    async fn by_parties(
        &mut self,
        key: &IntegrationKey,
        parties: &CallParties,
        since: &str,
    ) -> Result<Vec<Call>>;
    /// Writes a call, new or changed (its `first_event_at` never moves later).
    async fn save(&mut self, call: &Call) -> Result<()>;
    /// Holds an event that names the provider's call `provider_call_id`, not known yet.
    async fn hold(&mut self, event: &NewEvent, provider_call_id: &str) -> Result<()>;
    /// Takes out the events held for the provider's call `provider_call_id`, oldest first.
    async fn take_held(
        &mut self,
        key: &IntegrationKey,
        provider_call_id: &str,
    ) -> Result<Vec<NewEvent>>;
    /// Takes out the events held since before `before`, oldest first.
    async fn take_unresolved(&mut self, before: &str) -> Result<Vec<NewEvent>>;
    /// The open calls whose last event is older than `before`.
    async fn quiet_calls(&mut self, before: &str) -> Result<Vec<Call>>;
    /// Appends an event to the log; returns its position.
    async fn insert(
        &mut self,
        event: &NewEvent,
        call_id: Option<&str>,
        unresolved: bool,
    ) -> Result<i64>;
    /// Appends the update of `call` (`users` and `json`: its users and itself as JSON) after
    /// the event at `seq` (none: the host ended it), at `at`; returns its position.
    async fn insert_update(
        &mut self,
        call: &Call,
        seq: Option<i64>,
        at: &str,
        users: &str,
        json: &str,
    ) -> Result<i64>;
}

/// Stores every event of `batch` that is not a repeat of a delivery already stored; returns
/// what became of each, in order, and the call updates stored.
pub(crate) async fn append(
    journal: &mut impl Journal,
    batch: &[&NewEvent],
) -> Result<(Vec<Appended>, Vec<StoredUpdate>)> {
    let mut updates = Vec::with_capacity(batch.len());
    let mut appended = Vec::with_capacity(batch.len());
    for event in batch {
        appended.push(store(journal, event, &mut updates).await?);
    }
    Ok((appended, updates))
}

/// Ends the calls that have heard nothing since `sweep.close_before` and stores the events
/// held since before `sweep.unresolved_before` as unresolved.
pub(crate) async fn sweep(journal: &mut impl Journal, sweep: &Sweep) -> Result<Swept> {
    let mut timed_out = Vec::new();
    let mut updates = Vec::new();
    for mut call in journal.quiet_calls(&sweep.close_before).await? {
        call.time_out(&sweep.now);
        journal.save(&call).await?;
        updates.push(update(journal, &call, None, &sweep.now).await?);
        timed_out.push(IntegrationKey::new(&call.tenant_id, &call.integration_id));
    }
    let mut unresolved = Vec::new();
    for event in journal.take_unresolved(&sweep.unresolved_before).await? {
        journal.insert(&event, None, true).await?;
        unresolved.push(key_of(&event));
    }
    Ok(Swept {
        timed_out,
        unresolved,
        updates,
    })
}

fn key_of(event: &NewEvent) -> IntegrationKey {
    IntegrationKey::new(&event.tenant_id, &event.integration_id)
}

/// Who called whom in what a parser produced: the event's parties, else the record's.
fn parties(event: &NewEvent) -> Result<Parties<'_>> {
    event
        .event
        .as_ref()
        .map(|event| event.parties())
        .or_else(|| event.call_record.as_ref().map(|record| record.parties()))
        .ok_or_else(|| StorageError::Invalid("an append with neither event nor record".into()))
}

/// What an event is to its call, and the disposition it reports.
fn kind(event: &NewEvent) -> (Kind, Disposition) {
    match (&event.event, &event.call_record) {
        (Some(event), _) => (Kind::Event(event.event), event.disposition),
        (None, Some(record)) => (Kind::Record, record.disposition),
        (None, None) => (Kind::Record, Disposition::Unknown),
    }
}

/// Stores one event of a batch, unless it repeats a delivery already stored; the updates of
/// its call go to `updates`.
async fn store(
    journal: &mut impl Journal,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<Appended> {
    if let Some(delivery) = &event.delivery
        && let Some(answer) = journal.repeat_of(&key_of(event), delivery).await?
    {
        return Ok(Appended::Repeat(answer));
    }
    let appended = correlate(journal, event, updates).await?;
    if let Some(delivery) = &event.delivery {
        // A held event has no place in the log yet.
        let seq = match appended {
            Appended::Stored(seq) => seq,
            _ => 0,
        };
        journal.remember(event, delivery, seq).await?;
    }
    Ok(appended)
}

/// Finds or begins the event's call and stores the event with the call's change; holds an
/// event that names only a call not known yet.
async fn correlate(
    journal: &mut impl Journal,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<Appended> {
    let key = key_of(event);
    let parties = parties(event)?;
    let (kind, _) = self::kind(event);
    let full = CallParties::of(&parties);
    let found = match (parties.call_id, &full) {
        (Some(provider_call_id), _) => journal.by_provider_id(&key, provider_call_id).await?,
        (None, Some(full)) => {
            let candidates = journal.by_parties(&key, full, &event.calls_since).await?;
            calls::choose(&candidates, kind, &event.received_at).cloned()
        }
        (None, None) => {
            return Err(StorageError::Invalid(
                "an event without a call id must name its parties".into(),
            ));
        }
    };
    let begun = found.is_none();
    let mut call = match (found, full) {
        (Some(call), _) => call,
        (None, Some(full)) => Call::begin(
            new_id(),
            &key.tenant_id,
            &key.integration_id,
            parties.call_id,
            full,
            &event.received_at,
        ),
        (None, None) => {
            let provider_call_id = parties.call_id.unwrap_or_default();
            journal.hold(event, provider_call_id).await?;
            return Ok(Appended::Held);
        }
    };
    let seq = attach(journal, &mut call, event, updates).await?;
    if let Some(provider_call_id) = parties.call_id.filter(|_| begun) {
        for held in journal.take_held(&key, provider_call_id).await? {
            attach(journal, &mut call, &held, updates).await?;
        }
    }
    journal.save(&call).await?;
    Ok(Appended::Stored(seq))
}

/// Applies an event to its call and stores it in the log, completed from the call when it
/// names only the call, and notifying the call's users then; and the call's update after it.
async fn attach(
    journal: &mut impl Journal,
    call: &mut Call,
    event: &NewEvent,
    updates: &mut Vec<StoredUpdate>,
) -> Result<i64> {
    let partial = parties(event)?.names_only_its_call();
    let incomplete = partial
        || event
            .call_record
            .as_ref()
            .is_some_and(|record| record.parties().names_only_its_call());
    // Only an event with gaps is copied to be completed: the others are stored as they came.
    let mut event = Cow::Borrowed(event);
    if incomplete {
        let completed = event.to_mut();
        if let Some(telephony) = &mut completed.event {
            telephony.complete(&call.parties);
        }
        if let Some(record) = &mut completed.call_record {
            record.complete(&call.parties);
        }
    }
    let (kind, disposition) = kind(&event);
    call.apply(
        kind,
        disposition,
        event.call_record.as_ref(),
        &event.users,
        &event.received_at,
    );
    if partial {
        event.to_mut().users.clone_from(&call.users);
    }
    let seq = journal.insert(&event, Some(&call.id), false).await?;
    call.logged(seq);
    updates.push(update(journal, call, Some(seq), &event.received_at).await?);
    Ok(seq)
}

/// Appends the update of `call` after the event at `seq`, at `at`.
async fn update(
    journal: &mut impl Journal,
    call: &Call,
    seq: Option<i64>,
    at: &str,
) -> Result<StoredUpdate> {
    let users = to_json(&call.users)?;
    let json = to_json(call)?;
    let position = journal.insert_update(call, seq, at, &users, &json).await?;
    Ok(StoredUpdate {
        position,
        tenant_id: call.tenant_id.clone(),
        integration_id: call.integration_id.clone(),
        call_id: call.id.clone(),
        seq,
        at: at.to_owned(),
        users: call.users.clone(),
        call: json,
    })
}
