//! Runs the whole conformance suite on the memory reference backend.
//!
//! `create` opens a backend over a new `MemoryStore`; `reopen` drops nothing itself (the suite
//! dropped the old instance) and opens a new `MemoryBackend` over the same shared store, so
//! a crash injected mid-commit leaves exactly what the next instance sees.

use std::sync::Arc;

use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::memory::{MemoryBackend, MemoryStore};
use pinvault_core::{Error, FaultInjector, Result};

/// Opens memory backends; the location of a store is its `MemoryStore` handle.
struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let store = MemoryBackend::new().store();
        let backend = Arc::new(MemoryBackend::open(store.clone(), faults));
        Ok(TestStore::new(backend, store))
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let store = location
            .downcast_ref::<MemoryStore>()
            .ok_or_else(|| Error::invalid("location", "not a MemoryStore"))?
            .clone();
        let backend = Arc::new(MemoryBackend::open(store.clone(), faults));
        Ok(TestStore::new(backend, store))
    }
}

mod memory {
    use super::MemoryHarness;

    pinvault_conformance::conformance_tests!(MemoryHarness);
}

#[test]
fn the_suite_holds_at_least_forty_checks() {
    let total: usize = pinvault_conformance::CHECKS.iter().map(|(_, checks)| checks.len()).sum();
    assert!(total >= 40, "the suite must hold at least 40 checks, it holds {total}");
}
