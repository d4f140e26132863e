//! Listing keys in order with bounded memory, whatever order the store lists in.
//!
//! S3, GCS, Azure and `InMemory` list keys in lexicographic order; `LocalFileSystem` walks
//! directories in whatever order the file system gives. A page is therefore chosen as "the
//! `limit` smallest keys after the cursor", kept in a bounded max-heap: on an ordered store the
//! page is simply the first `limit` keys (the listing stops there, and `list_with_offset` lets
//! S3 start after the cursor server-side); on an unordered one the listing is read to its end
//! and only `limit` keys are kept. Every key is also re-checked against the cursor, since some
//! stores (fake-gcs-server) ignore the offset.

use std::collections::BinaryHeap;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

/// Orders metadata by location only.
struct ByLocation(ObjectMeta);

impl PartialEq for ByLocation {
    fn eq(&self, other: &Self) -> bool {
        self.0.location == other.0.location
    }
}
impl Eq for ByLocation {}
impl PartialOrd for ByLocation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByLocation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.location.as_ref().cmp(other.0.location.as_ref())
    }
}

/// Up to `limit` objects under `dir` whose key is after `after`, in key order.
pub(crate) async fn page(
    store: &dyn ObjectStore,
    dir: &Path,
    after: Option<&Path>,
    limit: usize,
    ordered: bool,
) -> object_store::Result<Vec<ObjectMeta>> {
    let limit = limit.max(1);
    let mut stream = match after {
        Some(after) => store.list_with_offset(Some(dir), after),
        None => store.list(Some(dir)),
    };
    let mut heap: BinaryHeap<ByLocation> = BinaryHeap::with_capacity(limit + 1);
    while let Some(item) = stream.next().await {
        let meta = match item {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => return Err(e),
        };
        if after.is_some_and(|a| meta.location.as_ref() <= a.as_ref()) {
            continue;
        }
        heap.push(ByLocation(meta));
        if heap.len() > limit {
            heap.pop();
        }
        if ordered && heap.len() == limit {
            break;
        }
    }
    Ok(heap.into_sorted_vec().into_iter().map(|b| b.0).collect())
}

/// Every object under `dir`, in key order (for views, whose size is bounded by what they
/// answer: one peer's pins, one expiry bucket).
pub(crate) async fn all(
    store: &dyn ObjectStore,
    dir: &Path,
) -> object_store::Result<Vec<ObjectMeta>> {
    let mut stream = store.list(Some(dir));
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(meta) => out.push(meta),
            Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    Ok(out)
}

/// The "directories" directly under `dir`, in key order.
pub(crate) async fn children(
    store: &dyn ObjectStore,
    dir: &Path,
) -> object_store::Result<Vec<Path>> {
    match store.list_with_delimiter(Some(dir)).await {
        Ok(result) => {
            let mut prefixes = result.common_prefixes;
            prefixes.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            Ok(prefixes)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn pages_in_order_and_resume_after_the_cursor() {
        let store = InMemory::new();
        for i in (0..50).rev() {
            store.put(&Path::from(format!("d/{i:03}")), "x".into()).await.unwrap();
        }
        store.put(&Path::from("e/000"), "x".into()).await.unwrap();
        for ordered in [true, false] {
            let first = page(&store, &Path::from("d"), None, 20, ordered).await.unwrap();
            let names: Vec<_> = first.iter().map(|m| m.location.to_string()).collect();
            assert_eq!(names.first().map(String::as_str), Some("d/000"));
            assert_eq!(names.len(), 20);
            let next = page(&store, &Path::from("d"), Some(&first[19].location), 100, ordered)
                .await
                .unwrap();
            assert_eq!(next.len(), 30);
            assert_eq!(next[0].location.to_string(), "d/020");
        }
        assert!(page(&store, &Path::from("none"), None, 5, true).await.unwrap().is_empty());
    }
}
