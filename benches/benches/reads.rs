//! Reads: what `get` and `list` cost through pinvault's KV layer compared with the raw engine
//! reading and decoding the same records.
//!
//! * `get` — `PinState::get` of an existing pin in a store of 10k pins (keys visited in a
//!   scattered order). Raw: `get_cf` (RocksDB) or `Tree::get` (sled) plus
//!   `layout::decode_pin`.
//! * `list-100k` — streaming all 100k pins through `PinState::list` (pages of `LIST_PAGE`,
//!   each one blocking engine scan). Raw: one iterator over the `pins` column family or tree,
//!   decoding every record.
//!
//! `framework` is the async `PinState` on a tokio multi-thread runtime; `kvstore` is the
//! framework's synchronous `KvStore` (no hop to the blocking pool). Both stores are filled the
//! same way before measuring (1000-pin commits); reads take no fsync, the group names keep the
//! write durability of the stores for consistency with the other benches.
//!
//! `tokio/spawn-blocking/round-trip` calibrates the hop itself: `block_on` of a
//! `spawn_blocking` of an empty closure, which every framework call pays once.

use std::time::Duration;

use cid::Cid;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use futures::StreamExt;
use pinvault_benches::fixtures::{self, BATCH, BULK_PINS, GET_PINS};
use pinvault_benches::raw_rocks::RawRocks;
use pinvault_benches::raw_sled::RawSled;
use pinvault_core::kv::{layout, KvBackend, KvEngine, LIST_PAGE};
use pinvault_core::{Batch, Cursor, Pin, PinState, Precondition};
use pinvault_rocksdb::DirOptions;
use rocksdb::IteratorMode;
use std::hint::black_box;
use tokio::runtime::Runtime;

/// Fills a framework store with `pins` in 1000-pin commits (through the synchronous store:
/// this is setup, not measured).
fn fill<E: KvEngine>(backend: &KvBackend<E>, pins: &[Pin]) {
    for chunk in pins.chunks(BATCH) {
        let batch = chunk.iter().fold(Batch::new(), |b, p| b.put(p.clone(), Precondition::Any));
        backend.store().commit(batch).expect("filling the framework store");
    }
}

/// The CIDs of a `get` run, in a scattered order (a stride coprime with the count).
fn scattered(pins: &[Pin]) -> Vec<Cid> {
    (0..pins.len()).map(|i| pins[(i * 7919) % pins.len()].cid).collect()
}

fn get_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    g
}

fn list_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(BULK_PINS as u64));
    g
}

fn framework_get<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &KvBackend<E>,
    cids: &[Cid],
) {
    let mut i = 0;
    g.bench_function("framework", |b| {
        b.iter(|| {
            i = (i + 1) % cids.len();
            black_box(rt.block_on(PinState::get(backend, &cids[i])).expect("framework get"))
        })
    });
    let mut i = 0;
    g.bench_function("kvstore", |b| {
        b.iter(|| {
            i = (i + 1) % cids.len();
            black_box(backend.store().get(&cids[i]).expect("KvStore get"))
        })
    });
}

fn framework_list<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &KvBackend<E>,
) {
    g.bench_function("framework", |b| {
        b.iter(|| {
            let count = rt.block_on(async {
                let mut stream = PinState::list(backend, None);
                let mut count = 0usize;
                while let Some(entry) = stream.next().await {
                    black_box(entry.expect("framework list entry"));
                    count += 1;
                }
                count
            });
            assert_eq!(count, BULK_PINS, "framework list saw every pin once");
        })
    });
    g.bench_function("kvstore", |b| {
        b.iter(|| {
            let mut after: Option<Cursor> = None;
            let mut count = 0usize;
            loop {
                let page = backend
                    .store()
                    .list_page(after.as_ref(), LIST_PAGE)
                    .expect("KvStore list page");
                let full = page.len() == LIST_PAGE;
                count += page.len();
                after = page.last().map(|e| e.cursor.clone());
                black_box(page);
                if !full {
                    break;
                }
            }
            assert_eq!(count, BULK_PINS, "KvStore list saw every pin once");
        })
    });
}

fn rocks(c: &mut Criterion, rt: &Runtime) {
    let label = "rocksdb-sync";
    let dir = fixtures::scratch("rocksdb-reads");
    let pins = fixtures::pins("get", GET_PINS);
    let cids = scattered(&pins);
    let backend =
        fixtures::open_rocks(rt, &dir.path().join("get-framework"), DirOptions::default());
    fill(&backend, &pins);
    let raw = RawRocks::open(&dir.path().join("get-raw"), true);
    raw.load(&pins, BATCH, &mut 0);
    let cfs = raw.cfs();

    let mut g = get_group(c, &format!("{label}/get"));
    framework_get(&mut g, rt, &backend, &cids);
    let mut i = 0;
    g.bench_function("raw", |b| {
        b.iter(|| {
            i = (i + 1) % cids.len();
            let key = cids[i].to_bytes();
            let bytes =
                raw.db().get_cf(cfs.pins, &key).expect("raw RocksDB get").expect("pin is stored");
            black_box(layout::decode_pin(&key, &bytes).expect("raw decode_pin"))
        })
    });
    g.finish();
    drop((backend, raw));

    let pins = fixtures::pins("list", BULK_PINS);
    let backend =
        fixtures::open_rocks(rt, &dir.path().join("list-framework"), DirOptions::default());
    fill(&backend, &pins);
    let raw = RawRocks::open(&dir.path().join("list-raw"), true);
    raw.load(&pins, BATCH, &mut 0);
    drop(pins);
    let cfs = raw.cfs();

    let mut g = list_group(c, &format!("{label}/list-100k"));
    framework_list(&mut g, rt, &backend);
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut count = 0usize;
            for item in raw.db().iterator_cf(cfs.pins, IteratorMode::Start) {
                let (key, value) = item.expect("raw RocksDB iterator");
                black_box(layout::decode_pin(&key, &value).expect("raw decode_pin"));
                count += 1;
            }
            assert_eq!(count, BULK_PINS, "raw iterator saw every pin once");
        })
    });
    g.finish();
}

fn sled_reads(c: &mut Criterion, rt: &Runtime) {
    let label = "sled-durable";
    let dir = fixtures::scratch("sled-reads");
    let pins = fixtures::pins("get", GET_PINS);
    let cids = scattered(&pins);
    let backend = fixtures::open_sled(rt, &dir.path().join("get-framework"));
    fill(&backend, &pins);
    let raw = RawSled::open(&dir.path().join("get-raw"));
    raw.load(&pins, BATCH, &mut 0);

    let mut g = get_group(c, &format!("{label}/get"));
    framework_get(&mut g, rt, &backend, &cids);
    let mut i = 0;
    g.bench_function("raw", |b| {
        b.iter(|| {
            i = (i + 1) % cids.len();
            let key = cids[i].to_bytes();
            let bytes = raw.pins.get(&key).expect("raw sled get").expect("pin is stored");
            black_box(layout::decode_pin(&key, &bytes).expect("raw decode_pin"))
        })
    });
    g.finish();
    drop((backend, raw));

    let pins = fixtures::pins("list", BULK_PINS);
    let backend = fixtures::open_sled(rt, &dir.path().join("list-framework"));
    fill(&backend, &pins);
    let raw = RawSled::open(&dir.path().join("list-raw"));
    raw.load(&pins, BATCH, &mut 0);
    drop(pins);

    let mut g = list_group(c, &format!("{label}/list-100k"));
    framework_list(&mut g, rt, &backend);
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut count = 0usize;
            for item in raw.pins.iter() {
                let (key, value) = item.expect("raw sled iterator");
                black_box(layout::decode_pin(&key, &value).expect("raw decode_pin"));
                count += 1;
            }
            assert_eq!(count, BULK_PINS, "raw iterator saw every pin once");
        })
    });
    g.finish();
}

/// What one hop to tokio's blocking pool and back costs, with nothing to do there.
fn spawn_blocking_round_trip(c: &mut Criterion, rt: &Runtime) {
    let mut g = get_group(c, "tokio/spawn-blocking");
    g.bench_function("round-trip", |b| {
        b.iter(|| {
            rt.block_on(rt.spawn_blocking(|| black_box(1u64))).expect("an empty blocking task")
        })
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let rt = fixtures::runtime();
    spawn_blocking_round_trip(c, &rt);
    rocks(c, &rt);
    sled_reads(c, &rt);
}

criterion_group!(benches, reads);
criterion_main!(benches);
