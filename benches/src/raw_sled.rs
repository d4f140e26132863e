//! The raw sled side of the comparisons: a sled `Db` opened as `pinvault-sled` opens it (default
//! `Config`, one tree per table), the rows of the KV layer written in one multi-tree
//! transaction over just the trees they touch, and `Db::flush` after every write, as the
//! backend does with `DirOptions::sync` (the default).

use std::path::Path;

use pinvault_core::kv::layout;
use pinvault_core::kv::Table;
use pinvault_core::Pin;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

/// A sled database laid out as pinvault's, driven directly.
pub struct RawSled {
    /// The database (flushed after every write).
    pub db: sled::Db,
    /// `pins`.
    pub pins: sled::Tree,
    /// `by_peer`.
    pub by_peer: sled::Tree,
    /// `expiry`.
    pub expiry: sled::Tree,
    /// `meta`.
    pub meta: sled::Tree,
    /// `staged`.
    pub staged: sled::Tree,
    /// `blobs`.
    pub blobs: sled::Tree,
    /// `objects`.
    pub objects: sled::Tree,
    /// `sets`.
    pub sets: sled::Tree,
}

/// What a raw transaction closure returns.
pub type TxResult<T = ()> = Result<T, ConflictableTransactionError<String>>;

impl RawSled {
    /// Opens (creating) the database in `path`, with every table's tree as the backend does.
    pub fn open(path: &Path) -> Self {
        let db = sled::Config::new().path(path).open().expect("opening the raw sled database");
        let tree = |t: Table| db.open_tree(t.name()).expect("opening a raw sled tree");
        for t in Table::ALL {
            tree(t);
        }
        RawSled {
            pins: tree(Table::Pins),
            by_peer: tree(Table::ByPeer),
            expiry: tree(Table::Expiry),
            meta: tree(Table::Meta),
            staged: tree(Table::Staged),
            blobs: tree(Table::Blobs),
            objects: tree(Table::Objects),
            sets: tree(Table::Sets),
            db,
        }
    }

    /// Flushes (fsyncs) the database: the durability of `DirOptions::default()`.
    pub fn flush(&self) {
        self.db.flush().expect("flushing the raw sled database");
    }

    /// Runs `f` as one transaction over the trees a pin commit touches, then flushes.
    pub fn pin_transaction<T>(
        &self,
        f: impl Fn(&PinTrees<'_>) -> TxResult<T>,
    ) -> Result<T, TransactionError<String>> {
        let out = (&self.pins, &self.by_peer, &self.expiry, &self.meta)
            .transaction(|(p, b, e, m)| f(&PinTrees { pins: p, by_peer: b, expiry: e, meta: m }))?;
        self.flush();
        Ok(out)
    }

    /// Writes `pins` in transactions of `batch_size`, each with its sequence row, as an import
    /// does; flushes after each.
    pub fn load(&self, pins: &[Pin], batch_size: usize, sequence: &mut u64) {
        for chunk in pins.chunks(batch_size) {
            *sequence += 1;
            let seq = *sequence;
            self.pin_transaction(|t| {
                for pin in chunk {
                    t.put_pin(seq, pin, None)?;
                }
                t.put_sequence(&layout::seq_slot(0), seq)?;
                Ok(())
            })
            .expect("raw sled load transaction");
        }
    }
}

/// The trees of a pin commit, inside a transaction.
pub struct PinTrees<'a> {
    /// `pins`.
    pub pins: &'a TransactionalTree,
    /// `by_peer`.
    pub by_peer: &'a TransactionalTree,
    /// `expiry`.
    pub expiry: &'a TransactionalTree,
    /// `meta`.
    pub meta: &'a TransactionalTree,
}

impl PinTrees<'_> {
    /// The rows the KV layer's `commit` writes for one put (see `raw_rocks::put_pin`).
    pub fn put_pin(
        &self,
        version: u64,
        pin: &Pin,
        old: Option<&Pin>,
    ) -> Result<(), UnabortableTransactionError> {
        let key = pin.cid.to_bytes();
        if let Some(old) = old {
            for peer in &old.allocations {
                self.by_peer.remove(layout::by_peer_key(peer, &key))?;
            }
            if let Some(at) = old.options.expire_at {
                self.expiry.remove(layout::expiry_key(at, &key))?;
            }
        }
        for peer in &pin.allocations {
            self.by_peer.insert(layout::by_peer_key(peer, &key), &[][..])?;
        }
        if let Some(at) = pin.options.expire_at {
            self.expiry.insert(layout::expiry_key(at, &key), &[][..])?;
        }
        self.pins.insert(key, layout::encode_pin(version, pin))?;
        Ok(())
    }

    /// The commit-sequence row.
    pub fn put_sequence(
        &self,
        slot: &[u8],
        sequence: u64,
    ) -> Result<(), UnabortableTransactionError> {
        self.meta.insert(slot, &sequence.to_be_bytes()[..])?;
        Ok(())
    }
}
