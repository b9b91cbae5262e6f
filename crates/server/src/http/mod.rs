//! The HTTP edge: webhook ingress for providers, the admin API, the live stream of call
//! updates (`/stream/calls`), the web console (`/console`), `/metrics`, and the probes an orchestrator asks (`/healthz`,
//! `/readyz`).
//!
//! Everything here translates between HTTP and the [`Service`]; no decision about parsers,
//! tenants or storage is made in this module.
//!
//! Connections are served by hyper with a header-read timeout (slowloris) and a kernel receive
//! buffer near the body limit, bodies are read with a size limit and a timeout, and shutdown
//! stops accepting, then waits for requests in flight.

mod admin;
mod body;
mod console;
mod ingress;
mod probes;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::service::Service;

/// How the HTTP side is set up: its limits, and the URL it is reached at.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The base URL providers call, as configured (`--public-url`): the scheme and authority
    /// of the URL a parser is told it was called at. `None` when it was not configured: the
    /// request's forwarded headers or authority tell it then.
    pub public_url: Option<String>,
    /// The largest webhook body; larger ones get 413. Providers' webhooks are a few KiB; every
    /// byte allowed beyond that is work an attacker can make the host do before refusing.
    pub max_body_bytes: usize,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// How often an idle live stream gets a comment, so that proxies keep it open.
    pub stream_keep_alive: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            max_body_bytes: 64 << 10,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            stream_keep_alive: Duration::from_secs(15),
        }
    }
}

#[derive(Clone)]
struct AppState {
    service: Arc<Service>,
    config: Arc<HttpConfig>,
    /// Turns true when shutdown begins: the live streams end then, so that the drain does not
    /// wait on them (their clients reconnect, to this host's successor).
    closing: tokio::sync::watch::Receiver<bool>,
}

fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/hooks/{tenant}/{integration}/{token}",
            any(ingress::webhook),
        )
        // Providers that append to the URL they are given (Mango Office's `/events/call`):
        // the rest of the path is the parser's route suffix.
        .route(
            "/hooks/{tenant}/{integration}/{token}/{*suffix}",
            any(ingress::webhook),
        )
        .route(
            "/hooks/{integration}/{token}",
            any(ingress::webhook_without_tenant),
        )
        .route("/stream/calls", get(stream::calls))
        .route("/metrics", get(admin::metrics))
        .route("/healthz", get(probes::live))
        .route("/readyz", get(probes::ready))
        .nest("/admin", admin::routes())
        .merge(console::routes())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains requests in flight.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    config: HttpConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let drain_timeout = config.drain_timeout;
    limit_receive_buffer(&listener, config.max_body_bytes);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let sweeper = tokio::spawn(Arc::clone(&service).keep_calls());
    let pruner = tokio::spawn(Arc::clone(&service).keep_updates());
    let in_step = tokio::spawn(Arc::clone(&service).keep_in_step());
    if let Err(err) = service.start_forwarding().await {
        tracing::error!("forwarding could not start: {err}");
    }
    let (close, closing) = tokio::sync::watch::channel(false);
    let app = router(AppState {
        service: Arc::clone(&service),
        config: Arc::new(config),
        closing,
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let connection = http.serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(app.clone()),
                );
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(%peer, "connection ended: {err}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = close.send(true);
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all requests finished"),
        () = tokio::time::sleep(drain_timeout) => {
            tracing::warn!("requests still running after {drain_timeout:?}; stopping anyway");
        }
    }
    sweeper.abort();
    pruner.abort();
    in_step.abort();
    service.stop_forwarding().await;
    Ok(())
}

/// Caps the kernel's receive buffer of every accepted connection (it is inherited from the
/// listener) near the body limit. Linux grows it to megabytes for a fast sender, and a client
/// streaming an oversized body would have all of that copied into the host's memory before the
/// `413` closes the connection; webhooks are a few KiB, so a small buffer costs them nothing.
fn limit_receive_buffer(listener: &TcpListener, max_body_bytes: usize) {
    let size = max_body_bytes.clamp(MIN_RECEIVE_BUFFER, MAX_RECEIVE_BUFFER);
    if let Err(err) = socket2::SockRef::from(listener).set_recv_buffer_size(size) {
        tracing::warn!("cannot limit the receive buffer: {err}");
    }
}

/// The bounds of the receive buffer [`limit_receive_buffer`] sets.
const MIN_RECEIVE_BUFFER: usize = 64 << 10;
const MAX_RECEIVE_BUFFER: usize = 4 << 20;

/// The address a listener is bound to, for the start-up message.
pub fn local_url(listener: &TcpListener) -> std::io::Result<String> {
    let addr: SocketAddr = listener.local_addr()?;
    Ok(format!("http://{addr}"))
}
