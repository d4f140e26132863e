//! What can go wrong in the CLI and the exit code each kind of failure gets, so that scripts can
//! tell a failed precondition from a missing pin from an unreachable backend.

use std::fmt;
use std::io;

use pinvault::{Error, PathProblem};

/// The exit codes, as shown at the end of `--help` and in the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (backend error, I/O error)
  2  usage error (bad arguments, an unparsable script line)
  3  not found (pin, input file, no store at the path)
  4  conflict or already exists (a failed --if-absent or --if-version precondition)
  5  invalid input (bad CID, peer ID, time, version, metadata, URL, malformed import)
  6  unsupported (backend not compiled in, or an operation the backend refuses)
  7  unavailable (backend unreachable or timed out; retrying may succeed)
  8  corrupt data (the store holds a record that does not decode)
  9  verification failed (state verify found inconsistent views; a copy does not match)
  10  not this backend's store (another backend's store, or files pinvault did not write)
  11  permission denied (on the store's path)
  12  not a directory (the store's path or a parent is a file)
  13  read-only filesystem (the store's path)
  14  no space left on device (the store's filesystem is full; free space and rerun)";

/// A CLI failure.
#[derive(Debug)]
pub enum CliError {
    /// A pinvault operation failed.
    Store(Error),
    /// The command line or a script line is not usable as written.
    Usage(String),
    /// A file the user named could not be read or written.
    File {
        /// The path as the user wrote it.
        path: String,
        /// What the OS said.
        source: io::Error,
    },
    /// Writing to stdout failed.
    Output(io::Error),
    /// A check ran and found a difference (`state verify`, the check after `state copy`).
    Mismatch(String),
    /// A `bench` column (a child process) failed or answered something unreadable.
    Column {
        /// The column as the user named it.
        column: String,
        /// What went wrong.
        message: String,
    },
    /// A failure on one line of an `exec` script.
    Script {
        /// `script:line`.
        place: String,
        /// The failure on that line.
        source: Box<CliError>,
    },
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Store(e) => match e.cause() {
                Error::NotFound { .. } | Error::NoStore { .. } => 3,
                Error::AlreadyExists { .. } | Error::Conflict { .. } => 4,
                Error::InvalidInput { .. } => 5,
                Error::Unsupported { .. } => 6,
                Error::Unavailable { .. } => 7,
                Error::Corrupt { .. } => 8,
                Error::ForeignStore { .. } => 10,
                Error::Path { problem: PathProblem::PermissionDenied, .. } => 11,
                Error::Path { problem: PathProblem::NotADirectory, .. } => 12,
                Error::Path { problem: PathProblem::ReadOnlyFilesystem, .. } => 13,
                Error::Path { problem: PathProblem::NoSpace, .. } => 14,
                _ => 1,
            },
            CliError::Usage(_) => 2,
            CliError::Mismatch(_) => 9,
            CliError::File { source, .. } if source.kind() == io::ErrorKind::NotFound => 3,
            CliError::File { .. } | CliError::Output(_) | CliError::Column { .. } => 1,
            CliError::Script { source, .. } => source.exit_code(),
        }
    }

    /// True when stdout was closed by its reader (`pinvault pin ls | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            CliError::Output(e) => e.kind() == io::ErrorKind::BrokenPipe,
            CliError::Script { source, .. } => source.is_broken_pipe(),
            _ => false,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Usage(message) => f.write_str(message.trim_end()),
            CliError::Mismatch(message) => write!(f, "verification failed: {message}"),
            CliError::File { path, source } => write!(f, "{path}: {source}"),
            CliError::Output(e) => write!(f, "writing output: {e}"),
            CliError::Column { column, message } => write!(f, "bench column {column}: {message}"),
            CliError::Script { place, source } => write!(f, "{place}: {source}"),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinvault::Version;

    fn path_error(problem: PathProblem) -> Error {
        Error::Path { path: "/x".into(), problem, source: io::Error::from(problem.io_kind()) }
    }

    #[test]
    fn each_error_kind_has_its_documented_code() {
        let conflict = Error::Conflict {
            key: "k".into(),
            expected: "absent".into(),
            current: Some(Version::from_u64(1)),
            op_index: 0,
        };
        let cases: Vec<(CliError, u8)> = vec![
            (Error::not_found("x").into(), 3),
            (Error::AlreadyExists { what: "set".into() }.into(), 4),
            (conflict.into(), 4),
            (Error::invalid("cid", "bad").into(), 5),
            (Error::unsupported("rocksdb", "open").into(), 6),
            (Error::unavailable("down", false).into(), 7),
            (Error::corrupt("k", "bad").into(), 8),
            (Error::backend("memory", "boom").into(), 1),
            (Error::NoStore { path: "/x".into() }.into(), 3),
            (
                Error::ForeignStore {
                    path: "/x".into(),
                    backend: "fs",
                    found: "a sled store".into(),
                }
                .into(),
                10,
            ),
            (path_error(PathProblem::PermissionDenied).into(), 11),
            (path_error(PathProblem::NotADirectory).into(), 12),
            (path_error(PathProblem::ReadOnlyFilesystem).into(), 13),
            (path_error(PathProblem::NoSpace).into(), 14),
            (
                Error::Interrupted {
                    progress: "3 pins".into(),
                    source: Box::new(path_error(PathProblem::NoSpace)),
                }
                .into(),
                14,
            ),
            (CliError::Usage("bad".into()), 2),
            (CliError::Mismatch("differs".into()), 9),
            (CliError::Column { column: "ipfs-cluster:pebble".into(), message: "died".into() }, 1),
            (CliError::File { path: "f".into(), source: io::ErrorKind::NotFound.into() }, 3),
            (
                CliError::File { path: "f".into(), source: io::ErrorKind::PermissionDenied.into() },
                1,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error}");
            assert!(EXIT_CODES_HELP.contains(&format!("  {code}  ")), "{code} is documented");
            let wrapped = CliError::Script { place: "s:1".into(), source: Box::new(error) };
            assert_eq!(wrapped.exit_code(), code);
            assert!(wrapped.to_string().starts_with("s:1: "));
        }
    }
}
