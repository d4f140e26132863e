//! Runs the whole conformance suite on the shared KV layer (`pinvault_core::kv`) over the
//! simplest possible engine, `kv::BTreeEngine` (one `BTreeMap` per table behind a mutex). A
//! failure here is a bug in the KV layer itself; the same failure in `pinvault-rocksdb` or
//! `pinvault-sled` but not here is a bug in that engine's adapter.

use std::sync::Arc;

use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::kv::{BTreeEngine, KvBackend};
use pinvault_core::{Error, FaultInjector, Result};

struct BTreeHarness;

#[async_trait]
impl Harness for BTreeHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let engine = BTreeEngine::default();
        Ok(TestStore::new(Arc::new(KvBackend::open(engine.clone(), faults)?), engine))
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let engine = location
            .downcast_ref::<BTreeEngine>()
            .ok_or_else(|| Error::invalid("location", "not a kv-btree engine"))?
            .clone();
        Ok(TestStore::new(Arc::new(KvBackend::open(engine.clone(), faults)?), engine))
    }
}

mod kv_btree {
    use super::BTreeHarness;

    pinvault_conformance::conformance_tests!(BTreeHarness);
}
