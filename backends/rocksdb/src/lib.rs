//! pinvault on [RocksDB](https://docs.rs/rocksdb/0.25): both contracts through the shared KV layer
//! ([`pinvault_core::kv`]), one column family per table, one `WriteBatch` per commit.
//!
//! # Atomicity and isolation: why a `WriteBatch` under a lock table
//!
//! A plain `DB` with one `WriteBatch` per commit under pinvault's own striped lock table, not
//! `OptimisticTransactionDB` (validate at commit, retry on conflict) or `TransactionDB`
//! (RocksDB's own pessimistic per-key locks): pinvault must read each key's record anyway (to
//! check the precondition and to know which view rows to delete), and the lock table already
//! gives conflicting writers a serial order with no retries and no deadlocks (stripes are
//! taken in ascending order). A `WriteBatch` is atomic across column families and
//! across a crash (one WAL record), and it is the cheapest write RocksDB has; concurrent batches
//! of different keys reach RocksDB together, where its write group shares one WAL append and
//! one fsync. `benches/` measures the framework against raw `WriteBatch` writes with the same
//! bytes and durability, and the lock discipline against one global commit mutex; the numbers
//! are in `benches/README.md`.
//!
//! # Durability
//!
//! [`DirOptions::sync`] (default `true`) sets `WriteOptions::set_sync`: a returned write is
//! fsynced and survives power loss, and `durable_on_return` says so. With `sync = false` a
//! returned write survives a crash of the process (it is in the WAL in the OS page cache) but
//! not of the machine; a batch is never torn either way.
//!
//! # Recovery: a torn tail is kept and reported, damage fails the open
//!
//! RocksDB's default WAL recovery (point in time) stops replaying at the first corrupted WAL
//! record and opens anyway, silently dropping every record after it. pinvault opens with
//! [`DBRecoveryMode::TolerateCorruptedTailRecords`] instead, and before RocksDB replays
//! anything it walks the WALs itself (`wal`), because RocksDB drops a record cut short at the
//! end of the WAL without a word, and fails on a last record whose checksum fails although a
//! crash can leave one. A torn last record (with `sync = true` never acknowledged) is cut off
//! by a writable open, its bytes kept in `<store>/<wal>.quarantine-<unix secs>-<offset>`, with
//! a `tracing` warning naming the WAL, the byte range and the records dropped; a read-only
//! open leaves it and warns. Damage anywhere else in a WAL is [`Error::Corrupt`] naming the
//! WAL and the offset, and every corruption RocksDB reports (a block checksum, the MANIFEST, a
//! missing `CURRENT` or SST file) is [`Error::Corrupt`] naming the store's directory (exit 8 in
//! the CLI), never [`Error::Unavailable`]; nothing is changed then, and [`repair`] is the way
//! past it. (`recycle_log_file_num`, which recycles WAL files, is incompatible with this mode
//! and stays off.)
//!
//! A store also knows how far it got: every writable open and every clean close records
//! RocksDB's latest sequence number in `PINVAULT-STORE`'s sibling [`REACHED_FILE`], and an
//! open whose files hold less (a deleted WAL, a tail cut off after a clean close) is
//! [`Error::Corrupt`] before anything is written (see `reached`). A torn tail after a crash
//! is still a tear: a crashed process never recorded the commit it was writing.
//!
//! # Which directory is a store: the marker
//!
//! Every open goes through [`pinvault_core::store_dir::claim`] first (the rules: the
//! workspace README, "Store directories"): the `PINVAULT-STORE` marker (backend `rocksdb`,
//! format [`STORE_FORMAT`]) is written once RocksDB has created the database. RocksDB's
//! `create_if_missing` is set only for a new store, so a marked store whose `CURRENT` is gone
//! is `Corrupt`, never re-created empty over its SST files. A RocksDB store made before
//! markers (it has `CURRENT`) is adopted; a `LOCK` held by another process is `Unavailable`.
//!
//! # The writer lock, and waiting for it
//!
//! A writable open takes `<store>/LOCK` (the same process-associated `fcntl` lock RocksDB
//! takes) before RocksDB opens, because pinvault inspects the WAL first (see `lock` for the
//! details). Another process or another handle in this process holding it makes the open
//! [`Error::Unavailable`] naming the lock file at once, or, with [`DirOptions::lock_wait`],
//! after waiting that long for the holder to let go (on the blocking pool, never on the async
//! runtime).
//!
//! # Read-only opens: a read-only instance, not a secondary
//!
//! [`OpenMode::ReadOnly`] opens `DB::open_cf_descriptors_read_only`: no lock (it reads beside
//! a live writer, in another process or this one), no info `LOG` file (its messages go to
//! `tracing` at debug level, so no `LOG` rotation), no WAL repair, no marker adoption: nothing
//! in the directory changes, and it works on a read-only filesystem (tested on a read-only bind
//! mount). It replays the WALs into its own memory, so it sees every commit acknowledged before
//! it opened, and a WAL record is a whole commit, so a commit in flight is all there or absent.
//! Its view is fixed at the open, which is what a CLI command wants. RocksDB reads the MANIFEST
//! and then lists the WALs; a writer's flush in between (a MANIFEST record, then the flushed
//! WAL deleted) would leave the reader without the flushed commits, so an open during which the
//! MANIFEST changed is retried (up to ten times, then `Unavailable`). Not a *secondary*
//! instance: it can catch up with a live primary, but it needs a directory of its own to write
//! its info log in, so it cannot run on a read-only filesystem, and pinvault's readers are
//! short-lived, so catching up buys nothing.
//!
//! # A full disk
//!
//! `ENOSPC` from RocksDB (`IO error: No space left on device`) is [`Error::Path`] with
//! [`PathProblem::NoSpace`] naming the store, RocksDB's error kept as the source; a failed
//! write leaves RocksDB refusing further writes until the store is reopened, and nothing
//! acknowledged is lost. A reopen needs free space for what recovery writes; when there is
//! little, the open skips recovery's flush of the WALs to SST files (see `space`), so a store
//! reopens as soon as a little space is free.
//!
//! # RocksDB's own info log
//!
//! RocksDB writes a diagnostic log, `<store>/LOG`, and at every open renames the previous one
//! to `LOG.old.<microseconds>`: a CLI run is one open, so a scripted store would collect one
//! file per command. pinvault keeps the current `LOG` and [`INFO_LOG_FILES_KEPT`] - 1 old ones,
//! each rolled at [`INFO_LOG_MAX_BYTES`], so the info log stays under ~3 MiB.
//!
//! # Layout
//!
//! One column family per [`Table`], named after it; the keys and values are
//! [`pinvault_core::kv::layout`]'s. The pins column family has a bloom filter, since every
//! insert-if-absent looks up a key that is usually missing.
#![deny(missing_docs)]

mod lock;
mod reached;
pub use reached::FILE as REACHED_FILE;
mod repair;
mod space;
mod wal;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pinvault_core::kv::{scan_range, take_scan, KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::store_dir;
use pinvault_core::{Error, FaultInjector, OpenMode, PathProblem, RepairReport, Result};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBRecoveryMode, Direction, ErrorKind,
    InfoLogger, IteratorMode, LogLevel, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

/// The backend's name in capabilities, errors and its store marker.
pub const BACKEND: &str = "rocksdb";

/// The version of the directory layout (RocksDB's files, one column family per table),
/// recorded in the store marker.
pub const STORE_FORMAT: u32 = 1;

/// How many of RocksDB's info log files (`LOG` and `LOG.old.*`) a store keeps.
pub const INFO_LOG_FILES_KEPT: usize = 3;

/// The size at which RocksDB starts a new info log file.
pub const INFO_LOG_MAX_BYTES: usize = 1024 * 1024;

/// Both contracts on RocksDB.
pub type RocksBackend = KvBackend<RocksEngine>;

/// How to open a RocksDB store ([`DirOptions::sync`]: `WriteOptions::set_sync` on every commit).
pub use pinvault_core::DirOptions;

/// The URL form of this backend: `rocksdb:///path[?sync=true|false&lock_timeout=SECONDS]`
/// ([`DirOptions::from_url`]).
pub const URL_FORM: pinvault_core::backend_url::UrlForm =
    pinvault_core::backend_url::UrlForm::directory("rocksdb", "rocksdb:///path");

/// Opens the store a [`URL_FORM`] URL names, in `mode`.
pub async fn open_url(
    url: &pinvault_core::BackendUrl,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<RocksBackend> {
    open_with_mode(url.directory()?, DirOptions::from_url(url)?, mode, faults).await
}

/// [`repair`]s the store a [`URL_FORM`] URL names.
pub async fn repair_url(url: &pinvault_core::BackendUrl) -> Result<pinvault_core::RepairReport> {
    repair(url.directory()?, DirOptions::from_url(url)?).await
}

/// A RocksDB database with one column family per table.
pub struct RocksEngine {
    // Declared before the lock: fields drop in order, and the lock must outlive the database.
    db: DB,
    _lock: Option<lock::StoreLock>,
    sync: bool,
    read_only: bool,
    path: PathBuf,
    recovery: Recovery,
}

/// RocksDB's info log sent to `tracing` at debug level instead of a `LOG` file.
pub(crate) fn info_log_to_tracing() -> InfoLogger {
    InfoLogger::new_callback_logger(LogLevel::Info, |level, msg| {
        tracing::debug!(backend = BACKEND, ?level, "{}", msg.trim_end())
    })
}

/// How often a read-only open is tried while a writer changes the MANIFEST under it.
const READ_ONLY_ATTEMPTS: u64 = 10;

/// `CURRENT`'s content and the size of the MANIFEST it names: any flush or compaction by a
/// writer changes it. `None` when it cannot be read.
fn manifest_state(dir: &Path) -> Option<(String, u64)> {
    let current = std::fs::read_to_string(dir.join("CURRENT")).ok()?;
    let size = std::fs::metadata(dir.join(current.trim())).ok()?.len();
    Some((current, size))
}

/// What an open did to the store before RocksDB replayed it (a torn WAL tail quarantined).
#[derive(Clone, Debug, Default)]
struct Recovery {
    actions: Vec<String>,
    quarantined: Vec<PathBuf>,
}

/// The error for a RocksDB failure on the store at `path`: corruption is [`Error::Corrupt`]
/// naming the directory (RocksDB's message names the file); a [`PathProblem`] in an I/O error
/// is [`Error::Path`]; anything else is a backend error.
fn engine_error(path: &Path, e: rocksdb::Error) -> Error {
    match e.kind() {
        ErrorKind::Corruption => {
            Error::corrupt(path.display().to_string(), e.to_string()).with_source(e)
        }
        _ => match PathProblem::from_message(e.as_ref()) {
            Some(problem) => Error::Path {
                path: path.to_path_buf(),
                problem,
                source: std::io::Error::new(problem.io_kind(), e),
            },
            None => Error::backend(BACKEND, e),
        },
    }
}

/// The error for a failed open: as [`engine_error`], except that a busy or failing engine
/// (e.g. a `LOCK` held by another process) is [`Error::Unavailable`], and RocksDB finding no
/// database where the marker or adoption said there is one is [`Error::Corrupt`].
fn open_error(path: &Path, e: rocksdb::Error, expected_existing: bool) -> Error {
    let text = e.as_ref().to_owned();
    let missing = e.kind() == ErrorKind::InvalidArgument && text.contains("does not exist");
    match e.kind() {
        _ if missing && expected_existing => Error::corrupt(
            path.display().to_string(),
            format!("the store exists but RocksDB finds no database in it: {text}"),
        ),
        ErrorKind::Corruption => engine_error(path, e),
        _ if PathProblem::from_message(&text).is_some() => engine_error(path, e),
        ErrorKind::IOError
        | ErrorKind::Busy
        | ErrorKind::TryAgain
        | ErrorKind::TimedOut
        | ErrorKind::Incomplete
        | ErrorKind::ShutdownInProgress => Error::unavailable_from(
            format!("opening RocksDB database {}: {text}", path.display()),
            false,
            e,
        ),
        _ => engine_error(path, e),
    }
}

/// The database options pinvault opens RocksDB with (also used by the benches' raw side, so
/// both run the same configuration): WAL recovery that fails on damage instead of dropping
/// commits, and a bounded info log (see the crate docs). `create_if_missing` is on here;
/// [`RocksEngine::open_with_mode`] turns it off for a store that exists.
pub fn db_options() -> Options {
    let mut db_options = Options::default();
    db_options.create_if_missing(true);
    db_options.create_missing_column_families(true);
    db_options.set_max_background_jobs(2);
    db_options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    // The MANIFEST records every WAL it creates, so an open whose WAL is gone is corruption,
    // not a store that silently lost the commits only that WAL held.
    db_options.set_track_and_verify_wals_in_manifest(true);
    db_options.set_keep_log_file_num(INFO_LOG_FILES_KEPT);
    db_options.set_max_log_file_size(INFO_LOG_MAX_BYTES);
    db_options.set_log_file_time_to_roll(0);
    db_options
}

/// One column family per KV table; the pins get a bloom filter for point reads.
pub fn column_families() -> Vec<ColumnFamilyDescriptor> {
    Table::ALL
        .iter()
        .map(|t| {
            let mut cf = Options::default();
            if *t == Table::Pins {
                let mut block = BlockBasedOptions::default();
                block.set_bloom_filter(10.0, false);
                cf.set_block_based_table_factory(&block);
            }
            ColumnFamilyDescriptor::new(t.name(), cf)
        })
        .collect()
}

impl RocksEngine {
    /// Opens (creating if needed) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: &DirOptions) -> Result<Self> {
        Self::open_with_mode(path, options, OpenMode::CreateIfMissing)
    }

    /// Opens the database in directory `path` after the store directory rule
    /// ([`pinvault_core::store_dir`]); with [`OpenMode::MustExist`] a directory holding no
    /// store is [`Error::NoStore`] and nothing is created. A writable open takes the store's
    /// lock first, waiting up to [`DirOptions::lock_wait`]; [`OpenMode::ReadOnly`] takes no
    /// lock and writes nothing (see the crate docs).
    pub fn open_with_mode(
        path: impl AsRef<Path>,
        options: &DirOptions,
        mode: OpenMode,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let claim = store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?;
        if mode == OpenMode::ReadOnly {
            // A store made before markers is read as it is: adopting it would write.
            drop(claim);
            return Self::open_read_only(path, options);
        }
        let held = lock::acquire(&path, options.lock_wait)?;
        // A store without a marker may be one another process is creating right now (it
        // writes the marker last, under the lock this open now holds): decide again.
        let claim = match claim.marker() {
            None => store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?,
            Some(_) => claim,
        };
        let mut recovery = Recovery::default();
        if !claim.is_new() && reached::recorded(&path)?.is_some() {
            reached::check(&path, sequence_held(&path)?)?;
        }
        if !claim.is_new() {
            if let Some(tail) = wal::inspect(&path)? {
                let (action, quarantined) = wal::quarantine(&path, &tail)?;
                recovery.actions.push(action);
                recovery.quarantined.push(quarantined);
            }
        }
        let mut db_options = db_options();
        db_options.create_if_missing(claim.is_new());
        let short = !claim.is_new() && space::is_short(&path, wal::total_bytes(&path)?);
        let opened = if short {
            Err(None)
        } else {
            DB::open_cf_descriptors(&db_options, &path, column_families()).map_err(Some)
        };
        let db = match opened {
            Ok(db) => db,
            Err(cause) if short || cause.as_ref().is_some_and(space::is_no_space) => {
                let lean = space::lean(&mut db_options)?;
                let db = DB::open_cf_descriptors(&lean, &path, column_families())
                    .map_err(|e| open_error(&path, e, true))?;
                let action = format!(
                    "the filesystem is short of space ({}): opened without writing the \
                     replayed WAL to SST files; RocksDB flushes it later, when there is space",
                    match cause {
                        Some(e) => e.into_string(),
                        None => format!(
                            "less free than the WALs hold plus {} KiB",
                            space::HEADROOM / 1024
                        ),
                    }
                );
                tracing::warn!(path = %path.display(), "rocksdb: {action}");
                recovery.actions.push(action);
                db
            }
            Err(cause) => {
                return Err(match cause {
                    Some(e) => open_error(&path, e, !claim.is_new()),
                    None => Error::backend(BACKEND, "no open was tried"),
                })
            }
        };
        claim.commit()?;
        record_reached(&path, &db);
        Ok(RocksEngine {
            db,
            _lock: Some(held),
            sync: options.sync,
            read_only: false,
            path,
            recovery,
        })
    }

    /// A read-only instance: no lock, no info log file (RocksDB's messages go to `tracing`),
    /// nothing written. RocksDB reads the MANIFEST, then lists and replays the WALs; a writer
    /// that flushes in between (a new MANIFEST record, then the WAL deleted) could leave this
    /// instance without the flushed records, so an open during which `CURRENT` or the MANIFEST
    /// changed is retried: the instance that stays saw one state of the store.
    fn open_read_only(path: PathBuf, options: &DirOptions) -> Result<Self> {
        let mut db_options = db_options();
        db_options.create_if_missing(false);
        db_options.set_info_logger(info_log_to_tracing());
        let mut attempt = 0;
        let db = loop {
            attempt += 1;
            let before = manifest_state(&path);
            if let Some(tail) = wal::inspect(&path)? {
                wal::report_left_in_place(&tail);
                // Tolerant recovery fails on a last record whose checksum fails; the walk has
                // shown that nothing follows it, so stopping there drops only that record.
                if tail.checksum {
                    db_options.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
                }
            }
            let opened =
                DB::open_cf_descriptors_read_only(&db_options, &path, column_families(), false);
            let stable = before.is_some() && manifest_state(&path) == before;
            match opened {
                Ok(db) if stable => break db,
                Err(e) if stable || attempt >= READ_ONLY_ATTEMPTS => {
                    return Err(open_error(&path, e, true))
                }
                Ok(_) | Err(_) if attempt >= READ_ONLY_ATTEMPTS => {
                    return Err(Error::unavailable(
                        format!(
                            "RocksDB store {}: its MANIFEST changed during each of \
                             {READ_ONLY_ATTEMPTS} read-only opens (a writer is busy flushing)",
                            path.display()
                        ),
                        false,
                    ))
                }
                _ => std::thread::sleep(Duration::from_millis(20 * attempt)),
            }
        };
        reached::check(&path, db.latest_sequence_number())?;
        Ok(RocksEngine {
            db,
            _lock: None,
            sync: options.sync,
            read_only: true,
            path,
            recovery: Recovery::default(),
        })
    }

    /// What this open did before RocksDB replayed the store, one line per step (a torn WAL
    /// tail quarantined); empty for most opens.
    pub fn open_actions(&self) -> &[String] {
        &self.recovery.actions
    }

    /// The quarantine files this open wrote.
    pub fn open_quarantined(&self) -> &[PathBuf] {
        &self.recovery.quarantined
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw database.
    // Hidden: not API (writing around the engine breaks its promises); public because the
    // benches' raw-RocksDB baseline and this crate's integration tests read it directly.
    #[doc(hidden)]
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// Reads every record of every column family, checking block checksums, so damage an open
    /// does not meet (a bad block in an SST) is found: [`Error::Corrupt`]. Returns the number
    /// of records read. As slow as a full scan; `repair` runs it.
    pub fn verify(&self) -> Result<u64> {
        let mut records = 0;
        for table in Table::ALL {
            let mut read = ReadOptions::default();
            read.set_verify_checksums(true);
            read.fill_cache(false);
            for item in self.db.iterator_cf_opt(self.cf(table)?, read, IteratorMode::Start) {
                item.map_err(|e| engine_error(&self.path, e))?;
                records += 1;
            }
        }
        Ok(records)
    }

    fn cf(&self, table: Table) -> Result<&ColumnFamily> {
        self.db.cf_handle(table.name()).ok_or_else(|| {
            Error::corrupt(
                self.path.display().to_string(),
                format!("no column family {}", table.name()),
            )
        })
    }
}

/// The latest sequence number the store's files hold, read by a read-only instance over the
/// column families that exist (a store after `RepairDB` may lack empty ones) before anything
/// writes to them. The caller holds the writer's lock.
fn sequence_held(path: &Path) -> Result<u64> {
    let mut db_options = db_options();
    db_options.create_if_missing(false);
    db_options.set_info_logger(info_log_to_tracing());
    // A crash's torn last record whose checksum fails stops tolerant recovery; the walk has
    // shown nothing follows it (the writable open then cuts it), so read up to it.
    if wal::inspect(path)?.is_some_and(|tail| tail.checksum) {
        db_options.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    }
    let names = DB::list_cf(&db_options, path).map_err(|e| open_error(path, e, true))?;
    let db = DB::open_cf_for_read_only(&db_options, path, names, false)
        .map_err(|e| open_error(path, e, true))?;
    Ok(db.latest_sequence_number())
}

/// Records the sequence `db` has reached; a failure (a full disk) only weakens the check of
/// the next open, so it is a warning.
fn record_reached(path: &Path, db: &DB) {
    if let Err(e) = reached::record(path, db.latest_sequence_number()) {
        tracing::warn!(path = %path.display(), error = %e, "rocksdb: could not record the sequence reached");
    }
}

impl Drop for RocksEngine {
    /// Records the sequence reached, after syncing the WAL so that the record never claims more
    /// than a power loss leaves (with `sync = false` the WAL is not synced per commit).
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        if let Err(e) = self.db.flush_wal(true) {
            tracing::warn!(path = %self.path.display(), error = %e, "rocksdb: syncing the WAL at close failed");
            return;
        }
        record_reached(&self.path, &self.db);
    }
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl KvEngine for RocksEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn durable(&self) -> bool {
        self.sync
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(table)?, key).map_err(|e| engine_error(&self.path, e))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = match scan_range(prefix, after).0 {
            Bound::Included(key) | Bound::Excluded(key) => key,
            Bound::Unbounded => prefix,
        };
        // An iterator reads the implicit snapshot taken when it is created.
        let entries = self
            .db
            .iterator_cf(self.cf(table)?, IteratorMode::From(start, Direction::Forward))
            .map(|item| {
                item.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(|e| engine_error(&self.path, e))
            });
        take_scan(entries, prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        if self.read_only {
            return Err(Error::unsupported(
                BACKEND,
                format!("write: {} was opened read-only", self.path.display()),
            ));
        }
        let mut batch = WriteBatch::default();
        for w in writes {
            match w {
                KvWrite::Put { table, key, value } => batch.put_cf(self.cf(table)?, key, value),
                KvWrite::Delete { table, key } => batch.delete_cf(self.cf(table)?, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(self.sync);
        self.db.write_opt(batch, &options).map_err(|e| engine_error(&self.path, e))
    }
}

/// Opens (creating if needed) a RocksDB backend over directory `path` on tokio's blocking pool.
pub async fn open(
    path: impl AsRef<Path>,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<RocksBackend> {
    open_with_mode(path, options, OpenMode::CreateIfMissing, faults).await
}

/// Repairs the RocksDB store in `path` (`pinvault state repair`) on tokio's blocking pool: a
/// store that opens is left as the open leaves it; one that is [`Error::Corrupt`] has its files
/// kept in a quarantine directory inside it, is rebuilt by RocksDB's `RepairDB`, and is opened
/// again to prove it works. The report lists the steps and the quarantine paths.
pub async fn repair(path: impl AsRef<Path>, options: DirOptions) -> Result<RepairReport> {
    let path = path.as_ref().to_path_buf();
    tokio::task::spawn_blocking(move || repair_blocking(&path, &options))
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
}

/// [`repair`] on the calling thread, which may block for as long as the repair takes.
pub fn repair_blocking(path: impl AsRef<Path>, options: &DirOptions) -> Result<RepairReport> {
    repair::repair_blocking(path.as_ref(), options)
}

/// An I/O failure at `path`: [`Error::Path`] for a [`PathProblem`], else a backend error
/// naming the path.
fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::io_at(BACKEND, path, e)
}

/// [`open`] in `mode` (see [`RocksEngine::open_with_mode`]).
pub async fn open_with_mode(
    path: impl AsRef<Path>,
    options: DirOptions,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<RocksBackend> {
    let path = path.as_ref().to_path_buf();
    KvBackend::open_async(move || RocksEngine::open_with_mode(path, &options, mode), faults).await
}
