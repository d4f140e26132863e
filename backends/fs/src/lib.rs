//! pinvault on a plain directory of a local Linux filesystem: both contracts, no database.
//!
//! # Pin state: a checksummed log under the shared KV layer
//!
//! The pin contract (preconditions, batches, views, versions, receipts, migrate) is the one
//! [`pinvault_core::kv::KvBackend`] already proves on RocksDB and sled, unchanged: this crate
//! only supplies an engine, [`FsLogEngine`] (module `log`). Every engine `write` appends **one**
//! record to `pins.log` and `fdatasync`s it (when [`DirOptions::sync`], the default), then
//! applies it to an in-memory index (a `BTreeMap` per table behind one `RwLock`, so a `scan`
//! reads one snapshot). One record per write is what makes a commit atomic across a crash:
//! recovery keeps a record whole or drops it whole.
//!
//! Why a log and not a file per pin: a commit touches the pin, its view rows and a sequence
//! slot together, and one appended record is the only single-step atomic write a filesystem
//! offers for several keys at once (files per key would need a journal anyway). Why the index
//! in memory: it makes `get` and `scan` trivially consistent and fast, at a cost to state
//! plainly: **the whole pinset is held in RAM** (keys and values, about the size of the
//! compacted log; like Bitcask's keydir, with values too), and opening replays the log. That
//! suits pinsets up to millions of pins; beyond, use RocksDB.
//!
//! Recovery tells the torn tail of a crash from damage by `pins.seq`, which records how much
//! of the log is committed: a torn tail is truncated on a writable open (its bytes kept in a
//! quarantine file), damage is [`Error::Corrupt`] naming the file and offset, and only
//! [`repair`] gets past it. The log is compacted by rename when it is more than twice the live
//! data; a failed compaction fails no write. The rules are in module `log`.
//!
//! # Publication: directories, hard links, one no-replace rename
//!
//! The KV layer's publication tables are not used (objects would have to live inside the log
//! and in memory). Instead `FsBackend` implements [`Publisher`] itself (module `publish`):
//! `finalize` assembles a transaction directory from a manifest file and **hard links** of the
//! staged data files, and publishes it with **one** `renameat2(RENAME_NOREPLACE)` onto
//! `sets/<E(set)>`: the commit point, atomic and conditional, so of N racing finalizers exactly
//! one wins. A filesystem that cannot do `RENAME_NOREPLACE` or hard links is detected at open
//! and publication refused with [`Error::Unsupported`]: there is no fallback to a
//! check-then-rename, which two writers could both pass.
//!
//! Readers (`head`, `get`, `publication`, `list`) read only `sets/`. Names become **one** path
//! component each (module `names`: `n-` + the name with every byte outside `[a-z0-9._-]`
//! percent-encoded, or `h-` + SHA-256 when too long), so no name escapes the root, and set
//! `a/b` with object `c` and set `a` with object `b/c` land on different paths. Every access
//! under the root goes through `openat(.., O_NOFOLLOW)` and friends from an open directory
//! (modules `root` and `sys`), so a symlink planted anywhere in the tree makes the read fail with
//! [`Error::Corrupt`] and is never followed: nothing outside the root is read or written.
//!
//! Publication versions are `Version::from_u64` of a nanosecond
//! [`MonotonicClock`](pinvault_core::clock::MonotonicClock) seeded at open from the
//! modification time of `sets/`, so they stay unique even if the clock steps back across a
//! restart.
//!
//! # Which directory is a store: the marker
//!
//! Every open goes through [`pinvault_core::store_dir::claim`] first (the rules: the
//! workspace README, "Store directories"): the `PINVAULT-STORE` marker (backend `fs`, format
//! [`STORE_FORMAT`]) is written once the new store's `pins.log` exists; an fs store made before
//! markers (it has `pins.log`) is adopted; with [`OpenMode::MustExist`] ([`open_with_mode`]) a
//! missing or empty directory is [`Error::NoStore`] and nothing is created.
//!
//! # One instance per root
//!
//! A writable open takes an exclusive `flock` on `<root>/LOCK`; a second writable open of the
//! same root, from this process or another, is [`Error::Unavailable`] (naming the lock file)
//! until the first instance is dropped, or waits for it up to [`DirOptions::lock_wait`]
//! (polling the lock with a growing pause on the blocking pool, never blocking the runtime).
//! Within the instance, writers of the log are serialised (one fsync per commit, no group
//! commit); `stage`/`finalize` share a gate that `abort`/`sweep` take exclusively.
//!
//! A **read-only open takes no lock at all**, neither `LOCK` nor a shared lock on another file,
//! and writes nothing: so a reader never waits for a writer, never holds one up, and works on
//! a read-only filesystem. A shared `flock` was the alternative, and was refused: a writer
//! would then have to wait for every reader to finish (and readers that keep coming could
//! starve it), which is the cost the lock-free design exists to avoid. Readers get their
//! consistency from the log's shape instead (module `log`, "Lock-free readers"): `pins.log` is
//! only appended to, a compaction renames a complete new log over it (a reader that opened the
//! old file reads the old, whole log), and a reader reads `pins.seq` before it takes the log's
//! size. So a reader sees every write whose record was entirely in the file when it opened,
//! and none after: a snapshot of the log as it stood (one open, one point in time; a later
//! read needs a new open). A write can be visible to such a reader just before its commit
//! returns (its record is in the file, its fsync not yet done), the way a write in flight is
//! in a database without read isolation from the WAL; a power loss in that instant can take it
//! back. Writers never see a reader.
//!
//! # Durability and crashes
//!
//! With `sync: true` (the default) every acknowledged commit, stage and finalize is fsynced
//! (files, then the directories that name them) before it returns, and `durable_on_return`
//! says so. With `sync: false` nothing is fsynced except compaction: a power loss may lose
//! recent writes but never tears one. Crash points: the KV layer's `kv.commit.validated` and
//! `kv.commit.written` on the pin path, and [`PUBLISH_CRASH_POINTS`] (`fs.stage.prepared`,
//! `fs.stage.written`, `fs.finalize.validated`, `fs.finalize.linked`, `fs.finalize.renamed`).
//!
//! All file I/O runs on tokio's blocking pool, never on the async runtime.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod log;
mod names;
mod publish;
mod repair;
mod root;
mod sealed;
mod sys;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use pinvault_core::kv::KvBackend;
use pinvault_core::{paging, store_dir};
use pinvault_core::{
    Composed, Error, FaultInjector, ObjectKey, ObjectMeta, ObjectName, OpenMode, Publication,
    PublishCapabilities, Publisher, Result, SetName, StagedObject, SweepReport,
};

pub use crate::log::FsLogEngine;
pub use crate::publish::{
    FINALIZE_LINKED, FINALIZE_RENAMED, FINALIZE_VALIDATED, MAX_OBJECT_SIZE, STAGE_PREPARED,
    STAGE_WRITTEN,
};
pub use crate::repair::{check_blocking, repair_blocking};

/// The backend's name in capabilities, errors and its store marker.
pub const BACKEND: &str = "fs";

/// The version of the directory layout (module `names`), recorded in the store marker.
/// 2: the store keeps `pins.seq` (module `log`), so a build that would not update it refuses
/// the store instead of making it look damaged.
pub const STORE_FORMAT: u32 = 2;

/// The crash points of the fs publication path (the pin path's are the KV layer's,
/// [`pinvault_core::kv::PIN_CRASH_POINTS`]).
pub const PUBLISH_CRASH_POINTS: &[&str] =
    &[STAGE_PREPARED, STAGE_WRITTEN, FINALIZE_VALIDATED, FINALIZE_LINKED, FINALIZE_RENAMED];

/// Where a published object's bytes live, relative to the store's root:
/// `sets/<E(set)>/<E(name)>`, each name encoded as one path component (see the crate docs).
pub fn published_object_path(set: &SetName, name: &ObjectName) -> PathBuf {
    published_set_path(set).join(names::encode(name.as_str()))
}

/// The directory of a published set, relative to the store's root: `sets/<E(set)>`.
pub fn published_set_path(set: &SetName) -> PathBuf {
    Path::new(names::SETS).join(names::encode(set.as_str()))
}

/// How to open an fs store ([`DirOptions::sync`]: fsync log records, staged and published files
/// and the directories naming them before a write returns).
pub use pinvault_core::DirOptions;

/// The URL form of this backend: `fs:///path[?sync=true|false&lock_timeout=SECONDS]`
/// ([`DirOptions::from_url`]).
pub const URL_FORM: pinvault_core::backend_url::UrlForm =
    pinvault_core::backend_url::UrlForm::directory("fs", "fs:///path");

/// Opens the store a [`URL_FORM`] URL names, in `mode`.
pub async fn open_url(
    url: &pinvault_core::BackendUrl,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<FsBackend> {
    open_with_mode(url.directory()?, DirOptions::from_url(url)?, mode, faults).await
}

/// [`repair`]s the store a [`URL_FORM`] URL names.
pub async fn repair_url(url: &pinvault_core::BackendUrl) -> Result<pinvault_core::RepairReport> {
    repair(url.directory()?, DirOptions::from_url(url)?).await
}

/// Both contracts on a directory: pins through the KV layer over [`FsLogEngine`]
/// (`.pins`), publication through directories and one no-replace rename ([`FsPublisher`],
/// `.publisher`). Cheap to clone: clones share the store.
pub type FsBackend = Composed<KvBackend<FsLogEngine>, FsPublisher>;

/// Atomic publication in an fs store's directory (the `publisher` half of [`FsBackend`]).
#[derive(Clone)]
pub struct FsPublisher {
    publish: Arc<publish::Publish>,
    path: PathBuf,
    capabilities: PublishCapabilities,
}

impl fmt::Debug for FsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsPublisher")
            .field("path", &self.path)
            .field("durable", &self.capabilities.durable_on_return)
            .field("atomic_publication", &self.capabilities.atomic_publication)
            .finish_non_exhaustive()
    }
}

/// Opens (creating if needed) the fs store in directory `path` on tokio's blocking pool.
pub async fn open(
    path: impl AsRef<Path>,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<FsBackend> {
    open_with_mode(path, options, OpenMode::CreateIfMissing, faults).await
}

/// [`open`] in `mode`: with [`OpenMode::MustExist`] a directory holding no store is
/// [`Error::NoStore`] and nothing is created; [`OpenMode::ReadOnly`] is [`open_read_only`].
pub async fn open_with_mode(
    path: impl AsRef<Path>,
    options: DirOptions,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<FsBackend> {
    let path = path.as_ref().to_path_buf();
    tokio::task::spawn_blocking(move || match mode {
        OpenMode::ReadOnly => open_blocking_read_only(path, options, faults),
        _ => open_blocking_with_mode(path, options, mode, faults),
    })
    .await
    .map_err(|e| Error::backend(BACKEND, e))?
}

/// Repairs the damaged fs store in `path` on tokio's blocking pool: under the writer's lock
/// (waiting up to `options.lock_wait`), the log is cut back to the last record before the
/// first damaged one, the removed bytes are kept in a quarantine file, `pins.seq` is made to
/// match, and the store is opened once to prove it (module `repair`). A healthy store gives a
/// clean report and is not changed.
pub async fn repair(
    path: impl AsRef<Path>,
    options: DirOptions,
) -> Result<pinvault_core::RepairReport> {
    let path = path.as_ref().to_path_buf();
    tokio::task::spawn_blocking(move || repair_blocking(&path, options))
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
}

/// Checks every record of the fs store in `path` without writing anything (a read-only open,
/// on tokio's blocking pool): `Ok` when whole, [`Error::Corrupt`] naming file and offset when
/// not.
pub async fn check(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref().to_path_buf();
    tokio::task::spawn_blocking(move || check_blocking(&path))
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
}

/// Opens the existing fs store in `path` read-only: nothing in the store is written (no lock,
/// no marker adoption, no torn-tail repair, no compaction, no publication probe), so it works
/// on a read-only filesystem and beside a writer in another process (crate docs, "One instance
/// per root"); pin writes, staging and publishing are refused with [`Error::Unsupported`]. An
/// incomplete last record is reported and the records before it are read. A directory holding
/// no store is [`Error::NoStore`].
pub async fn open_read_only(
    path: impl AsRef<Path>,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<FsBackend> {
    let path = path.as_ref().to_path_buf();
    tokio::task::spawn_blocking(move || open_blocking_read_only(path, options, faults))
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
}

/// [`open_read_only`], blocking.
pub fn open_blocking_read_only(
    path: PathBuf,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<FsBackend> {
    let claim = store_dir::claim(&path, BACKEND, STORE_FORMAT, OpenMode::MustExist)?;
    open_claimed(claim, path, options, OpenMode::ReadOnly, faults)
}

/// Opens (creating if needed) the store at `path`, blocking: takes the root's lock, replays
/// the pin log, probes the filesystem for publication. Prefer [`open`] from async code.
pub fn open_blocking(
    path: PathBuf,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<FsBackend> {
    open_blocking_with_mode(path, options, OpenMode::CreateIfMissing, faults)
}

/// [`open_blocking`] in `mode` (see [`open_with_mode`]).
pub fn open_blocking_with_mode(
    path: PathBuf,
    options: DirOptions,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<FsBackend> {
    let claim = store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?;
    open_claimed(claim, path, options, mode, faults)
}

fn open_claimed(
    claim: store_dir::Claim,
    path: PathBuf,
    options: DirOptions,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<FsBackend> {
    let read_only = mode == OpenMode::ReadOnly;
    let root = Arc::new(if read_only {
        root::Root::open_read_only(&path)?
    } else {
        root::Root::open(&path, options.lock_wait)?
    });
    // A store without a marker may be one another process is creating right now (it
    // writes the marker last, under the lock this open now holds): decide again.
    let claim = match claim.marker() {
        None if !read_only => store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?,
        _ => claim,
    };
    let access = log::Access::of(&claim, read_only);
    let engine = FsLogEngine::open_in(root.clone(), &options, access)?;
    let pins = KvBackend::open(engine, faults.clone())?;
    let publish = if read_only {
        publish::Publish::open_read_only(root, faults)?
    } else {
        publish::Publish::open(root, options.sync, faults)?
    };
    if !read_only {
        claim.commit()?;
    }
    let mut capabilities = PublishCapabilities::none(BACKEND);
    capabilities.persistent = true;
    capabilities.durable_on_return = options.sync;
    capabilities.atomic_publication = publish.supported();
    capabilities.max_object_size = Some(MAX_OBJECT_SIZE);
    capabilities.crash_points = if publish.supported() { PUBLISH_CRASH_POINTS } else { &[] };
    Ok(Composed { pins, publisher: FsPublisher { publish: Arc::new(publish), path, capabilities } })
}

impl FsPublisher {
    /// The store's root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the publication side in tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&publish::Publish) -> Result<T> + Send + 'static,
    {
        let publish = self.publish.clone();
        tokio::task::spawn_blocking(move || f(&publish))
            .await
            .map_err(|e| Error::backend(BACKEND, e))?
    }
}

#[async_trait]
impl Publisher for FsPublisher {
    fn publish_capabilities(&self) -> PublishCapabilities {
        self.capabilities.clone()
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        let (set, name) = (set.clone(), name.clone());
        self.blocking(move |p| p.stage(&set, &name, bytes)).await
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        let (set, staged) = (set.clone(), staged.to_vec());
        self.blocking(move |p| p.finalize(&set, &staged, manifest)).await
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        let staged = staged.to_vec();
        self.blocking(move |p| p.abort(&staged)).await
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.blocking(move |p| p.sweep(cutoff)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let key = key.clone();
        self.blocking(move |p| p.head(&key)).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let key = key.clone();
        self.blocking(move |p| p.get(&key)).await
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        let set = set.clone();
        self.blocking(move |p| p.publication(&set)).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        let prefix = prefix.to_owned();
        paging::single_page(self.blocking(move |p| p.list(&prefix)))
    }
}
