//! Linearizability of the memory reference backend (16 clients × 1,000 ops on one instance by
//! default), and the mutation checks that show the checker catches real bugs: a wrapper that
//! drops the precondition of every 50th put, and one that serves some reads from a stale cache.
//! Each mutated run must be reported as not linearizable, naming the key and the operations.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use pinvault_conformance::async_trait;
use pinvault_conformance::linearizability::{
    self, check, record, CheckOptions, TrialFuture, Workload,
};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::state::{Cursor, Expiry, ListEntry, MigrationReport, Placement, Versioned};
use pinvault_core::{
    Batch, Cid, PeerId, Pin, PinCapabilities, PinState, Precondition, Receipt, Result, Version,
};

/// The bug a [`Mutant`] adds to the memory backend.
#[derive(Debug, Clone, Copy)]
enum Bug {
    /// Every 50th put is written with `Precondition::Any`, whatever the caller asked.
    DropPrecondition,
    /// Every 7th get returns what an earlier get of the key returned (a read cache never
    /// invalidated).
    StaleRead,
}

#[derive(Debug)]
struct Mutant {
    inner: MemoryBackend,
    bug: Bug,
    calls: AtomicU64,
    cache: Mutex<HashMap<Cid, Result<Versioned, String>>>,
}

impl Mutant {
    fn new(bug: Bug) -> Self {
        Mutant {
            inner: MemoryBackend::new(),
            bug,
            calls: AtomicU64::new(0),
            cache: Mutex::default(),
        }
    }

    fn nth(&self, n: u64) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed) % n == n - 1
    }
}

#[async_trait]
impl PinState for Mutant {
    fn pin_capabilities(&self) -> PinCapabilities {
        self.inner.pin_capabilities()
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        tokio::task::yield_now().await;
        if let Bug::StaleRead = self.bug {
            if self.nth(7) {
                let cached = self.cache.lock().unwrap().get(cid).cloned();
                if let Some(cached) = cached {
                    return cached.map_err(pinvault_core::Error::not_found);
                }
            }
            let got = self.inner.get(cid).await;
            let entry = match &got {
                Ok(v) => Ok(v.clone()),
                Err(_) => Err(format!("pin {cid}")),
            };
            self.cache.lock().unwrap().entry(*cid).or_insert(entry);
            return got;
        }
        self.inner.get(cid).await
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        self.inner.list(after)
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.inner.commit(batch).await
    }

    async fn put(&self, pin: Pin, precondition: Precondition) -> Result<Version> {
        tokio::task::yield_now().await;
        let precondition = match self.bug {
            Bug::DropPrecondition if self.nth(50) => Precondition::Any,
            _ => precondition,
        };
        self.inner.put(pin, precondition).await
    }

    async fn remove(&self, cid: &Cid, precondition: Precondition) -> Result<()> {
        tokio::task::yield_now().await;
        self.inner.remove(cid, precondition).await
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        self.inner.pins_by_peer(peer)
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        self.inner.expiring_before(before)
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.inner.placement(cid).await
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.inner.record_placement(cid, actual).await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.inner.migrate().await
    }
}

async fn mutation(bug: Bug) {
    let label = format!("memory with the bug {bug:?}");
    let workload = Workload::from_env(1000);
    let state: Arc<dyn PinState> = Arc::new(Mutant::new(bug));
    let recording = record(&[state], &workload).await;
    let report = check(&recording.history, &CheckOptions::default());
    println!("{label}: seed {}; {}", workload.seed, report.summary());
    assert!(
        !report.violations.is_empty(),
        "{label}: the checker must report the history as not linearizable"
    );
    let v = &report.violations[0];
    assert!(!v.offending.is_empty(), "{label}: the report must name the operations");
    assert!(v.offending.iter().all(|o| o.key == v.key), "{label}: the operations are the key's");
    // The first violation, as a reader of the test log sees it.
    println!("{label}: caught: {v}");
}

fn main() {
    let trials: Vec<(String, Box<dyn FnOnce() -> TrialFuture + Send>)> = vec![
        (
            "memory::in_process".into(),
            Box::new(|| -> TrialFuture {
                Box::pin(async {
                    let state: Arc<dyn PinState> = Arc::new(MemoryBackend::new());
                    linearizability::run(
                        "memory (one instance)",
                        vec![state],
                        &Workload::from_env(1000),
                    )
                    .await;
                })
            }),
        ),
        (
            "memory::mutation_drop_precondition_is_caught".into(),
            Box::new(|| -> TrialFuture { Box::pin(mutation(Bug::DropPrecondition)) }),
        ),
        (
            "memory::mutation_stale_read_is_caught".into(),
            Box::new(|| -> TrialFuture { Box::pin(mutation(Bug::StaleRead)) }),
        ),
    ];
    linearizability::main(trials);
}
