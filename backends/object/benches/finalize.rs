//! Finalize of N objects (N = 1, 10, 100; 64 KiB each) on MinIO: pinvault's manifest commit
//! versus the seed design's copy-then-delete publication (copy each staged object to its final
//! key, then delete the staged one), measuring latency (criterion, staging excluded: only the
//! publication step is timed) and request count (a `CountingStore` around the store).
//!
//! Both sides stage the same bytes the same way beforehand, in parallel, and both publish with
//! the same concurrency (16 requests in flight). Needs MinIO:
//!
//! ```text
//! testenv/pvenv up minio && source "$(testenv/pvenv env)"
//! CARGO_TARGET_DIR=... cargo bench -p pinvault-object --bench finalize
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use futures::stream::{self, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use pinvault_core::{ObjectName, Publisher, SetName, StagedObject};
use pinvault_object::{
    CountingStore, ObjectBackend, ObjectOptions, RequestCounts, S3Config, Secret, StoreKind,
};
use tokio::runtime::Runtime;

const OBJECT_SIZE: usize = 64 * 1024;
const CONCURRENCY: usize = 16;
const SIZES: [usize; 3] = [1, 10, 100];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run testenv/pvenv up and source its env file (testenv/pvenv up minio && source \"$(testenv/pvenv env)\")")
    })
}

struct Setup {
    rt: Runtime,
    counting: CountingStore,
    store: Arc<dyn ObjectStore>,
    backend: ObjectBackend,
    prefix: String,
    next: AtomicU64,
}

impl Setup {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = S3Config {
            bucket: env("PINVAULT_S3_BUCKET"),
            region: env("PINVAULT_S3_REGION"),
            endpoint: Some(env("PINVAULT_S3_ENDPOINT")),
            access_key_id: Some(env("PINVAULT_S3_ACCESS_KEY_ID")),
            secret_access_key: Some(Secret::new(env("PINVAULT_S3_SECRET_ACCESS_KEY"))),
            allow_http: true,
        };
        let counting = CountingStore::new(config.build().expect("the MinIO store builds"));
        let store: Arc<dyn ObjectStore> = Arc::new(counting.clone());
        let prefix = format!(
            "pinvault-bench/{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let options = ObjectOptions::new(store.clone(), &prefix)
            .expect("prefix")
            .with_kind(StoreKind::S3)
            .with_concurrency(CONCURRENCY);
        let backend = ObjectBackend::open(options);
        Setup { rt, counting, store, backend, prefix, next: AtomicU64::new(0) }
    }

    fn set(&self) -> SetName {
        SetName::new(format!("bench/run-{}", self.next.fetch_add(1, Ordering::Relaxed)))
            .expect("set name")
    }

    fn bytes(i: usize) -> Bytes {
        let mut v = vec![0u8; OBJECT_SIZE];
        v[..8].copy_from_slice(&(i as u64).to_be_bytes());
        Bytes::from(v)
    }

    async fn stage_pinvault(&self, set: &SetName, n: usize) -> Vec<StagedObject> {
        stream::iter(0..n)
            .map(|i| async move {
                let name = ObjectName::new(format!("part-{i:04}.parquet")).expect("name");
                self.backend.stage(set, &name, Self::bytes(i)).await.expect("stage")
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    async fn finalize_pinvault(&self, set: &SetName, staged: &[StagedObject]) {
        self.backend.finalize(set, staged, Bytes::from_static(b"{}")).await.expect("finalize");
    }

    async fn stage_copy(&self, set: &SetName, n: usize) -> Vec<(Path, Path)> {
        stream::iter(0..n)
            .map(|i| async move {
                let staged =
                    Path::from(format!("{}/copy-staging/{set}/part-{i:04}.parquet", self.prefix));
                let published =
                    Path::from(format!("{}/copy-published/{set}/part-{i:04}.parquet", self.prefix));
                self.store.put(&staged, Self::bytes(i).into()).await.expect("stage (copy design)");
                (staged, published)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    async fn publish_copy(&self, pairs: &[(Path, Path)]) {
        stream::iter(pairs)
            .map(|(staged, published)| async move {
                self.store.copy(staged, published).await.expect("copy");
                self.store.delete(staged).await.expect("delete");
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }

    fn counted<T, F: std::future::Future<Output = T>>(&self, f: F) -> (T, RequestCounts) {
        let before = self.counting.counts();
        let out = self.rt.block_on(f);
        (out, self.counting.counts().since(&before))
    }
}

/// Requests on the wire for S3: each `delete_stream` call is one `DeleteObjects` request per
/// 1000 keys (object_store batches them), every other call one request.
fn wire(c: &RequestCounts) -> u64 {
    c.put
        + c.put_create
        + c.put_update
        + c.get
        + c.head
        + c.list
        + c.copy
        + c.delete_calls
        + c.multipart
}

fn show(c: &RequestCounts) -> String {
    if c.delete_objects > 0 {
        format!("{c} in {} delete call(s)", c.delete_calls)
    } else {
        c.to_string()
    }
}

fn finalize(c: &mut Criterion) {
    let setup = Setup::new();
    println!(
        "requests per publication of N objects of {} KiB (wire requests on S3):",
        OBJECT_SIZE / 1024
    );
    for n in SIZES {
        let set = setup.set();
        let (staged, stage) = setup.counted(setup.stage_pinvault(&set, n));
        let ((), manifest) = setup.counted(setup.finalize_pinvault(&set, &staged));
        let set = setup.set();
        let (pairs, copy_stage) = setup.counted(setup.stage_copy(&set, n));
        let ((), copy) = setup.counted(setup.publish_copy(&pairs));
        println!(
            "requests n={n}: manifest commit: publish {} ({}), stage {} ({}); copy-then-delete: publish {} ({}), stage {} ({})",
            wire(&manifest),
            show(&manifest),
            wire(&stage),
            show(&stage),
            wire(&copy),
            show(&copy),
            wire(&copy_stage),
            show(&copy_stage),
        );
    }

    let mut group = c.benchmark_group("finalize");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    for n in SIZES {
        group.bench_with_input(BenchmarkId::new("manifest_commit", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                setup.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let set = setup.set();
                        let staged = setup.stage_pinvault(&set, n).await;
                        let start = Instant::now();
                        setup.finalize_pinvault(&set, &staged).await;
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("copy_then_delete", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                setup.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let set = setup.set();
                        let pairs = setup.stage_copy(&set, n).await;
                        let start = Instant::now();
                        setup.publish_copy(&pairs).await;
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, finalize);
criterion_main!(benches);
