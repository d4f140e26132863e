//! The shared state of one backend instance and the few store calls every path uses, each
//! mapping its failure through [`crate::error`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutResult};
use pinvault_core::{Error, FaultInjector, Result, SetName};

use crate::clock::Clock;
use crate::config::{ObjectOptions, StoreKind};
use crate::error::store_error;
use crate::layout::Layout;
use crate::publish::Published;
use pinvault_core::error::Access;

/// Manifests kept in memory per instance (they never change once written).
pub(crate) const MANIFEST_CACHE: usize = 256;

/// Everything one instance shares between its calls.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) layout: Layout,
    pub(crate) kind: StoreKind,
    pub(crate) backend: &'static str,
    pub(crate) conditional_update: bool,
    pub(crate) ordered_listing: bool,
    pub(crate) persistent: bool,
    pub(crate) durable: bool,
    pub(crate) concurrency: usize,
    pub(crate) view_grace: std::time::Duration,
    pub(crate) faults: FaultInjector,
    pub(crate) clock: Clock,
    /// Published sets by name: a manifest is immutable once created, so a cached one is
    /// always current (absence is never cached).
    pub(crate) manifests: Mutex<HashMap<SetName, Arc<Published>>>,
}

impl Inner {
    pub(crate) fn new(options: ObjectOptions) -> Self {
        Inner {
            backend: options.kind.backend_name(),
            layout: Layout::new(options.prefix),
            store: options.store,
            kind: options.kind,
            conditional_update: options.conditional_update,
            ordered_listing: options.ordered_listing,
            persistent: options.persistent,
            durable: options.durable,
            concurrency: options.concurrency,
            view_grace: options.view_grace,
            faults: options.faults,
            clock: Clock::new(),
            manifests: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn err(&self, access: Access, what: &str, e: object_store::Error) -> Error {
        store_error(self.backend, access, what, e)
    }

    /// The bytes and metadata at `path`, or `None` when there is nothing.
    pub(crate) async fn read(
        &self,
        path: &Path,
        what: &str,
    ) -> Result<Option<(Bytes, ObjectMeta)>> {
        let result = match self.store.get(path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(Access::Read, what, e)),
        };
        let meta = result.meta.clone();
        match result.bytes().await {
            Ok(bytes) => Ok(Some((bytes, meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(Access::Read, what, e)),
        }
    }

    /// The metadata at `path`, or `None` when there is nothing.
    pub(crate) async fn head(&self, path: &Path, what: &str) -> Result<Option<ObjectMeta>> {
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(Access::Read, what, e)),
        }
    }

    /// One PUT, its error left to the caller (who decides what a lost condition means).
    pub(crate) async fn put_raw(
        &self,
        path: &Path,
        bytes: Bytes,
        mode: PutMode,
    ) -> object_store::Result<PutResult> {
        self.store.put_opts(path, bytes.into(), PutOptions::from(mode)).await
    }

    /// An unconditional PUT.
    pub(crate) async fn put(&self, path: &Path, bytes: Bytes, what: &str) -> Result<PutResult> {
        self.put_raw(path, bytes, PutMode::Overwrite)
            .await
            .map_err(|e| self.err(Access::Write, what, e))
    }

    /// Unconditional PUTs of empty objects, `concurrency` at a time.
    pub(crate) async fn put_empty_all(&self, paths: &[Path], what: &str) -> Result<()> {
        let results: Vec<Result<PutResult>> = stream::iter(paths.to_vec())
            .map(|p: Path| async move { self.put(&p, Bytes::new(), what).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(|_| ()))
    }

    /// Deletes every path (a missing one is fine), in bulk where the store can.
    pub(crate) async fn delete_all(&self, paths: Vec<Path>, what: &str) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let input = stream::iter(paths.into_iter().map(Ok::<Path, object_store::Error>)).boxed();
        let mut out = self.store.delete_stream(input);
        while let Some(r) = out.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(Access::Write, what, e)),
            }
        }
        Ok(())
    }

    /// [`Inner::delete_all`] for cleanups that must not fail the call: logs instead.
    pub(crate) async fn delete_quietly(&self, paths: Vec<Path>, what: &str) {
        if let Err(e) = self.delete_all(paths, what).await {
            tracing::warn!(backend = self.backend, error = %e, "{what}: cleanup failed; sweep or repair_views will finish it");
        }
    }
}

/// Whether a conditional PUT lost to another writer: the object exists (`PutMode::Create`) or
/// changed since it was read (`PutMode::Update`).
pub(crate) fn lost_race(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}
