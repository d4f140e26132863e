//! Mapping `object_store` failures onto pinvault's one [`Error`] type.
//!
//! | `object_store`                                   | pinvault                                    |
//! |--------------------------------------------------|---------------------------------------------|
//! | `NotFound`                                       | [`Error::NotFound`]                         |
//! | `AlreadyExists`, `Precondition`                  | decided by the caller (a lost `Create` is `AlreadyExists` for a finalize, `Conflict` for a pin write); unhandled ones are [`Error::Backend`] |
//! | `NotImplemented`, `NotSupported`                 | [`Error::Unsupported`] (never a silent downgrade) |
//! | a connect/request/timeout/interrupt error, HTTP 5xx or 429 after the client's retries | [`Error::Unavailable`]; `outcome_unknown` is true for a write whose request may have reached the server |
//! | anything else                                    | [`Error::Backend`]                          |
//!
//! The transport check walks the error's `source()` chain looking for `object_store`'s public
//! `HttpError`, whose kind says whether the request left the machine (`Connect`: it did not).
//! A server error (HTTP 5xx or 429 after the client's retries) is the one case recognised by
//! its message: `object_store` keeps the error that carries the status (`RetryError`) private.
//! Every mapped error keeps the `object_store::Error` as its `source`.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};
use pinvault_core::error::Access;
use pinvault_core::Error;

/// Whether a transport failure's request may have reached the server, if it is one.
fn transport_failure(e: &object_store::Error) -> Option<Reached> {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return match http.kind() {
                // The connection was never made: the request did not reach the server.
                HttpErrorKind::Connect => Some(Reached { reached: false, text: http.to_string() }),
                HttpErrorKind::Request | HttpErrorKind::Timeout | HttpErrorKind::Interrupted => {
                    Some(Reached { reached: true, text: http.to_string() })
                }
                _ => None,
            };
        }
        source = err.source();
    }
    // `RetryError` (which has the HTTP status) is not public: recognise a server-side failure
    // by its message.
    let text = e.to_string();
    let overloaded = ["status code: 5", "status code: 429", "503 Service", "500 Internal"];
    overloaded.iter().any(|m| text.contains(m)).then_some(Reached { reached: true, text })
}

/// A transport failure: whether its request may have reached the server, and its text.
struct Reached {
    reached: bool,
    text: String,
}

/// Maps an `object_store` error of a call on `what` to pinvault's error.
pub(crate) fn store_error(
    backend: &'static str,
    access: Access,
    what: &str,
    e: object_store::Error,
) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::not_found(what.to_owned()),
        object_store::Error::NotImplemented { operation, implementer } => Error::unsupported(
            backend,
            format!("{operation} on {what}: not implemented by {implementer}"),
        ),
        object_store::Error::NotSupported { source } => {
            Error::unsupported(backend, format!("{what}: {source}"))
        }
        other => match transport_failure(&other) {
            Some(Reached { reached, text }) => Error::unavailable_from(
                format!("{what}: {text}"),
                access.outcome_unknown(reached),
                other,
            ),
            None => Error::backend(backend, Context { what: what.to_owned(), source: other }),
        },
    }
}

/// An `object_store` error with the pinvault operation it failed.
#[derive(Debug)]
struct Context {
    what: String,
    source: object_store::Error,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_and_not_implemented_map_to_their_kinds() {
        let nf = object_store::Error::NotFound { path: "p".into(), source: "gone".into() };
        assert!(matches!(store_error("object", Access::Read, "pin x", nf), Error::NotFound { .. }));
        let ni = object_store::Error::NotImplemented {
            operation: "put_opts Update".into(),
            implementer: "LocalFileSystem".into(),
        };
        assert!(matches!(
            store_error("object", Access::Write, "pin x", ni),
            Error::Unsupported { .. }
        ));
    }

    #[test]
    fn server_errors_are_unavailable_and_unknown_for_writes() {
        let e = || object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable".into(),
        };
        match store_error("object", Access::Write, "manifest", e()) {
            Error::Unavailable { outcome_unknown, .. } => assert!(outcome_unknown),
            other => panic!("{other:?}"),
        }
        match store_error("object", Access::Read, "manifest", e()) {
            Error::Unavailable { outcome_unknown, source, .. } => {
                assert!(!outcome_unknown);
                let source = source.expect("the object_store error is kept as the source");
                assert!(source.downcast_ref::<object_store::Error>().is_some(), "{source:?}");
            }
            other => panic!("{other:?}"),
        }
        let plain = object_store::Error::Generic { store: "S3", source: "bad xml".into() };
        assert!(matches!(store_error("object", Access::Read, "m", plain), Error::Backend { .. }));
    }
}
