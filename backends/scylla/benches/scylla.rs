//! Criterion benches of pinvault-scylla against the raw `scylla` driver writing the same rows
//! (`pins_by_cid`: the same record bytes and a 16-byte version): a batched import (50 pins per
//! logged batch), a conditional put (`IF NOT EXISTS`), a get, and a listing of 500 pins.
//!
//! Needs the testenv's Cassandra (`testenv/pvenv up cassandra`, then source its env file):
//! `cargo bench -p pinvault-scylla`. Results are in this crate's README.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use futures::StreamExt;
use pinvault_core::codec::protobuf::encode_record;
use pinvault_core::{Batch, Cid, FaultInjector, Pin, PinState, Precondition};
use pinvault_scylla::ScyllaConfig;
use scylla::statement::batch::{Batch as CqlBatch, BatchType};

fn pin(n: u64) -> Pin {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(n.to_be_bytes()).into();
    let mh = multihash::Multihash::<64>::wrap(0x12, &digest).expect("multihash");
    let mut p = Pin::new(Cid::new_v1(0x55, mh));
    p.options.name = format!("bench pin {n}");
    p
}

fn prefix(cid: &Cid) -> i32 {
    let d = cid.hash().digest();
    i32::from(u16::from_be_bytes([d[0], d[1]]))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ks = format!("pv_bench_{}", std::process::id());
    let config = ScyllaConfig::from_env(ks.clone()).unwrap_or_else(|e| panic!("{e}"));
    let backend =
        rt.block_on(pinvault_scylla::open(config, FaultInjector::disabled())).expect("open");
    let session = backend.session();
    let raw_insert = rt
        .block_on(session.prepare(format!(
            "INSERT INTO {ks}.pins_by_cid (mh_prefix, cid, record, version) VALUES (?, ?, ?, ?)"
        )))
        .expect("prepare");
    let raw_insert_lwt = rt
        .block_on(session.prepare(format!(
            "INSERT INTO {ks}.pins_by_cid (mh_prefix, cid, record, version) VALUES (?, ?, ?, ?) IF NOT EXISTS"
        )))
        .expect("prepare");
    let raw_get = rt
        .block_on(session.prepare(format!(
            "SELECT record, version FROM {ks}.pins_by_cid WHERE mh_prefix = ? AND cid = ?"
        )))
        .expect("prepare");
    let counter = Arc::new(AtomicU64::new(1_000_000));
    let next = || counter.fetch_add(1, Ordering::Relaxed);

    let mut g = c.benchmark_group("import_batch_50");
    g.sample_size(10);
    g.bench_function("pinvault", |b| {
        b.iter(|| {
            let batch = (0..50).fold(Batch::new(), |b, _| b.put(pin(next()), Precondition::Any));
            rt.block_on(backend.commit(batch)).expect("commit");
        })
    });
    g.bench_function("raw_driver", |b| {
        b.iter(|| {
            let mut batch = CqlBatch::new(BatchType::Logged);
            let mut values = Vec::new();
            for _ in 0..50 {
                let p = pin(next());
                batch.append_statement(raw_insert.clone());
                values.push((
                    prefix(&p.cid),
                    p.cid.to_bytes(),
                    encode_record(&p),
                    rand::random::<[u8; 16]>().to_vec(),
                ));
            }
            rt.block_on(session.batch(&batch, values)).expect("batch");
        })
    });
    g.finish();

    let mut g = c.benchmark_group("conditional_put");
    g.sample_size(20);
    g.bench_function("pinvault", |b| {
        b.iter(|| rt.block_on(backend.put(pin(next()), Precondition::Absent)).expect("put"))
    });
    g.bench_function("raw_driver", |b| {
        b.iter(|| {
            let p = pin(next());
            rt.block_on(session.execute_unpaged(
                &raw_insert_lwt,
                (
                    prefix(&p.cid),
                    p.cid.to_bytes(),
                    encode_record(&p),
                    rand::random::<[u8; 16]>().to_vec(),
                ),
            ))
            .expect("lwt")
        })
    });
    g.finish();

    let known = pin(1_000_000).cid;
    let mut g = c.benchmark_group("get");
    g.bench_function("pinvault", |b| b.iter(|| rt.block_on(backend.get(&known)).expect("get")));
    g.bench_function("raw_driver", |b| {
        b.iter(|| {
            rt.block_on(session.execute_unpaged(&raw_get, (prefix(&known), known.to_bytes())))
                .expect("get")
        })
    });
    g.finish();

    let list_ks = format!("pv_benchl_{}", std::process::id());
    let list_backend = rt
        .block_on(pinvault_scylla::open(
            ScyllaConfig::from_env(list_ks.clone()).unwrap_or_else(|e| panic!("{e}")),
            FaultInjector::disabled(),
        ))
        .expect("open");
    for chunk in 0..10u64 {
        let batch =
            (0..50).fold(Batch::new(), |b, i| b.put(pin(chunk * 50 + i), Precondition::Any));
        rt.block_on(list_backend.commit(batch)).expect("commit");
    }
    let raw_scan = rt
        .block_on(
            session.prepare(format!(
                "SELECT mh_prefix, cid, record, version FROM {list_ks}.pins_by_cid"
            )),
        )
        .expect("prepare");
    let mut g = c.benchmark_group("list_500");
    g.sample_size(10);
    g.bench_function("pinvault", |b| {
        b.iter(|| assert_eq!(rt.block_on(list_backend.list(None).count()), 500))
    });
    g.bench_function("raw_driver", |b| {
        b.iter(|| {
            rt.block_on(async {
                let pager = session.execute_iter(raw_scan.clone(), ()).await.expect("scan");
                let rows = pager.rows_stream::<(i32, Vec<u8>, Vec<u8>, Vec<u8>)>().expect("rows");
                assert_eq!(rows.count().await, 500);
            })
        })
    });
    g.finish();
    for k in [ks, list_ks] {
        let _ = rt.block_on(session.query_unpaged(format!("DROP KEYSPACE IF EXISTS {k}"), ()));
    }
}

criterion_group!(scylla_benches, benches);
criterion_main!(scylla_benches);
