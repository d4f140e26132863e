//! Runs the whole conformance suite on the shared KV layer (`pinvault_core::kv`) over the
//! simplest possible engine: one `BTreeMap` per table behind a mutex. A failure here is a bug in
//! the KV layer itself; the same failure in `pinvault-rocksdb` or `pinvault-sled` but not here
//! is a bug in that engine's adapter.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::kv::{KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::{Error, FaultInjector, Result};

type Tables = Arc<Mutex<BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>>>;

/// An engine whose data outlives it (the harness's location), so a "crash" is a drop.
#[derive(Clone, Default)]
struct BTreeEngine(Tables);

impl KvEngine for BTreeEngine {
    fn backend(&self) -> &'static str {
        "kv-btree"
    }

    fn durable(&self) -> bool {
        false
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tables = self.0.lock().map_err(|_| Error::backend("kv-btree", "poisoned"))?;
        Ok(tables.get(&table).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tables = self.0.lock().map_err(|_| Error::backend("kv-btree", "poisoned"))?;
        let Some(t) = tables.get(&table) else { return Ok(Vec::new()) };
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        Ok(t.range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        let mut tables = self.0.lock().map_err(|_| Error::backend("kv-btree", "poisoned"))?;
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

struct BTreeHarness;

#[async_trait]
impl Harness for BTreeHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let engine = BTreeEngine::default();
        let location = engine.0.clone();
        Ok(TestStore::new(Arc::new(KvBackend::open(engine, faults)?), location))
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let tables = location
            .downcast_ref::<Tables>()
            .ok_or_else(|| Error::invalid("location", "not kv-btree tables"))?
            .clone();
        let backend = KvBackend::open(BTreeEngine(tables.clone()), faults)?;
        Ok(TestStore::new(Arc::new(backend), tables))
    }
}

mod kv_btree {
    use super::BTreeHarness;

    pinvault_conformance::conformance_tests!(BTreeHarness);
}
