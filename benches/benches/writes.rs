//! Single-pin writes: what one `put` costs through pinvault's KV layer compared with the raw
//! engine writing the same rows with the same durability.
//!
//! * `put` — `PinState::put(pin, Precondition::Any)` of a new CID. Raw: one `WriteBatch`
//!   (RocksDB) or one multi-tree transaction plus `flush` (sled) with the rows `commit` writes:
//!   3 `by_peer` rows, 1 `expiry` row, the pin record and the meta sequence row.
//! * `cput` — `put(pin, Precondition::Version(current))` replacing an existing pin. Raw: get and
//!   decode the stored record, check its version, then one write deleting the old view rows and
//!   writing the new ones, the record and the sequence row.
//!
//! Each runs four ways: `checked` (the async `PinState` behind the checking layer, as
//! `pinvault::open` serves it), `framework` (the same without the layer; both on a tokio
//! multi-thread runtime, hopping to the blocking pool), `kvstore` (the framework's synchronous
//! `KvStore`, to show what the hop costs) and `raw`. Durability is in the group name: `rocksdb-sync`
//! (`DirOptions::default()`, every write fsynced), `rocksdb-nosync` (to expose the CPU cost
//! that an fsync hides) and `sled-durable` (`DirOptions::default()`, `Db::flush` after every
//! write, on both sides).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use pinvault_benches::fixtures::{self, pin};
use pinvault_benches::raw_rocks::{self, RawRocks};
use pinvault_benches::raw_sled::RawSled;
use pinvault_core::kv::{layout, KvBackend, KvEngine};
use pinvault_core::{Batch, Checked, PinState, Precondition, Version};
use pinvault_rocksdb::DirOptions;
use rocksdb::WriteBatch;
use sled::transaction::ConflictableTransactionError;
use tokio::runtime::Runtime;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    g
}

/// `put/checked`, `put/framework` and `put/kvstore`: new CIDs, `Precondition::Any`.
fn framework_put<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &KvBackend<E>,
) {
    let checked = Checked::new(backend.clone());
    let mut n = 0u64;
    g.bench_function("checked", |b| {
        b.iter_batched(
            || {
                n += 1;
                pin("put-checked", n)
            },
            |pin| rt.block_on(checked.put(pin, Precondition::Any)).expect("checked put"),
            BatchSize::SmallInput,
        )
    });
    let mut n = 0u64;
    g.bench_function("framework", |b| {
        b.iter_batched(
            || {
                n += 1;
                pin("put-framework", n)
            },
            |pin| rt.block_on(backend.put(pin, Precondition::Any)).expect("framework put"),
            BatchSize::SmallInput,
        )
    });
    let mut n = 0u64;
    g.bench_function("kvstore", |b| {
        b.iter_batched(
            || {
                n += 1;
                Batch::new().put(pin("put-kvstore", n), Precondition::Any)
            },
            |batch| backend.store().commit(batch).expect("KvStore put"),
            BatchSize::SmallInput,
        )
    });
}

/// `cput/checked`, `cput/framework` and `cput/kvstore`: one pin replaced again and again, each
/// time conditional on the version the previous write returned.
fn framework_cput<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &KvBackend<E>,
) {
    let checked = Checked::new(backend.clone());
    let pin = fixtures::pin("cput-checked", 0);
    let mut current =
        rt.block_on(checked.put(pin.clone(), Precondition::Any)).expect("checked initial put");
    g.bench_function("checked", |b| {
        b.iter_batched(
            || pin.clone(),
            |p| {
                current = rt
                    .block_on(checked.put(p, Precondition::Version(current.clone())))
                    .expect("checked conditional put");
            },
            BatchSize::SmallInput,
        )
    });
    let pin = fixtures::pin("cput-framework", 0);
    let mut current =
        rt.block_on(backend.put(pin.clone(), Precondition::Any)).expect("framework initial put");
    g.bench_function("framework", |b| {
        b.iter_batched(
            || pin.clone(),
            |p| {
                current = rt
                    .block_on(backend.put(p, Precondition::Version(current.clone())))
                    .expect("framework conditional put");
            },
            BatchSize::SmallInput,
        )
    });
    let store = backend.store();
    let pin = fixtures::pin("cput-kvstore", 0);
    let version = |receipt: pinvault_core::Receipt| -> Version {
        receipt.versions.into_iter().next().flatten().expect("a put's receipt carries its version")
    };
    let mut current = version(
        store
            .commit(Batch::new().put(pin.clone(), Precondition::Any))
            .expect("KvStore initial put"),
    );
    g.bench_function("kvstore", |b| {
        b.iter_batched(
            || pin.clone(),
            |p| {
                let batch = Batch::new().put(p, Precondition::Version(current.clone()));
                current = version(store.commit(batch).expect("KvStore conditional put"));
            },
            BatchSize::SmallInput,
        )
    });
}

fn rocks(c: &mut Criterion, rt: &Runtime, sync: bool) {
    let label = if sync { "rocksdb-sync" } else { "rocksdb-nosync" };
    let dir = fixtures::scratch(label);
    let backend = fixtures::open_rocks(
        rt,
        &dir.path().join("framework"),
        DirOptions { sync, ..DirOptions::default() },
    );
    let raw = RawRocks::open(&dir.path().join("raw"), sync);
    let cfs = raw.cfs();
    let options = raw.write_options();
    let mut sequence = 0u64;

    let mut g = group(c, &format!("{label}/put"));
    framework_put(&mut g, rt, &backend);
    let mut n = 0u64;
    g.bench_function("raw", |b| {
        b.iter_batched(
            || {
                n += 1;
                pin("put-raw", n)
            },
            |pin| {
                sequence += 1;
                let mut batch = WriteBatch::default();
                raw_rocks::put_pin(&mut batch, &cfs, sequence, &pin, None);
                raw_rocks::put_sequence(&mut batch, &cfs, layout::seq_slot(0), sequence);
                raw.write(batch, &options);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = group(c, &format!("{label}/cput"));
    framework_cput(&mut g, rt, &backend);
    let pin = fixtures::pin("cput-raw", 0);
    let key = pin.cid.to_bytes();
    raw.load(std::slice::from_ref(&pin), 1, &mut sequence);
    let mut expected = sequence;
    g.bench_function("raw", |b| {
        b.iter(|| {
            let bytes = raw
                .db()
                .get_cf(cfs.pins, &key)
                .expect("raw RocksDB get")
                .expect("the raw conditional-put pin is stored");
            let (version, old) = layout::decode_pin(&key, &bytes).expect("raw decode_pin");
            assert_eq!(version, expected, "raw conditional put: version changed underneath");
            sequence += 1;
            let mut batch = WriteBatch::default();
            raw_rocks::put_pin(&mut batch, &cfs, sequence, &pin, Some(&old));
            raw_rocks::put_sequence(&mut batch, &cfs, layout::seq_slot(0), sequence);
            raw.write(batch, &options);
            expected = sequence;
        })
    });
    g.finish();
}

fn sled_writes(c: &mut Criterion, rt: &Runtime) {
    let label = "sled-durable";
    let dir = fixtures::scratch(label);
    let backend = fixtures::open_sled(rt, &dir.path().join("framework"));
    let raw = RawSled::open(&dir.path().join("raw"));
    let mut sequence = 0u64;
    let slot = layout::seq_slot(0);

    let mut g = group(c, &format!("{label}/put"));
    framework_put(&mut g, rt, &backend);
    let mut n = 0u64;
    g.bench_function("raw", |b| {
        b.iter_batched(
            || {
                n += 1;
                pin("put-raw", n)
            },
            |pin| {
                sequence += 1;
                let seq = sequence;
                raw.pin_transaction(|t| {
                    t.put_pin(seq, &pin, None)?;
                    t.put_sequence(&slot, seq)?;
                    Ok(())
                })
                .expect("raw sled put transaction");
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = group(c, &format!("{label}/cput"));
    framework_cput(&mut g, rt, &backend);
    let pin = fixtures::pin("cput-raw", 0);
    let key = pin.cid.to_bytes();
    raw.load(std::slice::from_ref(&pin), 1, &mut sequence);
    let mut expected = sequence;
    g.bench_function("raw", |b| {
        b.iter(|| {
            sequence += 1;
            let seq = sequence;
            raw.pin_transaction(|t| {
                let abort = |why: String| ConflictableTransactionError::Abort(why);
                let bytes = t.pins.get(&key)?.ok_or_else(|| abort("pin is gone".into()))?;
                let (version, old) =
                    layout::decode_pin(&key, &bytes).map_err(|e| abort(e.to_string()))?;
                if version != expected {
                    return Err(abort(format!("version {version}, expected {expected}")));
                }
                t.put_pin(seq, &pin, Some(&old))?;
                t.put_sequence(&slot, seq)?;
                Ok(())
            })
            .expect("raw sled conditional put transaction");
            expected = seq;
        })
    });
    g.finish();
}

fn writes(c: &mut Criterion) {
    println!("pinvault-benches sizes: {}", fixtures::describe_sizes());
    let rt = fixtures::runtime();
    rocks(c, &rt, true);
    rocks(c, &rt, false);
    sled_writes(c, &rt);
}

criterion_group!(benches, writes);
criterion_main!(benches);
