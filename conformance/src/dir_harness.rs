//! A ready-made [`Harness`] for backends whose data is a directory (RocksDB, sled, fs): each
//! store gets a fresh temporary directory, and a reopen is a new instance over the same path.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pinvault_core::{Error, FaultInjector, PinState, Publisher, Result};
use tempfile::TempDir;

use crate::harness::{Harness, Location, TestStore};

/// Opens a backend over `dir/store` with the given async `open` function.
pub struct DirHarness<F> {
    backend: &'static str,
    open: F,
}

impl<F> DirHarness<F> {
    /// A harness named after `backend` (used in error messages) that opens stores with `open`.
    pub fn new(backend: &'static str, open: F) -> Self {
        DirHarness { backend, open }
    }
}

impl<F, Fut, B> DirHarness<F>
where
    F: Fn(PathBuf, FaultInjector) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<B>> + Send,
    B: PinState + Publisher + 'static,
{
    async fn open_in(&self, dir: Arc<TempDir>, faults: FaultInjector) -> Result<TestStore> {
        let backend = (self.open)(dir.path().join("store"), faults).await?;
        Ok(TestStore::new(Arc::new(backend), dir))
    }
}

#[async_trait]
impl<F, Fut, B> Harness for DirHarness<F>
where
    F: Fn(PathBuf, FaultInjector) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<B>> + Send,
    B: PinState + Publisher + 'static,
{
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("pinvault-{}-", self.backend))
            .tempdir()
            .map_err(|e| Error::backend(self.backend, e))?;
        self.open_in(Arc::new(dir), faults).await
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let dir = location
            .downcast_ref::<Arc<TempDir>>()
            .ok_or_else(|| Error::invalid("location", "not a directory made by DirHarness"))?
            .clone();
        self.open_in(dir, faults).await
    }
}
