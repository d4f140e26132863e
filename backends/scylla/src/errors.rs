//! Mapping driver failures onto pinvault's one [`Error`] type.
//!
//! * Server-side timeouts, unavailable replicas, overload, broken connections and client
//!   timeouts become [`Error::Unavailable`]. `outcome_unknown` is true when the request was a
//!   write that may have been applied (a write timeout, a timeout or broken connection after
//!   sending); the LWT paths then resolve it by a SERIAL read (see [`crate::lwt`]).
//! * Failures to connect are classified into [`ConnectError`] (authentication, TLS,
//!   unreachable) so a wrong password or an untrusted certificate is a typed error, never a
//!   panic: authentication and TLS are [`Error::Backend`] whose source is a [`ConnectError`];
//!   an unreachable cluster is [`Error::Unavailable`].

use pinvault_core::Error;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

/// The backend name in errors and capabilities.
pub const BACKEND: &str = "scylla";

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the credentials.
    #[error("authentication failed (check the username and password): {0}")]
    Authentication(String),
    /// The TLS handshake failed (e.g. the server's certificate is not trusted).
    #[error("TLS handshake failed (is the cluster's CA trusted?): {0}")]
    Tls(String),
}

/// Classifies an error raised while connecting.
pub fn classify_connect(e: &(dyn std::error::Error + 'static)) -> Error {
    let text = chain(e);
    let lower = text.to_lowercase();
    if lower.contains("authentication") || lower.contains("bad credentials") {
        Error::backend(BACKEND, ConnectError::Authentication(text))
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("unknownissuer")
    {
        Error::backend(BACKEND, ConnectError::Tls(text))
    } else {
        Error::Unavailable { reason: format!("cannot connect: {text}"), outcome_unknown: false }
    }
}

/// The error and its sources, in one line (Debug of the root too, which carries the DB codes).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = format!("{e} [{e:?}]");
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Whether the request is a write (its outcome is unknown after a timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A read: a timeout leaves nothing unknown.
    Read,
    /// A write.
    Write,
}

/// Maps an execution error.
pub fn map_exec(e: ExecutionError, what: &str, kind: Kind) -> Error {
    let write = kind == Kind::Write;
    let unavailable = |reason: String, unknown: bool| Error::Unavailable {
        reason: format!("{what}: {reason}"),
        outcome_unknown: unknown && write,
    };
    match &e {
        ExecutionError::RequestTimeout(_) => unavailable(e.to_string(), true),
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            unavailable(e.to_string(), false)
        }
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::DbError(db, msg) => match db {
                DbError::WriteTimeout { .. } | DbError::WriteFailure { .. } => {
                    unavailable(format!("{db}: {msg}"), true)
                }
                DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::RateLimitReached { .. } => unavailable(format!("{db}: {msg}"), false),
                DbError::ReadTimeout { .. } | DbError::ReadFailure { .. } => {
                    // A SERIAL read that times out may have completed an in-flight Paxos round.
                    unavailable(format!("{db}: {msg}"), true)
                }
                _ => Error::backend(BACKEND, format!("{what}: {db}: {msg}")),
            },
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => unavailable(e.to_string(), true),
            _ => Error::backend(BACKEND, format!("{what}: {e}")),
        },
        _ => Error::backend(BACKEND, format!("{what}: {e}")),
    }
}

/// Maps any other driver error (prepare, paging, deserialization).
pub fn map_other(e: impl std::fmt::Display, what: &str) -> Error {
    Error::backend(BACKEND, format!("{what}: {e}"))
}
