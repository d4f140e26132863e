//! Compare-and-swap for `LocalFileSystem`, which refuses `PutMode::Update`.
//!
//! [`LocalCasStore`] wraps the local store and takes a per-path lock (striped, process-wide,
//! keyed by the directory and the key) around every write and delete. `Update` then reads the
//! file's ETag under the lock and overwrites only if it still matches. `Create` (a hard link,
//! which refuses an existing target) and `Overwrite` (a rename) are atomic by themselves; they
//! take the lock so that no write lands between an `Update`'s check and its rename.
//!
//! The guarantee is linearizable conditional writes **among the instances of one process**
//! over a directory, like an embedded engine that one process owns (RocksDB's `LOCK` file).
//! Two processes writing the same directory are not coordinated. The ETag of a local file is
//! `inode-mtime(µs)-size`; a rename always brings a file with a new inode (the old one still
//! exists while the new one is written), so a replaced file never shows the ETag it replaced.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

fn stripes() -> &'static [Mutex<()>] {
    static LOCKS: OnceLock<Vec<Mutex<()>>> = OnceLock::new();
    LOCKS.get_or_init(|| (0..STRIPES).map(|_| Mutex::new(())).collect())
}

/// A local store with compare-and-swap (see the module doc).
#[derive(Clone)]
pub struct LocalCasStore {
    inner: Arc<dyn ObjectStore>,
    /// The directory, so that two stores over one directory share locks.
    root: String,
}

impl LocalCasStore {
    /// Wraps the `LocalFileSystem` rooted at `root`.
    pub fn new(inner: Arc<dyn ObjectStore>, root: impl Into<String>) -> Self {
        LocalCasStore { inner, root: root.into() }
    }

    async fn lock(root: &str, location: &Path) -> MutexGuard<'static, ()> {
        let mut h = DefaultHasher::new();
        root.hash(&mut h);
        location.as_ref().hash(&mut h);
        stripes()[(h.finish() as usize) % STRIPES].lock().await
    }
}

impl fmt::Debug for LocalCasStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCasStore").field("root", &self.root).finish()
    }
}

impl fmt::Display for LocalCasStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalCasStore({})", self.root)
    }
}

fn precondition(location: &Path, why: &str) -> object_store::Error {
    object_store::Error::Precondition { path: location.to_string(), source: why.to_owned().into() }
}

#[async_trait]
impl ObjectStore for LocalCasStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let _guard = Self::lock(&self.root, location).await;
        let PutMode::Update(expected) = &opts.mode else {
            return self.inner.put_opts(location, payload, opts).await;
        };
        let current = match self.inner.head(location).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(precondition(location, "the object does not exist"))
            }
            Err(e) => return Err(e),
        };
        if expected.e_tag.is_none() || current.e_tag != expected.e_tag {
            return Err(precondition(location, "the ETag does not match"));
        }
        let opts = PutOptions { mode: PutMode::Overwrite, ..opts };
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = Arc::clone(&self.inner);
        let root = self.root.clone();
        locations
            .then(move |location| {
                let inner = Arc::clone(&inner);
                let root = root.clone();
                async move {
                    let location = location?;
                    let _guard = Self::lock(&root, &location).await;
                    match inner.delete(&location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(location),
                        Err(e) => Err(e),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let _guard = Self::lock(&self.root, to).await;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let _guard = Self::lock(&self.root, to).await;
        self.inner.rename_opts(from, to, options).await
    }
}
