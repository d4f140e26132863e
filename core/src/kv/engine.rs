//! The one trait an embedded engine implements to get both contracts: [`KvEngine`].
//!
//! It is deliberately small (get, ordered scan, atomic multi-table write), in the spirit of TiKV's
//! `engine_traits` and redb's storage trait: everything pinvault promises is built on top of it
//! in [`super::store`], once, for every engine.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::Result;

/// The tables of the KV layout. An engine maps each to a column family, a tree, or a key prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Stored-format version and the commit-sequence slots.
    Meta,
    /// Pins by CID bytes.
    Pins,
    /// The by-peer view: `peer, cid` keys, empty values.
    ByPeer,
    /// The expiry queue: `hour bucket, expire_at, cid` keys, empty values.
    Expiry,
    /// Actual placements reported by peers, by CID bytes.
    Placements,
    /// Staged (unpublished) object records, by stage id.
    Staged,
    /// Object bytes, by stage id (staged and published objects alike).
    Blobs,
    /// Published object records, by `set/name` text, NUL, set.
    Objects,
    /// Published sets (the commit record of a publication), by set name.
    Sets,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 9] = [
        Table::Meta,
        Table::Pins,
        Table::ByPeer,
        Table::Expiry,
        Table::Placements,
        Table::Staged,
        Table::Blobs,
        Table::Objects,
        Table::Sets,
    ];

    /// A stable name, for column families, trees and messages.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Pins => "pins",
            Table::ByPeer => "by_peer",
            Table::Expiry => "expiry",
            Table::Placements => "placements",
            Table::Staged => "staged",
            Table::Blobs => "blobs",
            Table::Objects => "objects",
            Table::Sets => "sets",
        }
    }
}

/// One write of an atomic [`KvEngine::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvWrite {
    /// Sets `key` to `value` in `table`.
    Put {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key` from `table` (absent keys are fine).
    Delete {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
}

/// A raw ordered key-value engine, blocking. [`super::KvBackend`] calls it from tokio's blocking
/// pool, never from an async task.
///
/// # What an implementation must guarantee
///
/// * **Atomic writes.** [`write`](KvEngine::write) applies all of its writes or none, across
///   tables, and across a crash of the process at any instant (a write-ahead log, a
///   transaction). Readers never see part of one `write`: a `get` sees it entirely or not at
///   all, and one `scan` call reads one consistent snapshot.
/// * **Durability as declared.** When [`durable`](KvEngine::durable) is true, a `write` that
///   returned `Ok` is on stable storage (fsync) and survives power loss; when false it may be
///   lost by a power loss but never torn.
/// * **Order within a write.** Writes apply in order: when one `write` deletes and then puts
///   the same key, the key ends present.
/// * **Byte order.** `scan` yields keys in lexicographic byte order.
///
/// Concurrency control (who may write which key when) is *not* the engine's job: the layer above
/// serialises conflicting writers with its own lock table.
pub trait KvEngine: Send + Sync + 'static {
    /// The backend's short name (`"rocksdb"`, `"sled"`), used in capabilities and errors.
    fn backend(&self) -> &'static str;

    /// Whether a returned `write` is on stable storage.
    fn durable(&self) -> bool;

    /// The value of `key` in `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` entries of `table` whose key starts with `prefix` and, when `after` is
    /// given, sorts strictly after it; in key byte order, from one consistent snapshot.
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies `writes` atomically (see the trait docs).
    fn write(&self, writes: Vec<KvWrite>) -> Result<()>;
}

/// The key range a [`KvEngine::scan`] of `prefix` resumed `after` a key reads from: just past
/// `after` when it sorts at or past the prefix, else from the prefix itself, to the end.
/// Engines range over it; [`take_scan`] applies the rest of the rule.
pub fn scan_range<'a>(
    prefix: &'a [u8],
    after: Option<&'a [u8]>,
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    let lower = match after {
        Some(a) if a >= prefix => Bound::Excluded(a),
        _ => Bound::Included(prefix),
    };
    (lower, Bound::Unbounded)
}

/// A whole [`KvEngine::scan`] over a table held as a `BTreeMap` (the in-memory engine, the fs
/// backend's index, a toy engine): [`scan_range`] then [`take_scan`].
pub fn scan_map(
    table: &BTreeMap<Vec<u8>, Vec<u8>>,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let entries =
        table.range::<[u8], _>(scan_range(prefix, after)).map(|(k, v)| Ok((k.clone(), v.clone())));
    take_scan(entries, prefix, after, limit)
}

/// The scan rule over `entries` in key order from [`scan_range`]'s start (an engine whose
/// iterator can only start inclusively may yield `after` itself: it is skipped): at most
/// `limit` entries, stopping at the first key outside `prefix` or the first error.
pub fn take_scan(
    entries: impl IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in entries {
        if out.len() >= limit {
            break;
        }
        let (key, value) = entry?;
        if after.is_some_and(|a| key.as_slice() <= a) {
            continue;
        }
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key, value));
    }
    Ok(out)
}
