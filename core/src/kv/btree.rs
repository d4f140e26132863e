//! The simplest [`KvEngine`]: one `BTreeMap` per table behind a mutex, in memory. It exists to
//! test the KV layer apart from any real engine (the conformance suite's `kv_btree` run, the
//! fuzz targets) and as the smallest example of the trait for a porting engine. Clones share
//! their data, so dropping one instance and opening a `KvBackend` over a clone is a crash and
//! reopen.
//!
//! Its mutex comes from `crate::sync`, so under `cfg(loom)` it is loom's: `tests/loom_kv.rs`
//! runs the real `KvStore` over this engine, and a std mutex held across a loom yield could
//! deadlock the model (and would hide the engine's lock from loom's exploration).

use std::collections::BTreeMap;

use crate::sync::{Arc, Mutex, MutexGuard};

use super::engine::{scan_map, KvEngine, KvWrite, Table};
use crate::{Error, Result};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory engine; clones share the data.
#[derive(Clone, Debug, Default)]
pub struct BTreeEngine(Arc<Mutex<Tables>>);

impl BTreeEngine {
    fn tables(&self) -> Result<MutexGuard<'_, Tables>> {
        self.0.lock().map_err(|_| Error::backend("kv-btree", "a writer panicked holding the lock"))
    }
}

impl KvEngine for BTreeEngine {
    fn backend(&self) -> &'static str {
        "kv-btree"
    }

    fn durable(&self) -> bool {
        false
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tables()?.get(&table).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tables = self.tables()?;
        let Some(t) = tables.get(&table) else { return Ok(Vec::new()) };
        scan_map(t, prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        let mut tables = self.tables()?;
        for w in writes {
            match w {
                KvWrite::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                KvWrite::Delete { table, key } => {
                    tables.entry(table).or_default().remove(&key);
                }
            }
        }
        Ok(())
    }
}
