//! Mapping driver failures onto pinvault's one [`Error`] type.
//!
//! * Server-side timeouts, unavailable replicas, overload, broken connections and client
//!   timeouts become [`Error::Unavailable`]. `outcome_unknown` is true when the request was a
//!   write that may have been applied (a write timeout, a timeout or broken connection after
//!   sending); the LWT paths then resolve it by a SERIAL read (see [`crate::lwt`]).
//! * Failures to connect are classified into [`ConnectError`] (authentication, TLS,
//!   unreachable) by the driver's error variants, so a wrong password or an untrusted
//!   certificate is a typed error, never a panic: authentication and TLS are
//!   [`Error::Backend`] whose source is a [`ConnectError`]; an unreachable cluster is
//!   [`Error::Unavailable`].
//! * Every mapped error keeps the driver's error as its `source`.

use std::error::Error as StdError;

use pinvault_core::error::Access;
use pinvault_core::Error;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError,
    MetadataError, NewSessionError, RequestAttemptError, TlsError,
};

/// The backend name in errors and capabilities.
pub const BACKEND: &str = "scylla";

/// Why a session could not be opened. Each keeps the driver's error as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the credentials.
    #[error("authentication failed (check the username and password): {}", chain(.0))]
    Authentication(#[source] NewSessionError),
    /// The TLS handshake failed (e.g. the server's certificate is not trusted).
    #[error("TLS handshake failed (is the cluster's CA trusted?): {}", chain(.0))]
    Tls(#[source] NewSessionError),
}

/// Classifies an error raised while connecting, by the driver's error variants: the server
/// refusing the credentials (or asking for some) is [`ConnectError::Authentication`], a
/// rustls failure on the connection is [`ConnectError::Tls`], anything else is
/// [`Error::Unavailable`].
pub fn classify_connect(e: &NewSessionError) -> Error {
    let failed = last_connection_error(e);
    if failed.is_some_and(is_authentication) {
        Error::backend(BACKEND, ConnectError::Authentication(e.clone()))
    } else if failed.is_some_and(is_tls) {
        Error::backend(BACKEND, ConnectError::Tls(e.clone()))
    } else {
        Error::unavailable_from(format!("cannot connect: {}", chain(e)), false, e.clone())
    }
}

/// The connection error a session could not be opened with, if that is why.
fn last_connection_error(e: &NewSessionError) -> Option<&ConnectionError> {
    match e {
        NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
            ConnectionPoolError::Broken { last_connection_error },
        )) => Some(last_connection_error),
        _ => None,
    }
}

/// The server refused the credentials, asked for credentials none were given, or the
/// client's authenticator failed.
fn is_authentication(e: &ConnectionError) -> bool {
    let ConnectionError::ConnectionSetupRequestError(setup) = e else { return false };
    matches!(
        setup.error,
        ConnectionSetupRequestErrorKind::DbError(DbError::AuthenticationError, _)
            | ConnectionSetupRequestErrorKind::MissingAuthentication
            | ConnectionSetupRequestErrorKind::StartAuthSessionError(_)
            | ConnectionSetupRequestErrorKind::AuthChallengeEvaluationError(_)
            | ConnectionSetupRequestErrorKind::AuthFinishError(_)
    )
}

/// The connection failed in TLS: tokio-rustls reports a rustls error (an untrusted
/// certificate, a failed handshake, a server not speaking TLS) as an I/O error wrapping it.
fn is_tls(e: &ConnectionError) -> bool {
    let ConnectionError::IoError(io) = e else { return false };
    let mut cur: Option<&(dyn StdError + 'static)> = io.get_ref().map(|inner| inner as _);
    while let Some(inner) = cur {
        if inner.is::<rustls::Error>() || inner.is::<TlsError>() {
            return true;
        }
        cur = inner.source();
    }
    false
}

/// The error and its sources, in one line (Debug of the root too, which carries the DB codes).
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut s = format!("{e} [{e:?}]");
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// How [`map_exec`] classifies an execution error.
enum Mapped {
    /// [`Error::Unavailable`]: the text, and whether a write may have been applied.
    Unavailable(String, bool),
    /// [`Error::Backend`], with this text.
    Backend(String),
}

/// Maps an execution error of the call `what`; `access` says whether it was a write (whose
/// outcome a timeout leaves unknown). The driver's error is kept as the `source`.
pub fn map_exec(e: ExecutionError, what: &str, access: Access) -> Error {
    let mapped = match &e {
        ExecutionError::RequestTimeout(_) => Mapped::Unavailable(e.to_string(), true),
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            Mapped::Unavailable(e.to_string(), false)
        }
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::DbError(db, msg) => match db {
                DbError::WriteTimeout { .. } | DbError::WriteFailure { .. } => {
                    Mapped::Unavailable(format!("{db}: {msg}"), true)
                }
                DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::RateLimitReached { .. } => {
                    Mapped::Unavailable(format!("{db}: {msg}"), false)
                }
                DbError::ReadTimeout { .. } | DbError::ReadFailure { .. } => {
                    // A SERIAL read that times out may have completed an in-flight Paxos round.
                    Mapped::Unavailable(format!("{db}: {msg}"), true)
                }
                _ => Mapped::Backend(format!("{what}: {db}: {msg}")),
            },
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => {
                Mapped::Unavailable(e.to_string(), true)
            }
            _ => Mapped::Backend(format!("{what}: {e}")),
        },
        _ => Mapped::Backend(format!("{what}: {e}")),
    };
    match mapped {
        Mapped::Unavailable(reason, reached) => {
            Error::unavailable_from(format!("{what}: {reason}"), access.outcome_unknown(reached), e)
        }
        Mapped::Backend(message) => Error::backend(BACKEND, Context { message, source: e.into() }),
    }
}

/// Maps any other driver error (prepare, paging, deserialization), or a message for a result
/// the driver accepted but pinvault cannot use; the error is kept as the `source`.
pub fn map_other<E>(e: E, what: &str) -> Error
where
    E: std::fmt::Display + Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    Error::backend(BACKEND, Context { message: format!("{what}: {e}"), source: e.into() })
}

/// A driver error with the pinvault call it failed, in words (`message`, which includes the
/// driver error's text: the `Display` of this error is the message alone).
#[derive(Debug)]
struct Context {
    message: String,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of<T: StdError + 'static>(e: &Error) -> Option<&T> {
        let mut cur = StdError::source(e);
        while let Some(inner) = cur {
            if let Some(found) = inner.downcast_ref::<T>() {
                return Some(found);
            }
            cur = inner.source();
        }
        None
    }

    #[test]
    fn timeouts_are_unavailable_and_keep_the_driver_error() {
        let timeout = || ExecutionError::RequestTimeout(std::time::Duration::from_secs(1));
        let e = map_exec(timeout(), "read pin", Access::Write);
        assert!(matches!(e, Error::Unavailable { outcome_unknown: true, .. }), "{e:?}");
        assert!(e.to_string().starts_with("unavailable: read pin: "), "{e}");
        assert!(source_of::<ExecutionError>(&e).is_some(), "{e:?}");
        let e = map_exec(timeout(), "read pin", Access::Read);
        assert!(matches!(e, Error::Unavailable { outcome_unknown: false, .. }), "{e:?}");
    }

    #[test]
    fn other_driver_errors_are_backend_errors_with_their_source() {
        let db = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::SyntaxError,
            "bad".into(),
        ));
        let e = map_exec(db, "prepare", Access::Read);
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert!(e.to_string().starts_with("scylla backend error: prepare: "), "{e}");
        assert!(e.to_string().ends_with(": bad"), "{e}");
        assert!(source_of::<ExecutionError>(&e).is_some(), "{e:?}");
        let e = map_other("an LWT returned no row", "finalize");
        assert_eq!(e.to_string(), "scylla backend error: finalize: an LWT returned no row");
    }

    #[test]
    fn a_session_that_cannot_start_is_unavailable() {
        let e = classify_connect(&NewSessionError::EmptyKnownNodesList);
        assert!(matches!(e, Error::Unavailable { outcome_unknown: false, .. }), "{e:?}");
        assert!(e.to_string().starts_with("unavailable: cannot connect: "), "{e}");
        assert!(source_of::<NewSessionError>(&e).is_some(), "{e:?}");
    }
}
