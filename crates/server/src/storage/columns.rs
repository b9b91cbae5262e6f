//! What every backend stores and reads back alike: the column lists their queries share, each
//! stored thing made from its row through [`Columns`] (whatever the database's row type), and
//! how values become columns (JSON text, the bare words of unit enums).
//!
//! Both backends keep the same columns in the same order and the same text in them, so a row
//! reads back the same from either: what is decided here is decided once.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Binding, Integration, NewEvent, Result, StorageError, StoredEvent, Tenant, Version};
use crate::calls::{Call, CallParties};
use crate::delivery::forwarder::Failure;
use crate::delivery::{CallUpdate, StoredUpdate};

/// A row of a backend, read by column index; a backend's own errors become
/// [`StorageError::Backend`].
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, index: usize) -> Result<String>;
    /// A text column that may be NULL.
    fn maybe_text(&self, index: usize) -> Result<Option<String>>;
    /// An integer column.
    fn int(&self, index: usize) -> Result<i64>;
    /// An integer column that may be NULL.
    fn maybe_int(&self, index: usize) -> Result<Option<i64>>;
    /// A boolean column.
    fn flag(&self, index: usize) -> Result<bool>;
    /// A binary column.
    fn bytes(&self, index: usize) -> Result<Vec<u8>>;

    /// An integer column of a narrower type (a version, a size, a count).
    fn number<T: TryFrom<i64>>(&self, index: usize) -> Result<T> {
        let value = self.int(index)?;
        T::try_from(value).map_err(|_| corrupt(index, &format!("{value} is out of range")))
    }

    /// [`Columns::number`] of a column that may be NULL.
    fn maybe_number<T: TryFrom<i64>>(&self, index: usize) -> Result<Option<T>> {
        self.maybe_int(index)?
            .map(|value| {
                T::try_from(value).map_err(|_| corrupt(index, &format!("{value} is out of range")))
            })
            .transpose()
    }

    /// A JSON text column, read back with serde.
    fn json<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        serde_json::from_str(&self.text(index)?).map_err(|err| corrupt(index, &err.to_string()))
    }

    /// [`Columns::json`] of a column that may be NULL.
    fn maybe_json<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        self.maybe_text(index)?
            .map(|text| serde_json::from_str(&text).map_err(|err| corrupt(index, &err.to_string())))
            .transpose()
    }

    /// A column holding a unit enum's word (see [`to_word`]).
    fn word<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        from_word(index, self.text(index)?)
    }

    /// [`Columns::word`] of a column that may be NULL.
    fn maybe_word<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        self.maybe_text(index)?
            .map(|text| from_word(index, text))
            .transpose()
    }
}

/// Implements [`Columns`] for a backend's row type, whose generic getter (`$get`) reads any
/// column into any type its crate converts, its errors converting into [`StorageError`].
macro_rules! columns_by {
    ($row:ty, $get:ident) => {
        impl $crate::storage::columns::Columns for $row {
            fn text(&self, index: usize) -> $crate::storage::Result<String> {
                Ok(self.$get(index)?)
            }

            fn maybe_text(&self, index: usize) -> $crate::storage::Result<Option<String>> {
                Ok(self.$get(index)?)
            }

            fn int(&self, index: usize) -> $crate::storage::Result<i64> {
                Ok(self.$get(index)?)
            }

            fn maybe_int(&self, index: usize) -> $crate::storage::Result<Option<i64>> {
                Ok(self.$get(index)?)
            }

            fn flag(&self, index: usize) -> $crate::storage::Result<bool> {
                Ok(self.$get(index)?)
            }

            fn bytes(&self, index: usize) -> $crate::storage::Result<Vec<u8>> {
                Ok(self.$get(index)?)
            }
        }
    };
}
pub(crate) use columns_by;

fn from_word<T: DeserializeOwned>(index: usize, text: String) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text))
        .map_err(|err| corrupt(index, &err.to_string()))
}

fn corrupt(index: usize, why: &str) -> StorageError {
    StorageError::Corrupt(format!("value in column {index}: {why}"))
}

/// A value as JSON text, for a column.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| StorageError::Corrupt(format!("value: {err}")))
}

/// A unit enum as the bare word it serialises to (`ringing`, `in`, ...), for a column.
pub(crate) fn to_word<T: Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => Ok(word),
        other => Err(StorageError::Corrupt(format!("word: {other:?}"))),
    }
}

/// The columns of [`tenant`], in its order.
pub(crate) const TENANT_COLUMNS: &str = "id, name, created_at";

/// A tenant from the columns [`TENANT_COLUMNS`].
pub(crate) fn tenant(row: &impl Columns) -> Result<Tenant> {
    Ok(Tenant {
        id: row.text(0)?,
        name: row.text(1)?,
        created_at: row.text(2)?,
    })
}

/// The columns of [`integration`], in its order.
pub(crate) const INTEGRATION_COLUMNS: &str =
    "id, tenant_id, name, webhook_token, active_version, created_at";

/// An integration from the columns [`INTEGRATION_COLUMNS`].
pub(crate) fn integration(row: &impl Columns) -> Result<Integration> {
    Ok(Integration {
        id: row.text(0)?,
        tenant_id: row.text(1)?,
        name: row.text(2)?,
        webhook_token: row.text(3)?,
        active_version: row.maybe_number(4)?,
        created_at: row.text(5)?,
    })
}

/// The columns of [`version`], in its order.
pub(crate) const VERSION_COLUMNS: &str = "version, sha256, size, uploaded_at";

/// A parser version from the columns [`VERSION_COLUMNS`].
pub(crate) fn version(row: &impl Columns) -> Result<Version> {
    Ok(Version {
        version: row.number(0)?,
        sha256: row.text(1)?,
        size: row.number(2)?,
        uploaded_at: row.text(3)?,
    })
}

/// A binding from the columns `extension, user_id`.
pub(crate) fn binding(row: &impl Columns) -> Result<Binding> {
    Ok(Binding {
        extension: row.text(0)?,
        user_id: row.text(1)?,
    })
}

/// The columns of [`event`], in its order.
pub(crate) const EVENT_COLUMNS: &str = "seq, tenant_id, integration_id, version, received_at, \
     event, call_record, users, call_id, unresolved";

/// An entry of the event log from the columns [`EVENT_COLUMNS`]. An event or record that is not
/// JSON any more reads as none rather than failing the whole page of the feed.
pub(crate) fn event(row: &impl Columns) -> Result<StoredEvent> {
    let lenient = |text: Option<String>| text.and_then(|text| serde_json::from_str(&text).ok());
    Ok(StoredEvent {
        seq: row.int(0)?,
        tenant_id: row.text(1)?,
        integration_id: row.text(2)?,
        version: row.number(3)?,
        received_at: row.text(4)?,
        event: lenient(row.maybe_text(5)?),
        call_record: lenient(row.maybe_text(6)?),
        users: row.json(7)?,
        call: row.maybe_text(8)?,
        unresolved: row.flag(9)?,
    })
}

/// The columns of [`call`], in its order (also the order a call is written in).
pub(crate) const CALL_COLUMNS: &str = "id, tenant_id, integration_id, provider_call_id, state, \
     disposition, closed_by, direction, src_phone, src_phone_ext, dst_phone, dst_phone_ext, \
     started_at, answered_at, ended_at, first_event_at, last_event_at, users, record, first_seq, \
     last_seq";

/// A call from the columns [`CALL_COLUMNS`].
pub(crate) fn call(row: &impl Columns) -> Result<Call> {
    Ok(Call {
        id: row.text(0)?,
        tenant_id: row.text(1)?,
        integration_id: row.text(2)?,
        provider_call_id: row.maybe_text(3)?,
        state: row.word(4)?,
        disposition: row.word(5)?,
        closed_by: row.maybe_word(6)?,
        parties: CallParties {
            direction: row.word(7)?,
            src_phone: row.text(8)?,
            src_phone_ext: row.maybe_text(9)?,
            dst_phone: row.text(10)?,
            dst_phone_ext: row.maybe_text(11)?,
        },
        started_at: row.maybe_text(12)?,
        answered_at: row.maybe_text(13)?,
        ended_at: row.maybe_text(14)?,
        first_event_at: row.text(15)?,
        last_event_at: row.text(16)?,
        users: row.json(17)?,
        record: row.maybe_json(18)?,
        first_seq: row.int(19)?,
        last_seq: row.int(20)?,
    })
}

/// The columns of [`held`], in its order.
pub(crate) const HELD_COLUMNS: &str =
    "tenant_id, integration_id, version, received_at, event, call_record, users";

/// A held event, as it was appended, from the columns [`HELD_COLUMNS`].
pub(crate) fn held(row: &impl Columns) -> Result<NewEvent> {
    Ok(NewEvent {
        tenant_id: row.text(0)?,
        integration_id: row.text(1)?,
        version: row.number(2)?,
        received_at: row.text(3)?,
        event: row.maybe_json(4)?,
        call_record: row.maybe_json(5)?,
        users: row.json(6)?,
        delivery: None,
        calls_since: String::new(),
    })
}

/// The columns of [`update`], in its order.
pub(crate) const UPDATE_COLUMNS: &str =
    "position, tenant_id, integration_id, call_id, seq, at, users, call";

/// A call update as stored, from the columns [`UPDATE_COLUMNS`].
pub(crate) fn update(row: &impl Columns) -> Result<StoredUpdate> {
    Ok(StoredUpdate {
        position: row.int(0)?,
        tenant_id: row.text(1)?,
        integration_id: row.text(2)?,
        call_id: row.text(3)?,
        seq: row.maybe_int(4)?,
        at: row.text(5)?,
        users: row.json(6)?,
        call: row.text(7)?,
    })
}

/// Stored updates with their JSON, as consumers get them.
pub(crate) fn assemble(stored: Vec<StoredUpdate>) -> Result<Vec<CallUpdate>> {
    stored
        .into_iter()
        .map(|stored| {
            CallUpdate::try_from(stored)
                .map_err(|err| StorageError::Corrupt(format!("call update: {err}")))
        })
        .collect()
}

/// The columns of [`failure`], in its order (also the order a failure is written in).
pub(crate) const FAILURE_COLUMNS: &str = "endpoint_id, position, call_id, attempts, \
     next_attempt_at, last_status, last_error, failed_at";

/// A forwarding failure from the columns [`FAILURE_COLUMNS`].
pub(crate) fn failure(row: &impl Columns) -> Result<Failure> {
    Ok(Failure {
        endpoint_id: row.text(0)?,
        position: row.int(1)?,
        call_id: row.text(2)?,
        attempts: row.number(3)?,
        next_attempt_at: row.maybe_text(4)?,
        last_status: row.maybe_number(5)?,
        last_error: row.text(6)?,
        failed_at: row.text(7)?,
    })
}

/// The columns of an endpoint (see [`super::sealing::endpoint`]), in its order (also the order
/// one is written in).
pub(crate) const ENDPOINT_COLUMNS: &str =
    "id, tenant_id, url, secret, disabled, position, created_at";
