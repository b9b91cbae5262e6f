//! A provider's webhook: find the integration, run its active parser in a fresh instance,
//! commit what it produced, answer the provider.
//!
//! | situation | answer |
//! |---|---|
//! | unknown integration or wrong token | `404 {"error": "not found"}`, the same for both |
//! | no active parser version | `503 {"error": ...}` with `retry-after`, so the provider retries |
//! | over the integration's rate budget | `429 {"error": ...}` with `retry-after` (see [`crate::admission`]) |
//! | the integration's running slots and queue are full, or the queue wait ran out | `503 {"error": ...}` with `retry-after` |
//! | the integration's parser keeps failing and its circuit breaker is open (see [`crate::health`]) | `503 {"error": ...}` with `retry-after` until the next probe |
//! | the parser's result is valid | its response, or `200` with an empty body; events are committed to the log first |
//! | the parser refused the request (`parse-error`) | `400 {"error": message}`, as the platform's example does |
//! | the parser crashed, timed out, hit a limit, or returned an invalid result | `500 {"error": message}`: the parser's fault, so providers that retry on 5xx retry once it is fixed |
//! | no free instance slot | `503 {"error": ...}` with `retry-after` |
//! | the event log could not commit | `503 {"error": ...}` with `retry-after`: nothing was acknowledged |
//! | the result names a delivery id stored within the delivery window | the answer the first delivery got; nothing is stored again (`duplicate`) |
//! | the event names only a call not known yet | its response, once the event is held durably for its call (see [`crate::calls`]) |

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use telehook::log::redact;
use telehook::outcome::{HttpResponse, Outcome};
use telehook::{InvokeError, WebhookRequest};

use super::{InvocationSummary, Route, Service};
use crate::admission::Refusal;
use crate::storage::{Appended, IntegrationKey, NewDelivery, NewEvent, ago, now};
use crate::{lanes, tokens};

/// How much of a request body the recent-invocations view keeps.
const RECENT_BODY_BYTES: usize = 4096;

/// What the provider gets, and the outcome's name for metrics.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP response.
    pub response: HttpResponse,
    /// `ok` or the kind of failure.
    pub outcome: &'static str,
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "error": message }).to_string().into_bytes(),
    }
}

/// How long a provider is asked to wait while an admin fixes a setting.
const MISCONFIGURED_RETRY: Duration = Duration::from_secs(60);

fn retry_later(message: &str) -> HttpResponse {
    retry_after(503, message, Duration::from_secs(1))
}

/// An error with `retry-after` in whole seconds, at least one.
fn retry_after(status: u16, message: &str, wait: Duration) -> HttpResponse {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(status, message);
    response
        .headers
        .push(("retry-after".into(), seconds.max(1).to_string()));
    response
}

impl Service {
    /// Tells the integration's circuit breaker how the parser did. A refusal is the parser's own
    /// decision and counts as working; a host that could not start an instance says nothing
    /// about the parser.
    fn judge(&self, key: &IntegrationKey, route: &Route, result: &Result<Outcome, InvokeError>) {
        match result {
            Ok(_) | Err(InvokeError::Rejected { .. }) => {
                if route.breaker.succeeded() {
                    tracing::info!(integration = %key, "the parser works again: resumed");
                    self.metrics.breaker_open(key, false);
                }
            }
            Err(InvokeError::Instantiate(_)) => {}
            Err(InvokeError::Misconfigured { setting, message }) => {
                route.breaker.misconfigured(setting, message);
            }
            Err(err) => {
                if route.breaker.failed(err.kind(), &err.to_string()) {
                    tracing::error!(
                        integration = %key,
                        "the parser keeps failing: suspended until the cooldown ends or an admin \
                         resets it"
                    );
                    self.metrics.breaker_open(key, true);
                }
            }
        }
    }
}

/// The answer for an unknown integration or a wrong token: the same for both, so that a
/// prober learns nothing.
fn not_found() -> Answer {
    Answer {
        response: error(404, "not found"),
        outcome: "unknown_integration",
    }
}

/// The answer to a request the integration's gate did not let in.
fn refused(key: &IntegrationKey, refusal: Refusal) -> Answer {
    match refusal {
        Refusal::RateLimited { retry_after: wait } => {
            tracing::info!(integration = %key, "over the rate budget: 429");
            Answer {
                response: retry_after(
                    429,
                    "the integration is over its rate budget; retry later",
                    wait,
                ),
                outcome: "rate_limited",
            }
        }
        Refusal::Busy => {
            tracing::warn!(integration = %key, "every slot and queue place is taken: 503");
            Answer {
                response: retry_later("the integration is busy; retry later"),
                outcome: "busy",
            }
        }
    }
}

impl Service {
    /// Handles one webhook request to `/hooks/{tenant}/{integration}/{token}`.
    pub async fn webhook(
        self: &Arc<Self>,
        key: &IntegrationKey,
        token: &str,
        request: WebhookRequest,
    ) -> Answer {
        let answer = self.run_webhook(key, token, request).await;
        let known = answer.outcome != "unknown_integration";
        self.metrics.request(known.then_some(key), answer.outcome);
        answer
    }

    /// Handles a request to `/hooks/{integration}/{token}`, the form of the webhook URLs handed
    /// out before integration ids were per tenant: providers keep calling those after an
    /// upgrade. The integration is the one of that id whose token matches; the lookup reads
    /// storage on every request, which only these old URLs pay.
    pub async fn webhook_without_tenant(
        self: &Arc<Self>,
        integration_id: &str,
        token: &str,
        request: WebhookRequest,
    ) -> Answer {
        let owner = match self.storage.integrations_named(integration_id).await {
            Ok(named) => named
                .into_iter()
                .find(|integration| tokens::matches(token, &integration.webhook_token)),
            Err(err) => {
                tracing::error!(integration_id, "cannot look the integration up: {err}");
                return Answer {
                    response: retry_later("the integration cannot be loaded; retry later"),
                    outcome: "no_active_version",
                };
            }
        };
        match owner {
            Some(integration) => self.webhook(&integration.key(), token, request).await,
            None => {
                self.metrics.request(None, "unknown_integration");
                not_found()
            }
        }
    }

    async fn run_webhook(
        self: &Arc<Self>,
        key: &IntegrationKey,
        token: &str,
        request: WebhookRequest,
    ) -> Answer {
        let received_at = now();
        let route = match self.route(key).await {
            Ok(Some(route)) if tokens::matches(token, &route.webhook_token) => route,
            Ok(_) => return not_found(),
            Err(err) => {
                tracing::error!(integration = %key, "cannot load the integration: {err}");
                return Answer {
                    response: retry_later("the integration cannot be loaded; retry later"),
                    outcome: "no_active_version",
                };
            }
        };
        route.last_used.store(self.clock(), Ordering::Relaxed);
        let Some(active) = route.active.clone() else {
            return Answer {
                response: retry_later("the integration has no active parser version"),
                outcome: "no_active_version",
            };
        };

        let running = match route.gate.admit().await {
            Ok(permit) => permit,
            Err(refusal) => return refused(key, refusal),
        };
        if let Err(wait) = route.breaker.allow() {
            return Answer {
                response: retry_after(
                    503,
                    "the integration's parser keeps failing and is suspended; retry later",
                    wait,
                ),
                outcome: "suspended",
            };
        }
        let started = Instant::now();
        let job = {
            let active = Arc::clone(&active);
            move || {
                let invocation = active.parser.invoke(&request, Arc::clone(&active.settings));
                (request, invocation)
            }
        };
        let (request, invocation) = if route.cost.is_heavy() {
            match lanes::in_background(job).await {
                Ok(done) => done,
                Err(err) => {
                    tracing::error!(integration = %key, "the invocation failed: {err}");
                    return Answer {
                        response: error(500, "the parser could not be run"),
                        outcome: "trap",
                    };
                }
            }
        } else {
            job()
        };
        let failed = matches!(
            invocation.result,
            Err(ref err) if !matches!(err, InvokeError::Rejected { .. } | InvokeError::Misconfigured { .. })
        );
        route.cost.record(invocation.elapsed, failed);
        // The slot bounds parsers running, not events waiting for their commit: released here,
        // concurrent requests reach the event log together and share one group commit.
        drop(running);
        self.metrics
            .parser_duration(key, started.elapsed().as_secs_f64());

        let outcome_kind = match &invocation.result {
            Ok(_) => "ok",
            Err(err) => err.kind(),
        };
        self.judge(key, &route, &invocation.result);
        // The settings' values and what the parser asked to hide (contract 0.3), before the
        // body is cut: a secret cut in half would show. The path also carries the webhook token.
        let hidden: Vec<&str> = route
            .secrets
            .iter()
            .map(String::as_str)
            .chain(invocation.log.secrets())
            .collect();
        self.remember(
            key,
            InvocationSummary {
                at: received_at.clone(),
                version: active.version,
                outcome: outcome_kind,
                error: invocation.result.as_ref().err().map(ToString::to_string),
                duration_us: u64::try_from(invocation.elapsed.as_micros()).unwrap_or(u64::MAX),
                method: request.method.clone(),
                path: redact(
                    &request.path_with_query,
                    hidden.iter().copied().chain([route.webhook_token.as_str()]),
                )
                .into_owned(),
                headers: request
                    .headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.clone(),
                            redact(value, hidden.iter().copied()).into_owned(),
                        )
                    })
                    .collect(),
                body: cut(
                    &redact(&request.body_lossy(), hidden.iter().copied()),
                    RECENT_BODY_BYTES,
                ),
                log: invocation.log,
            },
        );

        let mut outcome = match invocation.result {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::warn!(integration = %key, kind = err.kind(), "parser failed: {err}");
                let response = match &err {
                    InvokeError::Rejected { message, status } => error(*status, message),
                    // The admin's to fix: the provider retries later and loses nothing.
                    InvokeError::Misconfigured { .. } => retry_after(
                        503,
                        "the integration is not configured completely; retry later",
                        MISCONFIGURED_RETRY,
                    ),
                    InvokeError::Instantiate(_) => retry_later("the host is busy; retry later"),
                    other => error(500, &other.to_string()),
                };
                return Answer {
                    response,
                    outcome: err.kind(),
                };
            }
        };

        let response = outcome.response.take().unwrap_or(HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        });
        if outcome.event.is_some() || outcome.call_record.is_some() {
            let delivery = outcome.delivery_id.take().map(|id| NewDelivery {
                id,
                repeats_after: ago(self.delivery_window),
                answer: to_json(&response),
            });
            let event = NewEvent {
                tenant_id: key.tenant_id.clone(),
                integration_id: key.integration_id.clone(),
                version: active.version,
                users: route.recipients.of(&outcome),
                received_at,
                event: outcome.event,
                call_record: outcome.call_record,
                delivery,
                calls_since: ago(self.call_rules.window),
            };
            match self.events.append(event).await {
                Ok(Appended::Stored(_) | Appended::Held) => {}
                Ok(Appended::Repeat(answer)) => return repeated(key, &answer),
                Err(err) => {
                    tracing::error!(integration = %key, "event not stored: {err}");
                    return Answer {
                        response: retry_later("the event could not be stored; retry later"),
                        outcome: "storage_error",
                    };
                }
            }
        }
        Answer {
            response,
            outcome: "ok",
        }
    }
}

/// The answer to a provider's retry of a delivery already stored: the answer it got the first
/// time, and nothing stored again.
fn repeated(key: &IntegrationKey, answer: &str) -> Answer {
    match serde_json::from_str(answer) {
        Ok(response) => {
            tracing::info!(integration = %key, "a repeated delivery: answered as the first time");
            Answer {
                response,
                outcome: "duplicate",
            }
        }
        Err(err) => {
            tracing::error!(integration = %key, "the stored answer is unreadable: {err}");
            Answer {
                response: HttpResponse {
                    status: 200,
                    headers: Vec::new(),
                    body: Vec::new(),
                },
                outcome: "duplicate",
            }
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
