//! What every backend seals at rest and how it is opened again: an integration's settings and
//! an endpoint's signing secret, each bound to what it belongs to (see [`crate::secrets`]), so
//! that a value moved to another row does not open.

use telehook::Settings;

use super::columns::Columns;
use super::{IntegrationKey, Result, StorageError};
use crate::delivery::forwarder::Endpoint;
use crate::delivery::signature::Secret;
use crate::secrets::SettingsKey;

/// What a sealed setting is bound to: its tenant, integration and name (ids never contain
/// `/`). Sealing, opening and the migration that seals older values all use this one form.
pub(crate) fn setting_context(integration: &IntegrationKey, name: &str) -> String {
    format!("{integration}/{name}")
}

/// What an endpoint's sealed secret is bound to.
pub(crate) fn secret_context(id: &str) -> String {
    format!("endpoint/{id}")
}

/// What a secret shared by the nodes is bound to.
pub(crate) fn shared_context(name: &str) -> String {
    format!("shared/{name}")
}

/// A shared secret as stored, opened.
pub(crate) fn open_shared(key: &SettingsKey, name: &str, sealed: &[u8]) -> Result<String> {
    let context = shared_context(name);
    key.open(&context, sealed)
        .ok_or(StorageError::WrongKey(context))
}

/// An integration's settings, opened from their sealed values.
pub(crate) fn open_settings(
    key: &SettingsKey,
    integration: &IntegrationKey,
    sealed: Vec<(String, Vec<u8>)>,
) -> Result<Settings> {
    sealed
        .into_iter()
        .map(|(name, value)| {
            let context = setting_context(integration, &name);
            match key.open(&context, &value) {
                Some(value) => Ok((name, value)),
                None => Err(StorageError::WrongKey(context)),
            }
        })
        .collect()
}

/// Refuses a key that does not open `stored`, a setting the database holds (any one: a key
/// opens all or none), before anything is served or written with it.
pub(crate) fn check_key(
    key: &SettingsKey,
    stored: Option<(IntegrationKey, String, Vec<u8>)>,
) -> Result<()> {
    if let Some((integration, name, sealed)) = stored {
        let context = setting_context(&integration, &name);
        if key.open(&context, &sealed).is_none() {
            return Err(StorageError::WrongKey(context));
        }
    }
    Ok(())
}

/// An endpoint from the columns [`super::columns::ENDPOINT_COLUMNS`], its secret opened.
pub(crate) fn endpoint(key: &SettingsKey, row: &impl Columns) -> Result<Endpoint> {
    let id = row.text(0)?;
    let context = secret_context(&id);
    let secret = key
        .open(&context, &row.bytes(3)?)
        .ok_or_else(|| StorageError::WrongKey(context.clone()))
        .and_then(|shown| {
            Secret::parse(&shown).map_err(|err| StorageError::Corrupt(err.to_string()))
        })?;
    Ok(Endpoint {
        id,
        tenant_id: row.maybe_text(1)?,
        url: row.text(2)?,
        secret,
        disabled: row.maybe_text(4)?,
        position: row.int(5)?,
        created_at: row.text(6)?,
    })
}

/// An endpoint's secret, sealed for storing.
pub(crate) fn seal_secret(key: &SettingsKey, endpoint: &Endpoint) -> Result<Vec<u8>> {
    Ok(key.seal(&secret_context(&endpoint.id), &endpoint.secret.reveal())?)
}
