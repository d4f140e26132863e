//! The few system calls std does not offer, through `rustix` (no `unsafe` here, and no C
//! library's `errno`: on Linux rustix makes the system calls itself): every operation is
//! relative to an open directory ([`Dir`]) and never follows a symbolic link.
//!
//! * `openat(.., O_NOFOLLOW)` for every open under the root, so a symlink planted in the tree
//!   fails with `ELOOP` instead of leading outside it; `mkdirat`, `unlinkat`, `linkat` (which
//!   links a symlink itself, never its target), `fstatat(.., AT_SYMLINK_NOFOLLOW)`.
//! * `renameat2(.., RENAME_NOREPLACE)` (Linux): the one atomic "create this name unless it
//!   exists" step that publication rests on. Where the filesystem or kernel lacks it, it fails
//!   with `EINVAL` or `ENOSYS` ([`is_rename_unsupported`]), which the caller turns into
//!   `Unsupported`.
//! * `flock(LOCK_EX | LOCK_NB)` on the root's `LOCK` file (polled, so a bounded wait never
//!   blocks a thread past its deadline), `fsync` of a directory, and reading a directory's
//!   entries.
//!
//! Errors are `std::io::Error`s carrying the OS error number, so `PathProblem::of` and the
//! `is_*` helpers below classify them; nothing here knows pinvault's layout (`root` and the
//! callers map errors onto [`pinvault_core::Error`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

/// An open directory: the anchor of every `*at` call.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// What an entry is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// The parts of `stat` pinvault uses.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    /// What the entry is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 before it).
    pub mtime_nanos: u64,
    /// Device and inode: which file this is, so a reader can tell a file renamed over a name
    /// from the one it opened.
    pub identity: (u64, u64),
}

impl Stat {
    // The field types differ between architectures (u32 or u64): hence the casts.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &rustix::fs::Stat) -> Stat {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let secs = u64::try_from(st.st_mtime).unwrap_or(0);
        let nanos = st.st_mtime_nsec as u64;
        Stat {
            kind,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_nanos: secs.saturating_mul(1_000_000_000).saturating_add(nanos),
            identity: (st.st_dev as u64, st.st_ino as u64),
        }
    }
}

/// Files pinvault creates: `rw-r--r--`, less the umask.
const FILE_MODE: Mode = Mode::from_raw_mode(0o644);
/// Directories pinvault creates: `rwxr-xr-x`, less the umask.
const DIR_MODE: Mode = Mode::from_raw_mode(0o755);

fn errno(e: &io::Error) -> Option<Errno> {
    Errno::from_io_error(e)
}

/// Whether an error is "already exists" (a directory rename onto a non-empty one says
/// `ENOTEMPTY` on some filesystems).
pub fn is_exists(e: &io::Error) -> bool {
    matches!(errno(e), Some(Errno::EXIST | Errno::NOTEMPTY))
}

/// Whether an error says the filesystem or kernel cannot do the call at all.
pub fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        errno(e),
        Some(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM | Errno::XDEV)
    )
}

/// Whether a [`Dir::rename_noreplace`] error says the filesystem or kernel cannot do a
/// no-replace rename at all.
pub fn is_rename_unsupported(e: &io::Error) -> bool {
    matches!(errno(e), Some(Errno::INVAL | Errno::NOSYS))
}

/// Whether an error comes from meeting a symlink (or a non-directory) where a directory or a
/// file was expected under `O_NOFOLLOW`.
pub fn is_link_or_not_dir(e: &io::Error) -> bool {
    matches!(errno(e), Some(Errno::LOOP | Errno::NOTDIR))
}

impl Dir {
    /// Opens the directory at `path`, following symlinks in `path` itself (the root is the
    /// caller's choice; only what lies under it is never followed).
    pub fn open_path(path: &Path) -> io::Result<Dir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Dir { fd })
    }

    fn openat(&self, name: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        Ok(rustix::fs::openat(&self.fd, name, flags, mode)?)
    }

    /// Opens the subdirectory `name`; a symlink fails with `ELOOP`, a file with `ENOTDIR`.
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        self.openat(name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).map(|fd| Dir { fd })
    }

    /// Opens the file `name` for reading; a symlink fails with `ELOOP`. `O_NONBLOCK` keeps a
    /// planted FIFO from blocking the open (the caller checks the kind with `fstat`).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        self.openat(name, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).map(File::from)
    }

    /// Creates the file `name`, which must not exist, for writing.
    pub fn create_file(&self, name: &str) -> io::Result<File> {
        self.openat(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, FILE_MODE).map(File::from)
    }

    /// Creates the file `name` (which must not exist) for reading and writing.
    pub fn create_rw(&self, name: &str) -> io::Result<File> {
        self.openat(name, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, FILE_MODE).map(File::from)
    }

    /// Opens the file `name` for reading and writing, creating it if `create`.
    pub fn open_rw(&self, name: &str, create: bool) -> io::Result<File> {
        let flags = if create { OFlags::RDWR | OFlags::CREATE } else { OFlags::RDWR };
        self.openat(name, flags, FILE_MODE).map(File::from)
    }

    /// Creates the subdirectory `name`.
    pub fn mkdir(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(&self.fd, name, DIR_MODE)?)
    }

    /// Removes the non-directory entry `name` (a symlink itself, never its target).
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Removes the empty subdirectory `name`.
    pub fn rmdir(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// Makes `to/to_name` a hard link of `self/name` (no `AT_SYMLINK_FOLLOW`: a symlink is
    /// linked itself, not followed).
    pub fn link(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        Ok(rustix::fs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty())?)
    }

    /// Renames `self/name` to `to/to_name`, replacing a file there.
    pub fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, name, &to.fd, to_name)?)
    }

    /// Renames `self/name` to `to/to_name` only if `to_name` does not exist, atomically
    /// (`renameat2` with `RENAME_NOREPLACE`): `EEXIST` when it does. `EINVAL` or `ENOSYS` when
    /// the filesystem or kernel cannot do it (then there is no safe fallback).
    #[cfg(target_os = "linux")]
    pub fn rename_noreplace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let flags = rustix::fs::RenameFlags::NOREPLACE;
        Ok(rustix::fs::renameat_with(&self.fd, name, &to.fd, to_name, flags)?)
    }

    /// Elsewhere than Linux there is no `renameat2`: `ENOSYS`, and publication is refused.
    #[cfg(not(target_os = "linux"))]
    pub fn rename_noreplace(&self, _name: &str, _to: &Dir, _to_name: &str) -> io::Result<()> {
        Err(Errno::NOSYS.into())
    }

    /// `stat` of the entry `name`, not following a symlink.
    pub fn stat_at(&self, name: &str) -> io::Result<Stat> {
        let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Stat::from_raw(&st))
    }

    /// `stat` of this directory.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(&self.fd)
    }

    /// `fsync` of the directory: makes its entries (creations, renames, links) durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// The names in this directory (without `.` and `..`), as raw bytes.
    pub fn entries(&self) -> io::Result<Vec<Vec<u8>>> {
        // A fresh open of "." has its own position, so concurrent listings never share one.
        let fd = self.openat(".", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::new(fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(name.to_vec());
            }
        }
        Ok(out)
    }
}

/// `fstat` of an open file or directory.
pub fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    Ok(Stat::from_raw(&rustix::fs::fstat(fd)?))
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when another open file
/// (in this process or another) holds it. Released when the file is closed.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_their_os_error_number() {
        let e = |errno: Errno| io::Error::from(errno);
        assert!(is_exists(&e(Errno::EXIST)) && is_exists(&e(Errno::NOTEMPTY)));
        assert!(is_rename_unsupported(&e(Errno::INVAL)) && is_rename_unsupported(&e(Errno::NOSYS)));
        assert!(!is_rename_unsupported(&e(Errno::EXIST)));
        for errno in [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP, Errno::PERM, Errno::XDEV] {
            assert!(is_unsupported(&e(errno)), "{errno:?}");
        }
        assert!(is_link_or_not_dir(&e(Errno::LOOP)) && is_link_or_not_dir(&e(Errno::NOTDIR)));
        assert!(!is_exists(&io::Error::other("no number")));
        assert_eq!(e(Errno::NOENT).kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn calls_stay_in_the_directory_and_never_follow_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_path(tmp.path()).unwrap();
        drop(dir.create_file("a").unwrap());
        drop(dir.create_file("b").unwrap());
        dir.mkdir("d").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("a"), tmp.path().join("l")).unwrap();

        assert!(is_exists(&dir.rename_noreplace("a", &dir, "b").unwrap_err()));
        assert!(is_link_or_not_dir(&dir.open_file("l").unwrap_err()));
        assert!(is_link_or_not_dir(&dir.open_dir("a").unwrap_err()));
        assert_eq!(dir.stat_at("l").unwrap().kind, Kind::Symlink);
        assert_eq!(dir.stat_at("d").unwrap().kind, Kind::Dir);
        dir.link("a", &dir.open_dir("d").unwrap(), "a2").unwrap();
        assert_eq!(
            dir.stat_at("a").unwrap().identity,
            dir.open_dir("d").unwrap().stat_at("a2").unwrap().identity
        );

        let mut names = dir.entries().unwrap();
        names.sort();
        assert_eq!(names, [b"a".to_vec(), b"b".to_vec(), b"d".to_vec(), b"l".to_vec()]);

        let (first, second) =
            (dir.open_rw("LOCK", true).unwrap(), dir.open_rw("LOCK", false).unwrap());
        assert!(try_lock_exclusive(&first).unwrap());
        assert!(!try_lock_exclusive(&second).unwrap());
        drop(first);
        assert!(try_lock_exclusive(&second).unwrap());
    }
}
