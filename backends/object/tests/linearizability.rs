//! Linearizability of the object-store backend's conditional writes: 16 clients, each on its
//! own `ObjectBackend` instance over one store and prefix (as separate processes or machines
//! would be), doing random get / conditional put / conditional remove on 4 hot keys; every
//! history is checked against the memory model (`pinvault_conformance::linearizability`).
//!
//! Targets: `InMemory` and `LocalFileSystem` (no service), MinIO and Azurite (need
//! `testenv/pvenv up minio azurite` and its env file sourced; they fail, never skip, without).
//! A store without compare-and-swap (`with_conditional_update(false)`) must refuse conditional
//! writes. Every instance is reached through the checking layer (`TestStore::new`), as users
//! reach it. `PINVAULT_LIN_OPS` sets ops per client (defaults below keep each run under ~20 s on
//! the project's 2-core machine; Azurite is single-threaded, so it gets fewer).

mod common;

use std::sync::Arc;

use common::{ObjectHarness, Target};
use object_store::memory::InMemory;
use pinvault_conformance::linearizability::{self, TrialFuture, Workload};
use pinvault_conformance::{Harness, TestStore};
use pinvault_core::{FaultInjector, PinState};
use pinvault_object::{ObjectBackend, ObjectOptions, StoreKind};

/// Clients per target; each gets its own backend instance.
const INSTANCES: usize = 16;

async fn run(label: &str, harness: ObjectHarness, ops: usize) {
    let first = harness.create(FaultInjector::disabled()).await.expect("create");
    let mut instances: Vec<Arc<dyn PinState>> = vec![first.state.clone()];
    for _ in 1..INSTANCES {
        let other = harness.reopen(&first.location, FaultInjector::disabled()).await.expect("open");
        instances.push(other.state);
    }
    // A conflict carries the version of the read that found the precondition failing, made
    // within the call (see `pins.rs`), so it is checked exactly, as on every backend.
    linearizability::run(label, instances, &Workload::from_env(ops)).await;
    drop(first);
    drop(harness);
}

/// A store declared without `PutMode::Update`: conditional writes must be refused.
async fn without_conditional_update() {
    let options = ObjectOptions::new(Arc::new(InMemory::new()), "no-cas")
        .expect("options")
        .with_kind(StoreKind::Other)
        .with_conditional_update(false);
    let state = TestStore::new(Arc::new(ObjectBackend::open(options)), ()).state;
    assert!(!state.pin_capabilities().linearizable_conditional_writes);
    linearizability::run("object (no conditional update)", vec![state], &Workload::from_env(10))
        .await;
}

type Trials = Vec<(String, Box<dyn FnOnce() -> TrialFuture + Send>)>;

fn main() {
    let trials: Trials = vec![
        (
            "object_memory::in_process".into(),
            Box::new(|| -> TrialFuture {
                Box::pin(run(
                    "object InMemory (16 instances)",
                    ObjectHarness::new(Target::Memory),
                    1000,
                ))
            }),
        ),
        (
            "object_local::in_process".into(),
            Box::new(|| -> TrialFuture {
                Box::pin(run(
                    "object LocalFileSystem (16 instances)",
                    ObjectHarness::new(Target::Local),
                    1000,
                ))
            }),
        ),
        (
            "object_minio::in_process".into(),
            Box::new(|| -> TrialFuture {
                Box::pin(async {
                    run("object MinIO (16 instances)", ObjectHarness::minio(), 400).await
                })
            }),
        ),
        (
            "object_azurite::in_process".into(),
            Box::new(|| -> TrialFuture {
                Box::pin(async {
                    run("object Azurite (16 instances)", ObjectHarness::azurite(), 40).await
                })
            }),
        ),
        (
            "object_no_conditional_update::refuses".into(),
            Box::new(|| -> TrialFuture { Box::pin(without_conditional_update()) }),
        ),
    ];
    linearizability::main(trials);
}
