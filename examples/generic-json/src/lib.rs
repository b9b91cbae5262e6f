//! The parser from the platform's documentation, in Rust.
//!
//! The documentation's TypeScript example answers every request with a ringing incoming call:
//!
//! ```ts
//! if (typeof request.body !== 'string') { return {}; }
//! const data = JSON.parse(request.body);
//! return { event: { event: NotifyStart, direction: In, dstPhone: data.dstPhone,
//!                   srcPhone: data.srcPhone, disposition: Unknown } };
//! ```
//!
//! This parser does the same and also carries the optional `callId` through, so that the
//! platform can tie later events of the call to this one. A request without a body (a provider
//! checking that the URL is alive) gets the empty result, as in the original.

use serde::Deserialize;
use telehook_guest::prelude::*;

/// The body the documentation's example expects.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    call_id: Option<String>,
    src_phone: String,
    dst_phone: String,
}

struct GenericJson;

impl Parser for GenericJson {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        if request.body.is_empty() {
            return Ok(ParseResult::empty());
        }
        let notification: Notification = request.json()?;
        let mut event = TelephonyEvent::new(
            EventType::NotifyStart,
            Direction::In,
            notification.src_phone,
            notification.dst_phone,
        );
        event.call_id = notification.call_id;
        Ok(ParseResult::with_event(event))
    }
}

telehook_guest::export_parser!(GenericJson);
