//! Endpoints that call updates are forwarded to, as real HTTP servers in the test: each records
//! what it got and answers the status it is set to, and signatures are checked apart from the
//! host's code, as a Standard Webhooks receiver checks them.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Server;

/// What an endpoint got: one request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// Real HTTP endpoints on one port, one per path, each answering the status it is set to.
pub struct Endpoints {
    port: u16,
    statuses: Arc<Mutex<HashMap<String, u16>>>,
    received: Arc<Mutex<Vec<Received>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Endpoints {
    /// A port nothing listens on yet: endpoints there are down until [`Endpoints::listen`].
    pub fn reserve() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self {
            port,
            statuses: Arc::default(),
            received: Arc::default(),
            runtime: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn answer(&self, path: &str, status: u16) {
        self.statuses
            .lock()
            .expect("statuses")
            .insert(path.to_owned(), status);
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .expect("received")
            .iter()
            .filter(|received| received.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` has answered 2xx to `count` distinct deliveries.
    pub fn wait_delivered(&self, path: &str, count: usize, wait: Duration) -> Vec<Received> {
        let deadline = Instant::now() + wait;
        loop {
            let delivered = delivered(&self.received(path));
            if delivered.len() >= count {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} of {count} deliveries: {:?}",
                delivered.len(),
                self.received(path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn listen(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .expect("the reserved port is free");
        let (statuses, received) = (Arc::clone(&self.statuses), Arc::clone(&self.received));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (statuses, received) = (Arc::clone(&statuses), Arc::clone(&received));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (statuses, received) = (Arc::clone(&statuses), Arc::clone(&received));
                        async move { receive(request, &statuses, &received).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        self.runtime = Some(runtime);
    }
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn receive(
    request: hyper::Request<hyper::body::Incoming>,
    statuses: &Mutex<HashMap<String, u16>>,
    received: &Mutex<Vec<Received>>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, hyper::Error> {
    use http_body_util::BodyExt;
    let path = request.uri().path().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = request.into_body().collect().await?.to_bytes();
    let answered = statuses
        .lock()
        .expect("statuses")
        .get(&path)
        .copied()
        .unwrap_or(200);
    received.lock().expect("received").push(Received {
        path,
        id,
        timestamp,
        signature,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered,
        at: Instant::now(),
    });
    Ok(hyper::Response::builder()
        .status(answered)
        .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
            b"noted",
        )))
        .expect("a response"))
}

/// The deliveries an endpoint took (answered 2xx), once each by `webhook-id`, in the order it
/// took them.
pub fn delivered(received: &[Received]) -> Vec<Received> {
    let mut seen = BTreeSet::new();
    received
        .iter()
        .filter(|received| (200..300).contains(&received.answered))
        .filter(|received| seen.insert(received.id.clone()))
        .cloned()
        .collect()
}

/// Checks a delivery's signature as a Standard Webhooks receiver does, with `secret`
/// (`whsec_...`), computed here apart from the host's code.
pub fn assert_signed(received: &Received, secret: &str) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key");
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert!(
        received
            .signature
            .split(' ')
            .any(|signature| signature == expected),
        "{received:?} is not signed with its endpoint's secret"
    );
    let sent: u64 = received.timestamp.parse().expect("Unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(
        now.abs_diff(sent) < 60,
        "timestamp {sent} is not the attempt's"
    );
}

pub fn create_endpoint(server: &Server, url: &str) -> (String, String) {
    let created = server.admin(
        "POST",
        "/endpoints",
        json!({ "url": url, "tenant": "acme", "after": 0 }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let endpoint = created.json();
    (
        endpoint["id"].as_str().expect("an id").to_owned(),
        endpoint["secret"].as_str().expect("a secret").to_owned(),
    )
}
