//! The few system calls std does not offer, behind small safe wrappers: every operation is
//! relative to an open directory ([`Dir`]) and never follows a symbolic link.
//!
//! * `openat(.., O_NOFOLLOW)` for every open under the root, so a symlink planted in the tree
//!   fails with `ELOOP` instead of leading outside it; `mkdirat`, `unlinkat`, `linkat` (which
//!   links a symlink itself, never its target), `fstatat(.., AT_SYMLINK_NOFOLLOW)`.
//! * `renameat2(.., RENAME_NOREPLACE)` (Linux, called through `syscall` so it does not depend on
//!   the C library's version): the one atomic "create this name unless it exists" step that
//!   publication rests on. Elsewhere it fails with `ENOSYS`, which the caller turns into
//!   `Unsupported`.
//! * `flock(LOCK_EX | LOCK_NB)` on the root's `LOCK` file (polled, so a bounded wait never
//!   blocks a thread past its deadline), and `fsync` of a directory.
//!
//! Nothing here knows pinvault's layout; `paths` and the callers map errors onto
//! [`pinvault_core::Error`].

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    fn from_raw(st: &libc::stat) -> Stat {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        };
        let secs = u64::try_from(st.st_mtime).unwrap_or(0);
        let nanos = u64::try_from(st.st_mtime_nsec).unwrap_or(0);
        Stat {
            kind,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_nanos: secs.saturating_mul(1_000_000_000).saturating_add(nanos),
            #[allow(clippy::unnecessary_cast)]
            identity: (st.st_dev as u64, st.st_ino as u64),
        }
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Whether an error is "already exists" (a directory rename onto a non-empty one says
/// `ENOTEMPTY` on some filesystems).
pub fn is_exists(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY))
}

/// Whether an error says the filesystem or kernel cannot do the call at all.
pub fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL)
            | Some(libc::ENOSYS)
            | Some(libc::EOPNOTSUPP)
            | Some(libc::EPERM)
            | Some(libc::EXDEV)
    )
}

/// Whether an error comes from meeting a symlink (or a non-directory) where a directory or a
/// file was expected under `O_NOFOLLOW`.
pub fn is_link_or_not_dir(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

impl Dir {
    /// Opens the directory at `path`, following symlinks in `path` itself (the root is the
    /// caller's choice; only what lies under it is never followed).
    pub fn open_path(path: &Path) -> io::Result<Dir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let fd = check(unsafe {
            libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        })?;
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        Ok(Dir { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn openat(&self, name: &str, flags: libc::c_int, mode: libc::c_uint) -> io::Result<OwnedFd> {
        let c = c_name(name)?;
        // SAFETY: `c` is NUL-terminated and outlives the call; our fd is open.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                mode,
            )
        })?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens the subdirectory `name`; a symlink fails with `ELOOP`, a file with `ENOTDIR`.
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0).map(|fd| Dir { fd })
    }

    /// Opens the file `name` for reading; a symlink fails with `ELOOP`. `O_NONBLOCK` keeps a
    /// planted FIFO from blocking the open (the caller checks the kind with `fstat`).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_RDONLY | libc::O_NONBLOCK, 0).map(File::from)
    }

    /// Creates the file `name`, which must not exist, for writing.
    pub fn create_file(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644).map(File::from)
    }

    /// Creates the file `name` (which must not exist) for reading and writing.
    pub fn create_rw(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o644).map(File::from)
    }

    /// Opens the file `name` for reading and writing, creating it if `create`.
    pub fn open_rw(&self, name: &str, create: bool) -> io::Result<File> {
        let flags = libc::O_RDWR | if create { libc::O_CREAT } else { 0 };
        self.openat(name, flags, 0o644).map(File::from)
    }

    /// Creates the subdirectory `name`.
    pub fn mkdir(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o755) }).map(drop)
    }

    /// Removes the non-directory entry `name` (a symlink itself, never its target).
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }

    /// Removes the empty subdirectory `name`.
    pub fn rmdir(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
            .map(drop)
    }

    /// Makes `to/to_name` a hard link of `self/name` (flags 0: a symlink is not followed).
    pub fn link(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let (a, b) = (c_name(name)?, c_name(to_name)?);
        // SAFETY: both names are NUL-terminated and outlive the call; both fds are open.
        check(unsafe {
            libc::linkat(self.fd.as_raw_fd(), a.as_ptr(), to.fd.as_raw_fd(), b.as_ptr(), 0)
        })
        .map(drop)
    }

    /// Renames `self/name` to `to/to_name`, replacing a file there.
    pub fn rename(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let (a, b) = (c_name(name)?, c_name(to_name)?);
        // SAFETY: both names are NUL-terminated and outlive the call; both fds are open.
        check(unsafe {
            libc::renameat(self.fd.as_raw_fd(), a.as_ptr(), to.fd.as_raw_fd(), b.as_ptr())
        })
        .map(drop)
    }

    /// Renames `self/name` to `to/to_name` only if `to_name` does not exist, atomically
    /// (`renameat2` with `RENAME_NOREPLACE`): `EEXIST` when it does. `EINVAL` or `ENOSYS` when
    /// the filesystem or kernel cannot do it (then there is no safe fallback).
    pub fn rename_noreplace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<()> {
        let (a, b) = (c_name(name)?, c_name(to_name)?);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: renameat2 takes two (dirfd, path) pairs and flags; both names are
            // NUL-terminated and outlive the call; both fds are open.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    self.fd.as_raw_fd(),
                    a.as_ptr(),
                    to.fd.as_raw_fd(),
                    b.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            if ret < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (a, b, to);
            Err(io::Error::from_raw_os_error(libc::ENOSYS))
        }
    }

    /// `stat` of the entry `name`, not following a symlink.
    pub fn stat_at(&self, name: &str) -> io::Result<Stat> {
        let c = c_name(name)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `st` is a valid out-pointer for a `stat`; `c` outlives the call.
        check(unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: fstatat succeeded, so it filled `st`.
        Ok(Stat::from_raw(unsafe { &st.assume_init() }))
    }

    /// `stat` of this directory.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(self.fd.as_raw_fd())
    }

    /// `fsync` of the directory: makes its entries (creations, renames, links) durable.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: our fd is open.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(drop)
    }

    /// The names in this directory (without `.` and `..`), as raw bytes.
    pub fn entries(&self) -> io::Result<Vec<Vec<u8>>> {
        // A fresh open of "." has its own position, so concurrent listings never share one.
        let fd = self.openat(".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
        // SAFETY: `raw` is an open directory fd we own; on success the DIR takes it over.
        let dirp = unsafe { libc::fdopendir(raw) };
        if dirp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `raw` is still ours to close.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        struct Stream(*mut libc::DIR);
        impl Drop for Stream {
            fn drop(&mut self) {
                // SAFETY: the pointer came from a successful fdopendir and is closed once.
                unsafe { libc::closedir(self.0) };
            }
        }
        let stream = Stream(dirp);
        let mut out = Vec::new();
        loop {
            clear_errno();
            // SAFETY: the stream is open and only this thread uses it.
            let entry = unsafe { libc::readdir(stream.0) };
            if entry.is_null() {
                let e = io::Error::last_os_error();
                if e.raw_os_error().unwrap_or(0) != 0 {
                    return Err(e);
                }
                break;
            }
            // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated; it stays
            // valid until the next readdir on this stream, and we copy it out before that.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                out.push(name.to_vec());
            }
        }
        Ok(out)
    }
}

#[cfg(target_os = "linux")]
fn clear_errno() {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
}

#[cfg(not(target_os = "linux"))]
fn clear_errno() {}

/// `fstat` of an open file or directory.
pub fn fstat(fd: std::os::fd::RawFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer for a `stat`; the caller keeps `fd` open.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(Stat::from_raw(unsafe { &st.assume_init() }))
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when another open file
/// (in this process or another) holds it. Released when the file is closed.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: the file's fd is open for the duration of the call.
    match check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}
