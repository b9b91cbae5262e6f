//! The live stream as a client follows it: an `EventSource`-like reader of `GET /stream/calls`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http::Request;

use super::Server;

/// One frame of an event stream.
#[derive(Debug, Clone)]
pub enum Frame {
    Event { id: i64, event: String, data: Value },
    Comment,
}

/// A stream as a browser's `EventSource` holds it: the answer's status and headers, then its
/// frames as they come, read on a thread of their own until `take` events have come (then
/// the connection is dropped, as a closed tab drops it) or the server goes away.
pub struct EventStream {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub frames: mpsc::Receiver<Frame>,
}

impl EventStream {
    pub fn open(url: &str, headers: &[(&str, &str)], take: usize) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut request = Request::get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = agent
            .run(request.body(()).expect("a request"))
            .expect("the server answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let (sender, frames) = mpsc::channel();
        if status != 200 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Self {
                status,
                headers,
                body,
                frames,
            };
        }
        let reader = BufReader::new(response.into_body().into_reader());
        std::thread::spawn(move || read_frames(reader, &sender, take));
        Self {
            status,
            headers,
            body: String::new(),
            frames,
        }
    }

    /// The next `count` events; panics if they do not come within `wait`.
    pub fn events(&self, count: usize, wait: Duration) -> Vec<(i64, Value)> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        while events.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Frame::Event { id, event, data }) => {
                    assert_eq!(event, "call.updated");
                    events.push((id, data));
                }
                Ok(Frame::Comment) => {}
                Err(err) => panic!("{} of {count} events came ({err})", events.len()),
            }
        }
        events
    }
}

fn read_frames(reader: impl BufRead, frames: &mpsc::Sender<Frame>, take: usize) {
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    let mut taken = 0;
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if line.is_empty() {
            if let Some(id) = id.take() {
                let parsed = serde_json::from_str(&data).expect("data is JSON");
                let frame = Frame::Event {
                    id,
                    event: std::mem::take(&mut event),
                    data: parsed,
                };
                data.clear();
                taken += 1;
                if frames.send(frame).is_err() || taken == take {
                    return;
                }
            }
        } else if line.starts_with(':') {
            if frames.send(Frame::Comment).is_err() {
                return;
            }
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.parse().expect("a numeric id")),
                "event" => event = value.to_owned(),
                "data" => data.push_str(value),
                _ => {}
            }
        }
    }
}

/// The positions of an integration's call updates, as the admin stream replays them all.
pub fn all_updates(server: &Server, count: usize) -> Vec<(i64, Value)> {
    let stream = EventStream::open(
        &format!("{}/stream/calls?after=0", server.url),
        &[("authorization", &format!("Bearer {}", server.admin_token))],
        count,
    );
    stream.events(count, Duration::from_secs(10))
}
