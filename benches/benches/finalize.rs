//! Atomic publication: staging 10 objects of 64 KiB and finalizing them as one set through
//! pinvault's `Publisher`, compared with the raw engine writing the same bytes and records.
//!
//! * `framework` — 10 × `Publisher::stage` then `Publisher::finalize` (with a small JSON
//!   manifest), on a tokio multi-thread runtime. Each stage is one write (blob + staged
//!   record); finalize checks the set is unpublished and re-reads the 10 staged records, then
//!   writes once: 10 staged records deleted, 10 object records, the set record, the sequence.
//! * `raw` — the same 11 writes with the same keys and prost records, SHA-256 of every
//!   object included; before the last write it only checks that the set is unpublished.
//!
//! Every write is durable: RocksDB synced (`DirOptions::default()`), sled flushed after
//! each write (`DirOptions::default()`), so one iteration is 11 fsyncs on both sides.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use pinvault_benches::fixtures::{self, OBJECTS, OBJECT_BYTES};
use pinvault_benches::raw_rocks::{self, RawRocks};
use pinvault_benches::raw_sled::RawSled;
use pinvault_core::kv::layout::{self, ObjectRecord, SetObject, SetRecord};
use pinvault_core::kv::{KvBackend, KvEngine};
use pinvault_core::publish::sha256;
use pinvault_core::{ObjectName, Publisher, SetName, StagedObject};
use pinvault_rocksdb::DirOptions;
use prost::Message;
use rocksdb::WriteBatch;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use tokio::runtime::Runtime;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Bytes((OBJECTS * OBJECT_BYTES) as u64));
    g
}

fn framework<E: KvEngine>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    backend: &KvBackend<E>,
    objects: &[(ObjectName, Bytes)],
    manifest: &Bytes,
) {
    let mut n = 0u64;
    g.bench_function("framework", |b| {
        b.iter(|| {
            n += 1;
            let set = fixtures::set_name(n);
            rt.block_on(async {
                let mut staged = Vec::with_capacity(objects.len());
                for (name, bytes) in objects {
                    staged.push(
                        backend.stage(&set, name, bytes.clone()).await.expect("framework stage"),
                    );
                }
                backend.finalize(&set, &staged, manifest.clone()).await.expect("framework finalize")
            })
        })
    });
}

/// What staging one object means, raw: its id, digest and record, as the KV layer makes them.
fn staged(
    engine: &str,
    counter: &mut u64,
    set: &SetName,
    name: &ObjectName,
    bytes: &[u8],
) -> (StagedObject, Vec<u8>) {
    let staged_at = Utc::now();
    *counter += 1;
    let stage_id = format!(
        "{engine}-{:016x}-{:08x}",
        staged_at.timestamp_nanos_opt().unwrap_or_default(),
        *counter
    );
    let staged = StagedObject {
        set: set.clone(),
        name: name.clone(),
        stage_id,
        size: bytes.len() as u64,
        sha256: sha256(bytes),
        staged_at,
    };
    let record = layout::staged_record(&staged).encode_to_vec();
    (staged, record)
}

/// The rows a finalize writes for one object: its staged record to delete, its object record.
struct ObjectRows {
    stage_id: Vec<u8>,
    object_key: Vec<u8>,
    record: Vec<u8>,
}

/// The records of a finalize of `staged` (sorted by name) at `sequence`: the rows of each
/// object, and the set record.
fn published(
    set: &SetName,
    staged: &mut [StagedObject],
    manifest: &Bytes,
    sequence: u64,
) -> (Vec<ObjectRows>, Vec<u8>) {
    staged.sort_by(|a, b| a.name.cmp(&b.name));
    let now = Utc::now();
    let mut rows = Vec::with_capacity(staged.len());
    let mut entries = Vec::with_capacity(staged.len());
    for s in staged.iter() {
        let record = ObjectRecord {
            size: s.size,
            sha256: s.sha256.to_vec(),
            version: sequence,
            stage_id: s.stage_id.clone(),
        };
        rows.push(ObjectRows {
            stage_id: s.stage_id.as_bytes().to_vec(),
            object_key: layout::object_key(set, &s.name),
            record: record.encode_to_vec(),
        });
        entries.push(SetObject { name: s.name.to_string(), record: Some(record) });
    }
    let set_record = SetRecord {
        version: sequence,
        published_secs: now.timestamp(),
        published_nanos: now.timestamp_subsec_nanos(),
        manifest: manifest.to_vec(),
        objects: entries,
    };
    (rows, set_record.encode_to_vec())
}

fn rocks(c: &mut Criterion, rt: &Runtime, objects: &[(ObjectName, Bytes)], manifest: &Bytes) {
    let dir = fixtures::scratch("rocksdb-finalize");
    let backend = fixtures::open_rocks(rt, &dir.path().join("framework"), DirOptions::default());
    let raw = RawRocks::open(&dir.path().join("raw"), true);
    let cfs = raw.cfs();
    let options = raw.write_options();

    let mut g = group(c, "rocksdb-sync/finalize-10x64KiB");
    framework(&mut g, rt, &backend, objects, manifest);
    let (mut n, mut counter, mut sequence) = (0u64, 0u64, 0u64);
    g.bench_function("raw", |b| {
        b.iter(|| {
            n += 1;
            let set = fixtures::set_name(n);
            let mut staged_objects = Vec::with_capacity(objects.len());
            for (name, bytes) in objects {
                let (s, record) = staged("rocksdb", &mut counter, &set, name, bytes);
                let mut batch = WriteBatch::default();
                batch.put_cf(cfs.blobs, s.stage_id.as_bytes(), bytes);
                batch.put_cf(cfs.staged, s.stage_id.as_bytes(), record);
                raw.write(batch, &options);
                staged_objects.push(s);
            }
            let set_key = set.as_str().as_bytes();
            let existing = raw.db().get_cf(cfs.sets, set_key).expect("raw RocksDB get of the set");
            assert!(existing.is_none(), "raw finalize: set {set} is already published");
            sequence += 1;
            let (rows, set_record) = published(&set, &mut staged_objects, manifest, sequence);
            let mut batch = WriteBatch::default();
            for row in rows {
                batch.delete_cf(cfs.staged, row.stage_id);
                batch.put_cf(cfs.objects, row.object_key, row.record);
            }
            batch.put_cf(cfs.sets, set_key, set_record);
            raw_rocks::put_sequence(&mut batch, &cfs, layout::seq_slot_publication(), sequence);
            raw.write(batch, &options);
        })
    });
    g.finish();
}

fn sled_finalize(
    c: &mut Criterion,
    rt: &Runtime,
    objects: &[(ObjectName, Bytes)],
    manifest: &Bytes,
) {
    let dir = fixtures::scratch("sled-finalize");
    let backend = fixtures::open_sled(rt, &dir.path().join("framework"));
    let raw = RawSled::open(&dir.path().join("raw"));
    let slot = layout::seq_slot_publication();

    let mut g = group(c, "sled-durable/finalize-10x64KiB");
    framework(&mut g, rt, &backend, objects, manifest);
    let (mut n, mut counter, mut sequence) = (0u64, 0u64, 0u64);
    g.bench_function("raw", |b| {
        b.iter(|| {
            n += 1;
            let set = fixtures::set_name(n);
            let mut staged_objects = Vec::with_capacity(objects.len());
            for (name, bytes) in objects {
                let (s, record) = staged("sled", &mut counter, &set, name, bytes);
                let id = s.stage_id.as_bytes();
                (&raw.blobs, &raw.staged)
                    .transaction(|(blobs, staged)| {
                        blobs.insert(id, &bytes[..])?;
                        staged.insert(id, record.as_slice())?;
                        Ok::<_, ConflictableTransactionError<String>>(())
                    })
                    .expect("raw sled stage transaction");
                raw.flush();
                staged_objects.push(s);
            }
            sequence += 1;
            let (rows, set_record) = published(&set, &mut staged_objects, manifest, sequence);
            let set_key = set.as_str().as_bytes();
            (&raw.staged, &raw.objects, &raw.sets, &raw.meta)
                .transaction(|(staged, objects, sets, meta)| {
                    if sets.get(set_key)?.is_some() {
                        return Err(ConflictableTransactionError::Abort(format!(
                            "set {set} is already published"
                        )));
                    }
                    for row in &rows {
                        staged.remove(row.stage_id.as_slice())?;
                        objects.insert(row.object_key.as_slice(), row.record.as_slice())?;
                    }
                    sets.insert(set_key, set_record.as_slice())?;
                    meta.insert(slot.as_slice(), &sequence.to_be_bytes()[..])?;
                    Ok(())
                })
                .expect("raw sled finalize transaction");
            raw.flush();
        })
    });
    g.finish();
}

fn finalize(c: &mut Criterion) {
    println!("pinvault-benches sizes: {}", fixtures::describe_publication_sizes());
    let rt = fixtures::runtime();
    let objects = fixtures::objects();
    let manifest = fixtures::manifest(&objects);
    rocks(c, &rt, &objects, &manifest);
    sled_finalize(c, &rt, &objects, &manifest);
}

criterion_group!(benches, finalize);
criterion_main!(benches);
