//! The sequence number a store is known to have reached, kept beside RocksDB's files, so that
//! a lost WAL is found instead of opening as a store with fewer commits.
//!
//! RocksDB's MANIFEST names the table files and the WALs it has retired, but not the live WAL:
//! a store whose newest WAL is deleted (by hand, by a tool, with a lost disk block) opens
//! without a word, the commits only that WAL held gone (even with
//! `track_and_verify_wals_in_manifest`, which covers retired WALs only). pinvault writes
//! RocksDB's latest sequence number to [`FILE`] after every writable open and when the store
//! is closed (by temporary file, fsync and rename). Before a writable open replays anything, a
//! read-only instance (which writes nothing) reads the sequence the files hold now; below the
//! recorded one, the open is [`Error::Corrupt`] and nothing is changed. A read-only open checks
//! the same way.
//!
//! It costs two small fsynced writes and one read-only replay per open, none per commit; so it
//! sees the loss of anything committed before the last open or clean close, not of commits
//! made after the last open of a process that then crashed (fs's `pins.seq`, written per
//! commit, sees those too).

use std::io::Write;
use std::path::Path;

use pinvault_core::{Error, Result};

use crate::io_error;

/// The file in the store directory holding the recorded sequence number, in decimal.
pub const FILE: &str = "PINVAULT-SEQ";

/// The recorded sequence number, if the store has one.
pub(crate) fn recorded(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path, e)),
    };
    text.trim().parse().map(Some).map_err(|e| {
        Error::corrupt(path.display().to_string(), format!("not a sequence number ({e}): {text:?}"))
            .with_source(e)
    })
}

/// `Corrupt` when the store's files hold less than it had reached.
pub(crate) fn check(dir: &Path, holds: u64) -> Result<()> {
    match recorded(dir)? {
        Some(reached) if holds < reached => Err(Error::corrupt(
            dir.display().to_string(),
            format!(
                "the store had reached sequence {reached} ({FILE}), but its files hold only up \
                 to {holds}: a WAL or table file is missing, and with it the commits after \
                 {holds}; nothing was changed (`pinvault state repair` keeps what is left)"
            ),
        )),
        _ => Ok(()),
    }
}

/// Records `reached` (by temporary file, fsync, rename and directory fsync).
pub(crate) fn record(dir: &Path, reached: u64) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "{reached}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(FILE))?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| io_error(&dir.join(FILE), e))
}

/// Removes the record, for a repair that knowingly leaves the store with less than it had.
pub(crate) fn forget(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&dir.join(FILE), e)),
        _ => Ok(()),
    }
}
