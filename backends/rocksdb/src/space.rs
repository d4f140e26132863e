//! Opening a store on a full filesystem.
//!
//! # Why an open needs space, and how much
//!
//! RocksDB's recovery replays the WALs into memtables and, before `DB::open` returns, writes
//! them out as SST files, then a new MANIFEST, an `OPTIONS` file (~60 KiB for four column
//! families) and an empty WAL; the info `LOG` gets a dump of every option (~130 KiB). On a
//! full disk the SST flush fails first (`IO error: No space left on device: While appending to
//! file: .../000008.sst`), and so a store whose WALs held more than the space the user had
//! freed could not be reopened, although its next writes would have fit. When the free space
//! is less than the WALs hold plus [`HEADROOM`], or an ordinary open failed with `ENOSPC`,
//! the open is *lean*: `avoid_flush_during_recovery` (the replayed data stays in memory and
//! in the old WALs, which RocksDB flushes later, when it can) and the info log sent to
//! `tracing` instead of `LOG`. It still needs room for the `OPTIONS` file and the MANIFEST.

use std::path::Path;

use pinvault_core::{Error, PathProblem, Result};
use rocksdb::Options;

use crate::{info_log_to_tracing, BACKEND};

/// Free space, beyond what the WALs hold, under which an open is lean from the start.
pub(crate) const HEADROOM: u64 = 1024 * 1024;

/// True for RocksDB's report of `ENOSPC`.
pub(crate) fn is_no_space(e: &rocksdb::Error) -> bool {
    PathProblem::from_message(e.as_ref()) == Some(PathProblem::NoSpace)
}

/// True when the filesystem of `dir` has less free space than the store's WALs plus
/// [`HEADROOM`]. `false` when it cannot tell: the ordinary open then runs and its `ENOSPC`
/// falls back to a lean one.
pub(crate) fn is_short(dir: &Path, wal_bytes: u64) -> bool {
    match rustix::fs::statvfs(dir) {
        Ok(st) => st.f_bavail.saturating_mul(st.f_frsize) < wal_bytes.saturating_add(HEADROOM),
        Err(_) => false,
    }
}

/// `options` for a lean open (see the module docs).
pub(crate) fn lean(options: &mut Options) -> Result<Options> {
    // rust-rocksdb 0.25 has no setter for this option; RocksDB's option string has.
    let mut lean = options
        .get_options_from_string("avoid_flush_during_recovery=true")
        .map_err(|e| Error::backend(BACKEND, e))?;
    lean.set_info_logger(info_log_to_tracing());
    Ok(lean)
}
