//! What a parser made of a request, in the platform's terms.
//!
//! These are the host's own types, not the ones generated from the WIT: the platform and the
//! dispatch code depend on them, so they stay stable while the contract grows new versions.
//! They serialise to the snake_case JSON that `telehook run` prints.

use serde::{Deserialize, Serialize};

/// The parse result: every part is optional, and an empty outcome is legal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// A telephony event for the platform to show and correlate.
    pub event: Option<TelephonyEvent>,
    /// A finished call with its recording, for the activity stream.
    pub call_record: Option<CallRecord>,
    /// What the provider gets back; `None` means the default `200` with an empty body.
    pub response: Option<HttpResponse>,
    /// The provider's id of this delivery, the same on each of its retries (contract 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// What happened in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// Ringing, or dialling out.
    NotifyStart,
    /// Answered.
    NotifyAnswer,
    /// Finished, answered or not.
    NotifyEnd,
}

/// Who called whom; it decides the meaning of the phone fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A client calls an operator.
    In,
    /// An operator calls a client.
    Out,
    /// An operator calls another operator.
    Internal,
}

/// How a call ended; `Unknown` while it is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Still in progress, or the provider did not say.
    Unknown,
    /// Answered.
    Answered,
    /// The called party was busy.
    Busy,
    /// Dropped before it was answered.
    Cancel,
    /// Not answered, or unreachable.
    NoAnswer,
}

/// The platform's normalised telephony event (`VoipWebhookRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelephonyEvent {
    /// What happened.
    pub event: EventType,
    /// Who called whom; absent, with the phones, only in an event that names only its call
    /// (see [`Parties::names_only_its_call`]).
    pub direction: Option<Direction>,
    /// How the call ended.
    pub disposition: Disposition,
    /// The calling number (the client's for `In`, the operator's otherwise).
    pub src_phone: Option<String>,
    /// The receiving employee's extension, `In` calls only.
    pub src_phone_ext: Option<String>,
    /// The called number (the operator's for `In` and `Internal`, the client's for `Out`).
    pub dst_phone: Option<String>,
    /// The calling employee's extension, `Out` calls only.
    pub dst_phone_ext: Option<String>,
    /// The provider's call id, which ties the events of one call together.
    pub call_id: Option<String>,
}

/// A finished call with its recording (`VoipCallRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The provider's call id.
    pub call_id: Option<String>,
    /// As in [`TelephonyEvent::direction`].
    pub direction: Option<Direction>,
    /// How the call ended.
    pub disposition: Disposition,
    /// As in [`TelephonyEvent::src_phone`].
    pub src_phone: Option<String>,
    /// As in [`TelephonyEvent::src_phone_ext`].
    pub src_phone_ext: Option<String>,
    /// As in [`TelephonyEvent::dst_phone`].
    pub dst_phone: Option<String>,
    /// As in [`TelephonyEvent::dst_phone_ext`].
    pub dst_phone_ext: Option<String>,
    /// The call's length in seconds.
    pub duration: u32,
    /// Opaque data the platform hands back unchanged to get a recording link.
    pub call: String,
}

/// Who called whom, as an event and a call record both say it: the fields they share, read
/// by the same rules wherever either is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties<'a> {
    /// Who called whom; `None` in an event that names only its call.
    pub direction: Option<Direction>,
    /// As in [`TelephonyEvent::src_phone`].
    pub src_phone: Option<&'a str>,
    /// As in [`TelephonyEvent::src_phone_ext`].
    pub src_phone_ext: Option<&'a str>,
    /// As in [`TelephonyEvent::dst_phone`].
    pub dst_phone: Option<&'a str>,
    /// As in [`TelephonyEvent::dst_phone_ext`].
    pub dst_phone_ext: Option<&'a str>,
    /// As in [`TelephonyEvent::call_id`].
    pub call_id: Option<&'a str>,
}

impl<'a> Parties<'a> {
    /// Whether the direction or a phone is missing: such an event names only its call (which
    /// validation allows only with a call id) and is completed from the call's earlier events.
    pub fn names_only_its_call(&self) -> bool {
        self.direction.is_none() || self.src_phone.is_none() || self.dst_phone.is_none()
    }

    /// The numbers that are operators' (internal numbers and extensions), as the contract
    /// places them: for `in`, the receiving employee's `src_phone_ext` and the operator's
    /// `dst_phone`; for `out`, the operator's `src_phone` and the calling employee's
    /// `dst_phone_ext`; for `internal`, both `src_phone` and `dst_phone`. Older parsers (and
    /// the platform's own older example) put the operator's extension in `dst_phone` whatever
    /// the direction, so `dst_phone` is always among them: a client's external number in it
    /// matches no extension. None without a direction: who is the operator is not known.
    pub fn operator_numbers(&self) -> Vec<&'a str> {
        match self.direction {
            Some(Direction::In) => vec![self.src_phone_ext, self.dst_phone],
            Some(Direction::Out) => vec![self.src_phone, self.dst_phone_ext, self.dst_phone],
            Some(Direction::Internal) => vec![self.src_phone, self.dst_phone],
            None => Vec::new(),
        }
        .into_iter()
        .flatten()
        .collect()
    }
}

impl TelephonyEvent {
    /// Who called whom.
    pub fn parties(&self) -> Parties<'_> {
        Parties {
            direction: self.direction,
            src_phone: self.src_phone.as_deref(),
            src_phone_ext: self.src_phone_ext.as_deref(),
            dst_phone: self.dst_phone.as_deref(),
            dst_phone_ext: self.dst_phone_ext.as_deref(),
            call_id: self.call_id.as_deref(),
        }
    }
}

impl CallRecord {
    /// Who called whom.
    pub fn parties(&self) -> Parties<'_> {
        Parties {
            direction: self.direction,
            src_phone: self.src_phone.as_deref(),
            src_phone_ext: self.src_phone_ext.as_deref(),
            dst_phone: self.dst_phone.as_deref(),
            dst_phone_ext: self.dst_phone_ext.as_deref(),
            call_id: self.call_id.as_deref(),
        }
    }
}

impl Outcome {
    /// Who called whom, from the event, or from the call record when there is no event.
    pub fn parties(&self) -> Option<Parties<'_>> {
        self.event
            .as_ref()
            .map(TelephonyEvent::parties)
            .or_else(|| self.call_record.as_ref().map(CallRecord::parties))
    }
}

/// The HTTP response a parser wants the provider to get, sent verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order; names may repeat.
    pub headers: Vec<(String, String)>,
    /// The body, printed as text when it is UTF-8 and as `body_base64` otherwise.
    #[serde(flatten, with = "body_json")]
    pub body: Vec<u8>,
}

/// Bodies are bytes; people and JSON tools read text. Print UTF-8 as `body`, anything else as
/// `body_base64`, and accept either form back.
mod body_json {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Body {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_base64: Option<String>,
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let body = match std::str::from_utf8(bytes) {
            Ok(text) => Body {
                body: Some(text.to_owned()),
                body_base64: None,
            },
            Err(_) => Body {
                body: None,
                body_base64: Some(STANDARD.encode(bytes)),
            },
        };
        body.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let body = Body::deserialize(deserializer)?;
        match (body.body, body.body_base64) {
            (Some(text), None) => Ok(text.into_bytes()),
            (None, Some(encoded)) => STANDARD.decode(encoded).map_err(serde::de::Error::custom),
            (None, None) => Ok(Vec::new()),
            (Some(_), Some(_)) => Err(serde::de::Error::custom(
                "give either `body` or `body_base64`, not both",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcome_serialises_to_snake_case_with_nulls() {
        let outcome = Outcome {
            event: Some(TelephonyEvent {
                event: EventType::NotifyStart,
                direction: Some(Direction::In),
                disposition: Disposition::NoAnswer,
                src_phone: Some("+79161234567".into()),
                src_phone_ext: None,
                dst_phone: Some("101".into()),
                dst_phone_ext: None,
                call_id: Some("abc".into()),
            }),
            call_record: None,
            response: Some(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"42".to_vec(),
            }),
            delivery_id: None,
        };
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({
                "event": {
                    "event": "notify_start", "direction": "in", "disposition": "no_answer",
                    "src_phone": "+79161234567", "src_phone_ext": null,
                    "dst_phone": "101", "dst_phone_ext": null, "call_id": "abc"
                },
                "call_record": null,
                "response": {"status": 200, "headers": [["content-type", "text/plain"]], "body": "42"}
            })
        );
    }

    #[test]
    fn binary_response_body_round_trips_as_base64() {
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body: vec![0xff, 0x00],
        };
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(
            value,
            json!({"status": 200, "headers": [], "body_base64": "/wA="})
        );
        assert_eq!(
            serde_json::from_value::<HttpResponse>(value).unwrap(),
            response
        );
    }
}
