//! The on-disk layout of a root directory, how names become path components, and the
//! no-follow file access every reader and writer goes through.
//!
//! ```text
//! <root>/LOCK                          flock'ed by the one writable instance (readers take none)
//! <root>/pins.log                      the pin log (see `log`)
//! <root>/staging/<stage id>/data       a staged object's bytes
//! <root>/staging/<stage id>/meta       its set, name, size, SHA-256 and staging time
//! <root>/staging/.tmp-<stage id>/      a staging being written, or one being removed
//! <root>/txn/t-<version>/              a publication being assembled
//! <root>/sets/<E(set)>/manifest        a published set: manifest bytes and object records
//! <root>/sets/<E(set)>/<E(name)>       its objects' bytes (hard links of the staged files)
//! ```
//!
//! # Names as path components
//!
//! [`encode`] maps a set or object name to **one** path component, so a name's `/` never
//! becomes a directory level and no name can reach outside its directory: `n-` followed by the
//! name with every byte outside `[a-z0-9._-]` written `%XX` (upper-case hex). The map is
//! injective (`%` itself is escaped), and stays injective on a case-insensitive filesystem
//! (every letter that passes through is lower-case, every escape upper-case). A component
//! longer than [`MAX_COMPONENT`] bytes (names may be 512 bytes; most filesystems allow 255 per
//! component) becomes `h-` and the SHA-256 of the name in hex instead; the set's real name is in
//! its manifest, and readers check that the manifest's name encodes to the directory's name.
//! Set `a/b` + object `c` is `sets/n-a%2Fb/n-c`; set `a` + object `b/c` is `sets/n-a/n-b%2Fc`.
//!
//! # Never following a link
//!
//! Every access under the root is an `*at` call relative to an open directory with
//! `O_NOFOLLOW` (see `sys`), component by component: a symlink (or a file where a
//! directory belongs) anywhere in the tree is reported as [`Error::Corrupt`] and never followed,
//! so nothing planted in the tree can make pinvault read or write outside its root.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pinvault_core::{publish, Error, PathProblem, Result};

use crate::sys::{self, Dir, Kind};
use crate::BACKEND;

/// Name of the lock file.
pub const LOCK: &str = "LOCK";
/// Name of the pin log.
pub const PINS_LOG: &str = "pins.log";
/// Name of a pin log being written by compaction (or creation).
pub const PINS_LOG_TMP: &str = "pins.log.tmp";
/// Directory of staged objects.
pub const STAGING: &str = "staging";
/// Directory of publications being assembled.
pub const TXN: &str = "txn";
/// Directory of published sets.
pub const SETS: &str = "sets";
/// A staged object's bytes, inside its staging directory.
pub const DATA: &str = "data";
/// A staged object's record, inside its staging directory.
pub const META: &str = "meta";
/// A published set's record, inside its set directory.
pub const MANIFEST: &str = "manifest";
/// Prefix of staging directories that are not (or no longer) staged objects.
pub const TMP_PREFIX: &str = ".tmp-";
/// Prefix of transaction directories.
pub const TXN_PREFIX: &str = "t-";

/// The longest `n-` component; a longer encoding becomes `h-<sha256>`.
pub const MAX_COMPONENT: usize = 200;

/// The one path component of a set or object name (see the module docs).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(2 + name.len());
    out.push_str("n-");
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.len() <= MAX_COMPONENT {
        out
    } else {
        format!("h-{}", hex::encode(publish::sha256(name.as_bytes())))
    }
}

/// What a component found on disk says about its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An `n-` component: the name itself.
    Name(String),
    /// An `h-` component: only the record inside knows the name.
    Hashed,
}

/// Decodes a component [`encode`] could have written; `None` for anything else (including a
/// non-canonical spelling such as `%61` for `a`).
pub fn decode(component: &[u8]) -> Option<Decoded> {
    let text = std::str::from_utf8(component).ok()?;
    if let Some(hash) = text.strip_prefix("h-") {
        let ok = hash.len() == 64
            && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return ok.then_some(Decoded::Hashed);
    }
    let body = text.strip_prefix("n-")?;
    let mut bytes = Vec::with_capacity(body.len());
    let mut iter = body.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hi = iter.next()?;
            let lo = iter.next()?;
            let pair = [hi, lo];
            let hex = std::str::from_utf8(&pair).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (encode(&name) == text).then_some(Decoded::Name(name))
}

/// Stage ids this backend hands out: `fs-<16 hex>-<8 hex>`.
pub fn stage_id(nanos: u64, counter: u64) -> String {
    format!("fs-{nanos:016x}-{:08x}", counter & 0xffff_ffff)
}

/// Whether `id` is a stage id this backend could have handed out, and so a safe component.
pub fn valid_stage_id(id: &str) -> bool {
    id.len() == 3 + 16 + 1 + 8
        && id.starts_with("fs-")
        && id.as_bytes()[19] == b'-'
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| i < 3 || i == 19 || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

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
    Error::backend(BACKEND, io::Error::new(e.kind(), format!("{location}: {e}")))
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

/// The longest pause between two tries of a held lock.
const LOCK_POLL_MAX: Duration = Duration::from_millis(50);

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

/// Takes the exclusive lock on `lock`, trying again with a growing pause (1 ms doubling up to
/// 50 ms) until `wait` has passed: polling, not a blocking `flock`, so no thread is ever
/// stuck past the deadline. [`Error::Unavailable`] names the lock file and the time waited.
fn wait_for_lock(lock: &File, lock_path: &Path, wait: Duration) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if sys::try_lock_exclusive(lock).map_err(|e| io_error(lock_path.display(), e))? {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= wait {
            let how_long = if wait.is_zero() {
                "did not wait: set a lock timeout (--lock-timeout SECONDS, or \
                 ?lock_timeout=SECONDS in the URL) to wait for it"
                    .to_owned()
            } else {
                format!("still held after waiting {:.1} s", waited.as_secs_f64())
            };
            return Err(Error::Unavailable {
                reason: format!(
                    "fs store {} is open for writing in another instance: its lock file {} is \
                     held ({how_long})",
                    lock_path.parent().unwrap_or(lock_path).display(),
                    lock_path.display()
                ),
                outcome_unknown: false,
            });
        }
        std::thread::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(LOCK_POLL_MAX);
    }
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

/// Frames a small record file: 8 magic bytes, the CRC-32 of the body (LE), the body.
pub fn seal(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks and strips [`seal`]'s frame.
pub fn unseal<'a>(magic: &[u8; 8], bytes: &'a [u8], location: &str) -> Result<&'a [u8]> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(Error::corrupt(location, "not a pinvault record (bad magic)"));
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        return Err(Error::corrupt(location, "checksum mismatch"));
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_one_component_and_round_trips() {
        for name in ["a", "a/b", "sales/date=2026-11-22", "ünïcode", "A%2F", "x.parquet", "..a"] {
            let c = encode(name);
            assert!(!c.contains('/') && c != "." && c != "..", "{c}");
            assert_eq!(decode(c.as_bytes()), Some(Decoded::Name(name.to_owned())), "{name}");
        }
    }

    #[test]
    fn look_alike_pairs_and_cases_stay_apart() {
        assert_ne!(encode("a/b"), encode("a"));
        assert_ne!(
            format!("{}/{}", encode("a/b"), encode("c")),
            format!("{}/{}", encode("a"), encode("b/c"))
        );
        assert_ne!(encode("A").to_lowercase(), encode("a").to_lowercase());
        assert_ne!(encode("%41").to_lowercase(), encode("A").to_lowercase());
    }

    #[test]
    fn long_names_are_hashed_and_non_canonical_spellings_refused() {
        let long = "x/".repeat(200) + "y";
        let c = encode(&long);
        assert!(c.starts_with("h-") && c.len() == 66);
        assert_eq!(decode(c.as_bytes()), Some(Decoded::Hashed));
        assert_ne!(encode(&(long.clone() + "z")), c);
        for bad in ["n-%61", "n-A", "n-%2f", "n-%2", "x-a", "h-abc", "manifest", ".tmp-x"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn stage_ids_are_checked() {
        let id = stage_id(0x1234, 7);
        assert!(valid_stage_id(&id), "{id}");
        for bad in
            ["../sets", "fs-", "fs-0000000000001234-0000000/", "fs-000000000000123X-00000007"]
        {
            assert!(!valid_stage_id(bad), "{bad}");
        }
    }
}
