//! Atomic publication on a directory tree: staging directories, a transaction directory
//! assembled from hard links, and **one** `renameat2(RENAME_NOREPLACE)` that publishes it.
//!
//! * **stage** writes `data` and `meta` into `staging/.tmp-<id>/`, fsyncs both files and the
//!   directory, renames it to `staging/<id>` (no-replace), and fsyncs `staging/`. A staged
//!   object is therefore either complete or absent; readers never look in `staging/`.
//! * **finalize** checks, in the contract's order, the input ([`publish::validate_finalize`]),
//!   then `AlreadyExists` (the set's directory exists), then `NotFound` (each staged object is
//!   still there with the same set, name, size and SHA-256). It then builds `txn/t-<version>/`
//!   from a `manifest` file (the caller's bytes and the object records) and a hard link of each
//!   staged `data` file, fsyncs the files and the directory, and renames the whole directory to
//!   `sets/<E(set)>` with `RENAME_NOREPLACE`: **that rename is the commit point**, atomic on a
//!   local filesystem, and it fails with `EEXIST` when another finalizer won. Then `sets/` is
//!   fsynced and the staging entries are removed (a crash there leaves harmless staging links,
//!   which `abort` or `sweep` remove; the published files are other links to the same inodes).
//!   Hard links (not renames) keep the staged objects staged until the publication succeeds,
//!   so a losing or failing finalize leaves them for the caller to abort. A filesystem that
//!   cannot do `RENAME_NOREPLACE` or hard links is detected at open; publication is then
//!   refused with `Unsupported` rather than done with a racy check-then-rename.
//! * **abort** and **sweep** first rename a staging directory to a `.tmp-del-` name (atomic),
//!   then delete it, so a crash mid-way never leaves a half-removed staged object that looks
//!   staged. `sweep(cutoff)` removes staged objects staged before `cutoff` (counted in the
//!   report), and crash leftovers older than `cutoff` (unfinished stagings and removals in
//!   `staging/`, unpublished transactions in `txn/`; not counted). It touches nothing else.
//! * **readers** (`head`, `get`, `publication`, `list`) read only `sets/`, never through a
//!   symlink, and check that each manifest names the set its directory encodes. `get` checks
//!   the object's size and SHA-256 against its record. `list` reads the names in `sets/`
//!   (decoding them, so only candidate sets' manifests are read) and sorts the matching
//!   objects by `set/name` text, then set: it costs one directory listing per call and holds
//!   the matching records in memory, like the memory model.
//!
//! Concurrency: `stage` and `finalize` share a gate that `abort` and `sweep` take exclusively,
//! so a sweep never deletes a staging or a transaction being built; concurrent finalizers of
//! one set race only at the no-replace rename, where exactly one wins. Other processes are
//! kept out by the root's lock.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use pinvault_core::clock::{MonotonicClock, Resolution};
use pinvault_core::name::{ObjectKey, ObjectName, SetName};
use pinvault_core::publish::{self, ObjectMeta, Publication, StagedObject, SweepReport};
use pinvault_core::{Error, FaultInjector, Result, Version};
use prost::Message;

use crate::names::{
    self, Decoded, DATA, MANIFEST, META, SETS, STAGING, TMP_PREFIX, TXN, TXN_PREFIX,
};
use crate::root::{self, io_error, Root};
use crate::sealed::{seal, unseal};
use crate::sys::{self, Dir, Kind};
use crate::BACKEND;

/// Crash point: a staging directory is complete under its temporary name, not yet renamed.
pub const STAGE_PREPARED: &str = "fs.stage.prepared";
/// Crash point: an object is staged (renamed into `staging/` and fsynced).
pub const STAGE_WRITTEN: &str = "fs.stage.written";
/// Crash point: a finalize passed every check, nothing is written yet.
pub const FINALIZE_VALIDATED: &str = "fs.finalize.validated";
/// Crash point: the transaction directory is complete and fsynced, not yet renamed.
pub const FINALIZE_LINKED: &str = "fs.finalize.linked";
/// Crash point: the set is published (renamed, `sets/` fsynced); staging not yet cleaned.
pub const FINALIZE_RENAMED: &str = "fs.finalize.renamed";

/// Largest object `stage` accepts: 64 MiB, as the other backends (`stage` and `get` hold the
/// whole object in memory).
pub const MAX_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

const META_MAGIC: &[u8; 8] = b"PVSTAGE1";
const MANIFEST_MAGIC: &[u8; 8] = b"PVSET001";
/// Largest record file pinvault reads (a manifest is at most 16 MiB plus its object records).
const RECORD_LIMIT: u64 = 1 << 30;

/// A staged object's `meta` file (prost; field tags are the stored format, which is byte for
/// byte the KV layer's staged record, as written before this backend had its own type).
#[derive(Clone, PartialEq, Message)]
struct StagedFile {
    #[prost(string, tag = "1")]
    set: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(uint64, tag = "3")]
    size: u64,
    /// SHA-256 of the bytes.
    #[prost(bytes = "vec", tag = "4")]
    sha256: Vec<u8>,
    /// Staging time: Unix seconds, then nanoseconds.
    #[prost(int64, tag = "5")]
    staged_secs: i64,
    #[prost(uint32, tag = "6")]
    staged_nanos: u32,
}

impl StagedFile {
    fn of(s: &StagedObject) -> Self {
        StagedFile {
            set: s.set.to_string(),
            name: s.name.to_string(),
            size: s.size,
            sha256: s.sha256.to_vec(),
            staged_secs: s.staged_at.timestamp(),
            staged_nanos: s.staged_at.timestamp_subsec_nanos(),
        }
    }
}

/// A UTC time from Unix seconds and nanoseconds; `None` when out of range.
fn time(secs: i64, nanos: u32) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, nanos).single()
}

/// A published set's `manifest` file (prost; field tags are the stored format).
#[derive(Clone, PartialEq, Message)]
struct SetFile {
    #[prost(string, tag = "1")]
    set: String,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(int64, tag = "3")]
    published_secs: i64,
    #[prost(uint32, tag = "4")]
    published_nanos: u32,
    #[prost(bytes = "vec", tag = "5")]
    manifest: Vec<u8>,
    #[prost(message, repeated, tag = "6")]
    objects: Vec<ObjectFile>,
}

/// One object of a [`SetFile`]; its bytes are the file `E(name)` beside the manifest.
#[derive(Clone, PartialEq, Message)]
struct ObjectFile {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint64, tag = "2")]
    size: u64,
    #[prost(bytes = "vec", tag = "3")]
    sha256: Vec<u8>,
}

fn nanos(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// The error for a staged object that is no longer staged: `AlreadyExists` when the set has
/// been published meanwhile (only a concurrent finalizer of this set, having published these
/// very objects, removes a checked staging; the contract's order wants `AlreadyExists` then),
/// `NotFound` otherwise.
fn staged_object_gone(sets: &Dir, set_dir: &str, set: &SetName, s: &StagedObject) -> Error {
    match sets.stat_at(set_dir) {
        Ok(_) => Error::AlreadyExists { what: format!("published set {set}") },
        Err(_) => {
            Error::not_found(format!("staged object {} ({}) of set {set}", s.name, s.stage_id))
        }
    }
}

/// A publication being assembled by `finalize`: what goes into its transaction directory,
/// where that directory is, and the name it is renamed to (the commit point).
struct Txn<'a> {
    /// The set being published.
    set: &'a SetName,
    /// `sets/`, the directory the transaction is renamed into.
    sets: Dir,
    /// The set's component in `sets/`: the rename's target.
    set_dir: String,
    /// `txn/`, the directory the transaction is built in.
    parent: Dir,
    /// The transaction directory's name in `txn/`.
    name: String,
    /// `<root>/txn/<name>`, for messages.
    at: String,
    /// The staged objects, sorted by name, each with its open staging directory.
    held: Vec<(&'a StagedObject, Dir)>,
    /// The set's record: the `manifest` file.
    record: SetFile,
}

/// The publication side of an fs store.
#[derive(Debug)]
pub(crate) struct Publish {
    root: Arc<Root>,
    durable: bool,
    faults: FaultInjector,
    /// Shared by `stage` and `finalize`, exclusive for `abort` and `sweep`.
    gate: RwLock<()>,
    stage_counter: AtomicU64,
    /// Publication versions: nanoseconds since the epoch, strictly increasing.
    versions: MonotonicClock,
    /// Why this filesystem cannot publish atomically, when it cannot (or why this instance
    /// may not: it was opened read-only).
    unsupported: Option<String>,
    /// Opened read-only: every write (stage, finalize, abort, sweep) is refused.
    read_only: bool,
}

impl Publish {
    /// The publication side over an opened root: probes the filesystem and seeds versions.
    pub(crate) fn open(root: Arc<Root>, durable: bool, faults: FaultInjector) -> Result<Self> {
        let sets = root.open_dir(SETS)?;
        // Every publication's version is below the mtime of `sets/` (it was renamed in after
        // its version was taken), so seeding from it keeps versions unique even if the clock
        // stepped back across a restart.
        let seed = sets.stat().map_err(|e| io_error(root.display(SETS), e))?.mtime_nanos;
        let unsupported = probe(&root)?;
        if let Some(why) = &unsupported {
            let path = root.path().display().to_string();
            tracing::warn!(path, why, "fs: atomic publication is not available");
        }
        Ok(Publish {
            root,
            durable,
            faults,
            gate: RwLock::new(()),
            stage_counter: AtomicU64::new(0),
            versions: MonotonicClock::starting_after(Resolution::Nanos, seed),
            unsupported,
            read_only: false,
        })
    }

    /// The publication side of a read-only instance: reads only, no probe (it writes under
    /// `txn/`), and every write refused with [`Error::Unsupported`].
    pub(crate) fn open_read_only(root: Arc<Root>, faults: FaultInjector) -> Result<Self> {
        let why = format!("the fs store {} was opened read-only", root.path().display());
        Ok(Publish {
            root,
            durable: false,
            faults,
            gate: RwLock::new(()),
            stage_counter: AtomicU64::new(0),
            versions: MonotonicClock::new(Resolution::Nanos),
            unsupported: Some(why),
            read_only: true,
        })
    }

    /// Whether this filesystem supports atomic publication.
    pub(crate) fn supported(&self) -> bool {
        self.unsupported.is_none()
    }

    fn require(&self, operation: &str) -> Result<()> {
        match &self.unsupported {
            None => Ok(()),
            Some(why) => Err(Error::unsupported(BACKEND, format!("{operation}: {why}"))),
        }
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data: a poisoned one is as good as a healthy one.
        self.gate.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn at(&self, rel: &str) -> String {
        self.root.display(rel)
    }

    // ------------------------------------------------------------------ stage

    /// Writes `bytes` and its record into a new staging directory (see the module docs).
    pub(crate) fn stage(
        &self,
        set: &SetName,
        name: &ObjectName,
        bytes: Bytes,
    ) -> Result<StagedObject> {
        self.require("stage")?;
        let size = bytes.len() as u64;
        if size > MAX_OBJECT_SIZE {
            return Err(Error::invalid(
                format!("object {set}/{name}"),
                format!("{size} bytes exceed the fs backend's limit of {MAX_OBJECT_SIZE}"),
            ));
        }
        let sha256 = publish::sha256(&bytes);
        let _gate = self.shared();
        let staging = self.root.open_dir(STAGING)?;
        for _attempt in 0..1000 {
            let staged_at = Utc::now();
            let counter = self.stage_counter.fetch_add(1, Ordering::Relaxed);
            let stage_id = names::stage_id(nanos(staged_at), counter);
            let staged = StagedObject {
                set: set.clone(),
                name: name.clone(),
                stage_id,
                size,
                sha256,
                staged_at,
            };
            let tmp = format!("{TMP_PREFIX}{}", staged.stage_id);
            let tmp_at = self.at(&format!("{STAGING}/{tmp}"));
            match staging.mkdir(&tmp) {
                Ok(()) => {}
                Err(e) if sys::is_exists(&e) => continue,
                Err(e) => return Err(io_error(&tmp_at, e)),
            }
            let written = self.write_staging(&staging, &tmp, &tmp_at, &staged, &bytes);
            match written {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e @ Error::Crashed { .. }) => return Err(e),
                Err(e) => {
                    if let Err(clean) = root::remove_tree(&staging, &tmp, &tmp_at, 1) {
                        tracing::warn!(error = %clean, "fs: a failed staging stays for sweep");
                    }
                    return Err(e);
                }
            }
            if self.durable {
                staging.sync().map_err(|e| io_error(self.at(STAGING), e))?;
            }
            self.faults.hit(STAGE_WRITTEN)?;
            return Ok(staged);
        }
        Err(Error::backend(BACKEND, io::Error::other("no free stage id after 1000 attempts")))
    }

    /// Fills `staging/<tmp>` and renames it to `staging/<id>`; `Ok(false)` when that id is
    /// taken (the temporary directory is then removed and the caller tries another id).
    fn write_staging(
        &self,
        staging: &Dir,
        tmp: &str,
        tmp_at: &str,
        staged: &StagedObject,
        bytes: &[u8],
    ) -> Result<bool> {
        let dir = staging.open_dir(tmp).map_err(|e| io_error(tmp_at, e))?;
        root::write_new_file(&dir, DATA, bytes, self.durable)
            .map_err(|e| io_error(format!("{tmp_at}/{DATA}"), e))?;
        let meta = seal(META_MAGIC, &StagedFile::of(staged).encode_to_vec());
        root::write_new_file(&dir, META, &meta, self.durable)
            .map_err(|e| io_error(format!("{tmp_at}/{META}"), e))?;
        if self.durable {
            dir.sync().map_err(|e| io_error(tmp_at, e))?;
        }
        self.faults.hit(STAGE_PREPARED)?;
        match staging.rename_noreplace(tmp, staging, &staged.stage_id) {
            Ok(()) => Ok(true),
            Err(e) if sys::is_exists(&e) => {
                root::remove_tree(staging, tmp, tmp_at, 1)?;
                Ok(false)
            }
            Err(e) => Err(self.rename_error("stage", e, &format!("{STAGING}/{}", staged.stage_id))),
        }
    }

    fn rename_error(&self, operation: &str, e: io::Error, target: &str) -> Error {
        if sys::is_rename_unsupported(&e) {
            return Error::unsupported(
                BACKEND,
                format!(
                    "{operation}: the filesystem of {} refuses renameat2(RENAME_NOREPLACE) ({e}); \
                     pinvault does not fall back to a check-then-rename, which two writers could \
                     both win",
                    self.root.path().display()
                ),
            );
        }
        io_error(self.at(target), e)
    }

    // ------------------------------------------------------------------ finalize

    /// The staging directory of `s` if it still holds exactly that object.
    fn held(&self, staging: &Dir, s: &StagedObject) -> Result<Option<Dir>> {
        if !names::valid_stage_id(&s.stage_id) {
            return Ok(None);
        }
        let Some((dir, record)) = self.staged_record(staging, &s.stage_id)? else {
            return Ok(None);
        };
        let same = record.set == s.set.as_str()
            && record.name == s.name.as_str()
            && record.size == s.size
            && record.sha256 == s.sha256;
        if !same {
            return Ok(None);
        }
        let data_at = self.at(&format!("{STAGING}/{}/{DATA}", s.stage_id));
        match dir.stat_at(DATA) {
            Ok(st) if st.kind == Kind::File && st.size == s.size => Ok(Some(dir)),
            Ok(st) => Err(Error::corrupt(
                data_at,
                format!(
                    "expected a regular file of {} bytes, found a {:?} of {}",
                    s.size, st.kind, st.size
                ),
            )),
            Err(e) if is_not_found(&e) => {
                Err(Error::corrupt(data_at, "a staged object's record without its data"))
            }
            Err(e) => Err(io_error(data_at, e)),
        }
    }

    /// Opens `staging/<id>` and decodes its record; `None` when either is missing.
    fn staged_record(&self, staging: &Dir, id: &str) -> Result<Option<(Dir, StagedFile)>> {
        let dir_at = self.at(&format!("{STAGING}/{id}"));
        let dir = match staging.open_dir(id) {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(io_error(&dir_at, e)),
        };
        let meta_at = format!("{dir_at}/{META}");
        let Some(bytes) = root::read_regular(&dir, META, &meta_at, RECORD_LIMIT)? else {
            return Ok(None);
        };
        let body = unseal(META_MAGIC, &bytes, &meta_at)?;
        let record = StagedFile::decode(body).map_err(|e| {
            Error::corrupt(&meta_at, format!("does not decode: {e}")).with_source(e)
        })?;
        Ok(Some((dir, record)))
    }

    /// Publishes `staged` and `manifest` as `set` with one no-replace rename (module docs).
    pub(crate) fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        self.require("finalize")?;
        publish::validate_finalize(set, staged, &manifest)?;
        let _gate = self.shared();
        let sets = self.root.open_dir(SETS)?;
        let set_dir = names::encode(set.as_str());
        match sets.stat_at(&set_dir) {
            Ok(_) => return Err(Error::AlreadyExists { what: format!("published set {set}") }),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(io_error(self.at(&format!("{SETS}/{set_dir}")), e)),
        }
        let staging = self.root.open_dir(STAGING)?;
        let mut held = Vec::with_capacity(staged.len());
        for s in staged {
            match self.held(&staging, s)? {
                Some(dir) => held.push((s, dir)),
                None => return Err(staged_object_gone(&sets, &set_dir, set, s)),
            }
        }
        self.faults.hit(FINALIZE_VALIDATED)?;

        let version = self.versions.next();
        let published_at = Utc::now();
        held.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let record = SetFile {
            set: set.to_string(),
            version,
            published_secs: published_at.timestamp(),
            published_nanos: published_at.timestamp_subsec_nanos(),
            manifest: manifest.to_vec(),
            objects: held
                .iter()
                .map(|(s, _)| ObjectFile {
                    name: s.name.to_string(),
                    size: s.size,
                    sha256: s.sha256.to_vec(),
                })
                .collect(),
        };
        let parent = self.root.open_dir(TXN)?;
        let name = self.make_txn_dir(&parent, version)?;
        let at = self.at(&format!("{TXN}/{name}"));
        let txn = Txn { set, sets, set_dir, parent, name, at, held, record };
        if let Err(e) = self.build_and_publish(&txn) {
            if !matches!(e, Error::Crashed { .. }) {
                if let Err(clean) = root::remove_tree(&txn.parent, &txn.name, &txn.at, 1) {
                    tracing::warn!(error = %clean, "fs: a failed transaction stays for sweep");
                }
            }
            return Err(e);
        }
        if self.durable {
            if let Err(e) = txn.sets.sync() {
                return Err(Error::unavailable_from(
                    format!(
                        "set {set} was renamed into {} but the directory's fsync failed ({e}): \
                         it is visible now and may or may not survive a power loss",
                        self.at(SETS)
                    ),
                    true,
                    e,
                ));
            }
        }
        self.faults.hit(FINALIZE_RENAMED)?;
        for (s, _) in &txn.held {
            if let Err(e) = self.remove_staged(&staging, &s.stage_id) {
                tracing::warn!(error = %e, "fs: a published staging entry stays for sweep");
            }
        }
        if self.durable {
            if let Err(e) = staging.sync() {
                tracing::warn!(error = %e, "fs: fsync of staging/ after a publication failed");
            }
        }
        tracing::debug!(%set, objects = txn.held.len(), version, "fs: published set");
        let version = Version::from_u64(version);
        let objects = txn
            .held
            .iter()
            .map(|(s, _)| ObjectMeta {
                key: ObjectKey::new(set.clone(), s.name.clone()),
                size: s.size,
                sha256: s.sha256,
                version: version.clone(),
            })
            .collect();
        Ok(Publication { set: set.clone(), version, published_at, manifest, objects })
    }

    /// Creates a fresh `txn/t-<version>[-n]` directory and returns its name.
    fn make_txn_dir(&self, txn: &Dir, version: u64) -> Result<String> {
        for n in 0u32..1000 {
            let name = if n == 0 {
                format!("{TXN_PREFIX}{version:016x}")
            } else {
                format!("{TXN_PREFIX}{version:016x}-{n}")
            };
            match txn.mkdir(&name) {
                Ok(()) => return Ok(name),
                Err(e) if sys::is_exists(&e) => continue,
                Err(e) => return Err(io_error(self.at(&format!("{TXN}/{name}")), e)),
            }
        }
        Err(Error::backend(BACKEND, io::Error::other("no free transaction directory name")))
    }

    /// Fills the transaction directory and renames it into `sets/`: the commit point.
    fn build_and_publish(&self, txn: &Txn<'_>) -> Result<()> {
        let dir = txn.parent.open_dir(&txn.name).map_err(|e| io_error(&txn.at, e))?;
        for (s, staged_dir) in &txn.held {
            let file = names::encode(s.name.as_str());
            staged_dir.link(DATA, &dir, &file).map_err(|e| {
                if is_not_found(&e) {
                    // Only a concurrent finalizer of this set removes a checked staging.
                    return staged_object_gone(&txn.sets, &txn.set_dir, txn.set, s);
                }
                if sys::is_unsupported(&e) {
                    Error::unsupported(
                        BACKEND,
                        format!(
                            "finalize: the filesystem of {} refuses hard links ({e})",
                            self.root.path().display()
                        ),
                    )
                } else {
                    io_error(format!("{}/{file}", txn.at), e)
                }
            })?;
        }
        let body = seal(MANIFEST_MAGIC, &txn.record.encode_to_vec());
        root::write_new_file(&dir, MANIFEST, &body, self.durable)
            .map_err(|e| io_error(format!("{}/{MANIFEST}", txn.at), e))?;
        if self.durable {
            dir.sync().map_err(|e| io_error(&txn.at, e))?;
        }
        self.faults.hit(FINALIZE_LINKED)?;
        match txn.parent.rename_noreplace(&txn.name, &txn.sets, &txn.set_dir) {
            Ok(()) => Ok(()),
            Err(e) if sys::is_exists(&e) => {
                Err(Error::AlreadyExists { what: format!("published set {}", txn.set) })
            }
            Err(e) => Err(self.rename_error("finalize", e, &format!("{SETS}/{}", txn.set_dir))),
        }
    }

    // ------------------------------------------------------------------ abort and sweep

    /// Removes `staging/<id>` by renaming it aside first; `Ok(false)` when it was not there.
    fn remove_staged(&self, staging: &Dir, id: &str) -> Result<bool> {
        let gone = format!("{TMP_PREFIX}del-{id}");
        let gone_at = self.at(&format!("{STAGING}/{gone}"));
        match staging.rename(id, staging, &gone) {
            Ok(()) => {
                root::remove_tree(staging, &gone, &gone_at, 1)?;
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) if sys::is_exists(&e) => {
                // A leftover of an interrupted removal sits under the aside name: remove both.
                root::remove_tree(staging, &gone, &gone_at, 1)?;
                root::remove_tree(staging, id, &self.at(&format!("{STAGING}/{id}")), 1)?;
                Ok(true)
            }
            Err(e) => Err(io_error(self.at(&format!("{STAGING}/{id}")), e)),
        }
    }

    /// Removes staged objects; ones already gone (or ids this backend never hands out) are
    /// ignored. Published objects are other links and stay.
    pub(crate) fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.require("abort")?;
        let _gate = self.exclusive();
        let staging = self.root.open_dir(STAGING)?;
        let mut removed = false;
        for s in staged {
            if names::valid_stage_id(&s.stage_id) {
                removed |= self.remove_staged(&staging, &s.stage_id)?;
            }
        }
        if removed && self.durable {
            staging.sync().map_err(|e| io_error(self.at(STAGING), e))?;
        }
        Ok(())
    }

    fn modified_before(&self, dir: &Dir, name: &str, at: &str, cutoff: u64) -> Result<bool> {
        match dir.stat_at(name) {
            Ok(st) => Ok(st.mtime_nanos < cutoff),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io_error(at, e)),
        }
    }

    /// Removes objects staged before `cutoff`, and crash leftovers older than it.
    pub(crate) fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        if self.read_only {
            return self.require("sweep").map(|()| SweepReport::default());
        }
        let _gate = self.exclusive();
        let cutoff_nanos = nanos(cutoff);
        let mut report = SweepReport::default();
        let staging = self.root.open_dir(STAGING)?;
        for entry in staging.entries().map_err(|e| io_error(self.at(STAGING), e))? {
            let Ok(name) = String::from_utf8(entry) else {
                tracing::warn!("fs: sweep leaves alone a staging entry whose name is not UTF-8");
                continue;
            };
            let at = self.at(&format!("{STAGING}/{name}"));
            if names::valid_stage_id(&name) {
                match self.staged_record(&staging, &name) {
                    Ok(Some((_, record))) => {
                        let staged_at = time(record.staged_secs, record.staged_nanos)
                            .ok_or_else(|| Error::corrupt(&at, "staging time out of range"))?;
                        if staged_at < cutoff && self.remove_staged(&staging, &name)? {
                            report.removed += 1;
                            report.bytes += record.size;
                        }
                    }
                    // Not a complete staging (no record, or not a directory): a leftover.
                    Ok(None) | Err(Error::Corrupt { .. }) => {
                        if self.modified_before(&staging, &name, &at, cutoff_nanos)? {
                            root::remove_tree(&staging, &name, &at, 1)?;
                        }
                    }
                    Err(e) => return Err(e),
                }
            } else if name.starts_with(TMP_PREFIX) {
                if self.modified_before(&staging, &name, &at, cutoff_nanos)? {
                    root::remove_tree(&staging, &name, &at, 1)?;
                }
            } else {
                tracing::warn!(entry = %at, "fs: sweep leaves alone an unknown entry");
            }
        }
        let txn = self.root.open_dir(TXN)?;
        for entry in txn.entries().map_err(|e| io_error(self.at(TXN), e))? {
            let Ok(name) = String::from_utf8(entry) else {
                continue;
            };
            let at = self.at(&format!("{TXN}/{name}"));
            if !name.starts_with(TXN_PREFIX) {
                tracing::warn!(entry = %at, "fs: sweep leaves alone an unknown entry");
                continue;
            }
            // The name carries the version, i.e. the time the transaction was started.
            let started = name
                .get(TXN_PREFIX.len()..TXN_PREFIX.len() + 16)
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            let old = match started {
                Some(t) => t < cutoff_nanos,
                None => self.modified_before(&txn, &name, &at, cutoff_nanos)?,
            };
            if old {
                root::remove_tree(&txn, &name, &at, 1)?;
            }
        }
        Ok(report)
    }

    // ------------------------------------------------------------------ readers

    /// The directory and record of the set whose directory is `sets/<component>`.
    fn read_set(&self, sets: &Dir, component: &str) -> Result<Option<(Dir, SetFile)>> {
        let dir_at = self.at(&format!("{SETS}/{component}"));
        let dir = match sets.open_dir(component) {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(io_error(&dir_at, e)),
        };
        let manifest_at = format!("{dir_at}/{MANIFEST}");
        let bytes = root::read_regular(&dir, MANIFEST, &manifest_at, RECORD_LIMIT)?
            .ok_or_else(|| Error::corrupt(&manifest_at, "a published set without its manifest"))?;
        let body = unseal(MANIFEST_MAGIC, &bytes, &manifest_at)?;
        let record = SetFile::decode(body).map_err(|e| {
            Error::corrupt(&manifest_at, format!("does not decode: {e}")).with_source(e)
        })?;
        if names::encode(&record.set) != component {
            return Err(Error::corrupt(
                &manifest_at,
                format!("names set {:?}, which does not belong in this directory", record.set),
            ));
        }
        Ok(Some((dir, record)))
    }

    fn object_meta(set: &SetName, o: &ObjectFile, version: u64, at: &str) -> Result<ObjectMeta> {
        let name = ObjectName::new(o.name.as_str())
            .map_err(|e| Error::corrupt(at, e.to_string()).with_source(e))?;
        let sha256: [u8; 32] = o
            .sha256
            .as_slice()
            .try_into()
            .map_err(|_| Error::corrupt(at, format!("a digest of {} bytes", o.sha256.len())))?;
        Ok(ObjectMeta {
            key: ObjectKey::new(set.clone(), name),
            size: o.size,
            sha256,
            version: Version::from_u64(version),
        })
    }

    fn set_of(record: &SetFile, at: &str) -> Result<SetName> {
        SetName::new(record.set.as_str())
            .map_err(|e| Error::corrupt(at, e.to_string()).with_source(e))
    }

    /// A published set.
    pub(crate) fn publication(&self, set: &SetName) -> Result<Publication> {
        let sets = self.root.open_dir(SETS)?;
        let component = names::encode(set.as_str());
        let at = self.at(&format!("{SETS}/{component}/{MANIFEST}"));
        let (_, record) = self
            .read_set(&sets, &component)?
            .ok_or_else(|| Error::not_found(format!("published set {set}")))?;
        let published_at = time(record.published_secs, record.published_nanos)
            .ok_or_else(|| Error::corrupt(&at, "publication time out of range"))?;
        let objects = record
            .objects
            .iter()
            .map(|o| Self::object_meta(set, o, record.version, &at))
            .collect::<Result<Vec<_>>>()?;
        Ok(Publication {
            set: set.clone(),
            version: Version::from_u64(record.version),
            published_at,
            manifest: Bytes::from(record.manifest),
            objects,
        })
    }

    /// The set directory, record and object record of a published key.
    fn find(&self, key: &ObjectKey) -> Result<(Dir, ObjectMeta)> {
        let sets = self.root.open_dir(SETS)?;
        let component = names::encode(key.set.as_str());
        let at = self.at(&format!("{SETS}/{component}/{MANIFEST}"));
        let (dir, record) = self
            .read_set(&sets, &component)?
            .ok_or_else(|| Error::not_found(format!("object {key}")))?;
        let object = record
            .objects
            .iter()
            .find(|o| o.name == key.name.as_str())
            .ok_or_else(|| Error::not_found(format!("object {key}")))?;
        Ok((dir, Self::object_meta(&key.set, object, record.version, &at)?))
    }

    /// Metadata of a published object.
    pub(crate) fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.find(key).map(|(_, meta)| meta)
    }

    /// Bytes of a published object, checked against its record's size and SHA-256.
    pub(crate) fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let (dir, meta) = self.find(key)?;
        let file = names::encode(key.name.as_str());
        let at = self.at(&format!("{SETS}/{}/{file}", names::encode(key.set.as_str())));
        let bytes = root::read_regular(&dir, &file, &at, meta.size)?.ok_or_else(|| {
            Error::corrupt(&at, format!("object {key} is published but its file is missing"))
        })?;
        if bytes.len() as u64 != meta.size || publish::sha256(&bytes) != meta.sha256 {
            return Err(Error::corrupt(
                &at,
                format!(
                    "object {key}: the file's bytes do not match its recorded size and SHA-256"
                ),
            ));
        }
        Ok(Bytes::from(bytes))
    }

    /// Published objects whose `set/name` starts with `prefix`, by key text, then set.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let could_match = |set: &str| {
            let with_slash = format!("{set}/");
            with_slash.starts_with(prefix) || prefix.starts_with(&with_slash)
        };
        let sets = self.root.open_dir(SETS)?;
        let mut found: Vec<(String, ObjectMeta)> = Vec::new();
        for entry in sets.entries().map_err(|e| io_error(self.at(SETS), e))? {
            let shown = String::from_utf8_lossy(&entry).into_owned();
            let at = self.at(&format!("{SETS}/{shown}"));
            match names::decode(&entry) {
                None => return Err(Error::corrupt(&at, "an entry pinvault did not write")),
                Some(Decoded::Name(set)) if !could_match(&set) => continue,
                Some(_) => {}
            }
            let Some((_, record)) = self.read_set(&sets, &shown)? else {
                continue;
            };
            if !could_match(&record.set) {
                continue;
            }
            let manifest_at = format!("{at}/{MANIFEST}");
            let set = Self::set_of(&record, &manifest_at)?;
            for o in &record.objects {
                let text = format!("{}/{}", record.set, o.name);
                if text.starts_with(prefix) {
                    found.push((text, Self::object_meta(&set, o, record.version, &manifest_at)?));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.set.cmp(&b.1.key.set)));
        Ok(found.into_iter().map(|(_, meta)| meta).collect())
    }
}

/// Checks at open that this filesystem can publish atomically: a hard link, and a
/// `RENAME_NOREPLACE` rename that refuses an existing name. `Some(why)` when it cannot.
fn probe(root: &Root) -> Result<Option<String>> {
    let txn = root.open_dir(TXN)?;
    let base = format!("{TXN_PREFIX}probe-{}", std::process::id());
    let (file, link, other) = (format!("{base}-f"), format!("{base}-l"), format!("{base}-o"));
    let at = root.display(&format!("{TXN}/{base}"));
    for name in [&file, &link, &other] {
        root::remove_tree(&txn, name, &at, 0)?;
    }
    let verdict = (|| -> Result<Option<String>> {
        drop(txn.create_file(&file).map_err(|e| io_error(&at, e))?);
        if let Err(e) = txn.link(&file, &txn, &link) {
            if sys::is_unsupported(&e) {
                return Ok(Some(format!(
                    "the filesystem of {} refuses hard links ({e})",
                    root.path().display()
                )));
            }
            return Err(io_error(&at, e));
        }
        drop(txn.create_file(&other).map_err(|e| io_error(&at, e))?);
        match txn.rename_noreplace(&other, &txn, &link) {
            Err(e) if sys::is_exists(&e) => Ok(None),
            Err(e) if sys::is_rename_unsupported(&e) => Ok(Some(format!(
                "the filesystem of {} refuses renameat2(RENAME_NOREPLACE) ({e}); pinvault \
                     does not fall back to a check-then-rename, which two writers could both win",
                root.path().display()
            ))),
            Err(e) => Err(io_error(&at, e)),
            Ok(()) => Ok(Some(format!(
                "the filesystem of {} ignored RENAME_NOREPLACE (it replaced an existing name)",
                root.path().display()
            ))),
        }
    })();
    for name in [&file, &link, &other] {
        root::remove_tree(&txn, name, &at, 0)?;
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_file_keeps_the_stored_bytes() {
        let record = StagedFile {
            set: "s".into(),
            name: "n".into(),
            size: 3,
            sha256: vec![7; 32],
            staged_secs: 1,
            staged_nanos: 2,
        };
        let mut expected = vec![0x0a, 1, b's', 0x12, 1, b'n', 0x18, 3, 0x22, 32];
        expected.extend([7; 32]);
        expected.extend([0x28, 1, 0x30, 2]);
        assert_eq!(record.encode_to_vec(), expected);
    }
}
