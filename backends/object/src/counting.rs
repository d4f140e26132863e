//! [`CountingStore`]: an `ObjectStore` decorator that counts calls by kind, for benches and
//! for tests that pin down how many requests an operation costs.
//!
//! Deletes are counted twice: per object (`delete_objects`) and per `delete_stream` call
//! (`delete_calls`). S3 and Azure turn one `delete_stream` into bulk requests (S3
//! `DeleteObjects`: up to 1000 keys per request), so `delete_calls` bounds the delete
//! requests from below and `delete_objects` from above.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Call counts by kind (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `PutMode::Overwrite` PUTs.
    pub put: u64,
    /// `PutMode::Create` PUTs.
    pub put_create: u64,
    /// `PutMode::Update` PUTs.
    pub put_update: u64,
    /// GETs (with a body).
    pub get: u64,
    /// HEADs.
    pub head: u64,
    /// Listings (`list`, `list_with_offset`, `list_with_delimiter` calls).
    pub list: u64,
    /// Copies.
    pub copy: u64,
    /// Objects deleted.
    pub delete_objects: u64,
    /// `delete_stream` calls.
    pub delete_calls: u64,
    /// Multipart uploads started.
    pub multipart: u64,
}

impl RequestCounts {
    /// Requests, counting each deleted object as one request (an upper bound).
    pub fn total(&self) -> u64 {
        self.put
            + self.put_create
            + self.put_update
            + self.get
            + self.head
            + self.list
            + self.copy
            + self.delete_objects
            + self.multipart
    }

    /// The difference `self - earlier`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            put: self.put - earlier.put,
            put_create: self.put_create - earlier.put_create,
            put_update: self.put_update - earlier.put_update,
            get: self.get - earlier.get,
            head: self.head - earlier.head,
            list: self.list - earlier.list,
            copy: self.copy - earlier.copy,
            delete_objects: self.delete_objects - earlier.delete_objects,
            delete_calls: self.delete_calls - earlier.delete_calls,
            multipart: self.multipart - earlier.multipart,
        }
    }
}

impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("PUT", self.put),
            ("PUT-create", self.put_create),
            ("PUT-update", self.put_update),
            ("GET", self.get),
            ("HEAD", self.head),
            ("LIST", self.list),
            ("COPY", self.copy),
            ("DELETE", self.delete_objects),
            ("multipart", self.multipart),
        ];
        let shown: Vec<String> =
            parts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{n} {k}")).collect();
        if shown.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&shown.join(" + "))
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    put: AtomicU64,
    put_create: AtomicU64,
    put_update: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    copy: AtomicU64,
    delete_objects: AtomicU64,
    delete_calls: AtomicU64,
    multipart: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts the calls made through it to the wrapped store.
#[derive(Clone)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore { inner, counters: Arc::default() }
    }

    /// The counts so far.
    pub fn counts(&self) -> RequestCounts {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestCounts {
            put: load(&c.put),
            put_create: load(&c.put_create),
            put_update: load(&c.put_update),
            get: load(&c.get),
            head: load(&c.head),
            list: load(&c.list),
            copy: load(&c.copy),
            delete_objects: load(&c.delete_objects),
            delete_calls: load(&c.delete_calls),
            multipart: load(&c.multipart),
        }
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The wrapped store's Debug may show its configuration: leave it out.
        f.debug_struct("CountingStore").field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        bump(match opts.mode {
            PutMode::Overwrite => &self.counters.put,
            PutMode::Create => &self.counters.put_create,
            PutMode::Update(_) => &self.counters.put_update,
        });
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        bump(&self.counters.multipart);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        bump(if options.head { &self.counters.head } else { &self.counters.get });
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.counters.get.fetch_add(ranges.len() as u64, Ordering::Relaxed);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        bump(&self.counters.delete_calls);
        let counters = Arc::clone(&self.counters);
        let counted = locations
            .inspect(move |l| {
                if l.is_ok() {
                    bump(&counters.delete_objects);
                }
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        bump(&self.counters.list);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        bump(&self.counters.list);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        bump(&self.counters.list);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        bump(&self.counters.copy);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        bump(&self.counters.copy);
        bump(&self.counters.delete_objects);
        self.inner.rename_opts(from, to, options).await
    }
}
