//! pinvault on [RocksDB](https://docs.rs/rocksdb/0.25): both contracts through the shared KV layer
//! ([`pinvault_core::kv`]), one column family per table, one `WriteBatch` per commit.
//!
//! # Atomicity and isolation: why a `WriteBatch` under a lock table
//!
//! Three designs were on the table: `OptimisticTransactionDB` (validate at commit, retry on
//! conflict), `TransactionDB` (RocksDB's own pessimistic per-key locks), or a plain `DB` with one
//! `WriteBatch` per commit under pinvault's own striped lock table. pinvault must read each key's
//! record anyway (to check the precondition and to know which view rows to delete), and the
//! lock table already gives conflicting writers a serial order with no retries and no deadlocks
//! (stripes are taken in ascending order). A `WriteBatch` is atomic across column families and
//! across a crash (one WAL record), and it is the cheapest write RocksDB has; concurrent batches
//! of different keys reach RocksDB together, where its write group shares one WAL append and
//! one fsync. `benches/` measures the framework against raw `WriteBatch` writes with the same
//! bytes and durability, and the lock discipline against one global commit mutex; the numbers
//! are in `benches/README.md`.
//!
//! # Durability
//!
//! [`RocksOptions::sync`] (default `true`) sets `WriteOptions::set_sync`: a returned write is
//! fsynced and survives power loss, and `durable_on_return` says so. With `sync = false` a
//! returned write survives a crash of the process (it is in the WAL in the OS page cache) but
//! not of the machine; a batch is never torn either way.
//!
//! # Layout
//!
//! One column family per [`Table`], named after it; the keys and values are
//! [`pinvault_core::kv::layout`]'s. The pins column family has a bloom filter, since every
//! insert-if-absent looks up a key that is usually missing.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use pinvault_core::kv::{KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::{Error, FaultInjector, Result};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options,
    WriteBatch, WriteOptions, DB,
};

/// The backend's name in capabilities and errors.
pub const BACKEND: &str = "rocksdb";

/// Both contracts on RocksDB.
pub type RocksBackend = KvBackend<RocksEngine>;

/// How to open a RocksDB store.
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// fsync the WAL on every commit (`WriteOptions::set_sync`).
    pub sync: bool,
}

impl Default for RocksOptions {
    /// Synced: pinvault's default is never to acknowledge what a crash can take back.
    fn default() -> Self {
        RocksOptions { sync: true }
    }
}

/// A RocksDB database with one column family per table.
pub struct RocksEngine {
    db: DB,
    sync: bool,
    path: PathBuf,
}

fn backend_error(e: rocksdb::Error) -> Error {
    Error::backend(BACKEND, e)
}

/// The database options pinvault opens RocksDB with (also used by the benches' raw side, so
/// both run the same configuration).
pub fn db_options() -> Options {
    let mut db_options = Options::default();
    db_options.create_if_missing(true);
    db_options.create_missing_column_families(true);
    db_options.set_max_background_jobs(2);
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
    pub fn open(path: impl AsRef<Path>, options: &RocksOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = DB::open_cf_descriptors(&db_options(), &path, column_families()).map_err(|e| {
            // A held LOCK file (another process has the store open) or an unreadable directory.
            Error::Unavailable {
                reason: format!("opening RocksDB database {}: {e}", path.display()),
                outcome_unknown: false,
            }
        })?;
        Ok(RocksEngine { db, sync: options.sync, path })
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw database, for benches and tools.
    pub fn db(&self) -> &DB {
        &self.db
    }

    fn cf(&self, table: Table) -> Result<&ColumnFamily> {
        self.db.cf_handle(table.name()).ok_or_else(|| {
            Error::corrupt(self.path.display().to_string(), format!("no column family {}", table.name()))
        })
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
        self.db.get_cf(self.cf(table)?, key).map_err(backend_error)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        // An iterator reads the implicit snapshot taken when it is created.
        let iter = self.db.iterator_cf(self.cf(table)?, IteratorMode::From(start, Direction::Forward));
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(backend_error)?;
            if after.is_some_and(|a| *k == *a) {
                continue;
            }
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for w in writes {
            match w {
                KvWrite::Put { table, key, value } => batch.put_cf(self.cf(table)?, key, value),
                KvWrite::Delete { table, key } => batch.delete_cf(self.cf(table)?, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(self.sync);
        self.db.write_opt(batch, &options).map_err(backend_error)
    }
}

/// Opens a RocksDB backend over directory `path` on tokio's blocking pool.
pub async fn open(
    path: impl AsRef<Path>,
    options: RocksOptions,
    faults: FaultInjector,
) -> Result<RocksBackend> {
    let path = path.as_ref().to_path_buf();
    KvBackend::open_async(move || RocksEngine::open(path, &options), faults).await
}
