//! Who gets the call card: the platform users bound to the extensions of the operators in a
//! call, resolved when the webhook is accepted and stored with its event, so that the platform
//! reading the log knows whom to notify without a second lookup that could see other bindings.
//!
//! Which numbers are operators' depends on the direction, as the contract defines it (see
//! [`Parties::operator_numbers`](telehook::outcome::Parties::operator_numbers)).

use std::collections::HashMap;

use crate::storage::Binding;
use telehook::outcome::Outcome;

/// An integration's extension-to-user bindings, ready to resolve calls.
#[derive(Debug, Default)]
pub struct Recipients {
    user_by_extension: HashMap<String, String>,
}

impl Recipients {
    /// Indexes `bindings` by extension.
    pub fn new(bindings: &[Binding]) -> Self {
        Self {
            user_by_extension: bindings
                .iter()
                .map(|binding| (binding.extension.clone(), binding.user_id.clone()))
                .collect(),
        }
    }

    /// The users to notify of what a parser produced, each once, in the order their operators
    /// are named in [`Parties::operator_numbers`](telehook::outcome::Parties::operator_numbers). Taken from the event, or the call record
    /// when there is no event.
    pub fn of(&self, outcome: &Outcome) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        let numbers = outcome
            .parties()
            .map(|parties| parties.operator_numbers())
            .unwrap_or_default();
        for number in numbers {
            if let Some(user) = self.user_by_extension.get(number)
                && !users.contains(user)
            {
                users.push(user.clone());
            }
        }
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telehook::outcome::{CallRecord, Direction, Disposition, EventType, TelephonyEvent};

    fn recipients() -> Recipients {
        Recipients::new(&[("101", "anna"), ("102", "boris"), ("103", "anna")].map(
            |(extension, user)| Binding {
                extension: extension.into(),
                user_id: user.into(),
            },
        ))
    }

    fn event(
        direction: Direction,
        src: (&str, Option<&str>),
        dst: (&str, Option<&str>),
    ) -> Outcome {
        Outcome {
            event: Some(TelephonyEvent {
                event: EventType::NotifyStart,
                direction: Some(direction),
                disposition: Disposition::Unknown,
                src_phone: Some(src.0.into()),
                src_phone_ext: src.1.map(Into::into),
                dst_phone: Some(dst.0.into()),
                dst_phone_ext: dst.1.map(Into::into),
                call_id: None,
            }),
            call_record: None,
            response: None,
            delivery_id: None,
        }
    }

    #[test]
    fn each_direction_notifies_its_operators() {
        let recipients = recipients();
        let incoming = event(Direction::In, ("+79161234567", Some("102")), ("101", None));
        assert_eq!(recipients.of(&incoming), ["boris", "anna"]);
        let outgoing = event(Direction::Out, ("101", None), ("+79161234567", Some("102")));
        assert_eq!(recipients.of(&outgoing), ["anna", "boris"]);
        let internal = event(Direction::Internal, ("102", None), ("101", None));
        assert_eq!(recipients.of(&internal), ["boris", "anna"]);
    }

    #[test]
    fn the_older_convention_of_the_extension_in_dst_phone_still_matches() {
        let outgoing = event(Direction::Out, ("+74951234567", None), ("102", None));
        assert_eq!(recipients().of(&outgoing), ["boris"]);
    }

    #[test]
    fn a_user_bound_twice_is_notified_once_and_unbound_numbers_nobody() {
        let recipients = recipients();
        let internal = event(Direction::Internal, ("101", None), ("103", None));
        assert_eq!(recipients.of(&internal), ["anna"]);
        let nobody = event(Direction::In, ("+79161234567", None), ("999", None));
        assert!(recipients.of(&nobody).is_empty());
        assert!(recipients.of(&Outcome::default()).is_empty());
    }

    #[test]
    fn a_call_record_alone_is_resolved_too() {
        let outcome = Outcome {
            call_record: Some(CallRecord {
                call_id: None,
                direction: Some(Direction::In),
                disposition: Disposition::Answered,
                src_phone: Some("+79161234567".into()),
                src_phone_ext: None,
                dst_phone: Some("102".into()),
                dst_phone_ext: None,
                duration: 42,
                call: "https://example.com/rec.mp3".into(),
            }),
            ..Outcome::default()
        };
        assert_eq!(recipients().of(&outcome), ["boris"]);
    }
}
