//! What admins and tenants do: who a token belongs to and what it may manage, tenants and
//! integrations, versions (upload, activation, rollback), settings, bindings, limits, a
//! parser's health, and the platform's confirmations of the events it has taken.

use std::sync::Arc;

use telehook::Settings;

use super::{Principal, Service, ServiceError};
use crate::compiler::{self, Compiler};
use crate::health::HealthReport;
use crate::lanes;
use crate::limits::{EffectiveLimits, IntegrationLimits};
use crate::storage::{Binding, Consumption, Integration, IntegrationKey, Storage, Version, ago};
use crate::tokens;
use crate::uploads::UploadTurn;

impl Service {
    /// Who a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, ServiceError> {
        if tokens::matches(token, &self.admin_token) {
            return Ok(Some(Principal::Admin));
        }
        Ok(self
            .storage
            .tenant_by_token(&tokens::hash(token))
            .await?
            .map(Principal::Tenant))
    }

    /// The storage, for the reads the admin API passes through.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The integration, if `principal` may manage it as part of `tenant_id`. A tenant asking for
    /// another tenant's integration gets the same answer as for one that does not exist.
    pub async fn integration_for(
        &self,
        principal: &Principal,
        tenant_id: &str,
        integration_id: &str,
    ) -> Result<Integration, ServiceError> {
        self.authorize_tenant(principal, tenant_id)?;
        self.storage
            .integration(&IntegrationKey::new(tenant_id, integration_id))
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("integration `{integration_id}`")))
    }

    /// Fails unless `principal` may manage `tenant_id`.
    pub fn authorize_tenant(
        &self,
        principal: &Principal,
        tenant_id: &str,
    ) -> Result<(), ServiceError> {
        match principal {
            Principal::Admin => Ok(()),
            Principal::Tenant(own) if own == tenant_id => Ok(()),
            Principal::Tenant(_) => Err(ServiceError::NotFound(format!("tenant `{tenant_id}`"))),
        }
    }

    /// The URL the admin pastes into the provider's console.
    pub fn webhook_url(&self, integration: &Integration) -> String {
        format!(
            "{}/hooks/{}/{}/{}",
            self.public_url, integration.tenant_id, integration.id, integration.webhook_token
        )
    }

    /// `tenant_id`'s turn to upload a component, to take before reading it: refused while the
    /// tenant has another upload in flight (see [`crate::uploads`]).
    pub fn upload_turn(&self, tenant_id: &str) -> Result<UploadTurn, ServiceError> {
        self.upload_turns.take(tenant_id).ok_or_else(|| {
            ServiceError::Busy(format!(
                "tenant `{tenant_id}` has an upload in flight already; send the next one once \
                 it is answered"
            ))
        })
    }

    /// Checks and stores a new parser version, in the tenant's upload turn; it is not active
    /// until activated.
    pub async fn upload_version(
        self: &Arc<Self>,
        key: &IntegrationKey,
        bytes: Vec<u8>,
        _turn: UploadTurn,
    ) -> Result<Version, ServiceError> {
        // Compiling is the heaviest thing a tenant can ask for: one upload at a time, at the
        // lowest CPU priority (the background lane, or the compiler process, see `compiler`), so
        // that a flood of uploads gets only the CPU the webhooks leave. The one-at-a-time
        // compile is also what throttles a flood of uploads that are refused after it.
        let _compiling = self
            .compilations
            .acquire()
            .await
            .map_err(|err| ServiceError::Storage(err.to_string()))?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let service = Arc::clone(self);
        let stored = match &self.compiler {
            Compiler::InProcess => {
                lanes::in_background(move || {
                    let parser = service.runtime.load(&bytes)?;
                    Ok::<_, ServiceError>((service.components.put(&bytes, &parser)?, bytes))
                })
                .await
            }
            Compiler::Subprocess {
                program,
                timeout,
                memory_limit,
            } => {
                let (checked, bytes) = {
                    let service = Arc::clone(self);
                    lanes::in_background(move || (service.runtime.validate(&bytes), bytes))
                        .await
                        .map_err(|err| ServiceError::Storage(err.to_string()))?
                };
                checked?;
                let artifact =
                    compiler::in_child(program, *timeout, *memory_limit, &bytes, &self.scratch)
                        .await?;
                lanes::in_background(move || {
                    // SAFETY: `telehook compile` (`Runtime::precompile`) wrote the artifact into
                    // this host's own data directory a moment ago.
                    #[allow(unsafe_code)]
                    let parser = unsafe { service.runtime.load_precompiled(&artifact) }?;
                    Ok::<_, ServiceError>((service.components.put(&bytes, &parser)?, bytes))
                })
                .await
            }
        };
        let (digest, bytes) = stored.map_err(|err| ServiceError::Storage(err.to_string()))??;
        // The database keeps the component before any version names it: every node loads the
        // version from there (its own data directory only caches it).
        self.storage.put_component(&digest, &bytes).await?;
        Ok(self.storage.add_version(key, &digest, size).await?)
    }

    /// Makes `version` the one the next requests run on.
    pub async fn activate(
        self: &Arc<Self>,
        key: &IntegrationKey,
        version: u32,
    ) -> Result<(), ServiceError> {
        self.storage.activate(key, version).await?;
        self.route_changed(key).await
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(self: &Arc<Self>, key: &IntegrationKey) -> Result<u32, ServiceError> {
        let target = self.storage.rollback_target(key).await?.ok_or_else(|| {
            ServiceError::BadRequest("there is no earlier active version to roll back to".into())
        })?;
        self.activate(key, target).await?;
        Ok(target)
    }

    /// Sets and removes settings; the next requests see the change.
    pub async fn update_settings(
        self: &Arc<Self>,
        key: &IntegrationKey,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ServiceError> {
        self.storage.update_settings(key, changes).await?;
        self.route_changed(key).await
    }

    /// Replaces the extension-to-user bindings; the next events notify the new users.
    pub async fn replace_bindings(
        self: &Arc<Self>,
        key: &IntegrationKey,
        bindings: &[Binding],
    ) -> Result<(), ServiceError> {
        self.storage.replace_bindings(key, bindings).await?;
        self.route_changed(key).await
    }

    /// Replaces the webhook token: the old URL stops working at once.
    pub async fn regenerate_token(
        self: &Arc<Self>,
        integration: &Integration,
    ) -> Result<Integration, ServiceError> {
        let token = tokens::generate()?;
        let key = integration.key();
        self.storage.set_webhook_token(&key, &token).await?;
        self.route_changed(&key).await?;
        Ok(Integration {
            webhook_token: token,
            ..integration.clone()
        })
    }

    /// Deletes an integration; its webhook URL stops working at once.
    pub async fn delete_integration(&self, key: &IntegrationKey) -> Result<(), ServiceError> {
        self.storage.delete_integration(key).await?;
        self.forget_route(key);
        self.integration_changed(key).await;
        self.metrics.forget(key);
        Ok(())
    }

    /// Deletes a tenant and its integrations.
    pub async fn delete_tenant(&self, tenant_id: &str) -> Result<(), ServiceError> {
        let integrations = self.storage.integrations(tenant_id).await?;
        // Its endpoints go with it: their forwarding stops first.
        let mut endpoints = self.storage.endpoints().await?;
        endpoints.retain(|endpoint| endpoint.tenant_id.as_deref() == Some(tenant_id));
        for endpoint in &endpoints {
            self.forwarders.stop(&endpoint.id).await;
        }
        self.storage.delete_tenant(tenant_id).await?;
        for endpoint in &endpoints {
            self.endpoint_changed(&endpoint.id).await;
        }
        for integration in integrations {
            self.forget_route(&integration.key());
            self.integration_changed(&integration.key()).await;
            self.metrics.forget(&integration.key());
        }
        Ok(())
    }

    /// The circuit breaker of an integration's active version: its state and last errors.
    pub async fn health(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<HealthReport, ServiceError> {
        Ok(self.loaded_route(key).await?.breaker.report())
    }

    /// Closes an integration's circuit breaker: its parser is called again from the next request.
    pub async fn reset_health(
        self: &Arc<Self>,
        key: &IntegrationKey,
    ) -> Result<HealthReport, ServiceError> {
        let route = self.loaded_route(key).await?;
        route.breaker.reset();
        self.metrics.breaker_open(key, false);
        Ok(route.breaker.report())
    }

    /// An integration's own limits and the limits its requests run under.
    pub async fn integration_limits(
        &self,
        key: &IntegrationKey,
    ) -> Result<(IntegrationLimits, EffectiveLimits), ServiceError> {
        let own = self.storage.limits(key).await?;
        let effective = self.effective_limits(&own);
        Ok((own, effective))
    }

    /// Replaces an integration's own limits after checking them against the host's caps; the
    /// next requests run under them.
    pub async fn set_integration_limits(
        self: &Arc<Self>,
        key: &IntegrationKey,
        limits: &IntegrationLimits,
    ) -> Result<EffectiveLimits, ServiceError> {
        let broken = limits.violations(self.limits());
        if !broken.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "invalid limits: {}",
                broken.join("; ")
            )));
        }
        self.storage.set_limits(key, limits).await?;
        self.route_changed(key).await?;
        Ok(self.effective_limits(limits))
    }

    /// The integration's settings, for a test run of a candidate version.
    pub async fn settings(&self, key: &IntegrationKey) -> Result<Settings, ServiceError> {
        Ok(self.storage.settings(key).await?)
    }

    /// Records that the platform has durably taken every event up to `seq`, and prunes what it
    /// took longer ago than the retention allows (see [`Storage::confirm_consumed`]).
    pub async fn confirm_consumed(self: &Arc<Self>, seq: i64) -> Result<Consumption, ServiceError> {
        let prune_before = ago(self.event_retention);
        let consumption = self.storage.confirm_consumed(seq, &prune_before).await?;
        if consumption.pruned > 0 {
            tracing::info!(
                seq = consumption.seq,
                pruned = consumption.pruned,
                "pruned events the platform has taken"
            );
        }
        Ok(consumption)
    }
}
