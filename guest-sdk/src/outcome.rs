//! Building what a parser returns: the telephony event, the call record and the provider's
//! response.
//!
//! Constructors take the fields the platform requires; optional fields are added with `with_*`
//! methods. The host validates the result; [`ParseResult::validate`] runs the same rules (the
//! `telehook-outcome` crate both share), so a parser's unit test finds what the host would
//! refuse. An empty extension passed to `with_*_ext` is dropped, because the contract says
//! "leave empty" and the host wants such a field absent.

use crate::{
    CallRecord, Direction, Disposition, EventType, ParseError, ParseResult, Response,
    TelephonyEvent,
};

impl TelephonyEvent {
    /// An event of a call in progress: disposition `Unknown`, no call id, no extensions.
    pub fn new(
        event: EventType,
        direction: Direction,
        src_phone: impl Into<String>,
        dst_phone: impl Into<String>,
    ) -> Self {
        Self {
            call_id: None,
            event,
            direction: Some(direction),
            disposition: Disposition::Unknown,
            src_phone: Some(src_phone.into()),
            src_phone_ext: None,
            dst_phone: Some(dst_phone.into()),
            dst_phone_ext: None,
        }
    }

    /// An event that names only its call: an answer or a hang-up whose notification carries
    /// the call id but not the direction or the numbers. The host completes it from the call's
    /// earlier events.
    pub fn of_call(event: EventType, call_id: impl Into<String>) -> Self {
        Self {
            call_id: Some(call_id.into()),
            event,
            direction: None,
            disposition: Disposition::Unknown,
            src_phone: None,
            src_phone_ext: None,
            dst_phone: None,
            dst_phone_ext: None,
        }
    }

    /// Sets the provider's call id, which ties the events of one call together.
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = Some(call_id.into());
        self
    }

    /// Sets how the call ended (usually on `NotifyEnd`).
    pub fn with_disposition(mut self, disposition: Disposition) -> Self {
        self.disposition = disposition;
        self
    }

    /// Sets the receiving employee's extension; the contract allows it on `In` calls only.
    pub fn with_src_phone_ext(mut self, ext: impl Into<String>) -> Self {
        self.src_phone_ext = non_empty(ext.into());
        self
    }

    /// Sets the calling employee's extension; the contract allows it on `Out` calls only.
    pub fn with_dst_phone_ext(mut self, ext: impl Into<String>) -> Self {
        self.dst_phone_ext = non_empty(ext.into());
        self
    }

    /// Sets the operator's extension where the contract wants it for the event's direction:
    /// `src_phone_ext` (the receiving employee) on `In`, `dst_phone_ext` (the calling one) on
    /// `Out`, nowhere on `Internal` or an event that names only its call, whose extensions are
    /// in the phones themselves.
    pub fn with_operator_ext(self, ext: impl Into<String>) -> Self {
        match self.direction {
            Some(Direction::In) => self.with_src_phone_ext(ext),
            Some(Direction::Out) => self.with_dst_phone_ext(ext),
            _ => self,
        }
    }
}

impl CallRecord {
    /// A finished call: `duration` in seconds, `call` the opaque data (such as the recording
    /// URL) that the platform hands back unchanged when it asks for a recording link.
    pub fn new(
        direction: Direction,
        disposition: Disposition,
        src_phone: impl Into<String>,
        dst_phone: impl Into<String>,
        duration: u32,
        call: impl Into<String>,
    ) -> Self {
        Self {
            call_id: None,
            direction: Some(direction),
            disposition,
            src_phone: Some(src_phone.into()),
            src_phone_ext: None,
            dst_phone: Some(dst_phone.into()),
            dst_phone_ext: None,
            duration,
            call: call.into(),
        }
    }

    /// The record of a call known only by its id (a recording callback that carries nothing
    /// else); the host completes the parties from the call's events.
    pub fn of_call(
        call_id: impl Into<String>,
        disposition: Disposition,
        duration: u32,
        call: impl Into<String>,
    ) -> Self {
        Self {
            call_id: Some(call_id.into()),
            direction: None,
            disposition,
            src_phone: None,
            src_phone_ext: None,
            dst_phone: None,
            dst_phone_ext: None,
            duration,
            call: call.into(),
        }
    }

    /// The record of the call an end event describes: the same parties, direction, outcome and
    /// call id, for providers that report the recording with the end of the call.
    pub fn of_event(event: &TelephonyEvent, duration: u32, call: impl Into<String>) -> Self {
        Self {
            call_id: event.call_id.clone(),
            direction: event.direction,
            disposition: event.disposition,
            src_phone: event.src_phone.clone(),
            src_phone_ext: event.src_phone_ext.clone(),
            dst_phone: event.dst_phone.clone(),
            dst_phone_ext: event.dst_phone_ext.clone(),
            duration,
            call: call.into(),
        }
    }

    /// Sets the provider's call id.
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = Some(call_id.into());
        self
    }

    /// Sets the receiving employee's extension (`In` calls only).
    pub fn with_src_phone_ext(mut self, ext: impl Into<String>) -> Self {
        self.src_phone_ext = non_empty(ext.into());
        self
    }

    /// Sets the calling employee's extension (`Out` calls only).
    pub fn with_dst_phone_ext(mut self, ext: impl Into<String>) -> Self {
        self.dst_phone_ext = non_empty(ext.into());
        self
    }

    /// Sets the operator's extension where the direction wants it, as
    /// [`TelephonyEvent::with_operator_ext`] does.
    pub fn with_operator_ext(self, ext: impl Into<String>) -> Self {
        match self.direction {
            Some(Direction::In) => self.with_src_phone_ext(ext),
            Some(Direction::Out) => self.with_dst_phone_ext(ext),
            _ => self,
        }
    }
}

impl Response {
    /// A response with a status and nothing else.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response, e.g. for echo handshakes.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// An `application/json` response, e.g. Sipuni's required `{"success": true}`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(body.to_string().into_bytes())
    }

    /// An XML response: TwiML for Twilio's voice URL, Plivo XML for its answer URL. The
    /// document is the parser's; [`xml_escape`] makes text safe inside it.
    pub fn xml(status: u16, document: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("content-type", "application/xml; charset=utf-8")
            .with_body(document.into().into_bytes())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

impl ParseResult {
    /// Nothing of interest: the provider gets the default `200` with an empty body.
    pub fn empty() -> Self {
        Self {
            event: None,
            call_record: None,
            response: None,
            delivery_id: None,
        }
    }

    /// A result carrying a telephony event.
    pub fn with_event(event: TelephonyEvent) -> Self {
        Self::empty().and_event(event)
    }

    /// A result carrying a finished call's record.
    pub fn with_call_record(record: CallRecord) -> Self {
        Self::empty().and_call_record(record)
    }

    /// A result that only answers the provider (handshakes, acknowledgements).
    pub fn with_response(response: Response) -> Self {
        Self::empty().and_response(response)
    }

    /// Adds or replaces the event.
    pub fn and_event(mut self, event: TelephonyEvent) -> Self {
        self.event = Some(event);
        self
    }

    /// Adds or replaces the call record.
    pub fn and_call_record(mut self, record: CallRecord) -> Self {
        self.call_record = Some(record);
        self
    }

    /// Adds or replaces the response.
    pub fn and_response(mut self, response: Response) -> Self {
        self.response = Some(response);
        self
    }

    /// Checks the result against the rules the host applies to every result, in the host's
    /// own words; the host would refuse a result that fails here.
    pub fn validate(&self) -> Result<(), telehook_outcome::Violations> {
        telehook_outcome::validate(&self.to_outcome())
    }

    /// The result in the host's own types, as the host reads it (and as `telehook run` prints
    /// it).
    pub fn to_outcome(&self) -> telehook_outcome::Outcome {
        use telehook_outcome as host;
        let event = self.event.as_ref().map(|event| host::TelephonyEvent {
            event: event.event.into(),
            direction: event.direction.map(Into::into),
            disposition: event.disposition.into(),
            src_phone: event.src_phone.clone(),
            src_phone_ext: event.src_phone_ext.clone(),
            dst_phone: event.dst_phone.clone(),
            dst_phone_ext: event.dst_phone_ext.clone(),
            call_id: event.call_id.clone(),
        });
        let call_record = self.call_record.as_ref().map(|record| host::CallRecord {
            direction: record.direction.map(Into::into),
            disposition: record.disposition.into(),
            src_phone: record.src_phone.clone(),
            src_phone_ext: record.src_phone_ext.clone(),
            dst_phone: record.dst_phone.clone(),
            dst_phone_ext: record.dst_phone_ext.clone(),
            duration: record.duration,
            call: record.call.clone(),
            call_id: record.call_id.clone(),
        });
        let response = self.response.as_ref().map(|response| host::HttpResponse {
            status: response.status,
            headers: response.headers.clone(),
            body: response.body.clone(),
        });
        host::Outcome {
            event,
            call_record,
            response,
            delivery_id: self.delivery_id.clone(),
        }
    }

    /// Names the provider's id of this delivery, the same on each of its retries (Twilio's
    /// `i-twilio-idempotency-token` header, Telnyx's event id), so that the host stores a
    /// retried delivery once.
    pub fn with_delivery_id(mut self, id: impl Into<String>) -> Self {
        self.delivery_id = non_empty(id.into());
        self
    }
}

impl ParseError {
    /// A refusal with the message the provider and the admin will read; the provider gets
    /// `400`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: None,
            setting: None,
        }
    }

    /// A refusal because the integration setting `setting` is missing or wrong: the admin's to
    /// fix, so the host asks the provider to retry (`503`) instead of blaming its request, and
    /// the integration's health names the setting.
    pub fn misconfigured(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: Some(setting.into()),
            ..Self::new(message)
        }
    }

    /// A refusal of a request whose signature or token is wrong: the provider gets `401`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(message).with_status(401)
    }

    /// A refusal of a request that is genuine in form but not allowed (a stale timestamp, a
    /// replay): the provider gets `403`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(message).with_status(403)
    }

    /// The same refusal answered with `status` (400 to 499; the host refuses any other as an
    /// invalid result).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

impl From<String> for ParseError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for ParseError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<EventType> for telehook_outcome::EventType {
    fn from(event: EventType) -> Self {
        match event {
            EventType::NotifyStart => Self::NotifyStart,
            EventType::NotifyAnswer => Self::NotifyAnswer,
            EventType::NotifyEnd => Self::NotifyEnd,
        }
    }
}

impl From<Direction> for telehook_outcome::Direction {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::In => Self::In,
            Direction::Out => Self::Out,
            Direction::Internal => Self::Internal,
        }
    }
}

impl From<Disposition> for telehook_outcome::Disposition {
    fn from(disposition: Disposition) -> Self {
        match disposition {
            Disposition::Unknown => Self::Unknown,
            Disposition::Answered => Self::Answered,
            Disposition::Busy => Self::Busy,
            Disposition::Cancel => Self::Cancel,
            Disposition::NoAnswer => Self::NoAnswer,
        }
    }
}

/// Escapes text for an XML element or attribute (`&`, `<`, `>`, `"`, `'`).
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_builder_sets_defaults_and_drops_empty_extensions() {
        let event = TelephonyEvent::new(EventType::NotifyStart, Direction::In, "+7916", "101")
            .with_call_id("c-1")
            .with_src_phone_ext("");
        assert_eq!(event.disposition, Disposition::Unknown);
        assert_eq!(event.call_id.as_deref(), Some("c-1"));
        assert_eq!(event.src_phone_ext, None);
    }

    #[test]
    fn the_operators_extension_goes_where_the_direction_wants_it() {
        let incoming = TelephonyEvent::new(EventType::NotifyStart, Direction::In, "+7916", "101")
            .with_operator_ext("101");
        assert_eq!(
            (
                incoming.src_phone_ext.as_deref(),
                incoming.dst_phone_ext.as_deref()
            ),
            (Some("101"), None)
        );
        let outgoing = CallRecord::new(Direction::Out, Disposition::Busy, "101", "+7916", 0, "r")
            .with_operator_ext("101");
        assert_eq!(
            (
                outgoing.src_phone_ext.as_deref(),
                outgoing.dst_phone_ext.as_deref()
            ),
            (None, Some("101"))
        );
        let internal =
            TelephonyEvent::new(EventType::NotifyStart, Direction::Internal, "101", "102")
                .with_operator_ext("101");
        assert!(ParseResult::with_event(internal).validate().is_ok());
    }

    #[test]
    fn record_of_an_end_event_keeps_its_parties_and_outcome() {
        let event = TelephonyEvent::new(EventType::NotifyEnd, Direction::Out, "101", "+7916")
            .with_call_id("c-2")
            .with_disposition(Disposition::Busy)
            .with_dst_phone_ext("101");
        let record = CallRecord::of_event(&event, 42, "rec-9");
        assert_eq!(record.direction, Some(Direction::Out));
        assert_eq!(record.disposition, Disposition::Busy);
        assert_eq!(
            (record.src_phone.as_deref(), record.dst_phone.as_deref()),
            (Some("101"), Some("+7916"))
        );
        assert_eq!(record.dst_phone_ext.as_deref(), Some("101"));
        assert_eq!(record.call_id.as_deref(), Some("c-2"));
        assert_eq!((record.duration, record.call.as_str()), (42, "rec-9"));
    }

    #[test]
    fn an_event_of_a_call_names_the_call_and_nothing_else() {
        let event = TelephonyEvent::of_call(EventType::NotifyAnswer, "c-3");
        assert_eq!(event.call_id.as_deref(), Some("c-3"));
        assert_eq!(
            (event.direction, event.src_phone, event.dst_phone),
            (None, None, None)
        );
    }

    #[test]
    fn refusals_name_their_status() {
        assert_eq!(ParseError::new("unreadable").status, None);
        assert_eq!(ParseError::unauthorized("bad signature").status, Some(401));
        assert_eq!(ParseError::forbidden("stale").status, Some(403));
        let missing = ParseError::misconfigured("api_secret", "not set");
        assert_eq!(
            (missing.setting.as_deref(), missing.status),
            (Some("api_secret"), None)
        );
        let result = ParseResult::empty().with_delivery_id("");
        assert_eq!(result.delivery_id, None);
    }

    #[test]
    fn validate_applies_the_hosts_rules() {
        let event = TelephonyEvent::new(EventType::NotifyStart, Direction::Out, "101", "+7916")
            .with_src_phone_ext("101");
        let violations = ParseResult::with_event(event).validate().unwrap_err();
        assert_eq!(violations.0.len(), 1);
        assert_eq!(violations.0[0].field, "event.src_phone_ext");
        let fine = TelephonyEvent::new(EventType::NotifyStart, Direction::In, "+7916", "101");
        assert!(ParseResult::with_event(fine).validate().is_ok());
        let bad_header = Response::text(200, "ok").with_header("content-length", "2");
        assert!(ParseResult::with_response(bad_header).validate().is_err());
    }

    #[test]
    fn xml_responses_escape_their_text() {
        let say = format!(
            "<Response><Say>{}</Say></Response>",
            xml_escape("Tom & \"Jerry\" <3")
        );
        assert_eq!(
            say,
            "<Response><Say>Tom &amp; &quot;Jerry&quot; &lt;3</Say></Response>"
        );
        let response = Response::xml(200, say);
        assert_eq!(response.headers[0].1, "application/xml; charset=utf-8");
    }

    #[test]
    fn json_response_carries_content_type() {
        let response = Response::json(200, &serde_json::json!({"success": true}));
        assert_eq!(response.body, br#"{"success":true}"#);
        assert_eq!(
            response.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
    }
}
