//! The store's writer lock, taken by pinvault before RocksDB opens, with an optional wait.
//!
//! # Why pinvault takes RocksDB's lock itself
//!
//! A writable open inspects the WAL, and may quarantine and cut a torn tail, before RocksDB
//! replays it (see `wal`): that must never race a live writer in another process. RocksDB
//! locks `<store>/LOCK` with a process-associated `fcntl` write lock (`F_SETLK`) when it
//! opens; pinvault takes the same lock on the same file first. Any other process (pinvault,
//! `ldb`, anything built on RocksDB) then finds the store locked, and RocksDB's own lock, taken
//! next by this process, succeeds, because `fcntl` locks belong to the process. For the same
//! reason `fcntl` cannot keep two handles of one process apart: a registry of the stores this
//! process holds does (RocksDB keeps such a set too).
//!
//! A process-associated lock is released when the process closes *any* descriptor of the
//! file, so the descriptor stays open as long as the database does and is closed after it.
//!
//! # Waiting
//!
//! With a zero wait a held lock is [`Error::Unavailable`] at once; otherwise the attempt is
//! repeated with a growing pause (10 ms doubling to 250 ms) until the wait is over, and the
//! error then names the lock file and how long the open waited. The caller runs on a blocking
//! thread (tokio's blocking pool), never on the async runtime.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use pinvault_core::lock_wait::{retry_while_held, Backoff, Held};
use pinvault_core::Result;
use rustix::fs::{fcntl_lock, FlockOperation};

use crate::io_error;

/// The stores (canonical directory paths) this process holds the lock of.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

const BACKOFF: Backoff =
    Backoff { first: Duration::from_millis(10), longest: Duration::from_millis(250) };

/// The lock of one store, held until dropped.
#[derive(Debug)]
pub(crate) struct StoreLock {
    key: PathBuf,
    _file: File,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        held().remove(&self.key);
    }
}

fn held() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Who holds a lock that could not be taken.
enum Busy {
    OtherProcess,
    ThisProcess,
}

/// The path of a store's lock file.
pub(crate) fn lock_file(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

/// Takes the lock of the store in `dir`, waiting up to `wait` for another holder to let go.
pub(crate) fn acquire(dir: &Path, wait: Duration) -> Result<StoreLock> {
    retry_while_held(wait, BACKOFF, || {
        Ok(try_acquire(dir)?.map_err(|busy| {
            let holder = match busy {
                Busy::OtherProcess => "another process",
                Busy::ThisProcess => "another open handle in this process",
            };
            Held::new(format!("RocksDB store {}", dir.display()), &lock_file(dir), holder)
        }))
    })
}

/// One attempt: `Ok(Err(busy))` when someone else holds the lock.
fn try_acquire(dir: &Path) -> Result<std::result::Result<StoreLock, Busy>> {
    let key = dir.canonicalize().map_err(|e| io_error(dir, e))?;
    let mut held = held();
    if held.contains(&key) {
        return Ok(Err(Busy::ThisProcess));
    }
    let path = lock_file(dir);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    match fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
            return Ok(Err(Busy::OtherProcess))
        }
        Err(e) => return Err(io_error(&path, e.into())),
    }
    held.insert(key.clone());
    Ok(Ok(StoreLock { key, _file: file }))
}
