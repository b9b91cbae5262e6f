//! Delivery, end to end: the live stream of call updates as a browser follows it, forwarding to
//! endpoints that fail in every way an endpoint does, and a host killed with webhooks in flight
//! that loses nothing it acknowledged on any path. The real binary over loopback; endpoints are
//! real HTTP servers in the test, checking each signature as a receiver would.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::endpoints::{Endpoints, Received, assert_signed, create_endpoint};
use support::stream::{EventStream, Frame, all_updates};
use support::{Server, happen, scripted_server};

#[test]
fn a_browser_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice() {
    let (_dir, server, webhook) = scripted_server(&["--stream-keep-alive-secs", "1"]);
    let admin = format!("Bearer {}", server.admin_token);
    let stream_url = format!("{}/stream/calls", server.url);

    // A first connection, from the first update: three, then the tab closes.
    let first = EventStream::open(
        &format!("{stream_url}?after=0"),
        &[("authorization", &admin)],
        3,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.headers["content-type"], "text/event-stream");
    assert_eq!(first.headers["x-accel-buffering"], "no");
    assert!(!first.headers.contains_key("content-encoding"));
    for call in 1..=3 {
        happen(
            &server,
            &webhook,
            &format!("event=start&call_id=c-{call}&direction=in&src=%2B7916000000{call}&dst=101"),
        );
    }
    let seen = first.events(3, Duration::from_secs(10));
    let last = seen.last().expect("three").0;

    // While the browser is away, the calls go on.
    for call in 1..=3 {
        happen(&server, &webhook, &format!("event=answer&call_id=c-{call}"));
        happen(&server, &webhook, &format!("event=end&call_id=c-{call}"));
    }
    // It comes back with the last id it saw, as `EventSource` does by itself.
    let again = EventStream::open(
        &stream_url,
        &[
            ("authorization", &admin),
            ("last-event-id", &last.to_string()),
        ],
        usize::MAX,
    );
    let resumed = again.events(6, Duration::from_secs(10));
    let mut positions: Vec<i64> = seen.iter().chain(&resumed).map(|(id, _)| *id).collect();
    let everything: Vec<i64> = all_updates(&server, 9).iter().map(|(id, _)| *id).collect();
    assert_eq!(positions, everything, "in order, none missed, none twice");
    positions.dedup();
    assert_eq!(positions.len(), 9);
    let states: Vec<&Value> = resumed
        .iter()
        .map(|(_, data)| &data["data"]["call"]["state"])
        .collect();
    assert_eq!(
        states,
        [
            "answered", "ended", "answered", "ended", "answered", "ended"
        ]
    );

    // Idle, the stream hears a keep-alive comment every interval.
    match again.frames.recv_timeout(Duration::from_secs(5)) {
        Ok(Frame::Comment) => {}
        Ok(frame) => panic!("nothing happened, yet {frame:?}"),
        Err(err) => panic!("no keep-alive within 5 s: {err}"),
    }

    // A resume point that is not a position is refused, and so is a request without a token.
    let bad = EventStream::open(
        &stream_url,
        &[("authorization", &admin), ("last-event-id", "x")],
        1,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let anonymous = EventStream::open(&stream_url, &[], 1);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}

#[test]
fn a_stream_token_follows_its_one_user_and_nothing_else() {
    let (_dir, server, webhook) = scripted_server(&[]);
    let minted = server.admin(
        "POST",
        "/tenants/acme/stream-tokens",
        json!({ "user": "anna", "ttl_secs": 600 }),
    );
    assert_eq!(minted.status, 201, "{}", minted.body);
    let stream_path = minted.json()["stream"].as_str().expect("a path").to_owned();
    let token = minted.json()["token"].as_str().expect("a token").to_owned();
    let anna = EventStream::open(
        &format!("{}{stream_path}&after=0", server.url),
        &[],
        usize::MAX,
    );
    assert_eq!(anna.status, 200, "{}", anna.body);

    // 101 is anna's extension, 102 boris's.
    happen(
        &server,
        &webhook,
        "event=start&call_id=b-1&direction=in&src=%2B79160000001&dst=102",
    );
    happen(
        &server,
        &webhook,
        "event=start&call_id=a-1&direction=in&src=%2B79160000002&dst=101",
    );
    happen(&server, &webhook, "event=end&call_id=b-1");
    happen(&server, &webhook, "event=end&call_id=a-1");
    let seen = anna.events(2, Duration::from_secs(10));
    let calls: Vec<&Value> = seen
        .iter()
        .map(|(_, data)| &data["data"]["call"]["provider_call_id"])
        .collect();
    assert_eq!(calls, ["a-1", "a-1"]);
    assert!(
        seen.iter()
            .all(|(_, data)| data["data"]["call"]["users"] == json!(["anna"]))
    );

    // The token is for anna alone, and only this host's admin token makes such tokens.
    let url = |query: &str| format!("{}/stream/calls?{query}", server.url);
    let other = EventStream::open(&url(&format!("token={token}&user=boris")), &[], 1);
    assert_eq!(other.status, 403, "{}", other.body);
    let (claims, _) = token.split_once('.').expect("two parts");
    let forged = EventStream::open(&url(&format!("token={claims}.AAAA")), &[], 1);
    assert_eq!(forged.status, 401, "{}", forged.body);

    // A tenant's token mints for its own users only.
    let globex = server.tenant("globex");
    let refused = server.as_token(
        &globex,
        "POST",
        "/tenants/acme/stream-tokens",
        json!({ "user": "anna" }),
    );
    assert_eq!(refused.status, 404, "{}", refused.body);
}

/// Each call's updates as an endpoint took them: positions, in the order taken.
fn by_call(delivered: &[Received]) -> BTreeMap<String, Vec<i64>> {
    let mut calls: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for received in delivered {
        let data = &received.json()["data"];
        calls
            .entry(data["call"]["id"].as_str().expect("a call id").to_owned())
            .or_default()
            .push(data["position"].as_i64().expect("a position"));
    }
    calls
}

/// The events of three calls, interleaved: nine updates.
fn three_calls(server: &Server, webhook: &str, prefix: &str) {
    for step in ["start", "answer", "end"] {
        for call in 1..=3 {
            let form = if step == "start" {
                format!(
                    "event=start&call_id={prefix}-{call}&direction=in&src=%2B7916100000{call}&dst=101"
                )
            } else {
                format!("event={step}&call_id={prefix}-{call}")
            };
            happen(server, webhook, &form);
        }
    }
}

const QUICK_RETRIES: &[&str] = &[
    "--forward-schedule",
    "100ms,200ms,200ms,200ms",
    "--forward-timeout-ms",
    "2000",
];

#[test]
fn an_endpoint_that_is_down_then_fails_then_recovers_gets_every_update_in_order_signed() {
    let (_dir, server, webhook) = scripted_server(QUICK_RETRIES);
    let mut endpoints = Endpoints::reserve();
    let (_, secret) = create_endpoint(&server, &endpoints.url("/platform"));

    // Down: nothing listens. The updates wait, retried.
    three_calls(&server, &webhook, "c");
    std::thread::sleep(Duration::from_millis(150));
    // Up, but failing: every attempt gets 500.
    endpoints.answer("/platform", 500);
    endpoints.listen();
    std::thread::sleep(Duration::from_millis(250));
    // Recovered.
    endpoints.answer("/platform", 200);
    let delivered = endpoints.wait_delivered("/platform", 9, Duration::from_secs(20));

    let received = endpoints.received("/platform");
    assert!(
        received.iter().any(|received| received.answered == 500),
        "the endpoint failed some attempts: {received:?}"
    );
    for received in &received {
        assert_signed(received, &secret);
    }
    // Retries keep their id and their body.
    for failed in received.iter().filter(|received| received.answered == 500) {
        let taken = delivered
            .iter()
            .find(|delivered| delivered.id == failed.id)
            .unwrap_or_else(|| panic!("{} failed and was never delivered", failed.id));
        assert_eq!(taken.body, failed.body);
    }
    // Every update of each call, in position order.
    let calls = by_call(&delivered);
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (call, positions) in &calls {
        assert_eq!(positions.len(), 3, "{call}: {positions:?}");
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{call}: {positions:?}"
        );
    }
    let states: Vec<String> = delivered
        .iter()
        .filter(|received| received.json()["data"]["call"]["provider_call_id"] == "c-1")
        .map(|received| {
            received.json()["data"]["call"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(states, ["ringing", "answered", "ended"]);
}

#[test]
fn a_dead_letter_is_listed_and_replayed_and_a_410_disables_until_enabled() {
    let (_dir, server, webhook) = scripted_server(QUICK_RETRIES);
    let mut endpoints = Endpoints::reserve();
    endpoints.answer("/failing", 500);
    endpoints.answer("/gone", 410);
    endpoints.listen();
    let (failing, secret) = create_endpoint(&server, &endpoints.url("/failing"));
    let (gone, _) = create_endpoint(&server, &endpoints.url("/gone"));

    happen(
        &server,
        &webhook,
        "event=start&call_id=d-1&direction=in&src=%2B79162000001&dst=101",
    );
    // Five attempts (the first and four retries), then a dead letter.
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let listed = server.admin(
            "GET",
            &format!("/endpoints/{failing}/failures?dead=true"),
            Value::Null,
        );
        assert_eq!(listed.status, 200, "{}", listed.body);
        if let Some(dead) = listed
            .json()
            .as_array()
            .and_then(|dead| dead.first().cloned())
        {
            break dead;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter: {:?}",
            endpoints.received("/failing")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(dead["attempts"], 5, "{dead}");
    assert_eq!(dead["last_status"], 500, "{dead}");
    assert!(dead["next_attempt_at"].is_null());
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("500")),
        "{dead}"
    );
    assert_eq!(endpoints.received("/failing").len(), 5);

    // The receiver is fixed; the admin replays what failed.
    endpoints.answer("/failing", 200);
    let replayed = server.admin(
        "POST",
        &format!("/endpoints/{failing}/failures/replay"),
        Value::Null,
    );
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.json()["replayed"], 1);
    let delivered = endpoints.wait_delivered("/failing", 1, Duration::from_secs(10));
    assert_signed(&delivered[0], &secret);
    assert_eq!(
        delivered[0].id,
        endpoints.received("/failing")[0].id,
        "the same id as before"
    );
    // The failure is forgotten once the delivery is recorded, just after the endpoint's 2xx.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let failures = server.admin(
            "GET",
            &format!("/endpoints/{failing}/failures"),
            Value::Null,
        );
        if failures.json() == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {}", failures.body);
        std::thread::sleep(Duration::from_millis(20));
    }

    // The endpoint that answered 410 was disabled at once, and got nothing more.
    let shown = server.admin("GET", &format!("/endpoints/{gone}"), Value::Null);
    assert!(
        shown.json()["disabled"]
            .as_str()
            .is_some_and(|why| why.contains("410")),
        "{}",
        shown.body
    );
    assert_eq!(endpoints.received("/gone").len(), 1);
    happen(&server, &webhook, "event=end&call_id=d-1");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(endpoints.received("/gone").len(), 1);

    // Enabled again, it gets the update it refused and the one after.
    endpoints.answer("/gone", 200);
    let enabled = server.admin("POST", &format!("/endpoints/{gone}/enable"), Value::Null);
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert!(enabled.json()["disabled"].is_null());
    let delivered = endpoints.wait_delivered("/gone", 2, Duration::from_secs(10));
    let states: Vec<Value> = delivered
        .iter()
        .map(|received| received.json()["data"]["call"]["state"].clone())
        .collect();
    assert_eq!(states, ["ringing", "ended"]);

    // Bad endpoints are refused, saying why.
    let refused = server.admin("POST", "/endpoints", json!({ "url": "ftp://example.com/" }));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("http"), "{}", refused.body);
    let refused = server.admin(
        "POST",
        "/endpoints",
        json!({ "url": endpoints.url("/x"), "secret": "whsec_c2hvcnQ=" }),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("24 bytes"), "{}", refused.body);
}

/// A distinct caller number for every webhook of the kill test, so that each acknowledged
/// webhook can be found again by it.
static CALLER: AtomicU64 = AtomicU64::new(79_170_000_000);

#[test]
fn a_host_killed_with_webhooks_in_flight_loses_no_acknowledged_event_on_any_path() {
    let (dir, mut server, webhook) = scripted_server(&[]);
    let mut endpoints = Endpoints::reserve();
    endpoints.listen();
    let (_, secret) = create_endpoint(&server, &endpoints.url("/platform"));

    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut streamed: Vec<(i64, Value)> = Vec::new();
    const ROUNDS: usize = 4;
    const CLIENTS: usize = 24;
    for round in 0..ROUNDS {
        // The platform's stream, resumed where it stopped on the server before.
        let after = streamed.last().map_or(0, |(id, _)| *id);
        let stream = EventStream::open(
            &format!("{}/stream/calls?after={after}", server.url),
            &[("authorization", &format!("Bearer {}", server.admin_token))],
            usize::MAX,
        );
        assert_eq!(stream.status, 200, "{}", stream.body);
        let url = format!("{}{webhook}", server.url);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (url, stop, acknowledged) =
                    (url.clone(), Arc::clone(&stop), Arc::clone(&acknowledged));
                std::thread::spawn(move || {
                    let agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(5)))
                        .build()
                        .new_agent();
                    while !stop.load(Ordering::Relaxed) {
                        let src = format!("+{}", CALLER.fetch_add(1, Ordering::Relaxed));
                        let form = format!(
                            "event=start&direction=in&src={}&dst=101",
                            src.replace('+', "%2B")
                        );
                        let sent = agent
                            .post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .send(form.as_bytes());
                        match sent {
                            Ok(response) if response.status().is_success() => {
                                acknowledged.lock().expect("acknowledged").insert(src);
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 100 * round as u64));
        // SIGKILL, webhooks in flight.
        server.crash();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().expect("a client");
        }
        // The stream ends with the server: take what it got before.
        while let Ok(frame) = stream.frames.recv_timeout(Duration::from_secs(10)) {
            if let Frame::Event { id, data, .. } = frame {
                streamed.push((id, data));
            }
        }
        server = Server::start(dir.path());
    }

    // Everything acknowledged is in the log once.
    let acknowledged = acknowledged.lock().expect("acknowledged").clone();
    assert!(
        acknowledged.len() > CLIENTS * ROUNDS,
        "only {} acknowledged",
        acknowledged.len()
    );
    let logged = server.every_event("/tenants/acme/integrations/pbx/events");
    let mut in_log: HashMap<String, usize> = HashMap::new();
    for event in &logged {
        *in_log
            .entry(
                event["event"]["src_phone"]
                    .as_str()
                    .expect("a caller")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    for src in &acknowledged {
        assert_eq!(in_log.get(src), Some(&1), "{src} in the log");
    }

    // The stream: what was streamed before each kill, then the rest after the last one.
    let after = streamed.last().map_or(0, |(id, _)| *id);
    let rest = logged.len() - streamed.len();
    let stream = EventStream::open(
        &format!("{}/stream/calls?after={after}", server.url),
        &[("authorization", &format!("Bearer {}", server.admin_token))],
        rest,
    );
    streamed.extend(stream.events(rest, Duration::from_secs(30)));
    let positions: Vec<i64> = streamed.iter().map(|(id, _)| *id).collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "each once, in order"
    );
    let on_stream = callers(streamed.iter().map(|(_, data)| data));
    for src in &acknowledged {
        assert_eq!(on_stream.get(src), Some(&1), "{src} on the stream");
    }

    // The endpoint: every update, each under one id however often it was sent.
    let delivered = endpoints.wait_delivered("/platform", logged.len(), Duration::from_secs(60));
    let bodies: Vec<Value> = delivered.iter().map(Received::json).collect();
    let forwarded = callers(bodies.iter());
    for src in &acknowledged {
        assert_eq!(forwarded.get(src), Some(&1), "{src} forwarded");
    }
    for received in endpoints.received("/platform") {
        assert_signed(&received, &secret);
    }
    let sent = endpoints.received("/platform").len();
    eprintln!(
        "{} acknowledged, {} logged, {} streamed, {} forwarded ({sent} requests)",
        acknowledged.len(),
        logged.len(),
        streamed.len(),
        delivered.len()
    );
}

/// How often each caller appears among updates.
fn callers<'a>(updates: impl Iterator<Item = &'a Value>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for update in updates {
        let src = update["data"]["call"]["src_phone"]
            .as_str()
            .expect("a caller");
        *counts.entry(src.to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn a_shutdown_ends_the_live_streams_instead_of_waiting_on_them() {
    let (_dir, mut server, _) = scripted_server(&[]);
    let stream = EventStream::open(
        &format!("{}/stream/calls", server.url),
        &[("authorization", &format!("Bearer {}", server.admin_token))],
        usize::MAX,
    );
    assert_eq!(stream.status, 200, "{}", stream.body);
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    // The drain waits up to 30 s for requests in flight; a stream is not one of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().expect("a status").is_none() {
        assert!(
            Instant::now() < deadline,
            "the server still runs, held by a stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        matches!(
            stream.frames.recv_timeout(Duration::from_secs(5)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ),
        "the stream ended"
    );
}
