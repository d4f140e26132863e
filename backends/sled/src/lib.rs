//! pinvault on [sled](https://docs.rs/sled/0.34.7) 0.34: both contracts, through the shared KV
//! layer ([`pinvault_core::kv`]), one sled `Tree` per table and one multi-tree transaction per
//! commit.
//!
//! # Know what you are choosing
//!
//! sled is not a default of pinvault and sits behind its own Cargo feature:
//!
//! * **Maintenance.** 0.34.7 (2021) is the last stable release; the 1.0 alphas dropped the
//!   transactions this backend relies on. Bugs in 0.34 are unlikely to be fixed upstream.
//! * **Durability.** sled buffers writes in memory and flushes its log every 500 ms by default:
//!   a crash of the process can lose the writes of the last half second (never half of one
//!   transaction: a transaction is recovered atomically). With [`DirOptions::sync`] each
//!   write is followed by `Db::flush`, which fsyncs; `durable_on_return` says which you have.
//!   sled's fsync handling has been questioned upstream (spurious-success reports after I/O
//!   errors); RocksDB is the backend to pick when durability matters.
//! * **Readers.** sled iterators read key by key, not from a snapshot, so this adapter holds a
//!   read-write gate: a scan page takes the read side, a transaction the write side. Writes
//!   therefore never overlap each other (sled's own transactions also take a global lock).
//! * **Damage is not reported.** sled's recovery reads its log (`db`) up to the first record
//!   that is cut short or fails its checksum and opens with what came before, without an
//!   error and without anything pinvault could observe (`tests/recovery.rs` pins this down). A
//!   torn tail (a crash mid-write) so loses only the unacknowledged last write, as it should;
//!   but damage in the middle of the log loses every later commit *silently*: a flipped byte
//!   halfway through a 300-commit log opened with 150 pins and no error. pinvault cannot tell a
//!   torn tail from such a loss, so it reports neither and quarantines nothing, and there is no
//!   `repair` for sled (`pinvault state repair` answers `Unsupported`). RocksDB and fs report
//!   both.
//! * **No read-only mode.** sled 0.34 cannot open a database without locking and writing it,
//!   so [`OpenMode::ReadOnly`] opens sled exactly as [`OpenMode::MustExist`]: it takes the lock
//!   (and waits for it like a writer, [`DirOptions::lock_wait`]), and on a read-only
//!   filesystem every open fails with [`Error::Path`] (`ReadOnlyFilesystem`).
//!
//! # Which directory is a store: the marker
//!
//! Every open goes through [`pinvault_core::store_dir::claim`] first (the rules: the
//! workspace README, "Store directories"): the `PINVAULT-STORE` marker (backend `sled`, format
//! [`STORE_FORMAT`]) is written once sled has created its files; a sled store made before
//! markers (it has `conf` or `db`) is adopted; a marked store missing both is `Corrupt`, and so
//! is corruption sled reports.
//!
//! # Layout
//!
//! One tree per [`Table`] (named after it) in one sled `Db`; the keys and values are
//! [`pinvault_core::kv::layout`]'s.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use pinvault_core::kv::{scan_range, take_scan, KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::lock_wait::{retry_while_held, Backoff, Held};
use pinvault_core::store_dir;
use pinvault_core::{Error, FaultInjector, OpenMode, PathProblem, Result};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// The backend's name in capabilities, errors and its store marker.
pub const BACKEND: &str = "sled";

/// The version of the directory layout (sled 0.34's files, one tree per table), recorded in
/// the store marker.
pub const STORE_FORMAT: u32 = 1;

/// Both contracts on sled.
pub type SledBackend = KvBackend<SledEngine>;

/// How to open a sled store ([`DirOptions::sync`]: `Db::flush` after every write; the open waits
/// for the lock at least [`LOCK_WAIT`], the time sled takes to release a dropped handle's lock).
pub use pinvault_core::DirOptions;

/// The URL form of this backend: `sled:///path[?sync=true|false&lock_timeout=SECONDS]`
/// ([`DirOptions::from_url`]).
pub const URL_FORM: pinvault_core::backend_url::UrlForm =
    pinvault_core::backend_url::UrlForm::directory("sled", "sled:///path");

/// Opens the store a [`URL_FORM`] URL names, in `mode`.
pub async fn open_url(
    url: &pinvault_core::BackendUrl,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<SledBackend> {
    open_with_mode(url.directory()?, DirOptions::from_url(url)?, mode, faults).await
}

/// A sled database with one tree per table.
pub struct SledEngine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    gate: RwLock<()>,
    durable: bool,
    path: PathBuf,
}

/// How long [`SledEngine::open`] waits for a database lock that a previous instance is still
/// releasing, before reporting the database as unavailable (held by another process).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Pauses between two tries of a held lock.
const LOCK_BACKOFF: Backoff = Backoff {
    first: std::time::Duration::from_millis(10),
    longest: std::time::Duration::from_millis(200),
};

fn backend_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::backend(BACKEND, e)
}

/// The error for a sled failure on the store at `path`: corruption is [`Error::Corrupt`], a
/// path problem in an I/O error [`Error::Path`], anything else a backend error.
fn engine_error(path: &Path, e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { at, .. } => Error::corrupt(
            path.display().to_string(),
            format!(
                "sled reports corruption{}",
                at.map(|at| format!(" at {at:?}")).unwrap_or_default()
            ),
        ),
        sled::Error::Io(e) => Error::from_path_io(path, e).unwrap_or_else(backend_error),
        e => backend_error(e),
    }
}

fn index(table: Table) -> usize {
    Table::ALL.iter().position(|t| *t == table).unwrap_or_default()
}

impl SledEngine {
    /// Opens (creating if needed) the sled database in directory `path`.
    ///
    /// sled releases a database's file lock from its background flusher thread, a moment after
    /// the last handle is dropped, so an open right after another instance went away (a crash
    /// simulated by dropping it, a restart) can find the lock still held. The open waits for it
    /// up to [`LOCK_WAIT`], then fails with [`Error::Unavailable`].
    pub fn open(path: impl AsRef<Path>, options: &DirOptions) -> Result<Self> {
        Self::open_with_mode(path, options, OpenMode::CreateIfMissing)
    }

    /// Opens the sled database in directory `path` after the store directory rule
    /// ([`pinvault_core::store_dir`]), waiting for a lock as [`SledEngine::open`] does; with
    /// [`OpenMode::MustExist`] a directory holding no store is [`Error::NoStore`] and nothing
    /// is created.
    pub fn open_with_mode(
        path: impl AsRef<Path>,
        options: &DirOptions,
        mode: OpenMode,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let claim = store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?;
        let wait = options.lock_wait.max(LOCK_WAIT);
        let db = retry_while_held(wait, LOCK_BACKOFF, || {
            match sled::Config::new().path(&path).open() {
                Ok(db) => Ok(Ok(db)),
                // sled reports the lock as an `Other` io error whose text names it.
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    Ok(Err(Held::new(
                        format!("sled store {}", path.display()),
                        &path.join("db"),
                        format!("another process or open handle ({e})"),
                    )))
                }
                Err(sled::Error::Io(e)) if PathProblem::of(&e).is_some() => {
                    Err(engine_error(&path, sled::Error::Io(e)))
                }
                Err(e @ sled::Error::Corruption { .. }) => Err(engine_error(&path, e)),
                Err(e) => Err(Error::unavailable_from(
                    format!("opening sled database {}: {e}", path.display()),
                    false,
                    e,
                )),
            }
        })?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(|e| engine_error(&path, e)))
            .collect::<Result<Vec<_>>>()?;
        // An unmarked store found before the lock may be one another process was creating
        // while this open waited for sled's lock (it writes the marker last): decide again,
        // now holding it. (A new store is not: this open has just written sled's files itself,
        // and a racing creator's marker is taken over by `commit`.)
        let claim = match claim.marker() {
            None if !claim.is_new() => store_dir::claim(&path, BACKEND, STORE_FORMAT, mode)?,
            _ => claim,
        };
        claim.commit()?;
        Ok(SledEngine { db, trees, gate: RwLock::new(()), durable: options.sync, path })
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[index(table)]
    }
}

impl std::fmt::Debug for SledEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEngine").field("path", &self.path).finish_non_exhaustive()
    }
}

impl KvEngine for SledEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(table).get(key).map_err(|e| engine_error(&self.path, e))?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let _gate = self.gate.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = self.tree(table).range::<&[u8], _>(scan_range(prefix, after)).map(|item| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| engine_error(&self.path, e))
        });
        take_scan(entries, prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        {
            let _gate = self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.trees
                .as_slice()
                .transaction(|tx| {
                    for w in &writes {
                        match w {
                            KvWrite::Put { table, key, value } => {
                                tx[index(*table)].insert(key.as_slice(), value.as_slice())?;
                            }
                            KvWrite::Delete { table, key } => {
                                tx[index(*table)].remove(key.as_slice())?;
                            }
                        }
                    }
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(e) => engine_error(&self.path, e),
                    TransactionError::Abort(()) => {
                        Error::backend(BACKEND, "transaction aborted without a reason")
                    }
                })?;
        }
        if self.durable {
            self.db.flush().map_err(|e| engine_error(&self.path, e))?;
        }
        Ok(())
    }
}

/// Opens (creating if needed) a sled backend over directory `path` on tokio's blocking pool.
pub async fn open(
    path: impl AsRef<Path>,
    options: DirOptions,
    faults: FaultInjector,
) -> Result<SledBackend> {
    open_with_mode(path, options, OpenMode::CreateIfMissing, faults).await
}

/// [`open`] in `mode` (see [`SledEngine::open_with_mode`]).
pub async fn open_with_mode(
    path: impl AsRef<Path>,
    options: DirOptions,
    mode: OpenMode,
    faults: FaultInjector,
) -> Result<SledBackend> {
    let path = path.as_ref().to_path_buf();
    KvBackend::open_async(move || SledEngine::open_with_mode(path, &options, mode), faults).await
}
