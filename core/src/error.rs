//! The one error type of pinvault.
//!
//! Every backend maps its engine's failures onto these variants so that callers can match on
//! *what happened* (a precondition failed, the server is unreachable, a record is corrupt)
//! without knowing which backend they talk to. `is_retryable()` tells a caller whether the same
//! call may succeed if simply tried again.

use std::path::PathBuf;

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
    /// Build it with [`Error::invalid`], adding a parser's error with [`Error::with_source`].
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was invalid, including a position when there is one (`"import line 7"`).
        what: String,
        /// Why it was refused (it includes the text of `source`, if any).
        reason: String,
        /// The parser's or decoder's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Stored data could not be decoded: the store holds something pinvault did not write.
    /// Build it with [`Error::corrupt`], adding a decoder's error with [`Error::with_source`].
    #[error("corrupt data at {location}: {reason}")]
    Corrupt {
        /// Where the corrupt record is (a key, a file, an offset).
        location: String,
        /// What is wrong with it (it includes the text of `source`, if any).
        reason: String,
        /// The decoder's or engine's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The backend could not be reached or did not answer in time. Retrying may succeed.
    /// Build it with [`Error::unavailable`] or [`Error::unavailable_from`].
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What failed, in words (it includes the text of `source`, if any).
        reason: String,
        /// Whether the operation may have been applied (e.g. a timed-out conditional write).
        outcome_unknown: bool,
        /// The engine's or driver's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// No store exists at `path`, and the caller asked to open an existing one
    /// ([`OpenMode::MustExist`](crate::store_dir::OpenMode::MustExist)): the directory is missing,
    /// or empty. Nothing was created.
    #[error("no store at {}", .path.display())]
    NoStore {
        /// The directory that holds no store.
        path: PathBuf,
    },

    /// The directory holds something other than a store of `backend`: another backend's store
    /// (named by its marker, or by its files for a store made before markers existed), or
    /// files pinvault did not write. Nothing was written. See [`crate::store_dir`].
    #[error("{} is not {}: it holds {found}", .path.display(), crate::store_dir::a_store(backend))]
    ForeignStore {
        /// The store directory.
        path: PathBuf,
        /// The backend that was asked to open it.
        backend: &'static str,
        /// What the directory holds instead, in words (`"a rocksdb store (PINVAULT-STORE)"`).
        found: String,
    },

    /// The store's path cannot be used as asked: permission denied, a component that is not
    /// a directory, or a read-only filesystem. Retrying will not help until the path changes.
    #[error("{problem}: {} ({source})", .path.display())]
    Path {
        /// The path that failed (the store directory or a file in it).
        path: PathBuf,
        /// Which of the path problems it is.
        problem: PathProblem,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A long operation (an import) stopped part-way because of `source`: `progress` says what
    /// it had committed by then (pins, batches, the last receipt), so it can be resumed.
    #[error("{source}; stopped after {progress}")]
    Interrupted {
        /// What was committed before the failure, in words.
        progress: String,
        /// Why it stopped.
        #[source]
        source: Box<Error>,
    },

    /// A fault-injection crash point fired (crash tests only: a
    /// [`FaultInjector::disabled`](crate::FaultInjector::disabled) store never returns it). The
    /// instance must be dropped, as after a power loss.
    // Hidden: only crash tests see it; public because backends propagate it and the crash
    // tests in other crates (pinvault-conformance, backends' tests) match on it.
    #[doc(hidden)]
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

/// An I/O error at a path: its text is `<path>: <the OS error>`, and the OS error stays its
/// [`std::error::Error::source`]. The cause of an [`Error::Backend`] built by [`Error::io_at`].
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct IoAt {
    path: String,
    #[source]
    source: std::io::Error,
}

impl IoAt {
    /// `source` at `path` (a path, or a description of a place in a store).
    pub fn new(path: impl Into<String>, source: std::io::Error) -> Self {
        IoAt { path: path.into(), source }
    }
}

/// Whether a failed call could have changed the store: a backend's error mapping uses it to
/// decide [`Error::Unavailable`]'s `outcome_unknown` (a timed-out read changed nothing; a
/// timed-out write may have been applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A read: it changed nothing, whatever happened.
    Read,
    /// A write: if the request may have reached the server, its outcome is unknown.
    Write,
}

impl Access {
    /// `outcome_unknown` of a failed call: true for a write whose request may have reached the
    /// server (`reached`), false for any read.
    pub fn outcome_unknown(self, reached: bool) -> bool {
        reached && self == Access::Write
    }
}

/// Why a store's path cannot be used ([`Error::Path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// The process may not read, create or write there (`EACCES`, `EPERM`).
    PermissionDenied,
    /// The path, or one of its parents, is not a directory (e.g. a regular file): `ENOTDIR`.
    NotADirectory,
    /// The filesystem is mounted read-only (`EROFS`).
    ReadOnlyFilesystem,
    /// The filesystem is full (`ENOSPC`): retrying helps once space is freed.
    NoSpace,
}

impl PathProblem {
    /// The path problem an I/O error reports, if it is one of them.
    pub fn of(e: &std::io::Error) -> Option<PathProblem> {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::PermissionDenied => Some(PathProblem::PermissionDenied),
            ErrorKind::NotADirectory => Some(PathProblem::NotADirectory),
            ErrorKind::ReadOnlyFilesystem => Some(PathProblem::ReadOnlyFilesystem),
            ErrorKind::StorageFull => Some(PathProblem::NoSpace),
            _ => None,
        }
    }

    /// The path problem named in an engine's error text, for engines that report I/O errors
    /// as text only (RocksDB): the C library's `strerror` wording of `EACCES`, `EPERM`,
    /// `ENOTDIR`, `EROFS` and `ENOSPC`.
    pub fn from_message(message: &str) -> Option<PathProblem> {
        if message.contains("Permission denied") || message.contains("Operation not permitted") {
            Some(PathProblem::PermissionDenied)
        } else if message.contains("Not a directory") {
            Some(PathProblem::NotADirectory)
        } else if message.contains("Read-only file system") {
            Some(PathProblem::ReadOnlyFilesystem)
        } else if message.contains("No space left on device") {
            Some(PathProblem::NoSpace)
        } else {
            None
        }
    }

    /// The `io::ErrorKind` of this problem, to rebuild an `io::Error` from an engine's text.
    pub fn io_kind(self) -> std::io::ErrorKind {
        match self {
            PathProblem::PermissionDenied => std::io::ErrorKind::PermissionDenied,
            PathProblem::NotADirectory => std::io::ErrorKind::NotADirectory,
            PathProblem::ReadOnlyFilesystem => std::io::ErrorKind::ReadOnlyFilesystem,
            PathProblem::NoSpace => std::io::ErrorKind::StorageFull,
        }
    }
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::PermissionDenied => "permission denied",
            PathProblem::NotADirectory => {
                "not a directory (the path or one of its parents is a file)"
            }
            PathProblem::ReadOnlyFilesystem => "read-only filesystem",
            PathProblem::NoSpace => "no space left on device",
        })
    }
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
        matches!(self.cause(), Error::Unavailable { .. })
    }

    /// The error itself, or for [`Error::Interrupted`] the failure that stopped the operation.
    pub fn cause(&self) -> &Error {
        match self {
            Error::Interrupted { source, .. } => source.cause(),
            other => other,
        }
    }

    /// [`Error::Unavailable`] with no underlying error (a lock held elsewhere, a lost race
    /// retried too often).
    pub fn unavailable(reason: impl Into<String>, outcome_unknown: bool) -> Self {
        Error::Unavailable { reason: reason.into(), outcome_unknown, source: None }
    }

    /// [`Error::Unavailable`] caused by the engine's or driver's error `source`.
    pub fn unavailable_from(
        reason: impl Into<String>,
        outcome_unknown: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Unavailable { reason: reason.into(), outcome_unknown, source: Some(source.into()) }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { what: what.into(), reason: reason.into(), source: None }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt { location: location.into(), reason: reason.into(), source: None }
    }

    /// Keeps `cause` as the [`std::error::Error::source`] of an [`Error::InvalidInput`],
    /// [`Error::Corrupt`] or [`Error::Unavailable`] (whose text already says what it is);
    /// other variants are returned as they are.
    pub fn with_source(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        match &mut self {
            Error::InvalidInput { source, .. }
            | Error::Corrupt { source, .. }
            | Error::Unavailable { source, .. } => *source = Some(cause.into()),
            _ => {}
        }
        self
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(backend: &'static str, operation: impl Into<String>) -> Self {
        Error::Unsupported { operation: operation.into(), backend }
    }

    /// The typed error for an I/O failure at `path` when it is a [`PathProblem`]
    /// ([`Error::Path`]); otherwise `Err` gives the I/O error back for the caller to map.
    pub fn from_path_io(
        path: impl Into<PathBuf>,
        e: std::io::Error,
    ) -> Result<Self, std::io::Error> {
        match PathProblem::of(&e) {
            Some(problem) => Ok(Error::Path { path: path.into(), problem, source: e }),
            None => Err(e),
        }
    }

    /// An I/O failure of `backend` at `path`: [`Error::Path`] when it is a [`PathProblem`],
    /// else [`Error::Backend`] naming the path, with the OS error kept as a source ([`IoAt`]).
    pub fn io_at(backend: &'static str, path: &std::path::Path, e: std::io::Error) -> Self {
        Error::from_path_io(path, e)
            .unwrap_or_else(|e| Error::backend(backend, IoAt::new(path.display().to_string(), e)))
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
    fn parse_and_decode_errors_keep_their_cause() {
        use std::error::Error as _;
        let bad_cid = crate::pin::parse_cid("not-a-cid").unwrap_err();
        assert!(matches!(bad_cid, Error::InvalidInput { .. }), "{bad_cid}");
        let cause = bad_cid.source().expect("the CID parser's error is kept");
        assert!(cause.downcast_ref::<cid::Error>().is_some(), "{cause:?}");

        let garbage = [crate::kv::layout::PIN_RECORD_TAG, 0xff, 0xff, 0xff];
        let corrupt =
            crate::kv::layout::decode_pin(b"k", &garbage).expect_err("garbage does not decode");
        assert!(matches!(corrupt, Error::Corrupt { .. }), "{corrupt}");
        assert!(corrupt.source().is_some(), "the decoder's error is kept: {corrupt:?}");

        let io = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
        let at = Error::io_at("fs", std::path::Path::new("/srv/pins/pins.log"), io);
        assert_eq!(at.to_string(), "fs backend error: /srv/pins/pins.log: disk on fire");
        let first = at.source().expect("the path error is kept");
        let second = first.source().expect("the OS error is kept");
        let chain = [first.to_string(), second.to_string()];
        assert_eq!(chain, ["/srv/pins/pins.log: disk on fire", "disk on fire"]);

        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            Error::io_at("fs", std::path::Path::new("/srv"), denied),
            Error::Path { problem: PathProblem::PermissionDenied, .. }
        ));
        assert!(Error::not_found("x").with_source(std::io::Error::other("y")).source().is_none());
    }

    #[test]
    fn only_unavailable_is_retryable() {
        let unavailable = Error::unavailable("timeout", true);
        assert!(unavailable.is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let caused = Error::unavailable_from("read: slow", false, io);
        assert!(caused.is_retryable());
        assert_eq!(caused.to_string(), "unavailable: read: slow");
        let source = std::error::Error::source(&caused).expect("the cause is kept");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::TimedOut
        );
        assert!(Access::Write.outcome_unknown(true) && !Access::Read.outcome_unknown(true));
        assert!(!Access::Write.outcome_unknown(false));
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
