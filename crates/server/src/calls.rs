//! Calls: each integration's events correlated into the calls the platform shows.
//!
//! A provider sends several webhooks for one call (it rings, it is answered, it ends, its
//! recording is ready), and the platform shows one call card and logs one call. The event log's
//! writer ties every event it stores to a call of ours, in the same transaction as the event,
//! so a call survives restarts exactly as far as the events that made it.
//!
//! # Which call an event joins
//!
//! - **By call id.** An event that names the provider's call id joins the latest call of its
//!   integration with that id; the first one begins the call.
//! - **By its parties,** without a call id, as the platform matches them (`src_phone`,
//!   `src_phone_ext`, `dst_phone`, `dst_phone_ext`, `direction`): calls without a call id of
//!   the same direction, `src_phone` and `dst_phone` whose last event was within the call window
//!   ([`CallRules::window`]); an extension counts only when both the call and the event name
//!   one, so the older convention (and the older three-field matching) finds the same calls.
//!   Among those, the event joins the most recently begun *open* call that has not had an
//!   event of its kind, else the most recently begun ended one that has not (an answer that
//!   arrives after its end; a record looks at the ended calls first); an answer, an end or a
//!   record that finds neither joins the most recent call of the parties (a repeat, which
//!   changes nothing), and only a start, or an event with no call of its parties in the
//!   window, begins a call (a start received before an end that overtook it on the way to the
//!   log joins the call that end began). Two calls between the
//!   same numbers at once cannot be told apart without a call id: the later one takes the
//!   next answer and end.
//! - **An event that names only its call** (a call id, without the direction or phones) is
//!   completed from its call. When the call is not known yet, it is held, durably, until the
//!   call's first full event arrives and then stored after it; one still held after
//!   [`CallRules::unresolved_after`] is stored as it is, marked unresolved, and counted.
//!
//! # What an event does to its call
//!
//! A call is `ringing` from its start, `answered` from its answer, and `ended` from its end.
//! The state only moves forward: an end that arrives before the answer ends the call and the
//! late answer only records when it was answered; a repeated event changes nothing. The end
//! sets the final disposition (an `unknown` one is taken from the call's record, else becomes
//! `answered` for a call that was answered); a call record is attached whenever it arrives,
//! before or after the end (its disposition fills an `unknown` one of an ended call), and a
//! call known only from its record is ended. A call that hears nothing for
//! [`CallRules::timeout`] is ended by the host, marked `timeout`; a provider's end that comes
//! later still replaces that when it names the call id (by its parties, the call is out of the
//! window by then, and the end begins a call of its own).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use telehook::outcome::{CallRecord, Direction, Disposition, EventType, Parties, TelephonyEvent};

/// How long a call without a call id stays findable by its parties, by default.
pub const DEFAULT_CALL_WINDOW: Duration = Duration::from_secs(60 * 60);
/// How long a call may hear nothing before the host ends it, by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
/// How long an event that names an unknown call is held for it, by default.
pub const DEFAULT_UNRESOLVED_AFTER: Duration = Duration::from_secs(10 * 60);

/// The windows and timeouts of correlation, set by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRules {
    /// How long after its last event a call can still be found by its parties.
    pub window: Duration,
    /// How long a call may hear nothing before the host ends it, marked `timeout`.
    pub timeout: Duration,
    /// How long an event that names an unknown call is held before it is stored unresolved.
    pub unresolved_after: Duration,
}

impl Default for CallRules {
    fn default() -> Self {
        Self {
            window: DEFAULT_CALL_WINDOW,
            timeout: DEFAULT_CALL_TIMEOUT,
            unresolved_after: DEFAULT_UNRESOLVED_AFTER,
        }
    }
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Started: ringing, or dialling out.
    Ringing,
    /// Answered and not ended.
    Answered,
    /// Over.
    Ended,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// The provider's end event or call record.
    Provider,
    /// The host, after [`CallRules::timeout`] without news.
    Timeout,
}

/// What an event is to its call: its kind decides which call it joins and what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A telephony event of this type.
    Event(EventType),
    /// A call record (an outcome with no event).
    Record,
}

/// Who called whom in a call, as its first full event said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallParties {
    /// Who called whom.
    pub direction: Direction,
    /// As in [`TelephonyEvent::src_phone`].
    pub src_phone: String,
    /// As in [`TelephonyEvent::src_phone_ext`].
    pub src_phone_ext: Option<String>,
    /// As in [`TelephonyEvent::dst_phone`].
    pub dst_phone: String,
    /// As in [`TelephonyEvent::dst_phone_ext`].
    pub dst_phone_ext: Option<String>,
}

impl CallParties {
    /// The parties an event names in full; `None` for one that names only its call.
    pub fn of(parties: &Parties<'_>) -> Option<Self> {
        Some(Self {
            direction: parties.direction?,
            src_phone: parties.src_phone?.to_owned(),
            src_phone_ext: parties.src_phone_ext.map(str::to_owned),
            dst_phone: parties.dst_phone?.to_owned(),
            dst_phone_ext: parties.dst_phone_ext.map(str::to_owned),
        })
    }
}

/// Fills what an event that names only its call left out from its call's parties. A field
/// the event gave is kept; the extensions are taken only with the direction they belong to.
pub trait Complete {
    /// Completes `self` from `parties`.
    fn complete(&mut self, parties: &CallParties);
}

macro_rules! complete_from_parties {
    ($type:ty) => {
        impl Complete for $type {
            fn complete(&mut self, parties: &CallParties) {
                if self.direction.is_none() {
                    self.direction = Some(parties.direction);
                    self.src_phone_ext = self
                        .src_phone_ext
                        .take()
                        .or_else(|| parties.src_phone_ext.clone());
                    self.dst_phone_ext = self
                        .dst_phone_ext
                        .take()
                        .or_else(|| parties.dst_phone_ext.clone());
                }
                self.src_phone
                    .get_or_insert_with(|| parties.src_phone.clone());
                self.dst_phone
                    .get_or_insert_with(|| parties.dst_phone.clone());
            }
        }
    };
}

complete_from_parties!(TelephonyEvent);
complete_from_parties!(CallRecord);

/// One call, as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// Our id of the call: unique across integrations and nodes, ordered by creation.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The integration whose events made it.
    pub integration_id: String,
    /// The provider's call id, when its events carry one.
    pub provider_call_id: Option<String>,
    /// Where the call is.
    pub state: CallState,
    /// How it ended; `unknown` until it has.
    pub disposition: Disposition,
    /// Who ended it, once it has ended.
    pub closed_by: Option<ClosedBy>,
    /// Who called whom.
    #[serde(flatten)]
    pub parties: CallParties,
    /// When its start was received (RFC 3339), once it has been.
    pub started_at: Option<String>,
    /// When its answer was received.
    pub answered_at: Option<String>,
    /// When its end was received, or when the host ended it.
    pub ended_at: Option<String>,
    /// When its first event was received: the call's time in listings.
    pub first_event_at: String,
    /// When its last event was received.
    pub last_event_at: String,
    /// The platform users bound to its operators, over all its events.
    pub users: Vec<String>,
    /// Its call record, once one arrived.
    pub record: Option<CallRecord>,
    /// The positions of its first and last events in the event log (0 before it has one):
    /// where to read them back.
    pub first_seq: i64,
    /// See [`Call::first_seq`].
    pub last_seq: i64,
}

impl Call {
    /// A call begun by an event with these parties, before the event is applied.
    pub fn begin(
        id: String,
        tenant_id: &str,
        integration_id: &str,
        provider_call_id: Option<&str>,
        parties: CallParties,
        at: &str,
    ) -> Self {
        Self {
            id,
            tenant_id: tenant_id.to_owned(),
            integration_id: integration_id.to_owned(),
            provider_call_id: provider_call_id.map(str::to_owned),
            state: CallState::Ringing,
            disposition: Disposition::Unknown,
            closed_by: None,
            parties,
            started_at: None,
            answered_at: None,
            ended_at: None,
            first_event_at: at.to_owned(),
            last_event_at: at.to_owned(),
            users: Vec::new(),
            record: None,
            first_seq: 0,
            last_seq: 0,
        }
    }

    /// Whether an event of `kind` reached this call already.
    pub fn has_had(&self, kind: Kind) -> bool {
        match kind {
            Kind::Event(EventType::NotifyStart) => self.started_at.is_some(),
            Kind::Event(EventType::NotifyAnswer) => self.answered_at.is_some(),
            Kind::Event(EventType::NotifyEnd) => self.closed_by == Some(ClosedBy::Provider),
            Kind::Record => self.record.is_some(),
        }
    }

    /// Applies one event (received at `at`, notifying `users`): returns whether the call's
    /// state changed. The state only moves forward; an event of a kind the call has had
    /// already changes no state or time but the last event's, though its users are added and
    /// a record it carries is attached if the call had none.
    pub fn apply(
        &mut self,
        kind: Kind,
        disposition: Disposition,
        record: Option<&CallRecord>,
        users: &[String],
        at: &str,
    ) -> bool {
        if at > self.last_event_at.as_str() {
            self.last_event_at = at.to_owned();
        }
        if at < self.first_event_at.as_str() {
            self.first_event_at = at.to_owned();
        }
        for user in users {
            if !self.users.contains(user) {
                self.users.push(user.clone());
            }
        }
        let before = self.state;
        let had = self.has_had(kind);
        if let Some(record) = record
            && self.record.is_none()
        {
            self.record = Some(record.clone());
        }
        if !had {
            match kind {
                Kind::Event(EventType::NotifyStart) => self.started_at = Some(at.to_owned()),
                Kind::Event(EventType::NotifyAnswer) => {
                    self.answered_at = Some(at.to_owned());
                    self.state = self.state.max(CallState::Answered);
                    // An answer that arrives after an end that did not say how it ended.
                    if self.state == CallState::Ended && self.disposition == Disposition::Unknown {
                        self.disposition = Disposition::Answered;
                    }
                }
                Kind::Event(EventType::NotifyEnd) => self.end(disposition, at),
                Kind::Record => {
                    if self.state != CallState::Ended {
                        // A record describes a finished call; only a call known from nothing
                        // else is ended by it: otherwise the end event does that.
                        if self.started_at.is_none() && self.answered_at.is_none() {
                            self.end(disposition, at);
                        }
                    } else if self.disposition == Disposition::Unknown {
                        self.disposition = disposition;
                    }
                }
            }
        }
        self.state != before
    }

    fn end(&mut self, disposition: Disposition, at: &str) {
        self.state = CallState::Ended;
        self.closed_by = Some(ClosedBy::Provider);
        self.ended_at = Some(at.to_owned());
        // An end that does not say how the call ended: its record may, else its answer does.
        let recorded = self
            .record
            .as_ref()
            .map_or(Disposition::Unknown, |record| record.disposition);
        self.disposition = match (disposition, recorded) {
            (Disposition::Unknown, Disposition::Unknown) if self.answered_at.is_some() => {
                Disposition::Answered
            }
            (Disposition::Unknown, recorded) => recorded,
            (known, _) => known,
        };
    }
}

impl Call {
    /// Ends the call for having heard nothing for the call timeout, at `at`; a provider's end
    /// that comes later still replaces this (see [`Call::has_had`]).
    pub fn time_out(&mut self, at: &str) {
        self.state = CallState::Ended;
        self.closed_by = Some(ClosedBy::Timeout);
        self.ended_at = Some(at.to_owned());
    }

    /// Records that one of its events was stored at `seq` of the log.
    pub fn logged(&mut self, seq: i64) {
        if self.first_seq == 0 || seq < self.first_seq {
            self.first_seq = seq;
        }
        self.last_seq = self.last_seq.max(seq);
    }
}

/// The call an event of `kind`, received at `at`, joins among `candidates`, the calls of its
/// parties within the window, most recently begun first; `None` when it begins a call of its
/// own. The rules are the module's: an open call that has not had an event of the kind, else
/// an ended one that has not (a record looks at the ended calls first: a record usually comes
/// after its end, and the same client may be calling again by then; a start joins an ended
/// call only when that call began after it, from an end that outran it), else, for anything
/// but a start, the most recent (a repeat).
pub fn choose<'a>(candidates: &'a [Call], kind: Kind, at: &str) -> Option<&'a Call> {
    let start = kind == Kind::Event(EventType::NotifyStart);
    let fresh = |call: &&Call| !call.has_had(kind);
    let open = |call: &&Call| call.state != CallState::Ended;
    let ended = |call: &&Call| {
        call.state == CallState::Ended && (!start || call.first_event_at.as_str() >= at)
    };
    let first = |test: &dyn Fn(&&Call) -> bool| candidates.iter().filter(fresh).find(test);
    let joined = if kind == Kind::Record {
        first(&ended).or_else(|| first(&open))
    } else {
        first(&open).or_else(|| first(&ended))
    };
    joined.or_else(|| candidates.first().filter(|_| !start))
}

/// A new id for a call: a UUIDv7, unique without coordination and ordered by time, so that
/// nodes that share a database never collide and listings page in creation order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-12-01T10:00:00.000Z";
    const T1: &str = "2026-12-01T10:00:05.000Z";
    const T2: &str = "2026-12-01T10:01:00.000Z";

    fn call() -> Call {
        Call::begin(
            new_id(),
            "acme",
            "pbx",
            Some("c-1"),
            CallParties {
                direction: Direction::In,
                src_phone: "+79161234567".into(),
                src_phone_ext: None,
                dst_phone: "101".into(),
                dst_phone_ext: None,
            },
            T0,
        )
    }

    /// A recording callback that names only call `c-1`.
    fn recording(disposition: Disposition) -> CallRecord {
        CallRecord {
            call_id: Some("c-1".into()),
            direction: None,
            disposition,
            src_phone: None,
            src_phone_ext: None,
            dst_phone: None,
            dst_phone_ext: None,
            duration: 42,
            call: "https://records.example/c-1.mp3".into(),
        }
    }

    fn event(call: &mut Call, event: EventType, disposition: Disposition, at: &str) -> bool {
        call.apply(Kind::Event(event), disposition, None, &[], at)
    }

    #[test]
    fn a_call_rings_is_answered_and_ends() {
        let mut call = call();
        assert!(!event(
            &mut call,
            EventType::NotifyStart,
            Disposition::Unknown,
            T0
        ));
        assert_eq!(call.state, CallState::Ringing);
        assert!(event(
            &mut call,
            EventType::NotifyAnswer,
            Disposition::Unknown,
            T1
        ));
        assert!(event(
            &mut call,
            EventType::NotifyEnd,
            Disposition::Unknown,
            T2
        ));
        assert_eq!(
            (call.state, call.disposition, call.closed_by),
            (
                CallState::Ended,
                Disposition::Answered,
                Some(ClosedBy::Provider)
            )
        );
        assert_eq!(call.answered_at.as_deref(), Some(T1));
        assert_eq!(call.last_event_at, T2);
    }

    #[test]
    fn an_end_before_the_answer_and_repeats_change_the_state_once() {
        let mut call = call();
        event(&mut call, EventType::NotifyStart, Disposition::Unknown, T0);
        assert!(event(
            &mut call,
            EventType::NotifyEnd,
            Disposition::Answered,
            T2
        ));
        assert!(!event(
            &mut call,
            EventType::NotifyAnswer,
            Disposition::Unknown,
            T1
        ));
        assert!(!event(
            &mut call,
            EventType::NotifyEnd,
            Disposition::Busy,
            T2
        ));
        assert_eq!(
            (call.state, call.disposition),
            (CallState::Ended, Disposition::Answered)
        );
        assert_eq!(call.answered_at.as_deref(), Some(T1));
        assert_eq!(
            call.last_event_at, T2,
            "a late event does not move time back"
        );
    }

    #[test]
    fn a_record_is_attached_before_or_after_the_end() {
        let record = recording(Disposition::Answered);
        let mut before = call();
        event(
            &mut before,
            EventType::NotifyStart,
            Disposition::Unknown,
            T0,
        );
        assert!(!before.apply(Kind::Record, record.disposition, Some(&record), &[], T1));
        assert_eq!(before.state, CallState::Ringing, "the end event ends it");
        assert!(event(
            &mut before,
            EventType::NotifyEnd,
            Disposition::Answered,
            T2
        ));
        assert_eq!(before.record.as_ref(), Some(&record));

        let mut after = call();
        event(&mut after, EventType::NotifyStart, Disposition::Unknown, T0);
        event(&mut after, EventType::NotifyEnd, Disposition::Unknown, T1);
        after.apply(Kind::Record, record.disposition, Some(&record), &[], T2);
        assert_eq!(
            (after.state, after.disposition, after.record.as_ref()),
            (CallState::Ended, Disposition::Answered, Some(&record)),
            "the record tells how the call ended when its end did not"
        );

        let mut only = call();
        assert!(only.apply(Kind::Record, record.disposition, Some(&record), &[], T2));
        assert_eq!(
            (only.state, only.disposition),
            (CallState::Ended, Disposition::Answered)
        );
    }

    #[test]
    fn without_a_call_id_the_latest_open_call_of_the_parties_takes_the_event() {
        let start = Kind::Event(EventType::NotifyStart);
        let answer = Kind::Event(EventType::NotifyAnswer);
        let end = Kind::Event(EventType::NotifyEnd);
        let ringing = |id: &str| {
            let mut call = call();
            call.id = id.into();
            call.apply(start, Disposition::Unknown, None, &[], T0);
            call
        };
        // Two calls at once: the later begun takes the answer and the end.
        let (first, second) = (ringing("first"), ringing("second"));
        let both = [second.clone(), first.clone()];
        assert_eq!(
            choose(&both, answer, T2).map(|c| c.id.as_str()),
            Some("second")
        );
        assert_eq!(choose(&both, start, T2), None, "a start begins a call");

        let mut ended = second;
        ended.apply(end, Disposition::NoAnswer, None, &[], T1);
        let after_end = [ended.clone(), first];
        assert_eq!(
            choose(&after_end, end, T2).map(|c| c.id.as_str()),
            Some("first")
        );
        // An answer after its call's end, with no open call left to take it.
        assert_eq!(
            choose(&[ended.clone()], answer, T2).map(|c| c.id.as_str()),
            Some("second")
        );
        assert_eq!(choose(&[ended.clone()], start, T2), None);
        // A repeated end joins its call and begins none.
        assert_eq!(
            choose(&[ended], end, T2).map(|c| c.id.as_str()),
            Some("second")
        );
        assert_eq!(choose(&[], end, T2), None);
    }

    #[test]
    fn a_start_after_its_end_and_a_record_after_a_callback_find_their_call() {
        let start = Kind::Event(EventType::NotifyStart);
        let mut outran = call();
        outran.first_event_at = T1.into();
        outran.apply(
            Kind::Event(EventType::NotifyEnd),
            Disposition::Busy,
            None,
            &[],
            T1,
        );
        // The start, received before the end it lost the race to, joins that end's call...
        assert_eq!(
            choose(&[outran.clone()], start, T0).map(|c| &c.id),
            Some(&outran.id)
        );
        // ...but a start after a call that ended is a new call.
        assert_eq!(choose(&[outran.clone()], start, T2), None);

        let mut callback = call();
        callback.apply(start, Disposition::Unknown, None, &[], T2);
        let both = [callback, outran.clone()];
        assert_eq!(
            choose(&both, Kind::Record, T2).map(|c| &c.id),
            Some(&outran.id),
            "the record belongs to the call that ended"
        );
    }

    #[test]
    fn an_end_that_does_not_say_how_takes_it_from_the_record_or_the_answer() {
        let record = recording(Disposition::Busy);
        let mut recorded = call();
        event(
            &mut recorded,
            EventType::NotifyStart,
            Disposition::Unknown,
            T0,
        );
        recorded.apply(
            Kind::Event(EventType::NotifyEnd),
            Disposition::Unknown,
            Some(&record),
            &[],
            T1,
        );
        assert_eq!(recorded.disposition, Disposition::Busy);

        let mut late_answer = call();
        event(
            &mut late_answer,
            EventType::NotifyEnd,
            Disposition::Unknown,
            T1,
        );
        event(
            &mut late_answer,
            EventType::NotifyAnswer,
            Disposition::Unknown,
            T0,
        );
        assert_eq!(late_answer.disposition, Disposition::Answered);
    }

    #[test]
    fn users_gather_over_the_calls_events() {
        let mut call = call();
        call.apply(
            Kind::Event(EventType::NotifyStart),
            Disposition::Unknown,
            None,
            &["anna".into()],
            T0,
        );
        call.apply(
            Kind::Event(EventType::NotifyAnswer),
            Disposition::Unknown,
            None,
            &["boris".into(), "anna".into()],
            T1,
        );
        assert_eq!(call.users, ["anna", "boris"]);
    }

    #[test]
    fn a_partial_event_is_completed_from_its_call() {
        let mut end = TelephonyEvent {
            event: EventType::NotifyEnd,
            direction: None,
            disposition: Disposition::Answered,
            src_phone: None,
            src_phone_ext: None,
            dst_phone: None,
            dst_phone_ext: None,
            call_id: Some("c-1".into()),
        };
        let mut parties = call().parties;
        parties.src_phone_ext = Some("102".into());
        end.complete(&parties);
        assert_eq!(CallParties::of(&end.parties()), Some(parties));
    }
}
