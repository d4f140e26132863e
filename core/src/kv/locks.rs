//! The lock table that isolates conditional writers of the KV layer: striped per-key mutexes,
//! always taken in ascending stripe order so two batches can never deadlock.
//!
//! A commit locks the stripes of every CID it touches, reads the current records, checks its
//! preconditions, and writes, all before unlocking. Two writers of one CID therefore serialise,
//! while writers of different CIDs proceed in parallel and reach the engine together, where
//! RocksDB groups their WAL appends and fsyncs (measured in `benches/`).
//!
//! `tests/loom_locks.rs` model-checks this table under `cfg(loom)`, and `tests/loom_kv.rs` the
//! store built on it.

use std::hash::{Hash, Hasher};

use crate::sync::{Mutex, MutexGuard};

/// Stripes per table: enough that unrelated CIDs rarely share one on a small machine.
pub const STRIPES: usize = 64;

/// Striped mutexes over byte keys.
#[derive(Debug)]
pub struct LockTable {
    stripes: Vec<Mutex<()>>,
}

/// The stripes a writer holds; they unlock when it is dropped.
#[derive(Debug)]
pub struct Held<'a> {
    /// The lowest stripe held: the writer records its commit sequence in this stripe's slot.
    pub first: usize,
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl LockTable {
    /// A table of `stripes` mutexes (at least one).
    pub fn new(stripes: usize) -> Self {
        LockTable { stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect() }
    }

    /// How many stripes the table has.
    pub fn len(&self) -> usize {
        self.stripes.len()
    }

    /// Always false: a table has at least one stripe.
    pub fn is_empty(&self) -> bool {
        self.stripes.is_empty()
    }

    /// The stripe of `key`.
    pub fn stripe(&self, key: &[u8]) -> usize {
        // DefaultHasher::new() has fixed keys: the same key maps to the same stripe in every
        // process, which the sequence slots rely on only for tidiness, never for correctness.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.stripes.len() as u64) as usize
    }

    /// Locks the stripes of all `keys`, in ascending order, each once.
    pub fn lock<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Held<'_> {
        let mut stripes: Vec<usize> = keys.into_iter().map(|k| self.stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        self.lock_stripes(&stripes)
    }

    /// Locks the given stripes, which must be sorted and distinct; at least one.
    pub fn lock_stripes(&self, stripes: &[usize]) -> Held<'_> {
        debug_assert!(stripes.windows(2).all(|w| w[0] < w[1]), "stripes must ascend");
        let guards = stripes
            .iter()
            // A poisoned stripe means a panic while it was held; the KV layer writes through
            // one atomic engine call at the end, so no partial state sits behind the lock.
            .map(|&s| self.stripes[s].lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
            .collect();
        Held { first: stripes.first().copied().unwrap_or(0), _guards: guards }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_stripe_and_locking_is_reentrant_per_call() {
        let table = LockTable::new(STRIPES);
        let a = b"bafy-a".as_slice();
        assert_eq!(table.stripe(a), table.stripe(a));
        let held = table.lock([a, a, b"bafy-b".as_slice()]);
        assert!(held.first < STRIPES);
    }
}
