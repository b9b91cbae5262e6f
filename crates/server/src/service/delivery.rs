//! The delivery side of the service (see [`crate::delivery`]): the feeds and subscriptions of
//! call updates, who may stream what, the stream tokens the platform mints for browsers, and
//! the endpoints updates are forwarded to.

use std::time::{Duration, SystemTime};

use super::{Principal, Service, ServiceError};
use crate::delivery::forwarder::{self, Endpoint, Failure};
use crate::delivery::signature::Secret;
use crate::delivery::{Feed, Subscription, UpdateFilter};

/// The longest a stream token may be valid.
pub const MAX_STREAM_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Who opens a stream, and what it may see.
#[derive(Debug, Clone)]
pub enum StreamAccess {
    /// A bearer of the admin or a tenant's token.
    Principal(Principal),
    /// A bearer of a stream token (see [`crate::delivery::stream_token`]).
    Token(String),
}

/// An endpoint to create, as the admin asks for it.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    /// Where updates are POSTed.
    pub url: String,
    /// Whose updates: `None` for every tenant's (admin only).
    pub tenant_id: Option<String>,
    /// The signing secret (`whsec_...`); one is generated when `None`.
    pub secret: Option<String>,
    /// Deliver the updates after this position; `None` for only those that come from now on.
    pub after: Option<i64>,
}

impl Service {
    /// The updates after `after` that pass `filter`, as they are committed.
    pub fn feed(&self, filter: UpdateFilter, after: i64) -> Feed {
        Feed::new(
            std::sync::Arc::clone(&self.storage),
            &self.hub,
            filter,
            after,
        )
    }

    /// The subscription of the library consumer `consumer` (see [`Subscription`]): a platform
    /// that embeds the server takes call updates through it and acknowledges them, and resumes
    /// after a restart where it left off.
    pub async fn subscribe(
        &self,
        consumer: &str,
        filter: UpdateFilter,
    ) -> Result<Subscription, ServiceError> {
        Subscription::open(
            std::sync::Arc::clone(&self.storage),
            &self.hub,
            consumer,
            filter,
        )
        .await
        .map_err(|err| ServiceError::Storage(err.to_string()))
    }

    /// The gauge of clients following the live stream, for the stream to count itself in.
    pub(crate) fn stream_clients(&self) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics.stream_clients()
    }

    /// The position of the latest call update: where a stream that asks for none of the past
    /// starts.
    pub async fn latest_update(&self) -> Result<i64, ServiceError> {
        Ok(self.storage.last_update().await?)
    }

    /// What `access` may stream, narrowed by what it asked (`tenant`, `user`). The admin may
    /// stream everything; a tenant its own updates; a stream token its one user's.
    pub fn stream_filter(
        &self,
        access: &StreamAccess,
        tenant: Option<String>,
        user: Option<String>,
    ) -> Result<UpdateFilter, ServiceError> {
        match access {
            StreamAccess::Principal(Principal::Admin) => Ok(UpdateFilter {
                tenant_id: tenant,
                user,
            }),
            StreamAccess::Principal(principal @ Principal::Tenant(own)) => {
                if let Some(tenant) = &tenant {
                    self.authorize_tenant(principal, tenant)?;
                }
                Ok(UpdateFilter {
                    tenant_id: Some(own.clone()),
                    user,
                })
            }
            StreamAccess::Token(token) => {
                let grant = self
                    .stream_tokens
                    .check(token)
                    .map_err(|err| ServiceError::Unauthorized(err.to_string()))?;
                let asked_other = tenant.is_some_and(|tenant| tenant != grant.tenant_id)
                    || user.is_some_and(|user| user != grant.user);
                if asked_other {
                    return Err(ServiceError::Forbidden(
                        "stream another user's calls than the stream token's",
                    ));
                }
                Ok(UpdateFilter {
                    tenant_id: Some(grant.tenant_id),
                    user: Some(grant.user),
                })
            }
        }
    }

    /// A stream token for `user` of `tenant_id`, valid for `ttl` (at most
    /// [`MAX_STREAM_TOKEN_TTL`]), and when it expires.
    pub fn mint_stream_token(
        &self,
        principal: &Principal,
        tenant_id: &str,
        user: &str,
        ttl: Duration,
    ) -> Result<(String, SystemTime), ServiceError> {
        self.authorize_tenant(principal, tenant_id)?;
        if user.is_empty() {
            return Err(ServiceError::BadRequest("`user` must not be empty".into()));
        }
        if ttl.is_zero() || ttl > MAX_STREAM_TOKEN_TTL {
            return Err(ServiceError::BadRequest(format!(
                "`ttl_secs` must be 1 to {}",
                MAX_STREAM_TOKEN_TTL.as_secs()
            )));
        }
        Ok(self.stream_tokens.mint(tenant_id, user, ttl))
    }

    /// Prunes the call updates older than the event retention that every endpoint has taken,
    /// once a minute, for as long as the service serves. A stream or subscription that falls
    /// further behind than the retention resumes at the oldest update kept.
    pub async fn keep_updates(self: std::sync::Arc<Self>) {
        let mut timer = tokio::time::interval(Duration::from_secs(60));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            let before = crate::storage::ago(self.event_retention);
            match self.storage.prune_updates(&before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned call updates past the retention"),
                Err(err) => tracing::error!("pruning the call updates failed: {err}"),
            }
        }
    }

    /// Starts forwarding to every enabled endpoint.
    pub async fn start_forwarding(&self) -> Result<(), ServiceError> {
        Ok(self.forwarders.start().await?)
    }

    /// Stops forwarding, each endpoint once it has stored its position.
    pub async fn stop_forwarding(&self) {
        self.forwarders.shutdown().await;
    }

    /// Creates an endpoint and starts forwarding to it; returns it with its secret.
    pub async fn create_endpoint(
        &self,
        principal: &Principal,
        new: NewEndpoint,
    ) -> Result<Endpoint, ServiceError> {
        let tenant_id = match (principal, new.tenant_id) {
            (Principal::Admin, tenant) => tenant,
            (principal @ Principal::Tenant(own), tenant) => {
                if let Some(tenant) = &tenant {
                    self.authorize_tenant(principal, tenant)?;
                }
                Some(own.clone())
            }
        };
        forwarder::check_url(&new.url).map_err(ServiceError::BadRequest)?;
        let secret = match new.secret {
            Some(shown) => {
                Secret::parse(&shown).map_err(|err| ServiceError::BadRequest(err.to_string()))?
            }
            None => Secret::generate()?,
        };
        let position = match new.after {
            Some(after) if after < 0 => {
                return Err(ServiceError::BadRequest(
                    "`after` must not be negative".into(),
                ));
            }
            Some(after) => after,
            None => self.storage.last_update().await?,
        };
        let endpoint = Endpoint {
            id: format!("ep_{}", uuid::Uuid::now_v7().simple()),
            tenant_id,
            url: new.url,
            secret,
            disabled: None,
            position,
            created_at: crate::storage::now(),
        };
        self.storage.create_endpoint(&endpoint).await?;
        tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "endpoint created");
        self.forwarders.restart(&endpoint.id).await?;
        self.endpoint_changed(&endpoint.id).await;
        Ok(endpoint)
    }

    /// The endpoints `principal` may see: all for the admin, a tenant's own for its token.
    pub async fn endpoints_for(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Endpoint>, ServiceError> {
        let mut endpoints = self.storage.endpoints().await?;
        if let Principal::Tenant(own) = principal {
            endpoints.retain(|endpoint| endpoint.tenant_id.as_ref() == Some(own));
        }
        Ok(endpoints)
    }

    /// One endpoint, if `principal` may manage it; another tenant's is "not found".
    pub async fn endpoint_for(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Endpoint, ServiceError> {
        let endpoint = self.storage.endpoint(id).await?;
        endpoint
            .filter(|endpoint| match principal {
                Principal::Admin => true,
                Principal::Tenant(own) => endpoint.tenant_id.as_ref() == Some(own),
            })
            .ok_or_else(|| ServiceError::NotFound(format!("endpoint `{id}`")))
    }

    /// Stops forwarding to an endpoint and deletes it with its failures.
    pub async fn delete_endpoint(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(), ServiceError> {
        self.endpoint_for(principal, id).await?;
        self.forwarders.stop(id).await;
        self.storage.delete_endpoint(id).await?;
        self.endpoint_changed(id).await;
        Ok(())
    }

    /// Enables an endpoint that was disabled: forwarding resumes from its position, with the
    /// update it refused.
    pub async fn enable_endpoint(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Endpoint, ServiceError> {
        self.endpoint_for(principal, id).await?;
        self.storage.enable_endpoint(id).await?;
        tracing::info!(endpoint = %id, "endpoint enabled");
        self.forwarders.restart(id).await?;
        self.endpoint_changed(id).await;
        self.endpoint_for(principal, id).await
    }

    /// An endpoint's failures, retrying and dead.
    pub async fn failures(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Vec<Failure>, ServiceError> {
        self.endpoint_for(principal, id).await?;
        Ok(self.storage.failures(id).await?)
    }

    /// Delivers an endpoint's dead letters again (all, or the one at `position`), each with a
    /// fresh schedule; returns how many.
    pub async fn replay(
        &self,
        principal: &Principal,
        id: &str,
        position: Option<i64>,
    ) -> Result<usize, ServiceError> {
        self.endpoint_for(principal, id).await?;
        let replayed = self.storage.replay_failures(id, position).await?;
        if replayed > 0 {
            tracing::info!(endpoint = %id, replayed, "dead letters replayed");
            self.forwarders.restart(id).await?;
            self.endpoint_changed(id).await;
        }
        Ok(replayed)
    }
}
