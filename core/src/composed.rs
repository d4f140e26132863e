//! One backend out of two parts: pin state from one type, publication from another.
//!
//! A backend need not serve both contracts from one type: fs keeps its pins in the KV layer
//! ([`crate::kv::KvBackend`] over its log engine) and publishes with its own file protocol.
//! [`Composed`] puts such a pair together as one value implementing both contracts, each call
//! going to the part that owns it, so no backend writes this forwarding itself. Each part
//! states its own capabilities ([`crate::PinCapabilities`], [`crate::PublishCapabilities`]).

use std::collections::BTreeSet;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;
use futures::stream::BoxStream;
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::batch::{Batch, Receipt};
use crate::capability::{PinCapabilities, PublishCapabilities};
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::pin::{PeerId, Pin};
use crate::publish::{ObjectMeta, Publication, Publisher, StagedObject, SweepReport};
use crate::state::{Cursor, Expiry, ListEntry, MigrationReport, PinState, Placement, Versioned};
use crate::transfer::{ImportOptions, Progress, TransferFormat, TransferSummary};
use crate::version::{Precondition, Version};
use crate::Result;

/// Pin state `S` and publication `P` as one backend.
#[derive(Clone, Debug)]
pub struct Composed<S, P> {
    /// The part serving [`PinState`].
    pub pins: S,
    /// The part serving [`Publisher`].
    pub publisher: P,
}

#[async_trait]
impl<S: PinState, P: Publisher> PinState for Composed<S, P> {
    fn pin_capabilities(&self) -> PinCapabilities {
        self.pins.pin_capabilities()
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.pins.get(cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.pins.has(cid).await
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        self.pins.list(after)
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.pins.commit(batch).await
    }

    async fn put(&self, pin: Pin, precondition: Precondition) -> Result<Version> {
        self.pins.put(pin, precondition).await
    }

    async fn remove(&self, cid: &Cid, precondition: Precondition) -> Result<()> {
        self.pins.remove(cid, precondition).await
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        self.pins.pins_by_peer(peer)
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        self.pins.expiring_before(before)
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.pins.placement(cid).await
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.pins.record_placement(cid, actual).await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.pins.migrate().await
    }

    async fn export(
        &self,
        format: TransferFormat,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        self.pins.export(format, writer, progress).await
    }

    async fn import(
        &self,
        reader: &mut (dyn AsyncBufRead + Unpin + Send),
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        self.pins.import(reader, options, progress).await
    }
}

#[async_trait]
impl<S: PinState, P: Publisher> Publisher for Composed<S, P> {
    fn publish_capabilities(&self) -> PublishCapabilities {
        self.publisher.publish_capabilities()
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        self.publisher.stage(set, name, bytes).await
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        self.publisher.finalize(set, staged, manifest).await
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.publisher.abort(staged).await
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.publisher.sweep(cutoff).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.publisher.head(key).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.publisher.get(key).await
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        self.publisher.publication(set).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        self.publisher.list(prefix)
    }
}
