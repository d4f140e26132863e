//! The checking layer: the contract enforced once, in front of every backend.
//!
//! [`Checked`] wraps a type implementing [`PinState`], [`Publisher`] or both, and implements
//! the same contracts again, like OpenDAL's `correctness_check` and `metrics` layers. It is what callers talk to:
//! `pinvault::Store::from_backend` applies it to every backend the facade opens, and the
//! conformance harness (`TestStore::new`) to every backend it checks, so the suite proves the
//! backends as users reach them.
//!
//! Before a call reaches the backend, the layer
//!
//! * **validates commits** in the contract's order: the batch's own rules
//!   ([`Batch::validate`]: at least one op, each CID once, valid pins, no remove with
//!   `Absent`) as [`Error::InvalidInput`]; then a multi-op batch on a backend without
//!   `atomic_batch` as [`Error::Unsupported`]; then a batch over `max_batch_ops` as
//!   `InvalidInput`; then a conditional multi-op batch without `conditional_batch`, and a
//!   conditional op without `linearizable_conditional_writes`, as `Unsupported`;
//! * **refuses imports** whose batches would have to be conditional and atomic
//!   (a precondition other than `Any`, `batch_size` above 1) when the backend does not declare
//!   `conditional_batch`, and commits every imported batch through the checks above;
//! * **checks publication**: `stage` and `finalize` on a backend without
//!   `atomic_publication` are `Unsupported`; an object over `max_object_size` is
//!   `InvalidInput`; `finalize`'s input rules ([`validate_finalize`]) come first in its check
//!   order (`InvalidInput`, then the backend's `AlreadyExists`, then `NotFound`).
//!
//! After a commit it builds the receipt's common parts (the op count and [`Batch::digest`]),
//! and around every call it opens one tracing span (`pinvault.<op>`, with the backend's name)
//! and records `pinvault_op_seconds{backend, op, outcome}`, so no backend has to.
//!
//! # Using a backend without the layer
//!
//! The backend types stay public, for tools, benches and backend-specific methods. What their
//! direct use guarantees differs:
//!
//! * The embedded backends (memory, and RocksDB, sled and fs over [`crate::kv`]) are safe to
//!   use directly: [`crate::kv::KvStore`] and [`crate::memory::MemoryStore`] keep validating
//!   batches, finalize arguments and object sizes themselves, because their synchronous APIs
//!   are public and used with no async layer in front (the benches' `kvstore` variant, tools).
//!   Behind the layer they therefore validate a batch and compute its digest twice: a few
//!   microseconds per commit, against the engine write and fsync it precedes.
//! * The service backends (object stores, Scylla) rely on the layer for the contract's input
//!   checks and capability refusals: called directly they do not report invalid input in the
//!   contract's order and their receipts carry no digest. They keep only the guards without
//!   which a request could be silently narrowed (the object store commits exactly one op; a
//!   Scylla logged batch cannot carry preconditions), refused with `Unsupported`. Wrap them
//!   with [`Checked::new`] (or open them through `pinvault::open`).

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;
use futures::stream::BoxStream;
use tokio::io::{AsyncBufRead, AsyncWrite};
use tracing::Instrument;

use crate::batch::{Batch, Receipt};
use crate::capability::{PinCapabilities, PublishCapabilities};
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::pin::PeerId;
use crate::publish::{
    validate_finalize, ObjectMeta, Publication, Publisher, StagedObject, SweepReport,
};
use crate::state::{Cursor, Expiry, ListEntry, MigrationReport, PinState, Placement, Versioned};
use crate::transfer::{self, ImportOptions, Progress, TransferFormat, TransferSummary};
use crate::{Error, Result};

/// A backend behind the checking layer (see the module doc). Cheap to clone: clones share
/// the backend.
pub struct Checked<B: ?Sized> {
    inner: Arc<B>,
}

impl<B: ?Sized> Clone for Checked<B> {
    fn clone(&self) -> Self {
        Checked { inner: self.inner.clone() }
    }
}

impl<B: fmt::Debug + ?Sized> fmt::Debug for Checked<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Checked").field(&self.inner).finish()
    }
}

impl<B> Checked<B> {
    /// Puts `backend` behind the layer.
    pub fn new(backend: B) -> Self {
        Checked { inner: Arc::new(backend) }
    }
}

impl<B: ?Sized> Checked<B> {
    /// Puts a shared backend behind the layer.
    pub fn from_arc(backend: Arc<B>) -> Self {
        Checked { inner: backend }
    }

    /// The backend itself, for its own methods. Calls through it skip the layer.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

/// Runs `call` (operation `op` of `backend`) inside the layer's span and records its duration.
async fn observed<T>(
    backend: &'static str,
    op: &'static str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = call.instrument(tracing::debug_span!("pinvault", op, backend)).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => "conflict",
        Err(Error::NotFound { .. }) => "not_found",
        Err(_) => "error",
    };
    metrics::histogram!("pinvault_op_seconds", "backend" => backend, "op" => op, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Everything about `batch` that `caps` decides, in the contract's order (module doc).
pub fn check_batch(caps: &PinCapabilities, batch: &Batch) -> Result<()> {
    batch.validate(None)?;
    let refuse = |why: String| Err(Error::unsupported(caps.backend, why));
    let multi = batch.len() > 1;
    if multi && !caps.atomic_batch {
        return refuse(format!(
            "a batch of {} ops: this backend declares atomic_batch: false (commit one op at a \
             time; import splits its batches by itself)",
            batch.len()
        ));
    }
    if let Some(max) = caps.max_batch_ops {
        if batch.len() > max {
            return Err(Error::invalid(
                "batch",
                format!("{} ops exceed this backend's limit of {max}", batch.len()),
            ));
        }
    }
    if multi && batch.is_conditional() && !caps.conditional_batch {
        return refuse(
            "a multi-op batch with preconditions: this backend declares conditional_batch: false"
                .to_owned(),
        );
    }
    if !caps.linearizable_conditional_writes {
        if let Some(op) = batch.ops.iter().find(|op| op.precondition().is_conditional()) {
            return refuse(format!(
                "a {} precondition: this backend declares linearizable_conditional_writes: false",
                op.precondition().describe()
            ));
        }
    }
    Ok(())
}

/// Refuses an import whose batches would have to be conditional and atomic when `caps` does
/// not declare `conditional_batch`.
pub fn check_import(caps: &PinCapabilities, options: &ImportOptions) -> Result<()> {
    if options.precondition.is_conditional()
        && options.batch_size > 1
        && !(caps.atomic_batch && caps.conditional_batch)
    {
        return Err(Error::unsupported(
            caps.backend,
            format!(
                "an import with precondition {} in batches of {}: this backend declares \
                 conditional_batch: false, so such batches would not be atomic; import with \
                 batch_size 1",
                options.precondition.describe(),
                options.batch_size
            ),
        ));
    }
    Ok(())
}

/// Refuses `stage` or `finalize` (`operation`) on a backend without atomic publication.
fn check_publication(caps: &PublishCapabilities, operation: &str) -> Result<()> {
    if caps.atomic_publication {
        return Ok(());
    }
    Err(Error::unsupported(
        caps.backend,
        format!("{operation}: this backend declares atomic_publication: false"),
    ))
}

/// Refuses an object larger than `caps.max_object_size`.
pub fn check_object_size(
    caps: &PublishCapabilities,
    set: &SetName,
    name: &ObjectName,
    size: u64,
) -> Result<()> {
    match caps.max_object_size {
        Some(max) if size > max => Err(Error::invalid(
            format!("object {set}/{name}"),
            format!("{size} bytes exceed the {} backend's limit of {max}", caps.backend),
        )),
        _ => Ok(()),
    }
}

impl<B: PinState + ?Sized> Checked<B> {
    async fn observed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        observed(self.inner.pin_capabilities().backend, op, call).await
    }
}

#[async_trait]
impl<B: PinState + ?Sized> PinState for Checked<B> {
    fn pin_capabilities(&self) -> PinCapabilities {
        self.inner.pin_capabilities()
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.observed("get", PinState::get(&*self.inner, cid)).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.observed("has", self.inner.has(cid)).await
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        PinState::list(&*self.inner, after)
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        check_batch(&self.inner.pin_capabilities(), &batch)?;
        let (ops, digest) = (batch.len(), batch.digest());
        let mut receipt = self.observed("commit", self.inner.commit(batch)).await?;
        receipt.ops = ops;
        receipt.digest = digest;
        Ok(receipt)
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        self.inner.pins_by_peer(peer)
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        self.inner.expiring_before(before)
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.observed("placement", self.inner.placement(cid)).await
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.observed("record_placement", self.inner.record_placement(cid, actual)).await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.observed("migrate", self.inner.migrate()).await
    }

    async fn export(
        &self,
        format: TransferFormat,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        self.observed("export", self.inner.export(format, writer, progress)).await
    }

    /// Imports through [`transfer::import_into`] on the layer itself, so every batch is checked.
    async fn import(
        &self,
        reader: &mut (dyn AsyncBufRead + Unpin + Send),
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        check_import(&self.inner.pin_capabilities(), options)?;
        transfer::import_into(self, reader, options, progress).await
    }
}

impl<B: Publisher + ?Sized> Checked<B> {
    async fn published<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        observed(self.inner.publish_capabilities().backend, op, call).await
    }
}

#[async_trait]
impl<B: Publisher + ?Sized> Publisher for Checked<B> {
    fn publish_capabilities(&self) -> PublishCapabilities {
        self.inner.publish_capabilities()
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        let caps = self.inner.publish_capabilities();
        check_publication(&caps, "stage")?;
        check_object_size(&caps, set, name, bytes.len() as u64)?;
        observed(caps.backend, "stage", self.inner.stage(set, name, bytes)).await
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        let caps = self.inner.publish_capabilities();
        check_publication(&caps, "finalize")?;
        validate_finalize(set, staged, &manifest)?;
        observed(caps.backend, "finalize", self.inner.finalize(set, staged, manifest)).await
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.published("abort", self.inner.abort(staged)).await
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.published("sweep", self.inner.sweep(cutoff)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.published("head", self.inner.head(key)).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.published("get_object", Publisher::get(&*self.inner, key)).await
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        self.published("publication", self.inner.publication(set)).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        Publisher::list(&*self.inner, prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;
    use crate::{Pin, Precondition};

    fn pin(n: u8) -> Pin {
        Pin::new(Cid::new_v1(0x55, cid::multihash::Multihash::wrap(0x12, &[n; 32]).unwrap()))
    }

    #[test]
    fn batch_checks_follow_the_contract_order() {
        let mut caps = PinCapabilities::none("test");
        caps.linearizable_conditional_writes = true;
        caps.max_batch_ops = Some(1);
        let two = Batch::new().put(pin(1), Precondition::Any).put(pin(2), Precondition::Any);
        let dup = Batch::new().put(pin(1), Precondition::Any).put(pin(1), Precondition::Any);
        let kind = |r: Result<()>| match r {
            Ok(()) => "ok",
            Err(Error::InvalidInput { .. }) => "invalid",
            Err(Error::Unsupported { .. }) => "unsupported",
            Err(_) => "other",
        };
        assert_eq!(kind(check_batch(&caps, &dup)), "invalid", "input first");
        assert_eq!(kind(check_batch(&caps, &two)), "unsupported", "then atomic_batch");
        caps.atomic_batch = true;
        assert_eq!(kind(check_batch(&caps, &two)), "invalid", "then the size limit");
        caps.max_batch_ops = None;
        assert_eq!(kind(check_batch(&caps, &two)), "ok");
        let conditional = Batch::new().put(pin(1), Precondition::Absent);
        assert_eq!(kind(check_batch(&caps, &conditional)), "ok");
        caps.linearizable_conditional_writes = false;
        assert_eq!(kind(check_batch(&caps, &conditional)), "unsupported");
    }

    #[tokio::test]
    async fn receipts_carry_the_batch_digest() {
        let store = Checked::new(MemoryBackend::new());
        let batch = Batch::new().put(pin(3), Precondition::Absent);
        let digest = batch.digest();
        let receipt = store.commit(batch).await.unwrap();
        assert_eq!((receipt.ops, receipt.digest), (1, digest));
        assert!(matches!(store.commit(Batch::new()).await, Err(Error::InvalidInput { .. })));
    }
}
