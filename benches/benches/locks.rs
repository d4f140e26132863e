//! Lock discipline on RocksDB with synced writes (`DirOptions::default()`): 4 concurrent
//! writers each inserting 200 distinct pins with `Precondition::Absent` (800 commits, each one
//! fsynced WriteBatch).
//!
//! * `framework-striped` — pinvault as designed: 4 tokio tasks calling `PinState::put`; the KV
//!   layer locks only the stripes of each commit's CID, so commits of different keys reach
//!   RocksDB together and its write group shares one WAL append and one fsync among them.
//! * `framework-global-mutex` — the same tasks, but every `put` runs under one global
//!   `tokio::sync::Mutex`: the "one global commit lock" design, one fsync per commit.
//! * `raw-optimistic-txn` — no pinvault: 4 threads on a RocksDB `OptimisticTransactionDB`
//!   (same column families and options), each pin one transaction: `get_for_update` of the
//!   CID (must be absent), the same rows (3 `by_peer`, 1 `expiry`, the record, a sequence row
//!   per writer so writers do not conflict on it), synced commit, retried on conflict.
//!
//! The store is reused across iterations; every iteration inserts fresh CIDs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pinvault_benches::fixtures;
use pinvault_core::kv::{layout, Table};
use pinvault_core::{Pin, PinState, Precondition};
use pinvault_rocksdb::{DirOptions, RocksBackend};
use rocksdb::{ErrorKind, OptimisticTransactionDB, OptimisticTransactionOptions, WriteOptions};
use tokio::runtime::Runtime;

const WRITERS: usize = 4;
const PUTS_PER_WRITER: usize = 200;

/// The pins of one iteration: `WRITERS` lists of `PUTS_PER_WRITER` fresh pins.
fn work(ns: &str, round: &mut u64) -> Vec<Vec<Pin>> {
    *round += 1;
    (0..WRITERS)
        .map(|w| {
            let ns = format!("{ns}-{round}-{w}");
            fixtures::pins(&ns, PUTS_PER_WRITER)
        })
        .collect()
}

/// Runs one iteration through the framework; with `global`, every put holds that mutex.
fn run_framework(
    rt: &Runtime,
    backend: &RocksBackend,
    global: Option<&Arc<tokio::sync::Mutex<()>>>,
    work: Vec<Vec<Pin>>,
) -> Duration {
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = work
            .into_iter()
            .map(|pins| {
                let backend = backend.clone();
                let global = global.cloned();
                tokio::spawn(async move {
                    for pin in pins {
                        let _held = match &global {
                            Some(lock) => Some(lock.lock().await),
                            None => None,
                        };
                        backend
                            .put(pin, Precondition::Absent)
                            .await
                            .expect("framework insert-if-absent");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a writer task panicked");
        }
    });
    start.elapsed()
}

/// An `OptimisticTransactionDB` with the column families and options of `pinvault-rocksdb`.
fn open_optimistic(path: &std::path::Path) -> OptimisticTransactionDB {
    let families = pinvault_rocksdb::column_families();
    OptimisticTransactionDB::open_cf_descriptors(&pinvault_rocksdb::db_options(), path, families)
        .expect("opening the raw OptimisticTransactionDB")
}

/// Runs one iteration on the `OptimisticTransactionDB`; returns the time and the retries.
fn run_optimistic(
    db: &OptimisticTransactionDB,
    sequence: &AtomicU64,
    work: Vec<Vec<Pin>>,
) -> (Duration, u64) {
    let cf = |t: Table| {
        db.cf_handle(t.name()).unwrap_or_else(|| panic!("no column family {}", t.name()))
    };
    let (pins_cf, by_peer_cf, expiry_cf, meta_cf) =
        (cf(Table::Pins), cf(Table::ByPeer), cf(Table::Expiry), cf(Table::Meta));
    let mut write_options = WriteOptions::default();
    write_options.set_sync(true);
    let txn_options = OptimisticTransactionOptions::default();
    let retries = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (writer, pins) in work.into_iter().enumerate() {
            let (write_options, txn_options, retries) = (&write_options, &txn_options, &retries);
            scope.spawn(move || {
                let slot = layout::seq_slot(writer);
                for pin in pins {
                    let key = pin.cid.to_bytes();
                    loop {
                        let txn = db.transaction_opt(write_options, txn_options);
                        let existing =
                            txn.get_for_update_cf(pins_cf, &key, true).expect("raw get_for_update");
                        assert!(
                            existing.is_none(),
                            "raw insert-if-absent: {} is already stored",
                            pin.cid
                        );
                        let seq = sequence.fetch_add(1, Ordering::SeqCst) + 1;
                        for peer in &pin.allocations {
                            txn.put_cf(by_peer_cf, layout::by_peer_key(peer, &key), [])
                                .expect("raw txn put");
                        }
                        if let Some(at) = pin.options.expire_at {
                            txn.put_cf(expiry_cf, layout::expiry_key(at, &key), [])
                                .expect("raw txn put");
                        }
                        txn.put_cf(pins_cf, &key, layout::encode_pin(seq, &pin))
                            .expect("raw txn put");
                        txn.put_cf(meta_cf, &slot, seq.to_be_bytes()).expect("raw txn put");
                        match txn.commit() {
                            Ok(()) => break,
                            Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => {
                                retries.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("raw optimistic commit failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    (start.elapsed(), retries.into_inner())
}

fn locks(c: &mut Criterion) {
    let rt = fixtures::runtime();
    let dir = fixtures::scratch("locks");
    let backend = fixtures::open_rocks(&rt, &dir.path().join("framework"), DirOptions::default());
    let global = Arc::new(tokio::sync::Mutex::new(()));
    let optimistic = open_optimistic(&dir.path().join("optimistic"));
    let sequence = AtomicU64::new(0);
    let mut round = 0u64;

    let mut g = c.benchmark_group(format!("rocksdb-sync/locks-{WRITERS}x{PUTS_PER_WRITER}"));
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements((WRITERS * PUTS_PER_WRITER) as u64));
    g.bench_function("framework-striped", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_framework(&rt, &backend, None, work("striped", &mut round)))
                .sum()
        })
    });
    g.bench_function("framework-global-mutex", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_framework(&rt, &backend, Some(&global), work("global", &mut round)))
                .sum()
        })
    });
    let mut total_retries = 0u64;
    g.bench_function("raw-optimistic-txn", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (elapsed, retries) =
                        run_optimistic(&optimistic, &sequence, work("optimistic", &mut round));
                    total_retries += retries;
                    elapsed
                })
                .sum()
        })
    });
    g.finish();
    println!(
        "raw-optimistic-txn: {total_retries} commit retries (Busy/TryAgain) in all iterations"
    );
}

criterion_group!(benches, locks);
criterion_main!(benches);
