//! The WIT contract (`wit/`), as Rust, in every version this host serves: the generated
//! bindings of each, and the conversions between their types and the host's own
//! ([`crate::outcome`], [`crate::WebhookRequest`]).
//!
//! This is the only module that sees generated types. A new contract version is a file here
//! ([`v0_1`] and [`v0_2`] are `telehook:parser@0.1.0` and `@0.2.0`, frozen in `wit/0.1.0/` and
//! `wit/0.2.0/`; [`v0_3`] is the current one, `wit/parser.wit`) and a member of [`Linked`];
//! the rest of the host works on its own types
//! and never learns which version a parser was built against. Components built against an
//! older version keep working unchanged, side by side, as the contract's versioning policy
//! promises.

use wasmtime::Store;
use wasmtime::component::{Func, InstancePre, Linker};

use crate::error::LoadError;
use crate::outcome::Outcome;
use crate::request::WebhookRequest;
use crate::sandbox::Sandbox;
use crate::validate::Violations;

pub(crate) mod v0_1;
pub(crate) mod v0_2;
pub(crate) mod v0_3;

/// Every contract version this host serves, oldest first.
pub(crate) const PACKAGES: [&str; 3] = [v0_1::PACKAGE, v0_2::PACKAGE, v0_3::PACKAGE];

/// The newest contract version, the one new parsers are built against.
pub(crate) const CURRENT: &str = v0_3::PACKAGE;

/// The name of the one function a parser exports, in every version.
pub(crate) const EXPORT: &str = "parse-webhook-request";

/// A component linked against the host and type-checked against one contract version.
#[derive(Clone)]
pub(crate) enum Linked {
    /// Built against `telehook:parser@0.1.0`.
    V0_1(v0_1::ParserPre<Sandbox>),
    /// Built against `telehook:parser@0.2.0`.
    V0_2(v0_2::ParserPre<Sandbox>),
    /// Built against `telehook:parser@0.3.0`.
    V0_3(v0_3::ParserPre<Sandbox>),
}

/// A parser's refusal of a request (its `parse-error`), in the host's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Why, in the parser's words.
    pub(crate) message: String,
    /// The status the provider gets.
    pub(crate) status: u16,
    /// The setting the parser found missing or wrong (0.3): the admin's to fix, so the
    /// provider is asked to retry instead of being told its request was wrong.
    pub(crate) setting: Option<String>,
}

/// The status of a refusal that names none, as 0.1.0 always did.
pub(crate) const DEFAULT_REFUSAL_STATUS: u16 = 400;

/// What one call of a parser's export gave, in the host's terms: a result to validate (or the
/// rules a result broke on its way into the host's types), or a refusal.
pub(crate) type Called = Result<Result<Outcome, Violations>, Refusal>;

impl Linked {
    /// Type-checks the export against each version, newest first: a record with other fields
    /// is another type, so exactly one fits a component built with the contract's bindings.
    pub(crate) fn new(instance_pre: InstancePre<Sandbox>) -> Result<Self, LoadError> {
        match v0_3::ParserPre::new(instance_pre.clone()) {
            Ok(pre) => Ok(Self::V0_3(pre)),
            Err(newest) => v0_2::ParserPre::new(instance_pre.clone())
                .map(Self::V0_2)
                .or_else(|_| v0_1::ParserPre::new(instance_pre).map(Self::V0_1))
                .map_err(|_| LoadError::ExportMismatch(format!("{newest:#}"))),
        }
    }

    /// The pre-linked component, for instantiating.
    pub(crate) fn instance_pre(&self) -> &InstancePre<Sandbox> {
        match self {
            Self::V0_1(pre) => pre.instance_pre(),
            Self::V0_2(pre) => pre.instance_pre(),
            Self::V0_3(pre) => pre.instance_pre(),
        }
    }

    /// The contract version the component was built against, e.g. `telehook:parser@0.1.0`.
    pub(crate) fn package(&self) -> &'static str {
        match self {
            Self::V0_1(_) => v0_1::PACKAGE,
            Self::V0_2(_) => v0_2::PACKAGE,
            Self::V0_3(_) => v0_3::PACKAGE,
        }
    }

    /// Calls the export `func` of an instance of this component with `request`.
    pub(crate) fn call(
        &self,
        store: &mut Store<Sandbox>,
        func: Func,
        request: &WebhookRequest,
    ) -> wasmtime::Result<Called> {
        match self {
            Self::V0_1(_) => v0_1::call(store, func, request),
            Self::V0_2(_) => v0_2::call(store, func, request),
            Self::V0_3(_) => v0_3::call(store, func, request),
        }
    }
}

/// Links the host's side of every version: each one's `host` interface (settings and log,
/// and since 0.3 redaction and Ed25519).
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)?;
    v0_3::add_to_linker(linker)
}

/// What is the same in every version, written once and expanded inside each version's module,
/// where `wit` and `host` name its generated types: the conversions of the enums, the response
/// and the log level (unchanged since 0.1.0), the host's side of the `host` interface (with
/// the functions a version added, given as the macro's items), the linking, and the call of
/// the export with the version's types.
macro_rules! same_in_every_version {
    ($($added_host_function:item)*) => {
        impl From<wit::Response> for crate::outcome::HttpResponse {
            fn from(response: wit::Response) -> Self {
                Self {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                }
            }
        }

        impl From<wit::EventType> for crate::outcome::EventType {
            fn from(event: wit::EventType) -> Self {
                match event {
                    wit::EventType::NotifyStart => Self::NotifyStart,
                    wit::EventType::NotifyAnswer => Self::NotifyAnswer,
                    wit::EventType::NotifyEnd => Self::NotifyEnd,
                }
            }
        }

        impl From<wit::Direction> for crate::outcome::Direction {
            fn from(direction: wit::Direction) -> Self {
                match direction {
                    wit::Direction::In => Self::In,
                    wit::Direction::Out => Self::Out,
                    wit::Direction::Internal => Self::Internal,
                }
            }
        }

        impl From<wit::Disposition> for crate::outcome::Disposition {
            fn from(disposition: wit::Disposition) -> Self {
                match disposition {
                    wit::Disposition::Unknown => Self::Unknown,
                    wit::Disposition::Answered => Self::Answered,
                    wit::Disposition::Busy => Self::Busy,
                    wit::Disposition::Cancel => Self::Cancel,
                    wit::Disposition::NoAnswer => Self::NoAnswer,
                }
            }
        }

        impl From<host::LogLevel> for crate::log::LogLevel {
            fn from(level: host::LogLevel) -> Self {
                match level {
                    host::LogLevel::Trace => Self::Trace,
                    host::LogLevel::Debug => Self::Debug,
                    host::LogLevel::Info => Self::Info,
                    host::LogLevel::Warn => Self::Warn,
                    host::LogLevel::Error => Self::Error,
                }
            }
        }

        impl host::Host for Sandbox {
            fn get_setting(&mut self, key: String) -> Option<String> {
                self.setting(&key)
            }

            fn log(&mut self, level: host::LogLevel, message: String) {
                self.log_line(level.into(), &message);
            }

            $($added_host_function)*
        }

        impl wit::Host for Sandbox {}

        /// Calls a parser's export with this version's types.
        fn call_export(
            store: &mut wasmtime::Store<Sandbox>,
            func: wasmtime::component::Func,
            request: &crate::request::WebhookRequest,
        ) -> wasmtime::Result<Result<wit::ParseResult, wit::ParseError>> {
            type ParseFunction<'a> = wasmtime::component::TypedFunc<
                (&'a wit::Request,),
                (Result<wit::ParseResult, wit::ParseError>,),
            >;
            // SAFETY: `ParserPre::new` type-checked this export against these types when the
            // parser was loaded (`Linked::new` made it a parser of this version only then),
            // and `func` is that export.
            #[allow(unsafe_code)]
            let parse = unsafe { ParseFunction::new_unchecked(func) };
            Ok(parse.call(store, (&wit::Request::from(request),))?.0)
        }

        /// Links this version's `host` interface.
        pub(crate) fn add_to_linker(
            linker: &mut wasmtime::component::Linker<Sandbox>,
        ) -> wasmtime::Result<()> {
            Parser::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |sandbox| sandbox)
        }
    };
}
pub(crate) use same_in_every_version;

/// What 0.2.0 and every later version share, expanded in each one's module like
/// [`same_in_every_version`]: the request (with its URL, route suffix and receive time),
/// results whose event or call record may name only their call, and the call of the export;
/// `|refusal| SETTING` says what setting a refusal of the version names.
macro_rules! same_since_0_2 {
    (|$refusal:ident| $setting:expr) => {
        /// Calls a parser's export with this version's types.
        pub(super) fn call(
            store: &mut wasmtime::Store<Sandbox>,
            func: wasmtime::component::Func,
            request: &crate::request::WebhookRequest,
        ) -> wasmtime::Result<super::Called> {
            Ok(match call_export(store, func, request)? {
                Ok(result) => Ok(Ok(outcome(result))),
                Err($refusal) => refused($refusal.message, $refusal.status, $setting),
            })
        }

        impl From<&crate::request::WebhookRequest> for wit::Request {
            fn from(request: &crate::request::WebhookRequest) -> Self {
                Self {
                    method: request.method.clone(),
                    path_with_query: request.path_with_query.clone(),
                    query: request.query.clone(),
                    headers: request.headers.clone(),
                    body: request.body.clone(),
                    url: request.url.clone(),
                    route_suffix: request.route_suffix.clone(),
                    received_at_ms: request.received_at_ms(),
                }
            }
        }

        /// The result in the host's types. An event or a call record that names only its call
        /// keeps its gaps: validation allows them only with a call id, and the server
        /// completes them from the call's earlier events.
        fn outcome(result: wit::ParseResult) -> crate::outcome::Outcome {
            crate::outcome::Outcome {
                event: result.event.map(Into::into),
                call_record: result.call_record.map(Into::into),
                response: result.response.map(Into::into),
                delivery_id: result.delivery_id,
            }
        }

        impl From<wit::TelephonyEvent> for crate::outcome::TelephonyEvent {
            fn from(event: wit::TelephonyEvent) -> Self {
                Self {
                    event: event.event.into(),
                    direction: event.direction.map(Into::into),
                    disposition: event.disposition.into(),
                    src_phone: event.src_phone,
                    src_phone_ext: event.src_phone_ext,
                    dst_phone: event.dst_phone,
                    dst_phone_ext: event.dst_phone_ext,
                    call_id: event.call_id,
                }
            }
        }

        impl From<wit::CallRecord> for crate::outcome::CallRecord {
            fn from(record: wit::CallRecord) -> Self {
                Self {
                    call_id: record.call_id,
                    direction: record.direction.map(Into::into),
                    disposition: record.disposition.into(),
                    src_phone: record.src_phone,
                    src_phone_ext: record.src_phone_ext,
                    dst_phone: record.dst_phone,
                    dst_phone_ext: record.dst_phone_ext,
                    duration: record.duration,
                    call: record.call,
                }
            }
        }

        /// A refusal, with its status checked: a parser may not answer a refusal with a
        /// success. `setting` is the version's: none before 0.3.
        fn refused(message: String, status: Option<u16>, setting: Option<String>) -> super::Called {
            match status {
                Some(status) if !(400..=499).contains(&status) && setting.is_none() => {
                    Ok(Err(crate::validate::Violations(vec![
                        crate::validate::Violation {
                            field: "parse_error.status".into(),
                            rule: format!(
                                "must be 400 to 499 (the request was at fault), not {status}"
                            ),
                        },
                    ])))
                }
                status => Err(super::Refusal {
                    message,
                    status: status.unwrap_or(super::DEFAULT_REFUSAL_STATUS),
                    setting,
                }),
            }
        }
    };
}
pub(crate) use same_since_0_2;
