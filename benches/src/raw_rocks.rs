//! The raw RocksDB side of the comparisons: the database opened with exactly the options of
//! `pinvault-rocksdb` (it is opened through `RocksEngine::open`; every operation then uses the
//! raw `rocksdb::DB`), and the rows of the KV layer written straight into a `WriteBatch`.

use std::path::Path;

use pinvault_core::kv::layout;
use pinvault_core::kv::Table;
use pinvault_core::Pin;
use pinvault_rocksdb::{DirOptions, RocksEngine};
use rocksdb::{ColumnFamily, WriteBatch, WriteOptions, DB};

/// A RocksDB database laid out as pinvault's, driven directly.
pub struct RawRocks {
    engine: RocksEngine,
    sync: bool,
}

/// The column families of the tables the benches write.
pub struct Cfs<'a> {
    /// `pins`.
    pub pins: &'a ColumnFamily,
    /// `by_peer`.
    pub by_peer: &'a ColumnFamily,
    /// `expiry`.
    pub expiry: &'a ColumnFamily,
    /// `meta`.
    pub meta: &'a ColumnFamily,
    /// `staged`.
    pub staged: &'a ColumnFamily,
    /// `blobs`.
    pub blobs: &'a ColumnFamily,
    /// `objects`.
    pub objects: &'a ColumnFamily,
    /// `sets`.
    pub sets: &'a ColumnFamily,
}

impl RawRocks {
    /// Opens (creating) the database in `path`, with the backend's options; `sync` is
    /// `WriteOptions::set_sync` of every write, as `DirOptions::sync`.
    pub fn open(path: &Path, sync: bool) -> Self {
        let engine = RocksEngine::open(path, &DirOptions { sync, ..DirOptions::default() })
            .expect("opening the raw RocksDB database");
        RawRocks { engine, sync }
    }

    /// The raw database.
    pub fn db(&self) -> &DB {
        self.engine.db()
    }

    /// The column families.
    pub fn cfs(&self) -> Cfs<'_> {
        let cf = |t: Table| {
            self.db().cf_handle(t.name()).unwrap_or_else(|| {
                panic!("the raw RocksDB database has no column family {}", t.name())
            })
        };
        Cfs {
            pins: cf(Table::Pins),
            by_peer: cf(Table::ByPeer),
            expiry: cf(Table::Expiry),
            meta: cf(Table::Meta),
            staged: cf(Table::Staged),
            blobs: cf(Table::Blobs),
            objects: cf(Table::Objects),
            sets: cf(Table::Sets),
        }
    }

    /// The write options of every write: synced as configured.
    pub fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync);
        options
    }

    /// Writes `batch` with the configured durability.
    pub fn write(&self, batch: WriteBatch, options: &WriteOptions) {
        self.db().write_opt(batch, options).expect("raw RocksDB write");
    }

    /// Writes `pins` in batches of `batch_size`, each with its sequence row, as an import does.
    pub fn load(&self, pins: &[Pin], batch_size: usize, sequence: &mut u64) {
        let cfs = self.cfs();
        let options = self.write_options();
        for chunk in pins.chunks(batch_size) {
            *sequence += 1;
            let mut batch = WriteBatch::default();
            for pin in chunk {
                put_pin(&mut batch, &cfs, *sequence, pin, None);
            }
            put_sequence(&mut batch, &cfs, layout::seq_slot(0), *sequence);
            self.write(batch, &options);
        }
    }
}

/// The rows the KV layer's `commit` writes for one put of `pin` at `version`, in its order:
/// the old pin's view rows deleted (when it replaces `old`), the new view rows (one `by_peer`
/// row per allocation, one `expiry` row), then the pin record.
pub fn put_pin(batch: &mut WriteBatch, cfs: &Cfs<'_>, version: u64, pin: &Pin, old: Option<&Pin>) {
    let key = pin.cid.to_bytes();
    if let Some(old) = old {
        for peer in &old.allocations {
            batch.delete_cf(cfs.by_peer, layout::by_peer_key(peer, &key));
        }
        if let Some(at) = old.options.expire_at {
            batch.delete_cf(cfs.expiry, layout::expiry_key(at, &key));
        }
    }
    for peer in &pin.allocations {
        batch.put_cf(cfs.by_peer, layout::by_peer_key(peer, &key), []);
    }
    if let Some(at) = pin.options.expire_at {
        batch.put_cf(cfs.expiry, layout::expiry_key(at, &key), []);
    }
    batch.put_cf(cfs.pins, key, layout::encode_pin(version, pin));
}

/// The commit-sequence row every commit and finalize ends with.
pub fn put_sequence(batch: &mut WriteBatch, cfs: &Cfs<'_>, slot: Vec<u8>, sequence: u64) {
    batch.put_cf(cfs.meta, slot, sequence.to_be_bytes());
}
