//! [`ObjectBackend`]: both contracts on one instance, delegating to the modules that hold the
//! logic (`pins`, `views`, `publish`).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use pinvault_core::paging;
use pinvault_core::{
    Batch, Cid, Cursor, Expiry, ListEntry, MigrationReport, ObjectKey, ObjectMeta, ObjectName,
    PeerId, PinCapabilities, PinState, Placement, Publication, PublishCapabilities, Publisher,
    Receipt, Result, SetName, StagedObject, SweepReport, Versioned,
};

use crate::config::{ObjectOptions, StoreKind};
use crate::store::Inner;
use crate::views::RepairReport;
use crate::{MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS};

/// Pins per page of a pin listing (one LIST, then one GET per pin).
pub const LIST_PAGE: usize = 256;

/// Both pinvault contracts over an object store. Cheap to clone (one `Arc`).
///
/// Its contract methods expect input checked by the checking layer
/// ([`pinvault_core::Checked`], which `pinvault::open` applies): used directly they skip the
/// contract's input checks, the capability refusals and the receipts' digest.
#[derive(Clone)]
pub struct ObjectBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBackend")
            .field("backend", &self.inner.backend)
            .field("prefix", &self.inner.layout.root().as_ref())
            .finish_non_exhaustive()
    }
}

impl ObjectBackend {
    /// An instance over `options`. Opening reads and writes nothing: the layout needs no
    /// bootstrap record, so any number of instances (processes, machines) may open one prefix.
    pub fn open(options: ObjectOptions) -> Self {
        ObjectBackend { inner: Arc::new(Inner::new(options)) }
    }

    /// The store kind.
    pub fn kind(&self) -> StoreKind {
        self.inner.kind
    }

    /// Rebuilds the view rows of every live pin and deletes unmatched old rows (see
    /// [`crate::views`]). `migrate` runs it too.
    pub async fn repair_views(&self) -> Result<RepairReport> {
        self.inner.repair_views().await
    }
}

#[async_trait]
impl PinState for ObjectBackend {
    fn pin_capabilities(&self) -> PinCapabilities {
        let i = &self.inner;
        let mut c = PinCapabilities::none(i.backend);
        c.persistent = i.persistent;
        c.durable_on_return = i.durable;
        c.linearizable_conditional_writes = i.conditional_update;
        c.atomic_batch = false;
        c.conditional_batch = false;
        c.atomic_views = false;
        c.max_batch_ops = Some(1);
        c.crash_points = PIN_CRASH_POINTS;
        c
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.inner.get_pin(cid).await
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        // A cursor is CID bytes; its key is the hex of them, whatever they hold.
        let start = after.map(|c| self.inner.layout.pins_dir().join(hex::encode(&c.0).as_str()));
        paging::paged(start, move |after| self.inner.pin_page(after))
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.inner.commit(batch).await
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        let peer = peer.clone();
        paging::single_page(async move { self.inner.pins_by_peer(&peer).await })
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        paging::single_page(self.inner.expiring_before(before))
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

#[async_trait]
impl Publisher for ObjectBackend {
    fn publish_capabilities(&self) -> PublishCapabilities {
        let i = &self.inner;
        let mut c = PublishCapabilities::none(i.backend);
        c.persistent = i.persistent;
        c.durable_on_return = i.durable;
        c.atomic_publication = true;
        c.max_object_size = Some(MAX_OBJECT_SIZE);
        c.crash_points = PUBLISH_CRASH_POINTS;
        c
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        self.inner.stage(set, name, bytes).await
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        self.inner.finalize(set, staged, manifest).await
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.inner.abort(staged).await
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.inner.sweep(cutoff).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.inner.head_object(key).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.inner.get_object(key).await
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        self.inner.publication(set).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        let prefix = prefix.to_owned();
        paging::single_page(async move { self.inner.list_objects(&prefix).await })
    }
}
