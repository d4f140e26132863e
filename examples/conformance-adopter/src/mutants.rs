//! Deliberately broken variants of the toy backend, each breaking one promise of the
//! contracts in a way a real backend could. They exist to test the conformance suite itself
//! (mutation testing): `tests/mutants.rs` runs the suite against each and asserts that it
//! fails, naming the checks that caught it; `tests/kill_mutant.rs` runs the SIGKILL test
//! against the piecemeal engine. Never use them for anything else.
//!
//! * [`Mutation::DropPreconditions`]: commits every batch with its preconditions replaced by
//!   `Any`, so `Absent` and `Version` writes never conflict.
//! * [`Mutation::TearBatch`]: commits a multi-op batch op by op, so when a later op's
//!   precondition fails the earlier ops stay committed.
//! * [`PiecemealEngine`]: a non-atomic finalize. The engine write that publishes a set (the
//!   one holding a set record) is applied and persisted row by row, releasing the lock in
//!   between, so the objects become visible one by one before the set record: a concurrent
//!   reader, or a crash, sees half a set. Every other write stays whole.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use pinvault_core::kv::{KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::{
    Batch, BatchOp, Cid, Composed, Error, Expiry, FaultInjector, ListEntry, MigrationReport,
    PeerId, PinCapabilities, PinState, Placement, Precondition, Publisher, Receipt, Result,
    Versioned,
};

use crate::snapshot::SnapshotEngine;

/// A pin-state mutation applied by [`PinMutant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Forwards every batch with its preconditions removed (all `Any`).
    DropPreconditions,
    /// Commits a multi-op batch as one single-op commit per op, stopping at the first failure
    /// and leaving the earlier ops committed.
    TearBatch,
}

impl Mutation {
    /// The mutant's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::DropPreconditions => "drop-precondition",
            Mutation::TearBatch => "tear-batch",
        }
    }
}

/// Pin state that commits batches wrongly as its [`Mutation`] says; reads and views are
/// forwarded unchanged. [`mutate`] pairs it with the backend's own publisher.
#[derive(Debug)]
pub struct PinMutant<B> {
    inner: B,
    mutation: Mutation,
}

impl<B> PinMutant<B> {
    /// `inner` with `mutation` applied to its commits.
    pub fn new(inner: B, mutation: Mutation) -> Self {
        PinMutant { inner, mutation }
    }
}

/// `backend` with `mutation` applied to its pin state and its publication untouched (the
/// forwarding is core's [`Composed`]).
pub fn mutate<B: PinState + Publisher + Clone>(
    backend: B,
    mutation: Mutation,
) -> Composed<PinMutant<B>, B> {
    Composed { pins: PinMutant::new(backend.clone(), mutation), publisher: backend }
}

fn without_precondition(op: BatchOp) -> BatchOp {
    match op {
        BatchOp::Put { pin, .. } => BatchOp::Put { pin, precondition: Precondition::Any },
        BatchOp::Remove { cid, .. } => BatchOp::Remove { cid, precondition: Precondition::Any },
    }
}

impl<B: PinState> PinMutant<B> {
    async fn commit_op_by_op(&self, batch: Batch) -> Result<Receipt> {
        let (ops, digest) = (batch.len(), batch.digest());
        let mut versions = Vec::with_capacity(ops);
        let mut last = None;
        for (op_index, op) in batch.ops.into_iter().enumerate() {
            match self.inner.commit(Batch { ops: vec![op] }).await {
                Ok(receipt) => {
                    versions.extend(receipt.versions.iter().cloned());
                    last = Some(receipt);
                }
                // The ops before this one stay committed: the mutation.
                Err(Error::Conflict { key, expected, current, .. }) => {
                    return Err(Error::Conflict { key, expected, current, op_index })
                }
                Err(e) => return Err(e),
            }
        }
        let last = last.ok_or_else(|| Error::invalid("batch", "a batch needs at least one op"))?;
        Ok(Receipt {
            sequence: last.sequence,
            ops,
            committed_at: last.committed_at,
            digest,
            versions,
        })
    }
}

#[async_trait]
impl<B: PinState> PinState for PinMutant<B> {
    fn pin_capabilities(&self) -> PinCapabilities {
        self.inner.pin_capabilities()
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.inner.get(cid).await
    }

    fn list(&self, after: Option<pinvault_core::Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        self.inner.list(after)
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        match self.mutation {
            Mutation::DropPreconditions => {
                let ops = batch.ops.into_iter().map(without_precondition).collect();
                self.inner.commit(Batch { ops }).await
            }
            Mutation::TearBatch => self.commit_op_by_op(batch).await,
        }
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

/// The engine of the non-atomic-finalize mutant: the toy engine, but a
/// `write` that publishes a set applies and persists each of its [`KvWrite`]s on its own (a
/// whole snapshot rewrite each), releasing the lock and pausing 1 ms between them. The KV layer writes a
/// finalize's object records in name order and the set record last, so the objects appear
/// one at a time before their set.
#[derive(Debug)]
pub struct PiecemealEngine(SnapshotEngine);

/// The backend name the piecemeal engine reports.
pub const PIECEMEAL_BACKEND: &str = "toy-piecemeal";
/// The pause between the rows of a piecemeal write.
const ROW_PAUSE: Duration = Duration::from_millis(1);
/// The piecemeal mutant's name in reports.
pub const PIECEMEAL_MUTANT: &str = "piecemeal-finalize";

impl PiecemealEngine {
    /// Opens the store in `dir` as [`SnapshotEngine::open`] does, fsyncs included: the fsyncs
    /// of each row's rewrite make a finalize last long enough that the SIGKILL test's kills
    /// land inside one (without them a finalize of the kill workload's few objects is over in
    /// a fraction of a millisecond, and 50 kills missed every one).
    pub fn open(dir: PathBuf) -> Result<Self> {
        SnapshotEngine::open(dir).map(PiecemealEngine)
    }
}

impl KvEngine for PiecemealEngine {
    fn backend(&self) -> &'static str {
        PIECEMEAL_BACKEND
    }

    fn durable(&self) -> bool {
        self.0.durable()
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.scan(table, prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        // Only a finalize writes a set record; every other write stays whole.
        let publishes = writes.iter().any(|w| matches!(w, KvWrite::Put { table: Table::Sets, .. }));
        if !publishes {
            return self.0.write(writes);
        }
        for w in writes {
            self.0.write(vec![w])?;
            // Between rows, as a backend making one request per row would spend a round trip;
            // without it this thread takes the lock straight back and readers rarely get in.
            std::thread::sleep(ROW_PAUSE);
        }
        Ok(())
    }
}

/// Opens the piecemeal mutant in `dir` on tokio's blocking pool.
pub async fn open_piecemeal(
    dir: PathBuf,
    faults: FaultInjector,
) -> Result<KvBackend<PiecemealEngine>> {
    KvBackend::open_async(move || PiecemealEngine::open(dir), faults).await
}
