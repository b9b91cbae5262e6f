//! Calls in PostgreSQL: the rows behind the shared correlation flow (finding the call an event
//! joins, saving it, holding the events that name a call not known yet) and reading calls back
//! for the admin API. The rules are [`crate::calls`]'s.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::{Change, IntegrationKey, Result, row, rows, to_json};
use crate::calls::{Call, CallParties};
use crate::storage::CallFilter;
use crate::storage::NewEvent;
use crate::storage::append::MAX_CANDIDATES;
use crate::storage::columns::{self, CALL_COLUMNS, HELD_COLUMNS, to_word};

/// The latest call of the integration with the provider's call id `provider_call_id`.
pub(super) async fn by_provider_id(
    tx: &impl GenericClient,
    key: &IntegrationKey,
    provider_call_id: &str,
) -> Result<Option<Call>> {
    row(
        tx,
        &format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = $1 AND integration_id = $2 AND provider_call_id = $3
             ORDER BY id DESC LIMIT 1"
        ),
        &[&key.tenant_id, &key.integration_id, &provider_call_id],
        columns::call,
    )
    .await
}

/// The integration's calls of the same parties without a call id with an event since
/// `since`, most recently begun first: the candidates an event without a call id may join.
pub(super) async fn by_parties(
    tx: &impl GenericClient,
    key: &IntegrationKey,
    parties: &CallParties,
    since: &str,
) -> Result<Vec<Call>> {
    rows(
        tx,
        &format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = $1 AND integration_id = $2 AND direction = $3
               AND src_phone = $4 AND dst_phone = $5 AND provider_call_id IS NULL
               AND (src_phone_ext IS NULL OR $6::text IS NULL OR src_phone_ext = $6)
               AND (dst_phone_ext IS NULL OR $7::text IS NULL OR dst_phone_ext = $7)
               AND last_event_at >= $8
             ORDER BY id DESC LIMIT $9"
        ),
        &[
            &key.tenant_id,
            &key.integration_id,
            &to_word(&parties.direction)?,
            &parties.src_phone,
            &parties.dst_phone,
            &parties.src_phone_ext,
            &parties.dst_phone_ext,
            &since,
            &i64::from(MAX_CANDIDATES),
        ],
        columns::call,
    )
    .await
}

/// Writes a call, new or changed.
pub(super) fn save(call: &Call) -> Result<Change> {
    Ok(Change {
        sql: format!(
            "INSERT INTO calls ({CALL_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     $18, $19, $20, $21)
             ON CONFLICT (tenant_id, integration_id, id) DO UPDATE SET
                 state = excluded.state, disposition = excluded.disposition,
                 closed_by = excluded.closed_by, started_at = excluded.started_at,
                 answered_at = excluded.answered_at, ended_at = excluded.ended_at,
                 first_event_at = LEAST(calls.first_event_at, excluded.first_event_at),
                 last_event_at = excluded.last_event_at, users = excluded.users,
                 record = excluded.record, first_seq = excluded.first_seq,
                 last_seq = excluded.last_seq"
        ),
        params: vec![
            Box::new(call.id.clone()),
            Box::new(call.tenant_id.clone()),
            Box::new(call.integration_id.clone()),
            Box::new(call.provider_call_id.clone()),
            Box::new(to_word(&call.state)?),
            Box::new(to_word(&call.disposition)?),
            Box::new(call.closed_by.as_ref().map(to_word).transpose()?),
            Box::new(to_word(&call.parties.direction)?),
            Box::new(call.parties.src_phone.clone()),
            Box::new(call.parties.src_phone_ext.clone()),
            Box::new(call.parties.dst_phone.clone()),
            Box::new(call.parties.dst_phone_ext.clone()),
            Box::new(call.started_at.clone()),
            Box::new(call.answered_at.clone()),
            Box::new(call.ended_at.clone()),
            Box::new(call.first_event_at.clone()),
            Box::new(call.last_event_at.clone()),
            Box::new(to_json(&call.users)?),
            Box::new(call.record.as_ref().map(to_json).transpose()?),
            Box::new(call.first_seq),
            Box::new(call.last_seq),
        ],
    })
}

/// Holds an event that names the provider's call `provider_call_id`, not known yet.
pub(super) fn hold(event: &NewEvent, provider_call_id: &str) -> Result<Change> {
    Ok(Change {
        sql: "INSERT INTO held_events (tenant_id, integration_id, provider_call_id, version,
                                       received_at, event, call_record, users)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            .to_owned(),
        params: vec![
            Box::new(event.tenant_id.clone()),
            Box::new(event.integration_id.clone()),
            Box::new(provider_call_id.to_owned()),
            Box::new(i64::from(event.version)),
            Box::new(event.received_at.clone()),
            Box::new(event.event.as_ref().map(to_json).transpose()?),
            Box::new(event.call_record.as_ref().map(to_json).transpose()?),
            Box::new(to_json(&event.users)?),
        ],
    })
}

/// Takes out the events held for the provider's call `provider_call_id`, oldest first.
pub(super) async fn take_held(
    tx: &impl GenericClient,
    key: &IntegrationKey,
    provider_call_id: &str,
) -> Result<Vec<NewEvent>> {
    take(
        tx,
        "tenant_id = $1 AND integration_id = $2 AND provider_call_id = $3",
        &[&key.tenant_id, &key.integration_id, &provider_call_id],
    )
    .await
}

/// Takes out the events held since before `before`, for a call that never came, oldest first.
pub(super) async fn take_unresolved(
    tx: &impl GenericClient,
    before: &str,
) -> Result<Vec<NewEvent>> {
    take(tx, "received_at < $1", &[&before]).await
}

/// Takes out the held events `filter` selects, in the order they came.
async fn take(
    tx: &impl GenericClient,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<NewEvent>> {
    rows(
        tx,
        &format!(
            "WITH taken AS (DELETE FROM held_events WHERE {filter} RETURNING seq, {HELD_COLUMNS})
             SELECT {HELD_COLUMNS} FROM taken ORDER BY seq"
        ),
        params,
        columns::held,
    )
    .await
}

/// The open calls whose last event is older than `before`.
pub(super) async fn quiet(tx: &impl GenericClient, before: &str) -> Result<Vec<Call>> {
    rows(
        tx,
        &format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE state <> 'ended' AND last_event_at < $1 ORDER BY id"
        ),
        &[&before],
        columns::call,
    )
    .await
}

/// An integration's calls that pass `filter`, most recently begun first.
pub(super) async fn list(
    client: &impl GenericClient,
    key: &IntegrationKey,
    filter: &CallFilter,
) -> Result<Vec<Call>> {
    let state = filter.state.as_ref().map(to_word).transpose()?;
    rows(
        client,
        &format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = $1 AND integration_id = $2
               AND ($3::text IS NULL OR state = $3)
               AND ($4::text IS NULL OR users::jsonb @> jsonb_build_array($4::text))
               AND ($5::text IS NULL OR first_event_at >= $5)
               AND ($6::text IS NULL OR first_event_at < $6)
               AND ($7::text IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8"
        ),
        &[
            &key.tenant_id,
            &key.integration_id,
            &state,
            &filter.user,
            &filter.since,
            &filter.until,
            &filter.before,
            &i64::from(filter.limit),
        ],
        columns::call,
    )
    .await
}

/// One call of an integration.
pub(super) async fn one(
    client: &impl GenericClient,
    key: &IntegrationKey,
    id: &str,
) -> Result<Option<Call>> {
    row(
        client,
        &format!(
            "SELECT {CALL_COLUMNS} FROM calls
             WHERE tenant_id = $1 AND integration_id = $2 AND id = $3"
        ),
        &[&key.tenant_id, &key.integration_id, &id],
        columns::call,
    )
    .await
}
