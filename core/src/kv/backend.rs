//! The async face of the KV layer: [`KvBackend`] implements [`PinState`] and [`Publisher`] by
//! running [`KvStore`] calls on tokio's blocking pool, so an engine's disk I/O and fsyncs never
//! stall the async runtime. Listings page through the engine ([`LIST_PAGE`] rows per blocking
//! call), so memory stays bounded whatever the pinset size.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;
use futures::stream::BoxStream;

use super::engine::KvEngine;
use super::store::{KvStore, MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS};
use crate::batch::{Batch, Receipt};
use crate::capability::{PinCapabilities, PublishCapabilities};
use crate::fault::FaultInjector;
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::paging::{self, Page};
use crate::pin::PeerId;
use crate::publish::{ObjectMeta, Publication, Publisher, StagedObject, SweepReport};
use crate::state::{Cursor, Expiry, ListEntry, MigrationReport, PinState, Placement, Versioned};
use crate::{Error, Result};

/// Rows per page of every listing: each page is one blocking engine scan.
pub const LIST_PAGE: usize = 512;

/// Both contracts over a [`KvEngine`]. Cheap to clone: clones share the store.
pub struct KvBackend<E> {
    store: Arc<KvStore<E>>,
}

impl<E> Clone for KvBackend<E> {
    fn clone(&self) -> Self {
        KvBackend { store: self.store.clone() }
    }
}

impl<E: KvEngine> fmt::Debug for KvBackend<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.store.fmt(f)
    }
}

impl<E: KvEngine> KvBackend<E> {
    /// Opens the store held by `engine` (see [`KvStore::open`]). Blocking: call it from a
    /// blocking context or through [`KvBackend::open_async`].
    pub fn open(engine: E, faults: FaultInjector) -> Result<Self> {
        Ok(KvBackend { store: Arc::new(KvStore::open(engine, faults)?) })
    }

    /// Runs `open_engine` and [`KvBackend::open`] on the blocking pool.
    pub async fn open_async<F>(open_engine: F, faults: FaultInjector) -> Result<Self>
    where
        F: FnOnce() -> Result<E> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || KvBackend::open(open_engine()?, faults))
            .await
            .map_err(|e| Error::backend("kv", e))?
    }

    /// The synchronous store, for tools and benches that run outside an async runtime.
    pub fn store(&self) -> &Arc<KvStore<E>> {
        &self.store
    }

    /// Runs `f` on the store in tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&KvStore<E>) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::backend(self.store.engine().backend(), e))?
    }

    /// A stream over pages of the store: `page(store, after)` returns the page after `after`
    /// (from the start when `None`), each page read by one blocking call.
    fn paged<T, C, P>(&self, first: Option<C>, page: P) -> BoxStream<'_, Result<T>>
    where
        T: Send + 'static,
        C: Send + 'static,
        P: Fn(&KvStore<E>, Option<C>) -> Result<Page<T, C>> + Send + Sync + 'static,
    {
        let page = Arc::new(page);
        paging::paged(first, move |after| {
            let page = page.clone();
            self.blocking(move |s| page(s, after))
        })
    }
}

#[async_trait]
impl<E: KvEngine> PinState for KvBackend<E> {
    fn pin_capabilities(&self) -> PinCapabilities {
        let engine = self.store.engine();
        PinCapabilities {
            backend: engine.backend(),
            persistent: true,
            durable_on_return: engine.durable(),
            linearizable_conditional_writes: true,
            atomic_batch: true,
            conditional_batch: true,
            atomic_views: true,
            max_batch_ops: None,
            crash_points: PIN_CRASH_POINTS,
        }
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        let cid = *cid;
        self.blocking(move |s| s.get(&cid)).await
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        self.paged(after, |s, after| {
            let page = s.list_page(after.as_ref(), LIST_PAGE)?;
            Ok(Page::of(page, LIST_PAGE, |e| e.cursor.clone()))
        })
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.blocking(move |s| s.commit(batch)).await
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        let peer = peer.clone();
        self.paged(None, move |s, after: Option<Vec<u8>>| {
            let page = s.by_peer_page(&peer, after.as_deref(), LIST_PAGE)?;
            Ok(keyed_page(page))
        })
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        self.paged(None, move |s, after: Option<Vec<u8>>| {
            let (items, next, done) = s.expiry_page(before, after.as_deref(), LIST_PAGE)?;
            Ok(Page { items, next: next.filter(|_| !done) })
        })
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        let cid = *cid;
        self.blocking(move |s| s.placement(&cid)).await
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        let cid = *cid;
        self.blocking(move |s| s.record_placement(&cid, actual)).await
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        self.blocking(|s| s.migrate()).await
    }
}

#[async_trait]
impl<E: KvEngine> Publisher for KvBackend<E> {
    fn publish_capabilities(&self) -> PublishCapabilities {
        let engine = self.store.engine();
        PublishCapabilities {
            backend: engine.backend(),
            persistent: true,
            durable_on_return: engine.durable(),
            atomic_publication: true,
            max_object_size: Some(MAX_OBJECT_SIZE),
            crash_points: PUBLISH_CRASH_POINTS,
        }
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        let (set, name) = (set.clone(), name.clone());
        self.blocking(move |s| s.stage(&set, &name, bytes)).await
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        let (set, staged) = (set.clone(), staged.to_vec());
        self.blocking(move |s| s.finalize(&set, &staged, manifest)).await
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        let staged = staged.to_vec();
        self.blocking(move |s| s.abort(&staged)).await
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.blocking(move |s| s.sweep(cutoff)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let key = key.clone();
        self.blocking(move |s| s.head(&key)).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let key = key.clone();
        self.blocking(move |s| s.get_object(&key)).await
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        let set = set.clone();
        self.blocking(move |s| s.publication(&set)).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        let prefix = prefix.to_owned();
        self.paged(None, move |s, after: Option<Vec<u8>>| {
            let page = s.objects_page(&prefix, after.as_deref(), LIST_PAGE)?;
            Ok(keyed_page(page))
        })
    }
}

/// A page of `(key, item)` rows as a page of items that goes on after its last key.
fn keyed_page<T>(rows: Vec<(Vec<u8>, T)>) -> Page<T, Vec<u8>> {
    let next = if rows.len() < LIST_PAGE { None } else { rows.last().map(|(k, _)| k.clone()) };
    Page { items: rows.into_iter().map(|(_, item)| item).collect(), next }
}
