//! The root directory of a store and the no-follow file access every reader and writer goes
//! through: opening and locking the root, reading and writing whole files, removing trees, and
//! mapping I/O errors onto [`Error`].
//!
//! # Never following a link
//!
//! Every access under the root is an `*at` call relative to an open directory with
//! `O_NOFOLLOW` (see `sys`), component by component: a symlink (or a file where a
//! directory belongs) anywhere in the tree is reported as [`Error::Corrupt`] and never followed,
//! so nothing planted in the tree can make pinvault read or write outside its root.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pinvault_core::lock_wait::{retry_while_held, Backoff, Held};
use pinvault_core::{Error, PathProblem, Result};

use crate::names::{LOCK, SETS, STAGING, TXN};
use crate::sys::{self, Dir, Kind};
use crate::BACKEND;

/// The error for an I/O failure at `location`: a symlink or a misplaced non-directory (met
/// under `O_NOFOLLOW`) is [`Error::Corrupt`]; permission denied, a read-only filesystem and a
/// full one are [`Error::Path`]; anything else is a backend error naming the place.
pub fn io_error(location: impl std::fmt::Display, e: io::Error) -> Error {
    if let Some(
        problem @ (PathProblem::PermissionDenied
        | PathProblem::ReadOnlyFilesystem
        | PathProblem::NoSpace),
    ) = PathProblem::of(&e)
    {
        return Error::Path { path: PathBuf::from(location.to_string()), problem, source: e };
    }
    if sys::is_link_or_not_dir(&e) {
        return Error::corrupt(
            location.to_string(),
            format!(
                "a symlink or a misplaced non-directory ({e}); pinvault never follows links \
                 inside its root"
            ),
        );
    }
    Error::backend(BACKEND, pinvault_core::error::IoAt::new(location.to_string(), e))
}

/// The root directory of a store: its path, an open handle, and (for a writable instance) the
/// exclusive lock that keeps a second writer (in this or another process) out. Dropping the
/// last handle unlocks.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: Dir,
    /// `None` for a read-only instance, which takes no lock (crate docs, "One instance per root").
    _lock: Option<File>,
}

/// Pauses between two tries of a held lock.
const LOCK_BACKOFF: Backoff =
    Backoff { first: Duration::from_millis(1), longest: Duration::from_millis(50) };

impl Root {
    /// Locks the root at `path` (a directory [`pinvault_core::store_dir::claim`] let this
    /// backend open, and created if the store is new), waiting up to `lock_wait` for another
    /// instance to let go, and makes sure its three top-level directories exist as real
    /// directories. A root still held after `lock_wait` is [`Error::Unavailable`]. Blocking
    /// (it sleeps between tries): call it on the blocking pool.
    pub fn open(path: &Path, lock_wait: Duration) -> Result<Root> {
        let dir = Dir::open_path(path).map_err(|e| io_error(path.display(), e))?;
        let lock_path = path.join(LOCK);
        let lock = dir.open_rw(LOCK, true).map_err(|e| io_error(lock_path.display(), e))?;
        wait_for_lock(&lock, &lock_path, lock_wait)?;
        let root = Root { path: path.to_path_buf(), dir, _lock: Some(lock) };
        let mut created = false;
        for name in [STAGING, TXN, SETS] {
            match root.dir.mkdir(name) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(root.display(name), e)),
            }
            // Open it once: a symlink or a file in its place is refused now.
            root.open_dir(name)?;
        }
        if created {
            root.dir.sync().map_err(|e| io_error(path.display(), e))?;
        }
        Ok(root)
    }

    /// Opens the root at `path` for reading only: no lock, nothing created, so it works on a
    /// read-only filesystem and never waits for (or holds up) a writer.
    pub fn open_read_only(path: &Path) -> Result<Root> {
        let dir = Dir::open_path(path).map_err(|e| io_error(path.display(), e))?;
        Ok(Root { path: path.to_path_buf(), dir, _lock: None })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open root directory.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// `<root>/<rel>` for messages.
    pub fn display(&self, rel: &str) -> String {
        self.path.join(rel).display().to_string()
    }

    /// Opens the top-level directory `name` (never through a symlink).
    pub fn open_dir(&self, name: &str) -> Result<Dir> {
        self.dir.open_dir(name).map_err(|e| io_error(self.display(name), e))
    }
}

/// Takes the exclusive lock on `lock`, waiting up to `wait` for another instance to let go
/// ([`pinvault_core::lock_wait`]: polling, 1 ms doubling up to 50 ms).
fn wait_for_lock(lock: &File, lock_path: &Path, wait: Duration) -> Result<()> {
    let store = format!("fs store {}", lock_path.parent().unwrap_or(lock_path).display());
    retry_while_held(wait, LOCK_BACKOFF, || {
        let taken = sys::try_lock_exclusive(lock).map_err(|e| io_error(lock_path.display(), e))?;
        Ok(if taken {
            Ok(())
        } else {
            Err(Held::new(store.as_str(), lock_path, "another instance"))
        })
    })
}

/// Writes `bytes` to the new file `dir/name` (which must not exist), `fdatasync`ing it when
/// `durable`.
pub fn write_new_file(dir: &Dir, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut file = dir.create_file(name)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_data()?;
    }
    Ok(())
}

/// Opens `dir/name` for reading, refusing anything but a regular file: `Ok(None)` when it does
/// not exist, [`Error::Corrupt`] for a symlink, directory, FIFO or device.
pub fn open_regular(dir: &Dir, name: &str, location: &str) -> Result<Option<(File, u64)>> {
    // Check the kind before opening, so not even an open reaches a device node.
    match dir.stat_at(name) {
        Ok(st) if st.kind == Kind::File => {}
        Ok(st) => {
            return Err(Error::corrupt(
                location,
                format!(
                    "expected a regular file, found a {:?}; pinvault never follows links",
                    st.kind
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(location, e)),
    }
    let file = match dir.open_file(name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(location, e)),
    };
    let st = sys::fstat(&file).map_err(|e| io_error(location, e))?;
    if st.kind != Kind::File {
        return Err(Error::corrupt(
            location,
            format!("expected a regular file, found a {:?}", st.kind),
        ));
    }
    Ok(Some((file, st.size)))
}

/// Reads the regular file `dir/name`, at most `limit` bytes: `Ok(None)` when it does not exist.
pub fn read_regular(dir: &Dir, name: &str, location: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let Some((file, size)) = open_regular(dir, name, location)? else {
        return Ok(None);
    };
    if size > limit {
        return Err(Error::corrupt(
            location,
            format!("{size} bytes, more than the {limit} expected"),
        ));
    }
    let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(location, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::corrupt(location, format!("more than the {limit} bytes expected")));
    }
    Ok(Some(bytes))
}

/// Removes the entry `name` of `dir` and, if it is a directory, everything in it (at most
/// `depth` levels), never following a symlink: a link is removed itself. Missing is fine.
pub fn remove_tree(dir: &Dir, name: &str, location: &str, depth: usize) -> Result<()> {
    let st = match dir.stat_at(name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(location, e)),
    };
    if st.kind != Kind::Dir {
        return match dir.unlink(name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(location, e)),
        };
    }
    if depth == 0 {
        return Err(Error::corrupt(
            location,
            "directories nested deeper than pinvault writes them",
        ));
    }
    let sub = match dir.open_dir(name) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(location, e)),
    };
    for entry in sub.entries().map_err(|e| io_error(location, e))? {
        let child = String::from_utf8(entry).map_err(|_| {
            Error::corrupt(location, "an entry whose name is not UTF-8 (pinvault writes none)")
        })?;
        remove_tree(&sub, &child, &format!("{location}/{child}"), depth - 1)?;
    }
    match dir.rmdir(name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(location, e)),
    }
}
