//! Multi-node mode, end to end: several `telehook serve` nodes on one PostgreSQL schema and
//! one NATS server act as one service.
//!
//! - Three nodes take a provider's calls, each event to the next node in turn, while the node
//!   forwarding to an endpoint is SIGKILLed with webhooks in flight. Every acknowledged event is
//!   in the log exactly once, and every call whose events were all acknowledged is ended; a
//!   live stream on a survivor saw every call update any node committed, once each, in position
//!   order; the endpoint got every update at least once, the lease passing to a survivor, and
//!   every repeat under the id of its first copy.
//! - A change an admin makes through one node (activation, rollback, a new webhook token,
//!   bindings, an endpoint deleted) takes effect on the other within [`PROPAGATION`].
//!
//! The nodes are the real binary over loopback; PostgreSQL and NATS must be running (see
//! `support::cluster`), or the tests fail saying what to start.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::Cluster;
use support::endpoints::{Endpoints, assert_signed, create_endpoint};
use support::stream::{EventStream, Frame, all_updates};
use support::{Reply, Server, happen, scripted_integration};
use telehook_test_artifacts::SCRIPTED;

/// How long a change through one node may take to reach the others: NATS takes milliseconds,
/// and this is the bound the tests allow.
const PROPAGATION: Duration = Duration::from_secs(5);
/// How long the survivors may take to converge after the kill: a forwarding lease's TTL is a
/// few seconds.
const CONVERGENCE: Duration = Duration::from_secs(30);
/// The nodes' names in messages, by index.
const NAMES: [&str; 3] = ["A", "B", "C"];
const FORM: &str = "application/x-www-form-urlencoded";
/// A call's steps: the scripted guest's `event` field, and the event type the log stores.
const STEPS: [(&str, &str); 3] = [
    ("start", "notify_start"),
    ("answer", "notify_answer"),
    ("end", "notify_end"),
];

/// A loaded machine must not turn a slow parser or a queue wait into a refused webhook: what
/// these tests measure is the cluster, not admission.
const PATIENT: &[&str] = &["--parser-timeout-ms", "1000", "--queue-wait-ms", "5000"];
/// Threads sending calls at once.
const CLIENTS: usize = 9;
/// Events acknowledged before the kill, and then after it, before sending stops.
const BEFORE_KILL: usize = 300;
const AFTER_KILL: usize = 300;

/// One event of one call: the provider's call id and the step.
type Sent = (String, &'static str);

/// What the clients sent, and which of it was acknowledged (answered 2xx).
#[derive(Default)]
struct Ledger {
    sent: BTreeSet<Sent>,
    acknowledged: BTreeSet<Sent>,
    unacknowledged: usize,
    /// Why requests were not acknowledged: a status, or the error when no answer came.
    refusals: BTreeMap<String, usize>,
}

#[test]
fn three_nodes_lose_nothing_acknowledged_when_the_forwarding_node_is_killed() {
    let started = Instant::now();
    let mut cluster = Cluster::start(3, PATIENT);
    let (a, b) = (cluster.node(0), cluster.node(1));
    a.tenant("acme");
    let webhook = scripted_integration(a, "acme", "pbx");
    let mut endpoints = Endpoints::reserve();
    endpoints.listen();
    let (endpoint, secret) = create_endpoint(b, &endpoints.url("/platform"));
    let ledger = Mutex::new(Ledger::default());

    // A first call, each event through another node, finds out which node holds the
    // endpoint's lease: that is the one to kill.
    for (node, (step, _)) in STEPS.iter().enumerate() {
        happen(cluster.node(node), &webhook, &form("warm-up", 0, step));
        let mut ledger = ledger.lock().expect("the ledger");
        ledger.sent.insert(("warm-up".into(), step));
        ledger.acknowledged.insert(("warm-up".into(), step));
    }
    endpoints.wait_delivered("/platform", STEPS.len(), CONVERGENCE);
    let victim = eventually("a node reports forwarding", CONVERGENCE, || {
        sole_forwarder(&cluster, &[0, 1, 2])
    });
    let survivors: Vec<usize> = (0..3).filter(|node| *node != victim).collect();
    // The platform follows the live stream on a survivor (C, unless C is the victim), from the
    // first update on.
    let (watcher, reader) = (survivors[survivors.len() - 1], survivors[0]);
    let stream = {
        let node = cluster.node(watcher);
        EventStream::open(
            &format!("{}/stream/calls?after=0", node.url),
            &[("authorization", &format!("Bearer {}", node.admin_token))],
            usize::MAX,
        )
    };
    assert_eq!(stream.status, 200, "{}", stream.body);
    eprintln!(
        "node {} forwards to the endpoint; the stream follows node {}",
        NAMES[victim], NAMES[watcher]
    );

    // Calls from several threads, each event to the next node in turn.
    let webhooks: Vec<String> = (0..3)
        .map(|node| format!("{}{webhook}", cluster.node(node).url))
        .collect();
    let (turn, calls, stop) = (
        AtomicUsize::new(0),
        AtomicU64::new(1),
        AtomicBool::new(false),
    );
    let load = Instant::now();
    let (killed_at, refused_before_kill) = std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| send_calls(&webhooks, &turn, &calls, &ledger, &stop));
        }
        // Whatever fails below, the clients stop, and the scope's end reports it.
        let _stop = StopOnDrop(&stop);
        let acknowledged = || ledger.lock().expect("the ledger").acknowledged.len();
        eventually(
            "events acknowledged before the kill",
            CONVERGENCE * 2,
            || (acknowledged() >= BEFORE_KILL).then_some(()),
        );
        assert_eq!(
            sole_forwarder(&cluster, &[0, 1, 2]),
            Some(victim),
            "one node forwards to an endpoint at a time, and it kept the lease"
        );
        let refused_before_kill = ledger.lock().expect("the ledger").refusals.clone();
        // SIGKILL, webhooks in flight to it.
        cluster.kill(victim);
        let killed_at = Instant::now();
        let at_kill = acknowledged();
        eventually("the survivors go on acknowledging", CONVERGENCE * 2, || {
            (acknowledged() >= at_kill + AFTER_KILL).then_some(())
        });
        (killed_at, refused_before_kill)
    });
    let load = load.elapsed();
    let ledger = ledger.into_inner().expect("the ledger");
    let survivor = cluster.node(reader);

    // The log: every acknowledged event exactly once, nothing twice, nothing never sent.
    let logged = survivor.every_event("/events");
    let seqs: Vec<i64> = logged
        .iter()
        .map(|event| event["seq"].as_i64().expect("a seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "seqs strictly increase: {seqs:?}"
    );
    let mut in_log: HashMap<Sent, usize> = HashMap::new();
    for event in &logged {
        assert!(!event["call"].is_null(), "{event} has its call");
        *in_log.entry(step_of(event)).or_default() += 1;
    }
    for (sent, times) in &in_log {
        assert!(ledger.sent.contains(sent), "{sent:?} was never sent");
        assert_eq!(*times, 1, "{sent:?} is in the log {times} times");
    }
    for acknowledged in &ledger.acknowledged {
        assert!(
            in_log.contains_key(acknowledged),
            "{acknowledged:?} was acknowledged and is not in the log"
        );
    }

    // Calls: one each, whichever nodes its events went through; ended when its end was
    // acknowledged.
    let mut states: HashMap<String, String> = HashMap::new();
    for call in every_call(survivor) {
        let provider = call["provider_call_id"].as_str().expect("a call id");
        let state = call["state"].as_str().expect("a state").to_owned();
        let earlier = states.insert(provider.to_owned(), state);
        assert!(earlier.is_none(), "{provider} is two calls");
    }
    let whole: Vec<&String> = ledger
        .acknowledged
        .iter()
        .filter(|(_, step)| *step == "end")
        .map(|(call, _)| call)
        .collect();
    for call in &whole {
        assert_eq!(
            states.get(*call).map(String::as_str),
            Some("ended"),
            "{call}: its three events were acknowledged"
        );
    }

    // The live stream on a survivor: every update of every node, once each, in order, as a
    // fresh replay from another survivor has them.
    let streamed = stream.events(logged.len(), CONVERGENCE);
    let positions: Vec<i64> = streamed.iter().map(|(position, _)| *position).collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "each once, in order: {positions:?}"
    );
    while let Ok(frame) = stream.frames.try_recv() {
        assert!(
            matches!(frame, Frame::Comment),
            "an update the log does not imply: {frame:?}"
        );
    }
    let streamed_seqs: BTreeSet<i64> = streamed
        .iter()
        .map(|(_, update)| update["data"]["seq"].as_i64().expect("an event's update"))
        .collect();
    assert_eq!(
        streamed_seqs,
        seqs.iter().copied().collect(),
        "an update per event"
    );
    let replayed: Vec<i64> = all_updates(survivor, logged.len())
        .iter()
        .map(|(position, _)| *position)
        .collect();
    assert_eq!(positions, replayed, "the stream is the log's");

    // The endpoint: every update at least once, a repeat under its first copy's id.
    endpoints.wait_delivered("/platform", positions.len(), CONVERGENCE * 2);
    let received = endpoints.received("/platform");
    let mut first_copies: BTreeMap<i64, (String, Value)> = BTreeMap::new();
    let mut duplicates = 0;
    for copy in &received {
        assert_signed(copy, &secret);
        let data = copy.json()["data"].clone();
        let position = data["position"].as_i64().expect("a position");
        if let Some((id, first)) = first_copies.get(&position) {
            assert_eq!(&copy.id, id, "position {position} under another webhook-id");
            assert_eq!(&data, first, "position {position} changed when sent again");
            duplicates += 1;
        } else {
            first_copies.insert(position, (copy.id.clone(), data));
        }
    }
    let forwarded: Vec<i64> = first_copies.keys().copied().collect();
    assert_eq!(forwarded, positions, "the endpoint got every update");
    let takeover = received
        .iter()
        .filter(|copy| copy.at > killed_at)
        .map(|copy| copy.at - killed_at)
        .min()
        .expect("updates after the kill were forwarded");
    assert!(
        takeover <= CONVERGENCE,
        "forwarding resumed {takeover:?} after the kill"
    );
    let heirs: Vec<&str> = survivors
        .iter()
        .filter(|node| forward_attempts(cluster.node(**node)) > 0)
        .map(|node| NAMES[*node])
        .collect();

    eprintln!(
        "{} events acknowledged ({} whole calls), {} requests unacknowledged ({:?}; before the kill {refused_before_kill:?}), over {load:.1?} \
         of load; node {} killed; {} logged, {} streamed on node {}; endpoint {endpoint}: {} \
         updates, {duplicates} sent again after the takeover, which node(s) {heirs:?} made \
         {takeover:.1?} after the kill; {:.1?} in all",
        ledger.acknowledged.len(),
        whole.len(),
        ledger.unacknowledged,
        ledger.refusals,
        NAMES[victim],
        logged.len(),
        streamed.len(),
        NAMES[watcher],
        forwarded.len(),
        started.elapsed(),
    );
}

/// Sends whole calls until `stop`, each event to the next node in turn, as a load balancer
/// that has not noticed a node died would. A call is given up at its first event that is not
/// acknowledged, so that no acknowledged event names a call whose start may not be stored.
fn send_calls(
    webhooks: &[String],
    turn: &AtomicUsize,
    calls: &AtomicU64,
    ledger: &Mutex<Ledger>,
    stop: &AtomicBool,
) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    while !stop.load(Ordering::Relaxed) {
        let number = calls.fetch_add(1, Ordering::Relaxed);
        let call = format!("k-{number}");
        for (step, _) in STEPS {
            let webhook = &webhooks[turn.fetch_add(1, Ordering::Relaxed) % webhooks.len()];
            let sent = (call.clone(), step);
            ledger.lock().expect("the ledger").sent.insert(sent.clone());
            let answered = agent
                .post(webhook)
                .header("content-type", FORM)
                .send(form(&call, number, step).as_bytes());
            // An answer that did not arrive is no acknowledgement, whatever was stored.
            let refusal = match answered {
                Ok(answer) if answer.status().is_success() => None,
                Ok(answer) => Some(answer.status().to_string()),
                Err(err) => Some(err.to_string()),
            };
            let mut ledger = ledger.lock().expect("the ledger");
            let Some(refusal) = refusal else {
                ledger.acknowledged.insert(sent);
                continue;
            };
            ledger.unacknowledged += 1;
            *ledger.refusals.entry(refusal).or_default() += 1;
            break;
        }
    }
}

/// The scripted guest's form for `step` of `call`: the start names the parties, the others
/// only the call.
fn form(call: &str, number: u64, step: &str) -> String {
    if step == "start" {
        format!("event=start&call_id={call}&direction=in&src=%2B7917{number:07}&dst=101")
    } else {
        format!("event={step}&call_id={call}")
    }
}

/// Which call and step a logged event is.
fn step_of(event: &Value) -> Sent {
    let call = event["event"]["call_id"].as_str().expect("a call id");
    let kind = event["event"]["event"].as_str().expect("an event type");
    let (step, _) = STEPS
        .iter()
        .find(|(_, logged)| *logged == kind)
        .unwrap_or_else(|| panic!("an event type never sent: {event}"));
    (call.to_owned(), step)
}

/// Sets the flag when dropped, by a panic too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How many attempts to forward a call update `node` made, as its metrics count them.
fn forward_attempts(node: &Server) -> u64 {
    let metrics = node.send("GET", "/metrics", None, &[], Vec::new());
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    metrics
        .body
        .lines()
        .filter(|line| line.starts_with("telehook_forward_attempts_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The one node of `nodes` that has forwarded anything; `None` while none has. Two that have
/// is a failure: an endpoint is forwarded to by one node at a time.
fn sole_forwarder(cluster: &Cluster, nodes: &[usize]) -> Option<usize> {
    let forwarders: Vec<usize> = nodes
        .iter()
        .copied()
        .filter(|node| forward_attempts(cluster.node(*node)) > 0)
        .collect();
    assert!(
        forwarders.len() <= 1,
        "nodes {forwarders:?} both forwarded to the endpoint"
    );
    forwarders.first().copied()
}

/// Every call of `acme/pbx`, page by page.
fn every_call(node: &Server) -> Vec<Value> {
    let mut calls = Vec::new();
    let mut query = "limit=500".to_owned();
    loop {
        let (page, next) = node.calls_page("acme", "pbx", &query);
        calls.extend(page);
        match next.as_str() {
            Some(next) => query = format!("limit=500&before={next}"),
            None => return calls,
        }
    }
}

/// Polls `check` until it gives a value, for up to `wait`; panics naming `what` after that.
fn eventually<T>(what: &str, wait: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < wait, "{what}: not within {wait:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A distinct call id for each probe of the second test.
static PROBE: AtomicU64 = AtomicU64::new(1);

/// Sends `node` the start of a new call: its call id and the answer.
fn start_call(node: &Server, webhook: &str) -> (String, Reply) {
    let call = format!("p-{}", PROBE.fetch_add(1, Ordering::Relaxed));
    let form = format!("event=start&call_id={call}&direction=in&src=%2B79180000001&dst=101");
    let reply = node.send(
        "POST",
        webhook,
        None,
        &[("content-type", FORM)],
        form.into_bytes(),
    );
    (call, reply)
}

/// Sends `node` the start of a new call; its logged event, or `None` when it was not taken.
fn probe(node: &Server, webhook: &str) -> Option<Value> {
    let (call, reply) = start_call(node, webhook);
    (reply.status == 200).then(|| {
        node.events("acme", "pbx")
            .into_iter()
            .find(|event| event["event"]["call_id"] == call.as_str())
            .unwrap_or_else(|| panic!("{call} was acknowledged and is not in the log"))
    })
}

/// Sends `node` the start of a new call, which it must take; its logged event.
fn taken(node: &Server, webhook: &str) -> Value {
    let (call, reply) = start_call(node, webhook);
    assert_eq!(reply.status, 200, "{call}: {}", reply.body);
    node.events("acme", "pbx")
        .into_iter()
        .find(|event| event["event"]["call_id"] == call.as_str())
        .unwrap_or_else(|| panic!("{call} was acknowledged and is not in the log"))
}

/// [`eventually`] within [`PROPAGATION`], noting in `took` how long `what` took.
fn propagated<T>(
    took: &mut Vec<(&'static str, Duration)>,
    what: &'static str,
    check: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    let value = eventually(what, PROPAGATION, check);
    took.push((what, started.elapsed()));
    value
}

/// A node given another settings key than the cluster's is refused before it serves, saying
/// which secret its key did not open, and the key file it generated for that start is taken
/// back: nothing was sealed with it.
#[test]
fn a_node_with_another_settings_key_is_refused_and_its_new_key_taken_back() {
    let cluster = Cluster::start(1, &[]);
    let stranger = support::data_dir();
    let key_file = stranger.path().join("another-key");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_telehook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(stranger.path().join("data"))
        .args(["--database", cluster.database_url()])
        .args(["--nats", &support::cluster::nats_url()])
        .arg("--settings-key-file")
        .arg(&key_file)
        .output()
        .expect("telehook serve runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a node with another key served");
    assert!(
        stderr.contains("does not open the stored settings (setting `shared/admin-token`)"),
        "{stderr}"
    );
    assert!(!key_file.exists(), "the refused key was kept");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("telehook listening"),
        "it announced itself"
    );
}

#[test]
fn a_change_on_one_node_takes_effect_on_the_others() {
    let cluster = Cluster::start(2, PATIENT);
    let (a, b) = (cluster.node(0), cluster.node(1));
    a.tenant("acme");
    // Version 1 of the scripted guest, uploaded and activated through A.
    let mut webhook = scripted_integration(a, "acme", "pbx");
    let base = "/tenants/acme/integrations/pbx";
    let mut took = Vec::new();
    let version_on_b = |version: u64| probe(b, &webhook).filter(|e| e["version"] == version);
    propagated(&mut took, "B serves the integration A made", || {
        version_on_b(1)
    });

    // Activation and rollback through A: B runs the version A chose.
    let uploaded = a.upload("acme", "pbx", std::fs::read(SCRIPTED).expect("built"));
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let activated = a.admin("POST", &format!("{base}/versions/2/activate"), Value::Null);
    assert_eq!(activated.status, 200, "{}", activated.body);
    propagated(&mut took, "B runs the version A activated", || {
        version_on_b(2)
    });
    let rolled_back = a.admin("POST", &format!("{base}/rollback"), Value::Null);
    assert_eq!(rolled_back.status, 200, "{}", rolled_back.body);
    propagated(&mut took, "B runs the version A rolled back to", || {
        version_on_b(1)
    });

    // A new webhook token through A: B refuses the old URL and takes the new one.
    let regenerated = a.admin("POST", &format!("{base}/webhook/regenerate"), Value::Null);
    assert_eq!(regenerated.status, 200, "{}", regenerated.body);
    let new_url = regenerated.json()["url"]
        .as_str()
        .expect("a URL")
        .to_owned();
    let new = new_url
        .strip_prefix(&a.url)
        .unwrap_or_else(|| panic!("{new_url} is not A's"))
        .to_owned();
    propagated(&mut took, "B retires the old token", || {
        (start_call(b, &webhook).1.status == 404).then_some(())
    });
    propagated(&mut took, "B takes the new token", || probe(b, &new));
    assert_eq!(
        start_call(b, &webhook).1.status,
        404,
        "the old URL stays retired"
    );
    webhook = new;

    // Bindings through A: B's next events notify whom A bound.
    let bound = a.admin(
        "PUT",
        &format!("{base}/bindings"),
        json!([{ "extension": "101", "user_id": "carla" }]),
    );
    assert_eq!(bound.status, 200, "{}", bound.body);
    propagated(&mut took, "B notifies whom A bound", || {
        probe(b, &webhook).filter(|event| event["users"] == json!(["carla"]))
    });

    // An endpoint made through A gets what B takes, whichever node forwards; deleted through
    // A, it gets nothing more.
    let mut endpoints = Endpoints::reserve();
    endpoints.listen();
    let created = a.admin(
        "POST",
        "/endpoints",
        json!({ "url": endpoints.url("/crm"), "tenant": "acme" }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let endpoint = created.json()["id"].as_str().expect("an id").to_owned();
    let forwarded = taken(b, &webhook);
    let delivered = endpoints.wait_delivered("/crm", 1, CONVERGENCE);
    assert_eq!(delivered[0].json()["data"]["seq"], forwarded["seq"]);
    let deleted = a.admin("DELETE", &format!("/endpoints/{endpoint}"), Value::Null);
    assert!(deleted.status < 300, "{}: {}", deleted.status, deleted.body);
    // Well past the milliseconds a deletion takes to reach every node.
    std::thread::sleep(Duration::from_millis(500));
    let before = endpoints.received("/crm").len();
    taken(b, &webhook);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        endpoints.received("/crm").len(),
        before,
        "a deleted endpoint was forwarded to: {:?}",
        endpoints.received("/crm")
    );
    eprintln!("through A, seen on B: {took:.1?}");
}
