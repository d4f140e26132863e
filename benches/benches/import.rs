//! Bulk load: importing 100k pins into an empty store through pinvault's KV layer compared with
//! the raw engine writing the same rows in the same 1000-pin atomic writes.
//!
//! * `framework` (RocksDB only) — `PinState::import` of ipfs-cluster's NDJSON export of the
//!   pins (`encode_pin_json`), `ImportOptions::default()`: batches of 1000,
//!   `Precondition::Any`. This includes parsing the JSON, which the raw side does not do; the
//!   parse costs the same on every engine, so sled skips this variant (a sled import takes
//!   ~10 s, and every criterion sample is one whole import).
//! * `framework-commit` — `PinState::commit` of 100 batches of 1000 already-built pins: the
//!   same work as the raw side, so its ratio is the framework's own overhead.
//! * `raw` — 100 `WriteBatch`es (RocksDB) or multi-tree transactions plus `flush` (sled), each
//!   holding 1000 pins' rows (record, 3 `by_peer`, 1 `expiry`) and one sequence row.
//!
//! Every iteration starts from a fresh, empty store (opening it and building the inputs is not
//! measured; neither is closing it). RocksDB writes are synced (`DirOptions::default()`),
//! sled flushes after each write (`DirOptions::default()`). One iteration per sample, so
//! criterion's "unable to complete 10 samples" warnings are expected.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use pinvault_benches::fixtures::{self, BATCH, BULK_PINS};
use pinvault_benches::raw_rocks::RawRocks;
use pinvault_benches::raw_sled::RawSled;
use pinvault_core::kv::{KvBackend, KvEngine};
use pinvault_core::transfer::{ImportOptions, NoProgress};
use pinvault_core::{Batch, Pin, PinState, Precondition};
use pinvault_rocksdb::DirOptions;
use tempfile::TempDir;
use tokio::runtime::Runtime;

fn import_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // A short target: criterion then runs exactly one import per sample, 10 samples.
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(BULK_PINS as u64));
    g
}

/// `framework` (when given the NDJSON) and `framework-commit` over fresh stores made by `open`.
fn framework<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    pins: &[Pin],
    ndjson: Option<&[u8]>,
    open: impl Fn(&Runtime, &TempDir) -> KvBackend<E>,
) {
    if let Some(ndjson) = ndjson {
        g.bench_function("framework", |b| {
            b.iter_batched(
                || {
                    let dir = fixtures::scratch("import");
                    let backend = open(rt, &dir);
                    (backend, dir)
                },
                |(backend, dir)| {
                    let mut reader = ndjson;
                    let summary = rt
                        .block_on(backend.import(
                            &mut reader,
                            &ImportOptions::default(),
                            &NoProgress,
                        ))
                        .expect("framework NDJSON import");
                    assert_eq!(summary.pins, BULK_PINS as u64, "the import committed every pin");
                    // Returned so that closing the store and removing its directory (store first)
                    // happen after the clock stops.
                    (backend, dir)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("framework-commit", |b| {
        b.iter_batched(
            || {
                let dir = fixtures::scratch("import");
                let backend = open(rt, &dir);
                let batches: Vec<Batch> = pins
                    .chunks(BATCH)
                    .map(|chunk| {
                        chunk.iter().fold(Batch::new(), |b, p| b.put(p.clone(), Precondition::Any))
                    })
                    .collect();
                (backend, dir, batches)
            },
            |(backend, dir, batches)| {
                rt.block_on(async {
                    for batch in batches {
                        backend.commit(batch).await.expect("framework commit of a 1000-pin batch");
                    }
                });
                (backend, dir)
            },
            BatchSize::PerIteration,
        )
    });
}

fn imports(c: &mut Criterion) {
    let rt = fixtures::runtime();
    let pins = fixtures::pins("import", BULK_PINS);
    let ndjson = fixtures::ndjson(&pins);

    let mut g = import_group(c, "rocksdb-sync/import-100k");
    framework(&mut g, &rt, &pins, Some(&ndjson), |rt, dir| {
        fixtures::open_rocks(rt, dir.path(), DirOptions::default())
    });
    g.bench_function("raw", |b| {
        b.iter_batched(
            || {
                let dir = fixtures::scratch("import");
                let raw = RawRocks::open(dir.path(), true);
                (raw, dir)
            },
            |(raw, dir)| {
                raw.load(&pins, BATCH, &mut 0);
                (raw, dir)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = import_group(c, "sled-durable/import-100k");
    framework(&mut g, &rt, &pins, None, |rt, dir| fixtures::open_sled(rt, dir.path()));
    g.bench_function("raw", |b| {
        b.iter_batched(
            || {
                let dir = fixtures::scratch("import");
                let raw = RawSled::open(dir.path());
                (raw, dir)
            },
            |(raw, dir)| {
                raw.load(&pins, BATCH, &mut 0);
                (raw, dir)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, imports);
criterion_main!(benches);
