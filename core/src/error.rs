//! The one error type of pinvault.
//!
//! Every backend maps its engine's failures onto these variants so that callers can match on
//! *what happened* (a precondition failed, the server is unreachable, a record is corrupt)
//! without knowing which backend they talk to. `is_retryable()` tells a caller whether the same
//! call may succeed if simply tried again.

use crate::version::Version;

/// Result alias used across pinvault.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors returned by every pinvault contract and backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pin, object or set does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked up (a CID, an object key, a staged object).
        what: String,
    },

    /// The thing to create exists already (e.g. finalize of a published set).
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What exists already.
        what: String,
    },

    /// A precondition failed. Nothing was written.
    #[error("conflict on {key}: expected {expected}, current version is {}", display_current(.current))]
    Conflict {
        /// The key (CID) whose precondition failed.
        key: String,
        /// The precondition that was asked for, in words.
        expected: String,
        /// The version the key has now; `None` when it does not exist.
        current: Option<Version>,
        /// Index of the failing operation in its batch (0 for a single put/remove).
        op_index: usize,
    },

    /// The backend cannot give the guarantee this operation needs, so it refuses it.
    #[error("unsupported by the {backend} backend: {operation}")]
    Unsupported {
        /// The refused operation.
        operation: String,
        /// The backend that refused it.
        backend: &'static str,
    },

    /// The caller's input is invalid (bad CID, hostile name, oversized value, malformed import).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was invalid, including a position when there is one (`"import line 7"`).
        what: String,
        /// Why it was refused.
        reason: String,
    },

    /// Stored data could not be decoded: the store holds something pinvault did not write.
    #[error("corrupt data at {location}: {reason}")]
    Corrupt {
        /// Where the corrupt record is (a key, a file, an offset).
        location: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The backend could not be reached or did not answer in time. Retrying may succeed.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// Whether the operation may have been applied (e.g. a timed-out conditional write).
        outcome_unknown: bool,
    },

    /// A fault-injection crash point fired. The instance must be dropped, as after a power loss.
    #[error("injected crash at {point}")]
    Crashed {
        /// The crash point's name.
        point: &'static str,
    },

    /// Any other failure of the underlying engine.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend that failed.
        backend: &'static str,
        /// The engine's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

fn display_current(current: &Option<Version>) -> String {
    match current {
        Some(v) => v.to_string(),
        None => "absent".to_owned(),
    }
}

impl Error {
    /// True when the same call may succeed if tried again (the server was unreachable or slow).
    ///
    /// A conflict is *not* retryable: the caller must read the current version and decide.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { what: what.into(), reason: reason.into() }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt { location: location.into(), reason: reason.into() }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(backend: &'static str, operation: impl Into<String>) -> Self {
        Error::Unsupported { operation: operation.into(), backend }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend { backend, source: source.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_retryable() {
        let unavailable = Error::Unavailable { reason: "timeout".into(), outcome_unknown: true };
        assert!(unavailable.is_retryable());
        let conflict = Error::Conflict {
            key: "k".into(),
            expected: "absent".into(),
            current: Some(Version::from_u64(3)),
            op_index: 0,
        };
        assert!(!conflict.is_retryable());
        assert!(!Error::not_found("x").is_retryable());
        assert!(!Error::invalid("cid", "bad").is_retryable());
    }

    #[test]
    fn conflict_message_names_current_version() {
        let e = Error::Conflict {
            key: "bafy".into(),
            expected: "absent".into(),
            current: None,
            op_index: 2,
        };
        assert_eq!(e.to_string(), "conflict on bafy: expected absent, current version is absent");
    }
}
