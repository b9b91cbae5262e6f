//! `generic-json` as the reference wasi:http host runs it: the peer of `cargo xtask bench`'s
//! HTTP benchmark, served by `wasmtime serve`, a fresh instance per request.
//!
//! It does what the `generic-json` example does for telehook, in the shape wasi:http asks
//! for: read the body, parse the documentation's JSON (`callId`, `srcPhone`, `dstPhone`), and
//! answer `200` with the ringing incoming call as JSON, or `400` with the parse error. It
//! stores nothing (telehook also makes each event durable before answering).

use std::io::{Read as _, Write as _};

use serde::Deserialize;
use serde_json::{Value, json};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// The body the documentation's example expects.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    call_id: Option<String>,
    src_phone: String,
    dst_phone: String,
}

struct GenericJson;

impl Guest for GenericJson {
    fn handle(request: IncomingRequest, answer: ResponseOutparam) {
        let (status, body) = match serde_json::from_slice::<Notification>(&read_body(request)) {
            Ok(notification) => (200, event(notification)),
            Err(err) => (400, json!({ "error": err.to_string() })),
        };
        respond(answer, status, &body);
    }
}

fn read_body(request: IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    if let Ok(incoming) = request.consume()
        && let Ok(mut stream) = incoming.stream()
    {
        // A body cut short parses as invalid JSON, which is the answer it deserves.
        let _ = stream.read_to_end(&mut body);
    }
    body
}

fn event(notification: Notification) -> Value {
    json!({
        "event": {
            "event": "NotifyStart",
            "direction": "In",
            "srcPhone": notification.src_phone,
            "dstPhone": notification.dst_phone,
            "callId": notification.call_id,
            "disposition": "Unknown",
        }
    })
}

fn respond(answer: ResponseOutparam, status: u16, body: &Value) {
    let content_type = [("content-type".to_owned(), b"application/json".to_vec())];
    let headers = Fields::from_list(&content_type).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let stored = response.set_status_code(status);
    debug_assert!(stored.is_ok(), "200 and 400 are valid status codes");
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(answer, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(body.to_string().as_bytes());
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

wasip2::http::proxy::export!(GenericJson);
