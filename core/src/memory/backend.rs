//! The async face of the memory backend: [`MemoryBackend`] implements [`PinState`] and
//! [`Publisher`] by calling the synchronous [`MemoryStore`], which never blocks for long.
//!
//! `list` pages through the store ([`LIST_PAGE`] pins per read lock, the lock released between
//! pages), so memory stays bounded and writers are not starved by a long listing.
//! `pins_by_peer`, `expiring_before` and the object `list` collect their answer under one read
//! lock: their size is bounded by the view they read (one peer's pins, the due part of the
//! expiry queue, one prefix), and one lock gives them a consistent snapshot.

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;
use futures::future;
use futures::stream::BoxStream;

use super::store::{
    MemoryStore, FORMAT_VERSION, MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS,
};
use crate::batch::{Batch, Receipt};
use crate::capability::{PinCapabilities, PublishCapabilities};
use crate::fault::FaultInjector;
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::paging::{self, Page};
use crate::pin::PeerId;
use crate::publish::{ObjectMeta, Publication, Publisher, StagedObject, SweepReport};
use crate::state::{Cursor, Expiry, ListEntry, MigrationReport, PinState, Placement, Versioned};
use crate::Result;

/// Pins per page of a listing: each page takes the read lock once.
pub const LIST_PAGE: usize = 256;

/// An instance of the memory backend over a [`MemoryStore`].
#[derive(Clone)]
pub struct MemoryBackend {
    store: MemoryStore,
    faults: FaultInjector,
}

impl MemoryBackend {
    /// A backend over a new, empty store, with fault injection disabled.
    pub fn new() -> Self {
        MemoryBackend::open(MemoryStore::new(), FaultInjector::disabled())
    }

    /// A new instance over existing data, with the given fault injector.
    pub fn open(store: MemoryStore, faults: FaultInjector) -> Self {
        MemoryBackend { store, faults }
    }

    /// The data this instance works on.
    pub fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    const PIN_CAPABILITIES: PinCapabilities = PinCapabilities {
        backend: "memory",
        persistent: false,
        durable_on_return: false,
        linearizable_conditional_writes: true,
        atomic_batch: true,
        conditional_batch: true,
        atomic_views: true,
        max_batch_ops: None,
        crash_points: PIN_CRASH_POINTS,
    };

    const PUBLISH_CAPABILITIES: PublishCapabilities = PublishCapabilities {
        backend: "memory",
        persistent: false,
        durable_on_return: false,
        atomic_publication: true,
        max_object_size: Some(MAX_OBJECT_SIZE),
        crash_points: PUBLISH_CRASH_POINTS,
    };
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend").field("faults", &self.faults).finish_non_exhaustive()
    }
}

#[async_trait]
impl PinState for MemoryBackend {
    fn pin_capabilities(&self) -> PinCapabilities {
        Self::PIN_CAPABILITIES
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.store.get(cid)
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        paging::paged(after, move |after| {
            let page = self.store.list_page(after.as_ref(), LIST_PAGE);
            future::ready(Ok(Page::of(page, LIST_PAGE, |e| e.cursor.clone())))
        })
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.store.commit(batch, &self.faults)
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        paging::single_page(future::ready(Ok(self.store.pins_by_peer(peer))))
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        paging::single_page(future::ready(Ok(self.store.expiring_before(before))))
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.store.placement(cid)
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.store.record_placement(cid, actual)
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        Ok(MigrationReport { from: FORMAT_VERSION, to: FORMAT_VERSION, records_rewritten: 0 })
    }
}

#[async_trait]
impl Publisher for MemoryBackend {
    fn publish_capabilities(&self) -> PublishCapabilities {
        Self::PUBLISH_CAPABILITIES
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        self.store.stage(set, name, bytes)
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        self.store.finalize(set, staged, manifest, &self.faults)
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.store.abort(staged);
        Ok(())
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        Ok(self.store.sweep(cutoff))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.store.head(key)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.store.get_object(key)
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        self.store.publication(set)
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        paging::single_page(future::ready(Ok(self.store.list_objects(prefix))))
    }
}
