//! Store directories: the identity marker every embedded store carries, and the one rule that
//! decides, at every open, whether a backend may open a directory.
//!
//! # Why
//!
//! Without a marker, `pinvault --url rocksdb:///D pin ls` on a directory holding an fs store
//! would list no pins, exit 0 and write a new RocksDB database among the fs store's files; and
//! a mistyped path would silently become a new, empty store. So each embedded backend (fs,
//! RocksDB, sled) calls [`claim`] before its engine touches the directory, and
//! [`Claim::commit`] once the engine has opened. The rule lives here, once.
//!
//! # The marker
//!
//! `<dir>/PINVAULT-STORE` ([`MARKER`]), a small JSON object:
//!
//! ```json
//! {
//!   "pinvault_store": 1,
//!   "backend": "rocksdb",
//!   "format": 1,
//!   "store_id": "9f1c0e5b7a3d4f2e8c6b1a0d9e8f7a6b",
//!   "created": "2026-11-29T05:41:07.512Z",
//!   "origin": "created"
//! }
//! ```
//!
//! `pinvault_store` is the marker's own schema ([`MARKER_SCHEMA`]); `backend` the backend that
//! owns the directory; `format` the version of that backend's on-disk layout (the files in the
//! directory: a newer one than the opener knows is refused with [`Error::Unsupported`]; the
//! records' format inside is the engine's, see `kv::layout`); `store_id` 128 random bits in
//! hex, so tools can tell two stores apart; `created` when the marker was written (RFC 3339,
//! UTC); `origin` `created` for a store made with a marker, `adopted` for a store made before
//! markers existed (see below). Unknown fields are ignored, so later versions may add some.
//!
//! It is written once, crash-safely: to a temporary file (`.PINVAULT-STORE.tmp-<random>`),
//! fsynced, then put in place with a hard link, which fails if a marker exists (two openers
//! racing on one new directory: exactly one marker wins, and the loser checks it as any opener
//! would), the temporary name removed and the directory fsynced. On a filesystem without hard
//! links it falls back to a rename.
//!
//! # The rule ([`claim`])
//!
//! | the directory | `CreateIfMissing` | `MustExist` |
//! |---|---|---|
//! | does not exist | created; a new store | [`Error::NoStore`], nothing created |
//! | empty (or only this backend's [scaffold](Layout::scaffold)) | a new store | [`Error::NoStore`] |
//! | has this backend's marker | opened | opened |
//! | has another backend's marker | [`Error::ForeignStore`] naming it | same |
//! | no marker, this backend's files ([`Layout::defining`]) | **adopted**: opened, marker written with `origin: adopted` | same |
//! | no marker, another backend's files | [`Error::ForeignStore`] naming that backend | same |
//! | no marker, other files | [`Error::ForeignStore`] listing them | same |
//! | a regular file, or under one | [`Error::Path`] (`NotADirectory`) | same |
//!
//! A marker whose schema or `format` is newer than the opener's is [`Error::Unsupported`]; a
//! marker that is not a regular file or does not parse is [`Error::Corrupt`]; a marked
//! directory missing every one of its backend's defining files (`pins.log`, `CURRENT`,
//! `conf`/`db`) is [`Error::Corrupt`], never re-created empty. `lost+found` (the root of a
//! fresh filesystem) and leftover temporary marker files are ignored.
//!
//! Adoption: stores made before markers existed hold their backend's files and no marker. The
//! first open (by any command, read-only ones too) recognises them by [`LEGACY_LAYOUTS`] (a
//! frozen table: every store created with a marker keeps it, so a new backend never needs
//! a row), writes the marker once with `origin: adopted`, and logs a `tracing` warning.
//!
//! # Crash safety of creation
//!
//! The marker is the last thing a new store gets: the engine creates its files first, then
//! [`Claim::commit`] writes the marker. A crash before the marker leaves either the engine's
//! scaffold only (treated as empty, so the next open creates the store again) or its defining
//! files (adopted by the next open of the same backend). So a marked store always has its
//! defining files, and one that lacks them was damaged.
//!
//! # What the rule does not cover
//!
//! Network backends (object stores, Scylla) have no directory: their stores are a bucket
//! prefix or a keyspace, and [`OpenMode`] does not apply to them. The memory backend has no
//! existing store to find.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, PathProblem, Result};

/// The marker's file name inside a store directory.
pub const MARKER: &str = "PINVAULT-STORE";

/// The marker schema this build writes and reads (the `pinvault_store` field).
pub const MARKER_SCHEMA: u32 = 1;

/// Prefix of a marker being written; ignored when deciding what a directory holds.
const TMP_PREFIX: &str = ".PINVAULT-STORE.tmp-";

/// A marker larger than this is not one pinvault wrote.
const MARKER_LIMIT: u64 = 64 * 1024;

/// Entries that may be in any directory and say nothing about a store.
const IGNORED: &[&str] = &["lost+found"];

/// How many unknown names an error lists before "and N more".
const NAMES_SHOWN: usize = 5;

/// Whether an open may create the store or must find one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Create the directory and a new store when there is none (writes and imports).
    #[default]
    CreateIfMissing,
    /// Refuse with [`Error::NoStore`] when there is no store; create nothing.
    MustExist,
    /// As [`OpenMode::MustExist`], for commands that only read: a backend that can read
    /// without writing changes nothing in the store (fs: no torn-tail repair, no compaction, no
    /// marker adoption). RocksDB opens a read-only instance (no lock, no info log, no WAL
    /// repair, no marker adoption), so it reads beside a live writer and on a read-only
    /// filesystem. sled has no read-only mode: it opens as in [`OpenMode::MustExist`] (its
    /// engine takes the lock and writes on open, and a store made before markers is adopted).
    ReadOnly,
}

/// How a store got its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Written when the store was created.
    Created,
    /// Written by the first open of a store made before markers existed.
    Adopted,
}

/// The contents of a `PINVAULT-STORE` marker (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The marker's schema version ([`MARKER_SCHEMA`]).
    pub pinvault_store: u32,
    /// The backend that owns the directory (`"fs"`, `"rocksdb"`, `"sled"`).
    pub backend: String,
    /// The version of the backend's on-disk layout.
    pub format: u32,
    /// 128 random bits in hex, naming this store.
    pub store_id: String,
    /// When the marker was written, RFC 3339 in UTC.
    pub created: String,
    /// Whether the store was created with the marker or adopted.
    pub origin: Origin,
}

impl Marker {
    fn new(backend: &str, format: u32, origin: Origin) -> Result<Marker> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| {
            Error::backend("store_dir", io::Error::other(format!("no random store id: {e}")))
        })?;
        Ok(Marker {
            pinvault_store: MARKER_SCHEMA,
            backend: backend.to_owned(),
            format,
            store_id: hex::encode(id),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            origin,
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} ({MARKER}: format {}, id {}, {} {})",
            a_store(&self.backend),
            self.format,
            self.store_id,
            match self.origin {
                Origin::Created => "created",
                Origin::Adopted => "adopted",
            },
            self.created
        )
    }
}

/// The files by which a backend's store made before markers is recognised.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// The backend.
    pub backend: &'static str,
    /// Entries any one of which means a store of this backend exists (its data is there).
    pub defining: &'static [&'static str],
    /// Entries the backend creates before any data, which a creation cut short by a crash can
    /// leave behind: a directory holding only these is treated as empty by this backend.
    /// `X*` matches a prefix, `*X` a suffix.
    pub scaffold: &'static [&'static str],
}

/// The embedded backends' files as they were before markers (frozen: see the module docs).
pub const LEGACY_LAYOUTS: &[Layout] = &[
    Layout {
        backend: "fs",
        defining: &["pins.log"],
        scaffold: &["LOCK", "staging", "txn", "sets", "pins.log.tmp", "pins.seq"],
    },
    Layout {
        backend: "rocksdb",
        defining: &["CURRENT"],
        scaffold: &["LOCK", "LOG", "LOG.old.*", "IDENTITY", "MANIFEST-000001", "*.dbtmp"],
    },
    Layout { backend: "sled", defining: &["conf", "db"], scaffold: &["blobs"] },
];

/// The legacy layout of `backend`, if it had stores before markers.
pub fn layout(backend: &str) -> Option<&'static Layout> {
    LEGACY_LAYOUTS.iter().find(|l| l.backend == backend)
}

/// `"a rocksdb store"`, `"an fs store"`: a backend's store in messages.
pub fn a_store(backend: &str) -> String {
    // "fs" is read letter by letter ("eff-ess").
    let an = backend == "fs" || backend.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {backend} store", if an { "an" } else { "a" })
}

fn matches(pattern: &str, name: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        name.starts_with(prefix)
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        name.ends_with(suffix)
    } else {
        name == pattern
    }
}

/// The result of [`claim`]: the directory may be opened by the backend. Open the engine
/// (creating its files only when [`Claim::is_new`]), then [`Claim::commit`].
#[must_use = "a claim writes the marker only when committed"]
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    backend: &'static str,
    format: u32,
    state: State,
}

#[derive(Debug)]
enum State {
    New,
    Adopt,
    Marked(Marker),
}

impl Claim {
    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when there is no store yet: the engine must create one (and only then).
    pub fn is_new(&self) -> bool {
        matches!(self.state, State::New)
    }

    /// True when this open adopts a store made before markers.
    pub fn is_adoption(&self) -> bool {
        matches!(self.state, State::Adopt)
    }

    /// The marker found, for a store that has one.
    pub fn marker(&self) -> Option<&Marker> {
        match &self.state {
            State::Marked(marker) => Some(marker),
            _ => None,
        }
    }

    /// Writes the marker of a new or adopted store (crash-safely, see the module docs) and
    /// returns the marker now in place; for a marked store, returns its marker.
    pub fn commit(self) -> Result<Marker> {
        let origin = match self.state {
            State::Marked(marker) => return Ok(marker),
            State::New => Origin::Created,
            State::Adopt => Origin::Adopted,
        };
        let marker = Marker::new(self.backend, self.format, origin)?;
        let placed = write_marker(&self.path, &marker, self.backend)?;
        if placed == marker && origin == Origin::Adopted {
            tracing::warn!(
                path = %self.path.display(),
                backend = self.backend,
                store_id = %marker.store_id,
                "adopted a store made before store markers: wrote {MARKER}"
            );
        }
        Ok(placed)
    }
}

/// Decides whether `backend` (whose on-disk layout version is `format`) may open the store
/// directory `dir` in `mode`, by the rule in the module docs. Creates the directory (and
/// nothing else) for a new store in [`OpenMode::CreateIfMissing`]; never writes otherwise.
pub fn claim(dir: &Path, backend: &'static str, format: u32, mode: OpenMode) -> Result<Claim> {
    let claim = |state| Claim { path: dir.to_path_buf(), backend, format, state };
    match inspect(dir, backend)? {
        Contents::Missing => match mode {
            OpenMode::MustExist | OpenMode::ReadOnly => {
                Err(Error::NoStore { path: dir.to_path_buf() })
            }
            OpenMode::CreateIfMissing => {
                create_dir(dir, backend)?;
                Ok(claim(State::New))
            }
        },
        Contents::Entries(names) => {
            let found: Vec<(&Layout, Vec<&String>)> = LEGACY_LAYOUTS
                .iter()
                .filter_map(|l| {
                    let hits: Vec<&String> =
                        names.iter().filter(|n| l.defining.iter().any(|p| matches(p, n))).collect();
                    (!hits.is_empty()).then_some((l, hits))
                })
                .collect();
            let foreign =
                |found: String| Error::ForeignStore { path: dir.to_path_buf(), backend, found };
            match found.as_slice() {
                [] => {
                    let scaffold = layout(backend).map_or(&[][..], |l| l.scaffold);
                    let unknown: Vec<&String> =
                        names.iter().filter(|n| !scaffold.iter().any(|p| matches(p, n))).collect();
                    if !unknown.is_empty() {
                        return Err(foreign(format!(
                            "files pinvault did not write and no {MARKER} marker ({})",
                            list(&unknown)
                        )));
                    }
                    match mode {
                        OpenMode::MustExist | OpenMode::ReadOnly => {
                            Err(Error::NoStore { path: dir.to_path_buf() })
                        }
                        OpenMode::CreateIfMissing => Ok(claim(State::New)),
                    }
                }
                [(l, _)] if l.backend == backend => Ok(claim(State::Adopt)),
                [(l, hits)] => Err(foreign(format!(
                    "{} made before store markers (it has {})",
                    a_store(l.backend),
                    list(hits)
                ))),
                several => Err(foreign(format!(
                    "files of several backends' stores and no {MARKER} marker ({})",
                    several
                        .iter()
                        .map(|(l, hits)| format!("{}: {}", l.backend, list(hits)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))),
            }
        }
        Contents::Marked(marker) => {
            check_marker(dir, &marker, backend, format)?;
            if let Some(l) = layout(backend) {
                let has_data =
                    l.defining.iter().any(|name| fs::symlink_metadata(dir.join(name)).is_ok());
                if !has_data {
                    return Err(Error::corrupt(
                        dir.display().to_string(),
                        format!(
                            "{MARKER} says {} lives here, but its {} is missing",
                            a_store(backend),
                            l.defining.join(" and ")
                        ),
                    ));
                }
            }
            Ok(claim(State::Marked(marker)))
        }
    }
}

/// Reads the marker of `dir`: `Ok(None)` when there is none.
pub fn read_marker(dir: &Path) -> Result<Option<Marker>> {
    let path = dir.join(MARKER);
    let location = path.display().to_string();
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path, "store_dir", e)),
    };
    if !meta.is_file() {
        return Err(Error::corrupt(location, "the store marker is not a regular file"));
    }
    if meta.len() > MARKER_LIMIT {
        return Err(Error::corrupt(location, format!("{} bytes: not a store marker", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(&path)
        .and_then(|f| f.take(MARKER_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| io_error(&path, "store_dir", e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::corrupt(location, format!("not a store marker: {e}")).with_source(e))
}

enum Contents {
    Missing,
    /// No marker; the entries that count (may be empty).
    Entries(Vec<String>),
    Marked(Marker),
}

fn inspect(dir: &Path, backend: &'static str) -> Result<Contents> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Path {
                path: dir.to_path_buf(),
                problem: PathProblem::NotADirectory,
                source: io::Error::new(io::ErrorKind::NotADirectory, "it is a file"),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::Missing),
        Err(e) => return Err(io_error(dir, backend, e)),
    }
    if let Some(marker) = read_marker(dir)? {
        return Ok(Contents::Marked(marker));
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, backend, e))? {
        let name = entry.map_err(|e| io_error(dir, backend, e))?.file_name();
        let name = name.to_string_lossy().into_owned();
        if !IGNORED.contains(&name.as_str()) && !name.starts_with(TMP_PREFIX) {
            names.push(name);
        }
    }
    names.sort();
    Ok(Contents::Entries(names))
}

fn check_marker(dir: &Path, marker: &Marker, backend: &'static str, format: u32) -> Result<()> {
    if marker.pinvault_store > MARKER_SCHEMA {
        return Err(Error::unsupported(
            backend,
            format!(
                "opening {}: its {MARKER} has schema {}, this build of pinvault reads up to {MARKER_SCHEMA}",
                dir.display(),
                marker.pinvault_store
            ),
        ));
    }
    if marker.backend != backend {
        return Err(Error::ForeignStore {
            path: dir.to_path_buf(),
            backend,
            found: marker.describe(),
        });
    }
    if marker.format > format {
        return Err(Error::unsupported(
            backend,
            format!(
                "opening {}: its store format {} is newer than this build's {format}",
                dir.display(),
                marker.format
            ),
        ));
    }
    Ok(())
}

/// `a, b, c (and 4 more)`.
fn list(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(|n| n.as_str()).collect();
    let mut text = shown.join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

/// An I/O failure at `path`: [`Error::Path`] for a [`PathProblem`], else a backend error
/// naming the path.
fn io_error(path: &Path, backend: &'static str, e: io::Error) -> Error {
    Error::io_at(backend, path, e)
}

/// Creates `dir` (and missing parents) and fsyncs the parent that names it.
fn create_dir(dir: &Path, backend: &'static str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, backend, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent).map_err(|e| io_error(parent, backend, e))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Puts `marker` in place unless one is there already; returns the marker in place (ours, or
/// the one another opener placed first, checked like any found marker).
fn write_marker(dir: &Path, marker: &Marker, backend: &'static str) -> Result<Marker> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix)
        .map_err(|e| Error::backend(backend, io::Error::other(format!("no random name: {e}"))))?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}", hex::encode(suffix)));
    let path = dir.join(MARKER);
    let mut body = serde_json::to_vec_pretty(marker)
        .map_err(|e| Error::backend(backend, io::Error::other(e)))?;
    body.push(b'\n');
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp, backend, e));
    }
    let placed = match fs::hard_link(&tmp, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // A filesystem without hard links: a rename, after checking there is no marker (the
        // check and the rename are not one step there; two racing creators of one directory
        // then write equivalent markers, the last one staying).
        Err(_) => match fs::symlink_metadata(&path) {
            Ok(_) => Ok(false),
            Err(_) => fs::rename(&tmp, &path).map(|()| true),
        },
    };
    let _ = fs::remove_file(&tmp);
    let placed = placed.map_err(|e| io_error(&path, backend, e))?;
    sync_dir(dir).map_err(|e| io_error(dir, backend, e))?;
    if placed {
        return Ok(marker.clone());
    }
    let theirs = read_marker(dir)?.ok_or_else(|| {
        Error::corrupt(path.display().to_string(), "the store marker vanished while written")
    })?;
    check_marker(dir, &theirs, backend, marker.format)?;
    Ok(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: u32 = 1;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), b"x").expect("write");
    }

    #[test]
    fn missing_directory_is_created_or_refused_by_mode() {
        let root = tmp();
        let dir = root.path().join("a/b/store");
        match claim(&dir, "fs", FORMAT, OpenMode::MustExist) {
            Err(Error::NoStore { path }) => assert_eq!(path, dir),
            other => panic!("{other:?}"),
        }
        assert!(!root.path().join("a").exists(), "MustExist creates nothing");
        let claimed = claim(&dir, "fs", FORMAT, OpenMode::CreateIfMissing).expect("claim");
        assert!(claimed.is_new() && dir.is_dir());
        assert!(read_marker(&dir).expect("read").is_none(), "no marker before commit");
        touch(&dir, "pins.log");
        let marker = claimed.commit().expect("commit");
        assert_eq!(
            (marker.backend.as_str(), marker.format, marker.origin),
            ("fs", 1, Origin::Created)
        );
        assert_eq!(marker.store_id.len(), 32);
        assert_eq!(read_marker(&dir).expect("read"), Some(marker.clone()));
        let again = claim(&dir, "fs", FORMAT, OpenMode::MustExist).expect("reopen");
        assert!(!again.is_new() && !again.is_adoption());
        assert_eq!(again.commit().expect("commit"), marker, "a marker is written once");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(TMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn empty_or_scaffold_only_is_new_or_no_store() {
        let root = tmp();
        for (backend, leftovers) in [
            ("fs", &["LOCK", "staging", "sets"][..]),
            ("rocksdb", &["LOCK", "LOG", "LOG.old.1"]),
            ("sled", &[]),
        ] {
            let dir = root.path().join(backend);
            fs::create_dir(&dir).unwrap();
            fs::create_dir(dir.join("lost+found")).unwrap();
            touch(&dir, &format!("{TMP_PREFIX}0011"));
            for name in leftovers {
                touch(&dir, name);
            }
            assert!(matches!(
                claim(&dir, backend, FORMAT, OpenMode::MustExist),
                Err(Error::NoStore { .. })
            ));
            assert!(claim(&dir, backend, FORMAT, OpenMode::CreateIfMissing).unwrap().is_new());
        }
    }

    #[test]
    fn other_backends_and_unknown_files_are_foreign() {
        let root = tmp();
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "rocksdb",
                &["pins.log", "LOCK"],
                "an fs store made before store markers (it has pins.log)",
            ),
            ("sled", &["CURRENT", "OPTIONS-000007"], "a rocksdb store"),
            (
                "fs",
                &["conf", "db", "blobs"],
                "a sled store made before store markers (it has conf, db)",
            ),
            (
                "fs",
                &["notes.txt", "photo.jpg"],
                "files pinvault did not write and no PINVAULT-STORE marker (notes.txt, photo.jpg)",
            ),
            ("rocksdb", &["staging"], "files pinvault did not write"),
            ("sled", &["pins.log", "CURRENT"], "files of several backends' stores"),
        ];
        for (i, (backend, files, expected)) in cases.iter().enumerate() {
            let dir = root.path().join(format!("case-{i}"));
            fs::create_dir(&dir).unwrap();
            for name in *files {
                touch(&dir, name);
            }
            for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
                match claim(&dir, backend, FORMAT, mode) {
                    Err(e @ Error::ForeignStore { .. }) => {
                        assert!(e.to_string().contains(expected), "{e}");
                        assert!(
                            e.to_string().contains(&format!("is not {}", a_store(backend))),
                            "{e}"
                        );
                    }
                    other => panic!("{backend} {files:?}: {other:?}"),
                }
            }
            assert_eq!(fs::read_dir(&dir).unwrap().count(), files.len(), "nothing written");
        }
        let many = root.path().join("many");
        fs::create_dir(&many).unwrap();
        for i in 0..8 {
            touch(&many, &format!("f{i}"));
        }
        let e = claim(&many, "fs", FORMAT, OpenMode::CreateIfMissing).unwrap_err().to_string();
        assert!(e.contains("f0, f1, f2, f3, f4 and 3 more"), "{e}");
    }

    #[test]
    fn marker_decides_and_is_checked() {
        let root = tmp();
        let dir = root.path().join("store");
        fs::create_dir(&dir).unwrap();
        touch(&dir, "CURRENT");
        let rocks = claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist).expect("legacy");
        assert!(rocks.is_adoption());
        let marker = rocks.commit().expect("adopt");
        assert_eq!(marker.origin, Origin::Adopted);
        match claim(&dir, "fs", FORMAT, OpenMode::CreateIfMissing) {
            Err(e @ Error::ForeignStore { .. }) => {
                let text = e.to_string();
                assert!(text.contains("a rocksdb store (PINVAULT-STORE: format 1"), "{text}");
                assert!(text.contains(&marker.store_id), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            claim(&dir, "rocksdb", 0, OpenMode::MustExist),
            Err(Error::Unsupported { .. })
        ));
        fs::remove_file(dir.join("CURRENT")).unwrap();
        match claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("CURRENT is missing"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        touch(&dir, "CURRENT");
        let newer = serde_json::to_string(&Marker { pinvault_store: 2, ..marker.clone() }).unwrap();
        fs::write(dir.join(MARKER), newer).unwrap();
        assert!(matches!(
            claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist),
            Err(Error::Unsupported { .. })
        ));
        fs::write(dir.join(MARKER), b"{\"backend\": ").unwrap();
        assert!(matches!(
            claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist),
            Err(Error::Corrupt { .. })
        ));
        fs::remove_file(dir.join(MARKER)).unwrap();
        fs::create_dir(dir.join(MARKER)).unwrap();
        assert!(matches!(
            claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist),
            Err(Error::Corrupt { .. })
        ));
        let mut extended = serde_json::to_value(&marker).unwrap();
        extended["written_by"] = "a later pinvault".into();
        fs::remove_dir(dir.join(MARKER)).unwrap();
        fs::write(dir.join(MARKER), extended.to_string()).unwrap();
        assert_eq!(
            claim(&dir, "rocksdb", FORMAT, OpenMode::MustExist).unwrap().marker(),
            Some(&marker)
        );
    }

    #[test]
    fn a_file_in_the_path_is_not_a_directory() {
        let root = tmp();
        let file = root.path().join("file");
        touch(root.path(), "file");
        for dir in [file.clone(), file.join("store"), file.join("a/store")] {
            for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
                match claim(&dir, "sled", FORMAT, mode) {
                    Err(Error::Path { problem: PathProblem::NotADirectory, path, .. }) => {
                        assert_eq!(path, dir)
                    }
                    other => panic!("{}: {other:?}", dir.display()),
                }
            }
        }
    }

    #[test]
    fn io_errors_map_to_path_problems() {
        let cases = [
            (13, Some(PathProblem::PermissionDenied)),
            (1, Some(PathProblem::PermissionDenied)),
            (20, Some(PathProblem::NotADirectory)),
            (30, Some(PathProblem::ReadOnlyFilesystem)),
            (28, Some(PathProblem::NoSpace)),
            (5, None),
        ];
        for (errno, problem) in cases {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(PathProblem::of(&e), problem, "errno {errno}");
            assert_eq!(PathProblem::from_message(&e.to_string()), problem, "{e}");
        }
    }

    #[test]
    fn racing_creators_leave_one_marker() {
        let root = tmp();
        let dir = root.path().join("store");
        let claims: Vec<Claim> = (0..4)
            .map(|_| claim(&dir, "fs", FORMAT, OpenMode::CreateIfMissing).expect("claim"))
            .collect();
        touch(&dir, "pins.log");
        let markers: Vec<Marker> = std::thread::scope(|s| {
            let handles: Vec<_> = claims.into_iter().map(|c| s.spawn(move || c.commit())).collect();
            handles.into_iter().map(|h| h.join().unwrap().expect("commit")).collect()
        });
        assert!(markers.windows(2).all(|w| w[0] == w[1]), "{markers:?}");
        assert_eq!(read_marker(&dir).unwrap().as_ref(), markers.first());
    }
}
