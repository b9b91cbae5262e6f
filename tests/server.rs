//! `telehook serve`, driven over real HTTP on loopback exactly as providers and admins use it:
//! the real binary, a real data directory, the real guest components built from source, and the
//! examples' documented requests.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Reply, Server, data_dir, happen, scripted_integration, scripted_server};
use telehook_test_artifacts::{GENERIC_JSON, GRAVITEL, HOSTILE, ZADARMA, component, parser_dir};

/// The samples of an example: (request file JSON, expected outcome JSON).
fn samples(example: &str) -> Vec<(String, Value, Value)> {
    samples_in(&parser_dir(example).join("samples"))
}

/// The samples in a folder: (request file name, request file JSON, expected outcome JSON).
fn samples_in(dir: &Path) -> Vec<(String, Value, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("samples")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.to_string_lossy().ends_with(".request.json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let read = |path: &Path| -> Value {
                serde_json::from_str(&std::fs::read_to_string(path).expect("readable"))
                    .expect("JSON")
            };
            let expected = PathBuf::from(
                path.to_string_lossy()
                    .replace(".request.json", ".expected.json"),
            );
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, read(&path), read(&expected))
        })
        .collect()
}

fn settings(example: &str) -> Value {
    settings_in(&parser_dir(example).join("samples"))
}

/// The settings a folder's samples were made with.
fn settings_in(samples: &Path) -> Value {
    std::fs::read_to_string(samples.join("settings.json"))
        .map(|text| serde_json::from_str(&text).expect("settings.json is JSON"))
        .unwrap_or_else(|_| json!({}))
}

/// Sends one request file (the `telehook run` format) to a webhook, keeping its query string.
fn send_request_file(server: &Server, webhook: &str, request: &Value) -> Reply {
    let query = request["url"]
        .as_str()
        .and_then(|url| url.split_once('?'))
        .map(|(_, query)| format!("?{query}"))
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = request["headers"]
        .as_object()
        .map(|headers| {
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let body = request["body"].as_str().unwrap_or("").as_bytes().to_vec();
    let method = request["method"].as_str().expect("a method");
    server.send(method, &format!("{webhook}{query}"), None, &headers, body)
}

/// One sample of an example, by name: (request file JSON, expected outcome JSON).
fn sample(example: &str, name: &str) -> (Value, Value) {
    samples(example)
        .into_iter()
        .find(|(file, _, _)| file == &format!("{name}.request.json"))
        .map(|(_, request, expected)| (request, expected))
        .unwrap_or_else(|| panic!("{example} has no sample {name}"))
}

/// Sends an example's samples to the webhook and checks the provider's answer and whether an
/// event was logged against the documented outcome.
fn replay(server: &Server, tenant: &str, integration: &str, webhook: &str, example: &str) {
    replay_from(
        server,
        tenant,
        integration,
        webhook,
        &parser_dir(example).join("samples"),
    );
}

/// [`replay`] of the samples in a folder.
fn replay_from(server: &Server, tenant: &str, integration: &str, webhook: &str, dir: &Path) {
    let example = dir.display();
    for (name, request, expected) in samples_in(dir) {
        let before = server.events(tenant, integration).len();
        let reply = send_request_file(server, webhook, &request);

        let (status, body) = match (&expected["refused"], &expected["response"]) {
            (Value::Object(refused), _) => (
                u16::try_from(refused["status"].as_u64().expect("a status")).expect("u16"),
                json!({"error": refused["message"]}).to_string(),
            ),
            (_, Value::Null) => (200, String::new()),
            (_, response) => (
                u16::try_from(response["status"].as_u64().expect("a status")).expect("u16"),
                response["body"].as_str().unwrap_or("").to_owned(),
            ),
        };
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (status, body.as_str()),
            "{example}/{name}"
        );

        let events = server.events(tenant, integration);
        let added = &events[before.min(events.len())..];
        let logged = expected["event"] != Value::Null || expected["call_record"] != Value::Null;
        // An event that names only its call is completed from the call's earlier events, or
        // held until its call's first full event arrives: what is stored is not the sample's.
        let names_only_its_call = ["event", "call_record"]
            .iter()
            .any(|part| expected[part].is_object() && expected[part]["direction"].is_null());
        if names_only_its_call {
            assert!(added.len() <= 1, "{example}/{name}: {added:?}");
            if let Some(stored) = added.first() {
                assert_eq!(
                    stored["event"]["event"], expected["event"]["event"],
                    "{example}/{name}"
                );
            }
            continue;
        }
        if !logged {
            assert!(added.is_empty(), "{example}/{name}: {added:?}");
            continue;
        }
        // The sample's own event, and any event of its call held until this first full one.
        assert!(
            added
                .iter()
                .any(|stored| stored["event"] == expected["event"]
                    && stored["call_record"] == expected["call_record"]),
            "{example}/{name}: stored {added:?}, expected {expected}"
        );
    }
}

#[test]
fn examples_answer_providers_log_events_and_survive_a_crash() {
    let dir = data_dir();
    let examples = ["generic-json", "gravitel", "zadarma"];
    let server = Server::start(dir.path());
    server.tenant("acme");
    let urls: Vec<String> = examples
        .iter()
        .map(|example| server.integration("acme", example, component(example), settings(example)))
        .collect();
    for (example, url) in examples.iter().zip(&urls) {
        replay(&server, "acme", example, url, example);
    }
    let logged: Vec<usize> = examples
        .iter()
        .map(|example| server.events("acme", example).len())
        .collect();
    server.crash();

    let server = Server::start(dir.path());
    for ((example, url), logged) in examples.iter().zip(&urls).zip(logged) {
        assert_eq!(
            server.events("acme", example).len(),
            logged,
            "{example} kept its events"
        );
        replay(&server, "acme", example, url, example);
    }
    let compiled = std::fs::read_dir(dir.path().join("compiled"))
        .expect("precompiled artifacts are kept")
        .count();
    assert_eq!(compiled, examples.len());
}

#[test]
fn versions_settings_and_bindings_are_managed_and_survive_a_restart() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let secrets = settings("gravitel");
    let token = secrets["crm_token"].as_str().expect("a token").to_owned();
    let hook = server.integration("acme", "pbx", GRAVITEL, secrets.clone());
    let base = "/tenants/acme/integrations/pbx";

    // Settings are write-only: the keys are shown, the values never.
    let shown = server.admin("GET", &format!("{base}/settings"), Value::Null);
    assert_eq!(shown.json(), json!({ "keys": ["crm_token"] }));

    // A candidate version is stored and can be tried without being activated.
    let generic_json = std::fs::read(GENERIC_JSON).expect("built");
    let uploaded = server.upload("acme", "pbx", generic_json.clone());
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let uploaded = uploaded.json();
    assert_eq!(uploaded["version"], 2);
    assert_eq!(uploaded["size"], generic_json.len());
    assert_eq!(uploaded["sha256"].as_str().map(str::len), Some(64));
    let (request, expected) = sample("generic-json", "documentation-example");
    let tried = server.admin("POST", &format!("{base}/versions/2/test"), request.clone());
    assert_eq!(tried.status, 200, "{}", tried.body);
    let tried = tried.json();
    assert_eq!(tried["outcome"], expected);
    assert!(tried["log"]["lines"].is_array(), "{tried}");
    assert!(tried["duration_us"].as_u64().is_some(), "{tried}");
    assert_eq!(
        server.events("acme", "pbx").len(),
        0,
        "a trial dispatches nothing"
    );

    // Version 1 still answers; activation swaps to 2, rollback back to 1.
    let (incoming, _) = sample("gravitel", "event-incoming");
    let logged_version = |request: &Value| {
        let reply = send_request_file(&server, &hook, request);
        assert_eq!(reply.status, 200, "{}", reply.body);
        server.events("acme", "pbx").last().expect("logged")["version"].clone()
    };
    assert_eq!(logged_version(&incoming), 1);
    let activated = server.admin("POST", &format!("{base}/versions/2/activate"), Value::Null);
    assert_eq!(activated.json(), json!({ "active_version": 2 }));
    assert_eq!(logged_version(&request), 2);
    let rolled_back = server.admin("POST", &format!("{base}/rollback"), Value::Null);
    assert_eq!(rolled_back.json(), json!({ "active_version": 1 }));
    assert_eq!(logged_version(&incoming), 1);

    // Bindings are replaced whole; a bad list changes nothing.
    let bindings = json!([
        { "extension": "101", "user_id": "u-ivanov" },
        { "extension": "102", "user_id": "u-petrova" },
    ]);
    let replaced = server.admin("PUT", &format!("{base}/bindings"), bindings.clone());
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let twice = json!([
        { "extension": "101", "user_id": "u-a" },
        { "extension": "101", "user_id": "u-b" },
    ]);
    let refused = server.admin("PUT", &format!("{base}/bindings"), twice);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("extension `101` is bound twice"));
    let read = server.admin("GET", &format!("{base}/bindings"), Value::Null);
    assert_eq!(read.json(), bindings);

    // Recent invocations show what ran, with the setting's value redacted from the body.
    let invocations = server.admin("GET", &format!("{base}/invocations"), Value::Null);
    assert_eq!(invocations.status, 200, "{}", invocations.body);
    assert!(!invocations.body.contains(&token), "{}", invocations.body);
    let invocations = invocations.json();
    let listed = invocations.as_array().expect("a list");
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|invocation| invocation["outcome"] == "ok")
    );
    assert!(
        listed.iter().any(|invocation| {
            invocation["body"]
                .as_str()
                .is_some_and(|body| body.contains("crm_token=[redacted]"))
        }),
        "{invocations}"
    );
    assert!(
        listed.iter().all(|invocation| invocation["headers"]
            .as_array()
            .is_some_and(|headers| headers.iter().any(|header| header[0] == "content-type"))),
        "{invocations}"
    );

    let metrics = server.send("GET", "/metrics", None, &[], Vec::new());
    assert!(
        metrics.body.contains(
            r#"telehook_webhook_requests_total{tenant="acme",integration="pbx",outcome="ok"} 3"#
        ),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains(
            r#"telehook_parser_duration_seconds_count{tenant="acme",integration="pbx"} 3"#
        )
    );
    // The same counts in the last half hour's buckets, for the console's chart.
    let activity = server
        .admin("GET", &format!("{base}/activity"), Value::Null)
        .json();
    assert_eq!(activity["bucket_secs"], 10);
    let buckets = activity["buckets"].as_array().expect("buckets");
    let ok: u64 = buckets
        .iter()
        .filter_map(|bucket| bucket["outcomes"]["ok"].as_u64())
        .sum();
    assert_eq!(ok, 3, "{activity}");
    assert!(
        buckets.iter().all(
            |bucket| bucket["p50_us"].as_u64() <= bucket["p99_us"].as_u64()
                && bucket["p50_us"].as_u64().is_some()
        ),
        "{activity}"
    );

    // Everything is still there after a crash.
    server.crash();
    let server = Server::start(dir.path());
    let integration = server.admin("GET", base, Value::Null).json();
    assert_eq!(integration["active_version"], 1);
    let versions = server
        .admin("GET", &format!("{base}/versions"), Value::Null)
        .json();
    let active: Vec<&Value> = versions
        .as_array()
        .expect("a list")
        .iter()
        .map(|version| &version["active"])
        .collect();
    assert_eq!(active, [&json!(true), &json!(false)]);
    let shown = server.admin("GET", &format!("{base}/settings"), Value::Null);
    assert_eq!(shown.json(), json!({ "keys": ["crm_token"] }));
    let read = server.admin("GET", &format!("{base}/bindings"), Value::Null);
    assert_eq!(read.json(), bindings);
    let reply = send_request_file(&server, &hook, &incoming);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(server.events("acme", "pbx").len(), 4);
}

#[test]
fn a_tenant_token_cannot_see_or_touch_another_tenant() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let acme = server.tenant("acme");
    let rival = server.tenant("rival");
    let hook = server.integration(
        "acme",
        "pbx",
        GENERIC_JSON,
        json!({ "api_secret": "hunter22" }),
    );

    let own = server.as_token(&acme, "GET", "/tenants/acme/integrations/pbx", Value::Null);
    assert_eq!(own.status, 200, "{}", own.body);
    // Whom each token belongs to, as a console asks before it shows anything.
    let whoami = |token: &str| server.as_token(token, "GET", "/whoami", Value::Null);
    assert_eq!(
        whoami(&acme).json(),
        json!({ "role": "tenant", "tenant": "acme" })
    );
    assert_eq!(
        whoami(&server.admin_token).json(),
        json!({ "role": "admin" })
    );
    assert_eq!(whoami("not-a-token").status, 401);
    for (method, path) in [
        ("GET", "/tenants/acme/integrations"),
        ("GET", "/tenants/acme/integrations/pbx"),
        ("GET", "/tenants/acme/integrations/pbx/settings"),
        ("GET", "/tenants/acme/integrations/pbx/events"),
        ("GET", "/tenants/acme/integrations/pbx/webhook"),
        ("POST", "/tenants/acme/integrations/pbx/webhook/regenerate"),
        ("DELETE", "/tenants/acme/integrations/pbx"),
        ("GET", "/tenants/rival/integrations/pbx"),
    ] {
        let reply = server.as_token(&rival, method, path, Value::Null);
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    let listing = server.as_token(&rival, "GET", "/tenants", Value::Null);
    assert_eq!(listing.status, 403);
    let forged = server.as_token(
        "not-a-token",
        "GET",
        "/tenants/acme/integrations",
        Value::Null,
    );
    assert_eq!(forged.status, 401);

    let secrets = server.admin(
        "GET",
        "/tenants/acme/integrations/pbx/settings",
        Value::Null,
    );
    assert_eq!(secrets.json(), json!({ "keys": ["api_secret"] }));
    let still_there = server.send(
        "POST",
        &hook,
        None,
        &[],
        br#"{"srcPhone":"1","dstPhone":"2"}"#.to_vec(),
    );
    assert_eq!(still_there.status, 200);
}

/// Integration ids are each tenant's own: two tenants both call theirs `pbx` and each gets its
/// own URL, parser, settings and event log. A webhook URL of the form handed out before ids
/// were per tenant, without the tenant, reaches the integration whose token it carries.
#[test]
fn two_tenants_may_give_their_integrations_the_same_id() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    server.tenant("rival");
    let acme = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let rival = server.integration("rival", "pbx", GRAVITEL, settings("gravitel"));
    assert_eq!(acme.split('/').nth(2), Some("acme"), "{acme}");
    assert_eq!(rival.split('/').nth(2), Some("rival"), "{rival}");
    let again = server.admin("POST", "/tenants/acme/integrations", json!({ "id": "pbx" }));
    assert_eq!(again.status, 409, "{}", again.body);

    let json_call = br#"{"srcPhone":"+79161234567","dstPhone":"101"}"#.to_vec();
    let (form_call, expected) = sample("gravitel", "event-incoming");
    assert_eq!(
        server
            .send("POST", &acme, None, &[], json_call.clone())
            .status,
        200
    );
    assert_eq!(send_request_file(&server, &rival, &form_call).status, 200);
    let acme_events = server.events("acme", "pbx");
    let rival_events = server.events("rival", "pbx");
    assert_eq!(acme_events.len(), 1);
    assert_eq!(acme_events[0]["event"]["src_phone"], "+79161234567");
    assert_eq!(rival_events.len(), 1);
    assert_eq!(rival_events[0]["event"], expected["event"]);

    let token = |url: &str| url.rsplit('/').next().expect("a token").to_owned();
    let crossed = format!("/hooks/rival/pbx/{}", token(&acme));
    assert_eq!(
        server
            .send("POST", &crossed, None, &[], json_call.clone())
            .status,
        404
    );
    let without_tenant = format!("/hooks/pbx/{}", token(&acme));
    assert_eq!(
        server
            .send("POST", &without_tenant, None, &[], json_call.clone())
            .status,
        200
    );
    let without_tenant = format!("/hooks/pbx/{}", token(&rival));
    assert_eq!(
        send_request_file(&server, &without_tenant, &form_call).status,
        200
    );
    assert_eq!(
        server
            .send("POST", "/hooks/pbx/not-a-token", None, &[], json_call)
            .status,
        404
    );
    assert_eq!(server.events("acme", "pbx").len(), 2);
    assert_eq!(server.events("rival", "pbx").len(), 2);

    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    for tenant in ["acme", "rival"] {
        let ok = format!(
            r#"telehook_webhook_requests_total{{tenant="{tenant}",integration="pbx",outcome="ok"}} 2"#
        );
        assert!(metrics.contains(&ok), "{metrics}");
    }

    // Deleting one tenant's `pbx` leaves the other's, and a `pbx` made again starts afresh.
    let invocations = |tenant: &str| {
        let path = format!("/tenants/{tenant}/integrations/pbx/invocations");
        let reply = server.admin("GET", &path, Value::Null);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json().as_array().map_or(0, Vec::len)
    };
    let deleted = server.admin("DELETE", "/tenants/acme/integrations/pbx", Value::Null);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let made_again = server.admin("POST", "/tenants/acme/integrations", json!({ "id": "pbx" }));
    assert_eq!(made_again.status, 201, "{}", made_again.body);
    assert_eq!(invocations("acme"), 0);
    assert_eq!(invocations("rival"), 2);
    let activity = |tenant: &str| {
        let path = format!("/tenants/{tenant}/integrations/pbx/activity");
        server.admin("GET", &path, Value::Null).json()["buckets"].clone()
    };
    assert_eq!(
        activity("acme"),
        json!([]),
        "the deleted one's activity went with it"
    );
    assert_ne!(activity("rival"), json!([]));
    assert_eq!(send_request_file(&server, &rival, &form_call).status, 200);
}

/// Each stored event names the users bound to its call's operators at the time, and the
/// platform reads every tenant's events from one feed, in order, from where it left off.
#[test]
fn events_name_the_users_to_notify_and_reach_the_platform_in_one_feed() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let acme_token = server.tenant("acme");
    server.tenant("rival");
    let acme = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let rival = server.integration("rival", "pbx", GRAVITEL, settings("gravitel"));
    let bind = |tenant: &str, user: &str| {
        let path = format!("/tenants/{tenant}/integrations/pbx/bindings");
        let reply = server.admin(
            "PUT",
            &path,
            json!([{ "extension": "101", "user_id": user }]),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    };
    bind("acme", "anna");
    bind("rival", "boris");

    let call = br#"{"srcPhone":"+79161234567","dstPhone":"101"}"#.to_vec();
    assert_eq!(
        server.send("POST", &acme, None, &[], call.clone()).status,
        200
    );
    let (form_call, _) = sample("gravitel", "event-incoming");
    assert_eq!(send_request_file(&server, &rival, &form_call).status, 200);
    bind("acme", "carol");
    assert_eq!(server.send("POST", &acme, None, &[], call).status, 200);

    let users = |event: &Value| event["users"].clone();
    let acme_events = server.events("acme", "pbx");
    assert_eq!(
        acme_events.iter().map(users).collect::<Vec<_>>(),
        [json!(["anna"]), json!(["carol"])]
    );
    assert_eq!(users(&server.events("rival", "pbx")[0]), json!(["boris"]));

    let feed = server.admin("GET", "/events", Value::Null).json();
    let seen: Vec<(Value, Value, Value)> = feed
        .as_array()
        .expect("a list")
        .iter()
        .map(|event| {
            (
                event["tenant_id"].clone(),
                event["integration_id"].clone(),
                users(event),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!("acme"), json!("pbx"), json!(["anna"])),
            (json!("rival"), json!("pbx"), json!(["boris"])),
            (json!("acme"), json!("pbx"), json!(["carol"])),
        ]
    );
    let first = &feed[0]["seq"];
    let rest = server.admin(
        "GET",
        &format!("/events?after={first}&limit=1"),
        Value::Null,
    );
    assert_eq!(rest.json()[0]["seq"], feed[1]["seq"]);
    assert_eq!(rest.json().as_array().map(Vec::len), Some(1));
    let forbidden = server.as_token(&acme_token, "GET", "/events", Value::Null);
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
}

/// The platform confirms how far it has read the feed. Events it has taken are pruned once
/// older than the retention; events it has not taken are kept whatever their age; the cursor
/// survives a crash.
#[test]
fn only_events_the_platform_has_taken_are_pruned_after_the_retention() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let acme_token = server.tenant("acme");
    let hook = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let call = br#"{"srcPhone":"+79161234567","dstPhone":"101"}"#;
    for _ in 0..3 {
        assert_eq!(
            server.send("POST", &hook, None, &[], call.to_vec()).status,
            200
        );
    }
    let seqs = |server: &Server| -> Vec<i64> {
        server
            .events("acme", "pbx")
            .iter()
            .map(|event| event["seq"].as_i64().expect("a seq"))
            .collect()
    };
    let all = seqs(&server);
    let cursor = |server: &Server| server.admin("GET", "/events/consumed", Value::Null).json();
    assert_eq!(cursor(&server), json!({ "seq": 0 }));

    let confirmed = server.admin("PUT", "/events/consumed", json!({ "seq": all[1] }));
    assert_eq!(confirmed.json(), json!({ "seq": all[1], "pruned": 0 }));
    assert_eq!(seqs(&server), all, "kept for the default week");
    let beyond = server.admin("PUT", "/events/consumed", json!({ "seq": all[2] + 1 }));
    assert_eq!(beyond.status, 400, "{}", beyond.body);
    assert!(
        beyond
            .body
            .contains(&format!("the last event stored is {}", all[2])),
        "{}",
        beyond.body
    );
    let forbidden = server.as_token(&acme_token, "PUT", "/events/consumed", json!({ "seq": 1 }));
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    server.crash();

    let server = Server::start_with(dir.path(), &["--event-retention-hours", "0"]);
    assert_eq!(cursor(&server), json!({ "seq": all[1] }));
    let lower = server.admin("PUT", "/events/consumed", json!({ "seq": all[0] }));
    assert_eq!(lower.json(), json!({ "seq": all[1], "pruned": 2 }));
    assert_eq!(seqs(&server), [all[2]], "the event not taken is kept");
    let feed = server.admin("GET", "/events", Value::Null).json();
    assert_eq!(feed.as_array().map(Vec::len), Some(1));
}

/// The probes answer without a token; readiness says the registry and the event log work.
#[test]
fn the_probes_say_live_and_ready() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let live = server.send("GET", "/healthz", None, &[], Vec::new());
    assert_eq!(
        (live.status, live.json()),
        (200, json!({ "status": "live" }))
    );
    let ready = server.send("GET", "/readyz", None, &[], Vec::new());
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({ "status": "ready" }))
    );
}

/// Setting values never reach the disk in plain text, and a server given another settings key
/// refuses to start instead of running parsers without their secrets.
#[test]
fn settings_are_sealed_on_disk_and_need_their_key() {
    let secret = "hunter22-sealed-at-rest";
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    server.integration("acme", "pbx", GENERIC_JSON, json!({ "api_secret": secret }));
    for file in ["telehook.db", "telehook.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{file} holds the secret in plain text"
        );
    }
    server.crash();

    let key_file = dir.path().join("settings-key");
    let key = std::fs::read_to_string(&key_file).expect("the key was written on first start");
    let refused_to_start = || {
        let refused = Command::new(env!("CARGO_BIN_EXE_telehook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert!(!refused.status.success(), "{stderr}");
        assert!(
            stderr.contains(
                "the settings key does not open the stored settings (setting `acme/pbx/api_secret`)"
            ),
            "{stderr}"
        );
    };
    std::fs::write(&key_file, "00".repeat(32)).expect("replaced");
    refused_to_start();
    std::fs::remove_file(&key_file).expect("removed");
    refused_to_start();
    assert!(
        !key_file.exists(),
        "a new key that opens nothing is not left where the lost one belongs"
    );

    std::fs::write(&key_file, key).expect("restored");
    let server = Server::start(dir.path());
    let run = server.send(
        "POST",
        "/admin/tenants/acme/integrations/pbx/versions/1/test",
        Some(&server.admin_token),
        &[],
        br#"{"method": "POST", "url": "/hooks/acme", "body": "{\"srcPhone\":\"1\",\"dstPhone\":\"2\"}"}"#.to_vec(),
    );
    assert_eq!(run.status, 200, "{}", run.body);
}

#[test]
fn regenerating_the_token_retires_the_old_url() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let old = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let reply = server.admin(
        "POST",
        "/tenants/acme/integrations/pbx/webhook/regenerate",
        Value::Null,
    );
    let new = reply.json()["url"].as_str().expect("a URL").to_owned();
    assert!(new.starts_with(&server.url), "{new}");
    assert!(!new.ends_with(&old), "{old} was retired");
    let body = br#"{"srcPhone":"+79161234567","dstPhone":"101"}"#;
    assert_eq!(
        server.send("POST", &old, None, &[], body.to_vec()).status,
        404
    );
    assert_eq!(
        server.send("POST", &new, None, &[], body.to_vec()).status,
        200
    );
}

#[test]
fn bad_admin_input_gets_a_clear_4xx_and_changes_nothing() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let bad_json = server.send(
        "POST",
        "/admin/tenants",
        Some(&server.admin_token),
        &[],
        b"{".to_vec(),
    );
    assert_eq!(bad_json.status, 400);
    assert!(
        bad_json.json()["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("invalid JSON body")
    );
    let unknown_field = server.admin("POST", "/tenants", json!({ "id": "x", "colour": "red" }));
    assert_eq!(unknown_field.status, 400);
    assert!(
        unknown_field.body.contains("unknown field `colour`"),
        "{}",
        unknown_field.body
    );
    let bad_id = server.admin("POST", "/tenants", json!({ "id": "../etc" }));
    assert_eq!(bad_id.status, 400);
    let duplicate = server.admin("POST", "/tenants", json!({ "id": "acme" }));
    assert_eq!(duplicate.status, 409);

    server.admin("POST", "/tenants/acme/integrations", json!({ "id": "pbx" }));
    let core_module = server.upload("acme", "pbx", b"\0asm\x01\0\0\0".to_vec());
    assert_eq!(core_module.status, 422);
    assert!(
        core_module.body.contains("core WebAssembly module"),
        "{}",
        core_module.body
    );
    assert!(
        server.versions("acme", "pbx").is_empty(),
        "a refused upload registers nothing"
    );
    let tenants = server.admin("GET", "/tenants", Value::Null);
    assert_eq!(tenants.json().as_array().map(Vec::len), Some(1));
}

/// Compiling happens in a child process with a deadline: a component built to keep cranelift
/// busy is refused when the deadline passes, the compiler is stopped, and the next upload
/// compiles and works.
#[test]
fn a_component_that_compiles_too_long_is_stopped_and_refused() {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), &["--compile-timeout-ms", "1000"]);
    server.tenant("acme");
    server.admin("POST", "/tenants/acme/integrations", json!({ "id": "pbx" }));
    let upload = |bytes| server.upload("acme", "pbx", bytes);
    let started = std::time::Instant::now();
    let bomb = upload(telehook_generated_components::slow_to_compile(256 << 10));
    let waited = started.elapsed();
    assert_eq!(bomb.status, 422, "{}", bomb.body);
    assert!(
        bomb.body.contains("took longer than the limit of 1 s"),
        "{}",
        bomb.body
    );
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .expect("the scratch folder exists")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let good = upload(std::fs::read(GENERIC_JSON).expect("built"));
    assert_eq!(good.status, 201, "{}", good.body);
    assert_eq!(server.versions("acme", "pbx").len(), 1);
}

/// The compiler process's memory is capped: a component whose compilation needs more is refused
/// as soon as the compiler hits the cap, saying so, and a parser compiles and works under the
/// same cap.
/// A tenant has one upload in flight at a time: a second one is refused `429` while the first
/// compiles, and another tenant's upload goes through meanwhile.
#[test]
fn a_tenant_uploads_one_component_at_a_time() {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), &["--compile-timeout-ms", "4000"]);
    server.tenant("acme");
    server.tenant("rival");
    for (tenant, integration) in [("acme", "pbx"), ("acme", "other"), ("rival", "pbx")] {
        let path = format!("/tenants/{tenant}/integrations");
        let created = server.admin("POST", &path, json!({ "id": integration }));
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let good = || std::fs::read(GENERIC_JSON).expect("built");
    std::thread::scope(|scope| {
        let bomb = scope.spawn(|| {
            server.upload(
                "acme",
                "pbx",
                telehook_generated_components::slow_to_compile(256 << 10),
            )
        });
        std::thread::sleep(Duration::from_millis(1500));
        let second = server.upload("acme", "other", good());
        assert_eq!(second.status, 429, "{}", second.body);
        assert!(
            second
                .body
                .contains("tenant `acme` has an upload in flight already"),
            "{}",
            second.body
        );
        let other_tenant = server.upload("rival", "pbx", good());
        assert_eq!(other_tenant.status, 201, "{}", other_tenant.body);
        let bomb = bomb.join().expect("the upload finishes");
        assert_eq!(bomb.status, 422, "{}", bomb.body);
    });
    let after = server.upload("acme", "other", good());
    assert_eq!(after.status, 201, "{}", after.body);
}

#[test]
fn a_component_that_needs_too_much_memory_to_compile_is_refused() {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), &["--compile-memory-mib", "160"]);
    server.tenant("acme");
    server.admin("POST", "/tenants/acme/integrations", json!({ "id": "pbx" }));
    let upload = |bytes| server.upload("acme", "pbx", bytes);
    let started = std::time::Instant::now();
    let bomb = upload(telehook_generated_components::slow_to_compile(1 << 20));
    let waited = started.elapsed();
    assert_eq!(bomb.status, 422, "{}", bomb.body);
    assert!(
        bomb.body
            .contains("needed more than the limit of 160 MiB of memory"),
        "{}",
        bomb.body
    );
    assert!(
        waited < Duration::from_secs(30),
        "answered after {waited:?}: the cap, not the deadline, stopped it"
    );

    let good = upload(std::fs::read(GENERIC_JSON).expect("built"));
    assert_eq!(good.status, 201, "{}", good.body);
    assert_eq!(server.versions("acme", "pbx").len(), 1);
}

#[test]
fn a_version_swap_under_load_loses_no_request() {
    let dir = data_dir();
    let server = Arc::new(Server::start(dir.path()));
    server.tenant("acme");
    let hook = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let v2 = server.upload("acme", "pbx", std::fs::read(GENERIC_JSON).expect("built"));
    assert_eq!(v2.json()["version"], 2);

    let senders: Vec<_> = (0..4)
        .map(|thread| {
            let (server, hook) = (Arc::clone(&server), hook.clone());
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let call = format!("t{thread}-{i}");
                        let body = json!({"callId": call, "srcPhone": "+7916", "dstPhone": "101"});
                        let reply =
                            server.send("POST", &hook, None, &[], body.to_string().into_bytes());
                        assert_eq!(reply.status, 200, "{}", reply.body);
                        call
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for round in 0..10 {
        let version = 1 + round % 2;
        let swapped = server.admin(
            "POST",
            &format!("/tenants/acme/integrations/pbx/versions/{version}/activate"),
            Value::Null,
        );
        assert_eq!(swapped.status, 200, "{}", swapped.body);
    }
    let mut sent: Vec<String> = senders
        .into_iter()
        .flat_map(|sender| sender.join().expect("no panic"))
        .collect();
    let events = server.events("acme", "pbx");
    let mut logged: Vec<String> = events
        .iter()
        .map(|event| {
            event["event"]["call_id"]
                .as_str()
                .expect("a call id")
                .to_owned()
        })
        .collect();
    sent.sort();
    logged.sort();
    assert_eq!(
        logged, sent,
        "every acknowledged request was logged exactly once"
    );
    assert!(
        events
            .iter()
            .all(|event| event["version"] == 1 || event["version"] == 2)
    );
}

#[test]
fn oversized_bodies_get_413_declared_or_streamed() {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), &["--max-body-bytes", "1000"]);
    server.tenant("acme");
    let hook = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let declared = server.send("POST", &hook, None, &[], vec![b' '; 1001]);
    assert_eq!(declared.status, 413, "{}", declared.body);
    assert_eq!(
        declared.json()["error"],
        "the body is larger than the limit of 1000 bytes"
    );

    // Chunked, so that no Content-Length announces the size.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connects");
    let chunk = "x".repeat(600);
    let request = format!(
        "POST {hook} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("sends");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(server.events("acme", "pbx").is_empty());
}

#[test]
fn stalled_clients_are_cut_off() {
    let dir = data_dir();
    let server = Server::start_with(
        dir.path(),
        &["--header-timeout-ms", "300", "--body-timeout-ms", "300"],
    );
    server.tenant("acme");
    let hook = server.integration("acme", "pbx", GENERIC_JSON, json!({}));
    let address = server.url.trim_start_matches("http://").to_owned();

    // Headers that never finish: the server closes the connection.
    let mut slow_headers = std::net::TcpStream::connect(&address).expect("connects");
    std::io::Write::write_all(
        &mut slow_headers,
        format!("POST {hook} HTTP/1.1\r\nhost: x\r\n").as_bytes(),
    )
    .expect("sends");
    slow_headers
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("sets a timeout");
    let mut answer = String::new();
    let read = std::io::Read::read_to_string(&mut slow_headers, &mut answer);
    assert!(read.is_ok(), "the server closed the connection: {read:?}");
    assert!(!answer.contains("200 OK"), "{answer}");

    // A body that stops half way: 408.
    let mut slow_body = std::net::TcpStream::connect(&address).expect("connects");
    std::io::Write::write_all(
        &mut slow_body,
        format!("POST {hook} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{\"src").as_bytes(),
    )
    .expect("sends");
    slow_body
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("sets a timeout");
    let mut answer = [0u8; 64];
    let read = std::io::Read::read(&mut slow_body, &mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn a_flood_to_one_integration_is_refused_there_alone() {
    let dir = data_dir();
    let server = Arc::new(Server::start(dir.path()));
    server.tenant("acme");
    let slow = server.integration("acme", "slow", HOSTILE, json!({}));
    let good = server.integration("acme", "good", GENERIC_JSON, json!({}));
    let limits = "/tenants/acme/integrations/slow/limits";

    // Limits out of the host's caps are refused whole and change nothing.
    let refused = server.admin("PUT", limits, json!({ "timeout_ms": 5000, "max_queue": 1 }));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("`timeout_ms` is 5000, outside 1 to 1000"),
        "{}",
        refused.body
    );
    let unknown = server.admin("PUT", limits, json!({ "cpu": 1 }));
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(
        server.admin("GET", limits, Value::Null).json()["own"]["max_queue"],
        Value::Null
    );

    // The slow integration may run one parser at a time, with one more waiting.
    let set = server.admin(
        "PUT",
        limits,
        json!({ "timeout_ms": 200, "max_concurrency": 1, "max_queue": 1 }),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let effective = &set.json()["effective"];
    assert_eq!(
        (
            &effective["timeout_ms"],
            &effective["max_concurrency"],
            &effective["max_queue"]
        ),
        (&json!(200), &json!(1), &json!(1))
    );

    let flood: Vec<_> = (0..6)
        .map(|_| {
            let (server, slow) = (Arc::clone(&server), slow.clone());
            std::thread::spawn(move || server.send("POST", &slow, None, &[], b"loop".to_vec()))
        })
        .collect();
    let calls: Vec<Reply> = (0..20)
        .map(|i| {
            let body =
                json!({ "callId": format!("c-{i}"), "srcPhone": "+7916", "dstPhone": "101" });
            server.send("POST", &good, None, &[], body.to_string().into_bytes())
        })
        .collect();
    let flood: Vec<Reply> = flood
        .into_iter()
        .map(|sender| sender.join().expect("the sender finishes"))
        .collect();

    assert!(
        calls.iter().all(|reply| reply.status == 200),
        "the good integration kept working"
    );
    assert_eq!(server.events("acme", "good").len(), 20);
    let busy: Vec<&Reply> = flood.iter().filter(|reply| reply.status == 503).collect();
    let timed_out = flood.iter().filter(|reply| reply.status == 500).count();
    assert_eq!(
        busy.len() + timed_out,
        flood.len(),
        "{:?}",
        flood.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        timed_out >= 1 && !busy.is_empty(),
        "{timed_out} timed out, {} busy",
        busy.len()
    );
    assert!(
        busy.iter()
            .all(|reply| reply.body.contains("the integration is busy")
                && reply.retry_after.as_deref() == Some("1"))
    );
    // A trial runs under the integration's own limits, as the version will once active.
    let trial = server.admin(
        "POST",
        "/tenants/acme/integrations/slow/versions/1/test",
        json!({ "method": "POST", "url": "/hooks/acme/slow", "body": "loop" }),
    );
    assert_eq!(trial.status, 422, "{}", trial.body);
    let trial = trial.json();
    assert_eq!(trial["kind"], "timeout", "{trial}");
    assert!(
        trial["error"]
            .as_str()
            .is_some_and(|error| error.contains("limit of 200 ms")),
        "{trial}"
    );

    // A rate budget: the burst passes, the next request is told when to come back.
    let set = server.admin(
        "PUT",
        "/tenants/acme/integrations/good/limits",
        json!({ "rate_per_second": 1, "burst": 2 }),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let body = json!({ "srcPhone": "+7916", "dstPhone": "101" }).to_string();
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            server
                .send("POST", &good, None, &[], body.clone().into_bytes())
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let limited = server.send("POST", &good, None, &[], body.into_bytes());
    assert!(
        limited.body.contains("over its rate budget"),
        "{}",
        limited.body
    );
    assert_eq!(limited.retry_after.as_deref(), Some("1"));

    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(r#"integration="slow",outcome="busy""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"integration="good",outcome="rate_limited""#),
        "{metrics}"
    );
}

#[test]
fn a_parser_that_keeps_failing_is_suspended_until_an_admin_resets_it() {
    let dir = data_dir();
    let server = Server::start_with(
        dir.path(),
        &["--breaker-threshold", "3", "--breaker-cooldown-ms", "60000"],
    );
    server.tenant("acme");
    let flaky = server.integration("acme", "flaky", HOSTILE, json!({}));
    let good = server.integration("acme", "good", GENERIC_JSON, json!({}));
    let health = "/tenants/acme/integrations/flaky/health";

    for _ in 0..3 {
        let crashed = server.send("POST", &flaky, None, &[], b"panic".to_vec());
        assert_eq!(crashed.status, 500, "{}", crashed.body);
    }
    let suspended = server.send("POST", &flaky, None, &[], b"log".to_vec());
    assert_eq!(suspended.status, 503, "{}", suspended.body);
    assert!(
        suspended.body.contains("keeps failing and is suspended"),
        "{}",
        suspended.body
    );
    let retry: u64 = suspended
        .retry_after
        .as_deref()
        .and_then(|seconds| seconds.parse().ok())
        .expect("a retry-after in seconds");
    assert!((50..=60).contains(&retry), "{retry}");

    let report = server.admin("GET", health, Value::Null).json();
    assert_eq!(report["state"], "open");
    assert_eq!(report["consecutive_failures"], 3);
    let errors = report["last_errors"].as_array().expect("a list");
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|failure| {
        failure["kind"] == "trap"
            && failure["message"]
                .as_str()
                .is_some_and(|message| message.contains("hostile parser panicked on purpose"))
    }));
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(r#"telehook_breaker_open{tenant="acme",integration="flaky"} 1"#),
        "{metrics}"
    );

    // The other integration never noticed.
    let body = json!({ "srcPhone": "+7916", "dstPhone": "101" }).to_string();
    assert_eq!(
        server
            .send("POST", &good, None, &[], body.into_bytes())
            .status,
        200
    );

    let reset = server.admin("POST", &format!("{health}/reset"), Value::Null);
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.json()["state"], "closed");
    let resumed = server.send("POST", &flaky, None, &[], b"log".to_vec());
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(r#"telehook_breaker_open{tenant="acme",integration="flaky"} 0"#),
        "{metrics}"
    );
}

#[test]
fn parsers_idle_longest_are_unloaded_past_the_cap_and_load_again_on_their_next_request() {
    let dir = data_dir();
    let server = Server::start_with(dir.path(), &["--max-loaded-parsers", "2"]);
    server.tenant("acme");
    let webhooks: Vec<String> = (0..4)
        .map(|i| server.integration("acme", &format!("line-{i}"), GENERIC_JSON, json!({})))
        .collect();
    let call = |webhook: &str, call_id: &str| {
        let body = json!({ "callId": call_id, "srcPhone": "+7916", "dstPhone": "101" });
        server.send("POST", webhook, None, &[], body.to_string().into_bytes())
    };
    for round in 0..2 {
        for (i, webhook) in webhooks.iter().enumerate() {
            let reply = call(webhook, &format!("{round}-{i}"));
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new());
    let loaded: u32 = metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("telehook_loaded_parsers "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("the gauge is exported: {}", metrics.body));
    assert!(loaded <= 2, "{loaded} parsers loaded past the cap of 2");
    for i in 0..4 {
        let events = server.events("acme", &format!("line-{i}"));
        assert_eq!(events.len(), 2, "line-{i}: {events:?}");
    }
}

/// Milliseconds since the Unix epoch, as parsers get the receive time.
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

/// POSTs `body` to `url` over HTTP/2 with prior knowledge, as a provider's HTTP/2 client does:
/// no `host` header, the authority travels as `:authority`.
fn send_http2(url: &str, body: &str) -> (u16, String) {
    send_http2_with(url, &[], body)
}

/// The same with headers.
fn send_http2_with(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let uri: hyper::Uri = url.parse().expect("a URL");
        let authority = uri.authority().expect("an authority").to_string();
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connects");
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("an HTTP/2 connection");
        tokio::spawn(connection);
        let mut request = hyper::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(hyper::body::Bytes::from(
                body.to_owned(),
            )))
            .expect("a request");
        let response = sender.send_request(request).await.expect("an answer");
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("a body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

#[test]
fn a_parser_sees_the_url_the_provider_called_its_route_suffix_and_when_it_arrived() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration("acme", "echo", HOSTILE, json!({}));
    let authority = server.url.trim_start_matches("http://").to_owned();

    // A provider that appends to the URL it was given (Mango Office's `/events/call`).
    let before = now_ms();
    let seen = server.send(
        "POST",
        &format!("{webhook}/events/call?x=1"),
        None,
        &[],
        b"echo-request".to_vec(),
    );
    let after = now_ms();
    assert_eq!(seen.status, 200, "{}", seen.body);
    let seen = seen.json();
    assert_eq!(
        seen["url"],
        format!("{}{webhook}/events/call?x=1", server.url)
    );
    assert_eq!(seen["route_suffix"], "events/call");
    assert_eq!(seen["host"], authority.as_str());
    let at = seen["received_at_ms"].as_u64().expect("a time");
    assert!(
        (before..=after).contains(&at),
        "{before} <= {at} <= {after}"
    );

    // Behind a proxy that terminates TLS: the URL the provider called is the proxy's.
    let proxied = server.send(
        "POST",
        &webhook,
        None,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "hooks.example.com"),
        ],
        b"echo-request".to_vec(),
    );
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    assert_eq!(
        proxied.json()["url"],
        format!("https://hooks.example.com{webhook}")
    );
    assert_eq!(proxied.json()["route_suffix"], "");

    // HTTP/2 sends no `host` header: the parser gets the authority as `host`, and in the URL.
    let (status, body) = send_http2(&format!("{}{webhook}", server.url), "echo-request");
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(seen["url"], format!("{}{webhook}", server.url));
    assert_eq!(seen["host"], authority.as_str());
}

#[test]
fn a_refusal_with_a_status_is_answered_with_it_and_counted_as_rejected() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration("acme", "guard", HOSTILE, json!({}));

    let forged = server.send("POST", &webhook, None, &[], b"forbidden".to_vec());
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.json()["error"], "the signature does not match");

    // A refusal may not pass for a success: an invalid result, the parser's fault.
    let success = server.send("POST", &webhook, None, &[], b"refuse-with-200".to_vec());
    assert_eq!(success.status, 500, "{}", success.body);
    assert!(
        success.body.contains("parse_error.status"),
        "{}",
        success.body
    );

    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    for (outcome, count) in [("rejected", 1), ("invalid", 1)] {
        let line = format!(
            r#"telehook_webhook_requests_total{{tenant="acme",integration="guard",outcome="{outcome}"}} {count}"#
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    let invocations = server.admin(
        "GET",
        "/tenants/acme/integrations/guard/invocations",
        Value::Null,
    );
    let outcomes: Vec<Value> = invocations
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|invocation| invocation["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("invalid"), json!("rejected")]);
}

#[test]
fn parsers_built_against_older_contracts_are_served_beside_the_current_one() {
    let older = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests");
    let frozen_samples = older.join("contract-0.1.0/samples/zadarma");
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    for version in ["0.1.0", "0.2.0"] {
        let build = older.join(format!("contract-{version}/zadarma.wasm"));
        let integration = format!("zadarma-{}", version.replace('.', "-"));
        let webhook = server.integration(
            "acme",
            &integration,
            build.to_str().expect("UTF-8"),
            settings_in(&frozen_samples),
        );
        replay_from(&server, "acme", &integration, &webhook, &frozen_samples);
    }
    let new_webhook = server.integration("acme", "zadarma", ZADARMA, settings("zadarma"));
    replay(&server, "acme", "zadarma", &new_webhook, "zadarma");
}

#[test]
fn a_provider_retry_of_a_delivery_is_answered_as_the_first_and_stored_once() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration("acme", "retried", HOSTILE, json!({}));

    let first = server.send("POST", &webhook, None, &[], b"deliver RE-1".to_vec());
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.starts_with("received at "), "{}", first.body);
    std::thread::sleep(Duration::from_millis(20));
    let retry = server.send("POST", &webhook, None, &[], b"deliver RE-1".to_vec());
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (200, first.body.as_str())
    );
    let other = server.send("POST", &webhook, None, &[], b"deliver RE-2".to_vec());
    assert_ne!(other.body, first.body);
    assert_eq!(server.events("acme", "retried").len(), 2);

    // The deliveries are durable: a restart still knows the first one.
    server.crash();
    let server = Server::start(dir.path());
    let again = server.send("POST", &webhook, None, &[], b"deliver RE-1".to_vec());
    assert_eq!(
        (again.status, again.body.as_str()),
        (200, first.body.as_str())
    );
    assert_eq!(server.events("acme", "retried").len(), 2);
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(
            r#"telehook_webhook_requests_total{tenant="acme",integration="retried",outcome="duplicate"} 1"#
        ),
        "{metrics}"
    );
}

/// Twilio's signature (see `tests/guests/url-signed`): HMAC-SHA1 over the URL and the sorted
/// POST parameters, base64.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("any key");
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn a_parser_verifies_a_signature_over_the_url_an_http2_provider_called() {
    // Twilio's published example (its webhook security page), so that the signer here is
    // Twilio's and not one that merely agrees with the parser.
    let example = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &example
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );

    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration(
        "acme",
        "twilio",
        component("url-signed"),
        json!({ "auth_token": "12345" }),
    );
    let url = format!("{}{webhook}?foo=1", server.url);
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("From", "+12349013030"),
        ("To", "101"),
    ];
    let body = params
        .iter()
        .map(|(name, value)| format!("{name}={}", value.replace('+', "%2B")))
        .collect::<Vec<_>>()
        .join("&");
    let send = |signature: &str| {
        send_http2_with(
            &url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", signature),
            ],
            &body,
        )
    };

    let (status, answer) = send(&twilio_signature("12345", &url, &params));
    assert_eq!(status, 200, "{answer}");
    let events = server.events("acme", "twilio");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"]["call_id"], "CA1234567890ABCDE");

    // Signed for another host, or with another token: refused as forged, and counted so.
    let elsewhere = url.replace("127.0.0.1", "localhost");
    let (status, answer) = send(&twilio_signature("12345", &elsewhere, &params));
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = send(&twilio_signature("54321", &url, &params));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(server.events("acme", "twilio").len(), 1);
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(
            r#"telehook_webhook_requests_total{tenant="acme",integration="twilio",outcome="rejected"} 2"#
        ),
        "{metrics}"
    );
}

/// The calls of `acme/pbx` that the query selects, and the next page's cursor.
fn calls(server: &Server, query: &str) -> (Vec<Value>, Value) {
    server.calls_page("acme", "pbx", query)
}

/// One call of `acme/pbx` with its events.
fn call(server: &Server, id: &Value) -> (Value, Vec<Value>) {
    let id = id.as_str().expect("a call id");
    let reply = server.admin(
        "GET",
        &format!("/tenants/acme/integrations/pbx/calls/{id}"),
        Value::Null,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let shown = reply.json();
    (
        shown["call"].clone(),
        shown["events"].as_array().expect("a list").clone(),
    )
}

const CALLER: &str = "direction=in&src=%2B79161234567&dst=101";

#[test]
fn events_that_name_only_their_call_are_completed_from_it_and_the_call_survives_a_crash() {
    let (dir, server, webhook) = scripted_server(&[]);

    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-1&{CALLER}"),
    );
    happen(&server, &webhook, "event=answer&call_id=c-1");
    let (listed, _) = calls(&server, "");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "answered");
    assert_eq!(listed[0]["provider_call_id"], "c-1");
    assert_eq!(listed[0]["users"], json!(["anna"]));

    // The answer is durable with the call: the end after a crash finds both.
    server.crash();
    let server = Server::start(dir.path());
    happen(
        &server,
        &webhook,
        "event=end&call_id=c-1&disposition=answered",
    );
    let (listed, _) = calls(&server, "");
    assert_eq!(listed.len(), 1);
    let (shown, events) = call(&server, &listed[0]["id"]);
    assert_eq!(
        (&shown["state"], &shown["disposition"], &shown["closed_by"]),
        (&json!("ended"), &json!("answered"), &json!("provider"))
    );
    for at in ["started_at", "answered_at", "ended_at"] {
        assert!(shown[at].is_string(), "{at}: {shown}");
    }
    let kinds: Vec<&Value> = events
        .iter()
        .map(|event| &event["event"]["event"])
        .collect();
    assert_eq!(kinds, ["notify_start", "notify_answer", "notify_end"]);
    for event in &events {
        // Completed: every event carries the call's parties, users and our id of the call.
        assert_eq!(event["event"]["direction"], "in", "{event}");
        assert_eq!(event["event"]["src_phone"], "+79161234567");
        assert_eq!(event["event"]["dst_phone"], "101");
        assert_eq!(event["users"], json!(["anna"]));
        assert_eq!(event["call"], listed[0]["id"]);
    }
    // The platform's feed carries the call too.
    let feed = server.admin("GET", "/events", Value::Null).json();
    assert!(
        feed.as_array()
            .expect("a list")
            .iter()
            .all(|event| event["call"] == listed[0]["id"])
    );
}

#[test]
fn an_event_before_its_calls_first_full_one_is_held_until_it_or_reported_unresolved() {
    let (_dir, server, webhook) = scripted_server(&["--unresolved-after-secs", "1"]);

    // A recording callback and an answer that outran the call's start.
    happen(&server, &webhook, "event=answer&call_id=c-2");
    assert!(server.events("acme", "pbx").is_empty(), "held, not logged");
    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-2&{CALLER}"),
    );
    let events = server.events("acme", "pbx");
    let kinds: Vec<&Value> = events
        .iter()
        .map(|event| &event["event"]["event"])
        .collect();
    assert_eq!(kinds, ["notify_start", "notify_answer"]);
    assert_eq!(events[1]["event"]["src_phone"], "+79161234567");
    assert_eq!(events[1]["call"], events[0]["call"]);
    let (listed, _) = calls(&server, "");
    assert_eq!((listed.len(), &listed[0]["state"]), (1, &json!("answered")));

    // One whose call never comes is stored unresolved after the hold, and counted.
    happen(&server, &webhook, "event=end&call_id=c-ghost");
    std::thread::sleep(Duration::from_millis(1800));
    let events = server.events("acme", "pbx");
    assert_eq!(events.len(), 3, "{events:?}");
    let ghost = &events[2];
    assert_eq!(
        (
            &ghost["unresolved"],
            &ghost["call"],
            &ghost["event"]["call_id"]
        ),
        (&json!(true), &Value::Null, &json!("c-ghost"))
    );
    assert_eq!(ghost["event"]["src_phone"], Value::Null);
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(r#"telehook_unresolved_events_total{tenant="acme",integration="pbx"} 1"#),
        "{metrics}"
    );
    assert_eq!(
        calls(&server, "").0.len(),
        1,
        "an unresolved event begins no call"
    );
}

#[test]
fn calls_without_a_call_id_are_told_apart_by_their_parties_latest_open_call_first() {
    let (_dir, server, webhook) = scripted_server(&[]);

    // Two calls between the same numbers at once: the later takes the first end.
    happen(&server, &webhook, &format!("event=start&{CALLER}"));
    happen(&server, &webhook, &format!("event=start&{CALLER}"));
    happen(
        &server,
        &webhook,
        &format!("event=end&disposition=cancel&{CALLER}"),
    );
    let (listed, _) = calls(&server, "");
    let states: Vec<(&Value, &Value)> = listed
        .iter()
        .map(|call| (&call["state"], &call["disposition"]))
        .collect();
    assert_eq!(
        states,
        [
            (&json!("ended"), &json!("cancel")),
            (&json!("ringing"), &json!("unknown"))
        ]
    );
    happen(
        &server,
        &webhook,
        &format!("event=end&disposition=no_answer&{CALLER}"),
    );
    let (listed, _) = calls(&server, "state=ended");
    assert_eq!(listed.len(), 2, "no third call: {listed:?}");
    assert_eq!(listed[1]["disposition"], "no_answer");
    // Another caller's start is a call of its own.
    happen(
        &server,
        &webhook,
        "event=start&direction=in&src=%2B74951112233&dst=102",
    );
    let (ringing, _) = calls(&server, "state=ringing&user=boris");
    assert_eq!(ringing.len(), 1);
    assert_eq!(ringing[0]["src_phone"], "+74951112233");
}

#[test]
fn an_end_before_the_answer_and_repeats_make_one_call_changed_once() {
    let (_dir, server, webhook) = scripted_server(&[]);

    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-3&{CALLER}"),
    );
    happen(
        &server,
        &webhook,
        "event=end&call_id=c-3&disposition=answered",
    );
    happen(&server, &webhook, "event=answer&call_id=c-3");
    happen(&server, &webhook, "event=end&call_id=c-3&disposition=busy");
    let (listed, _) = calls(&server, "");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (shown, events) = call(&server, &listed[0]["id"]);
    assert_eq!(
        (&shown["state"], &shown["disposition"]),
        (&json!("ended"), &json!("answered")),
        "the late answer and the repeated end change nothing: {shown}"
    );
    assert!(shown["answered_at"].is_string());
    assert_eq!(events.len(), 4, "every event is kept in the log");
}

#[test]
fn a_record_is_attached_to_its_call_before_or_after_the_end() {
    let (_dir, server, webhook) = scripted_server(&[]);

    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-4&{CALLER}"),
    );
    happen(
        &server,
        &webhook,
        "record=rec-4&call_id=c-4&duration=30&disposition=answered",
    );
    happen(
        &server,
        &webhook,
        "event=end&call_id=c-4&disposition=answered",
    );
    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-5&{CALLER}"),
    );
    happen(&server, &webhook, "event=end&call_id=c-5");
    happen(
        &server,
        &webhook,
        "record=rec-5&call_id=c-5&duration=12&disposition=answered",
    );
    let (listed, _) = calls(&server, "");
    assert_eq!(listed.len(), 2);
    for (listed, call_data, duration) in [(&listed[1], "rec-4", 30), (&listed[0], "rec-5", 12)] {
        let (shown, events) = call(&server, &listed["id"]);
        assert_eq!(shown["state"], "ended");
        assert_eq!(shown["disposition"], "answered");
        assert_eq!(shown["record"]["call"], call_data);
        assert_eq!(shown["record"]["duration"], duration);
        // Completed from the call like an event.
        assert_eq!(shown["record"]["src_phone"], "+79161234567");
        assert_eq!(events.len(), 3);
    }
}

#[test]
fn the_older_convention_of_the_operators_extension_in_dst_phone_keeps_working() {
    let (_dir, server, webhook) = scripted_server(&[]);

    // An outgoing call as older parsers report it: the client in src_phone, the operator's
    // extension in dst_phone, no call id.
    let old = "direction=out&src=%2B79161234567&dst=101";
    happen(&server, &webhook, &format!("event=start&{old}"));
    happen(&server, &webhook, &format!("event=answer&{old}"));
    happen(
        &server,
        &webhook,
        &format!("event=end&disposition=answered&{old}"),
    );
    let (listed, _) = calls(&server, "user=anna");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            &listed[0]["state"],
            &listed[0]["disposition"],
            &listed[0]["users"]
        ),
        (&json!("ended"), &json!("answered"), &json!(["anna"]))
    );
    assert!(
        server
            .events("acme", "pbx")
            .iter()
            .all(|event| event["users"] == json!(["anna"]))
    );
}

#[test]
fn a_call_that_never_ends_is_closed_after_the_timeout_and_listings_filter_and_page() {
    let (_dir, server, webhook) = scripted_server(&["--call-timeout-secs", "1"]);

    for id in ["c-6", "c-7", "c-8"] {
        happen(
            &server,
            &webhook,
            &format!("event=start&call_id={id}&{CALLER}"),
        );
    }
    std::thread::sleep(Duration::from_millis(1800));
    let (first, next) = calls(&server, "limit=2");
    assert_eq!(first.len(), 2);
    assert_eq!(
        (&first[0]["provider_call_id"], &first[1]["provider_call_id"]),
        (&json!("c-8"), &json!("c-7"))
    );
    assert!(first.iter().all(|call| call["closed_by"] == "timeout"
        && call["state"] == "ended"
        && call["disposition"] == "unknown"));
    let (second, last) = calls(
        &server,
        &format!("limit=2&before={}", next.as_str().unwrap()),
    );
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["provider_call_id"], "c-6");
    assert_eq!(last, Value::Null, "the last page");

    // The provider's end, late, still tells how the call ended.
    happen(
        &server,
        &webhook,
        "event=end&call_id=c-6&disposition=no_answer",
    );
    let (shown, _) = call(&server, &second[0]["id"]);
    assert_eq!(
        (&shown["closed_by"], &shown["disposition"]),
        (&json!("provider"), &json!("no_answer"))
    );

    // Time ranges, and input that is not a time.
    assert_eq!(calls(&server, "since=2000-01-01T00:00:00Z").0.len(), 3);
    assert_eq!(calls(&server, "until=2000-01-01T00:00:00Z").0.len(), 0);
    let refused = server.admin(
        "GET",
        "/tenants/acme/integrations/pbx/calls?since=yesterday",
        Value::Null,
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("`since` must be an RFC 3339 time in UTC"),
        "{}",
        refused.body
    );
    let missing = server.admin(
        "GET",
        "/tenants/acme/integrations/pbx/calls/no-such-call",
        Value::Null,
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
}

#[test]
fn a_tenant_sees_its_own_calls_only() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let acme = server.tenant("acme");
    let rival = server.tenant("rival");
    let webhook = scripted_integration(&server, "acme", "pbx");
    happen(
        &server,
        &webhook,
        &format!("event=start&call_id=c-9&{CALLER}"),
    );
    let own = server.as_token(
        &acme,
        "GET",
        "/tenants/acme/integrations/pbx/calls",
        Value::Null,
    );
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["calls"].as_array().map(Vec::len), Some(1));
    let other = server.as_token(
        &rival,
        "GET",
        "/tenants/acme/integrations/pbx/calls",
        Value::Null,
    );
    assert_eq!(other.status, 404, "{}", other.body);
}

/// A parser that finds a setting missing (contract 0.3) does not blame the provider: the
/// provider gets `503` with `retry-after`, so it retries and loses nothing, the integration's
/// health names the setting until a request succeeds, and the request is counted
/// `misconfigured`, not `rejected`.
#[test]
fn a_missing_setting_is_the_admins_to_fix_and_the_provider_retries() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration("acme", "unset", HOSTILE, json!({}));
    let reply = server.send("POST", &webhook, None, &[], b"setting".to_vec());
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.retry_after.as_deref(), Some("60"));
    assert!(!reply.body.contains("phone"), "{}", reply.body);
    assert_eq!(server.events("acme", "unset").len(), 0);

    let health = "/tenants/acme/integrations/unset/health";
    let report = server.admin("GET", health, Value::Null).json();
    assert_eq!(report["misconfigured"]["setting"], "phone", "{report}");
    assert_eq!(report["state"], "closed");
    let metrics = server.send("GET", "/metrics", None, &[], Vec::new()).body;
    assert!(
        metrics.contains(
            r#"telehook_webhook_requests_total{tenant="acme",integration="unset",outcome="misconfigured"} 1"#
        ),
        "{metrics}"
    );

    // The admin sets it; the provider's retry goes through and the health is clear again.
    let set = server.admin(
        "PATCH",
        "/tenants/acme/integrations/unset/settings",
        json!({"phone": "+79161234567"}),
    );
    assert!(set.status < 300, "{}", set.body);
    let retried = server.send("POST", &webhook, None, &[], b"setting".to_vec());
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(server.events("acme", "unset").len(), 1);
    let report = server.admin("GET", health, Value::Null).json();
    assert_eq!(report["misconfigured"], Value::Null, "{report}");
}

/// A value the parser asks the host to hide (contract 0.3's `redact`) appears nowhere in the
/// recent invocations: not in the body, not in the parser's own log, raw or form-encoded.
#[test]
fn values_a_parser_redacts_are_never_shown() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    server.tenant("acme");
    let webhook = server.integration("acme", "careless", HOSTILE, json!({}));
    let secret = "oauth/Token+value=42";
    let reply = server.send(
        "POST",
        &webhook,
        None,
        &[],
        format!("redact {secret}").into_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let invocations = server.admin(
        "GET",
        "/tenants/acme/integrations/careless/invocations",
        Value::Null,
    );
    assert_eq!(invocations.status, 200, "{}", invocations.body);
    assert!(
        !invocations.body.contains("oauth/Token"),
        "{}",
        invocations.body
    );
    let listed = invocations.json();
    let invocation = &listed[0];
    assert_eq!(invocation["body"], "redact [redacted]", "{invocation}");
    assert_eq!(
        invocation["log"]["lines"][0]["message"], "the token is [redacted]",
        "{invocation}"
    );
}
