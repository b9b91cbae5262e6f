//! A parser that misbehaves on command: the request body names what to do. One component
//! covers every runtime failure the host must contain.

use std::hint::black_box;

use telehook_guest::prelude::*;

struct Hostile;

impl Parser for Hostile {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        match request.body_text()? {
            "panic" => panic!("hostile parser panicked on purpose"),
            "loop" => loop {
                black_box(());
            },
            "alloc" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => Ok(ParseResult::with_response(Response::new(
                200 + recurse(black_box(u32::MAX)) as u16,
            ))),
            "smash-stack" => Ok(ParseResult::with_response(Response::new(smash_stack(1)))),
            "invalid" => Ok(invalid()),
            "huge" => Ok(ParseResult::with_response(
                Response::new(200).with_body(vec![b'x'; 1 << 20]),
            )),
            "log" => {
                log_lines(1000);
                Ok(ParseResult::empty())
            }
            "log-then-panic" => {
                log_lines(1000);
                panic!("hostile parser panicked after filling its log")
            }
            "print" => {
                println!("to stdout");
                eprintln!("to stderr");
                Ok(ParseResult::empty())
            }
            "host-loop" => loop {
                black_box(settings::get("never-set"));
            },
            "churn" => loop {
                drop(black_box(vec![1u8; 64 << 10]));
            },
            "many-headers" => {
                let mut response = Response::new(200);
                for index in 0..10_000 {
                    response = response.with_header(format!("x-header-{index}"), "value");
                }
                Ok(ParseResult::with_response(response))
            }
            "control-chars" => Ok(ParseResult::with_event(
                TelephonyEvent::new(EventType::NotifyStart, Direction::In, "+7916\u{0}", " ")
                    .with_call_id("call\u{1b}[31m"),
            )),
            "setting" => {
                let phone = settings::require("phone")?;
                Ok(ParseResult::with_event(TelephonyEvent::new(
                    EventType::NotifyStart,
                    Direction::In,
                    phone,
                    "101",
                )))
            }
            "forbidden" => Err(ParseError::forbidden("the signature does not match")),
            "refuse-with-200" => Err(ParseError::new("refused, but as a success").with_status(200)),
            "echo-request" => Ok(ParseResult::with_response(Response::json(
                200,
                &serde_json::json!({
                    "url": request.url,
                    "route_suffix": request.route_suffix,
                    "received_at_ms": request.received_at_ms,
                    "host": request.header("host"),
                }),
            ))),
            // A provider's delivery that names its id: the answer says when it was received, so
            // that a retry answered from the first delivery can be told from a fresh answer.
            // A request that carries a secret: the parser logs it (as a careless one would) and
            // asks the host to hide it.
            other if other.starts_with("redact ") => {
                let secret = &other["redact ".len()..];
                log::redact(secret);
                log::info(&format!("the token is {secret}"));
                Ok(ParseResult::empty())
            }
            other if other.starts_with("deliver ") => Ok(ParseResult::with_event(
                TelephonyEvent::new(EventType::NotifyStart, Direction::In, "+79161234567", "101")
                    .with_call_id("call-1"),
            )
            .and_response(Response::text(
                200,
                format!("received at {}", request.received_at_ms),
            ))
            .with_delivery_id(&other["deliver ".len()..])),
            other => Err(ParseError::new(format!("unknown command `{other}`"))),
        }
    }
}

/// Small frames: the wasm stack runs out first, which the host reports as a stack overflow.
fn recurse(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    black_box(recurse(depth - 1)).wrapping_add(1)
}

/// Large frames kept in linear memory: Rust's shadow stack runs out first and the guest writes
/// below its memory, which the host reports as a crash.
#[allow(unconditional_recursion)]
fn smash_stack(depth: u16) -> u16 {
    let frame = black_box([depth; 512]);
    smash_stack(frame[depth as usize % 512].wrapping_add(1)).wrapping_add(frame[0])
}

/// Breaks one rule of every kind the validator knows.
fn log_lines(count: u32) {
    for line in 0..count {
        log::info(&format!("line {line}"));
    }
}

fn invalid() -> ParseResult {
    let mut event = TelephonyEvent::new(EventType::NotifyStart, Direction::Out, "", "101");
    event.src_phone_ext = Some("102".into());
    ParseResult::with_event(event)
        .and_response(Response::new(99).with_header("x-injected", "a\r\nset-cookie: stolen=1"))
}

telehook_guest::export_parser!(Hostile);
