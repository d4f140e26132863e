//! Backend-specific promises beyond the conformance suite, on `InMemory` (no service needed):
//! what a finalize and a pin write cost in requests, that published bytes are never copied,
//! that `repair_views` restores lost view rows, and that sweeps never touch published data
//! after a crash between the manifest PUT and the cleanup.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use pinvault_conformance::fixtures::{full_pin, peer};
use pinvault_core::{Error, FaultInjector, ObjectName, PinState, Precondition, Publisher, SetName};
use pinvault_object::{CountingStore, ObjectBackend, ObjectOptions, StoreKind, FINALIZE_COMMITTED};

fn backend(store: Arc<dyn ObjectStore>, faults: FaultInjector) -> ObjectBackend {
    let options = ObjectOptions::new(store, "p")
        .expect("prefix")
        .with_kind(StoreKind::Memory)
        .with_faults(faults);
    ObjectBackend::open(options)
}

fn set(s: &str) -> SetName {
    SetName::new(s).expect("set name")
}

#[tokio::test]
async fn finalize_costs_heads_and_one_conditional_put() {
    let counting = CountingStore::new(Arc::new(InMemory::new()));
    let b = backend(Arc::new(counting.clone()), FaultInjector::disabled());
    for n in [1usize, 10, 100] {
        let name = format!("n{n}");
        let mut staged = Vec::new();
        for i in 0..n {
            let object = ObjectName::new(format!("part-{i}")).expect("name");
            staged.push(
                b.stage(&set(&name), &object, Bytes::from(vec![i as u8; 64])).await.expect("stage"),
            );
        }
        let before = counting.counts();
        b.finalize(&set(&name), &staged, Bytes::from_static(b"{}")).await.expect("finalize");
        let cost = counting.counts().since(&before);
        println!("finalize of {n}: {cost}");
        assert_eq!(cost.put_create, 1, "one conditional PUT commits the set");
        assert_eq!(
            (cost.put, cost.put_update, cost.copy),
            (0, 0, 0),
            "nothing is rewritten or copied"
        );
        assert_eq!(cost.head, n as u64 + 1, "one HEAD per object and one for the manifest");
        assert_eq!(cost.delete_objects, n as u64, "the pending records are cleaned");
        assert_eq!(cost.delete_calls, 1, "in one bulk delete");
    }
}

#[tokio::test]
async fn a_pin_write_is_one_read_rows_and_one_conditional_put() {
    let counting = CountingStore::new(Arc::new(InMemory::new()));
    let b = backend(Arc::new(counting.clone()), FaultInjector::disabled());
    let pin = full_pin(1);
    let rows = pin.allocations.len() as u64 + u64::from(pin.options.expire_at.is_some());
    let before = counting.counts();
    let v = b.put(pin.clone(), Precondition::Absent).await.expect("insert");
    let cost = counting.counts().since(&before);
    assert_eq!((cost.get, cost.put, cost.put_create), (1, rows, 1), "insert: {cost}");
    let before = counting.counts();
    b.put(pin, Precondition::Version(v)).await.expect("update");
    let cost = counting.counts().since(&before);
    assert_eq!((cost.get, cost.put, cost.put_update), (1, rows, 1), "update: {cost}");
    assert_eq!(cost.delete_objects, rows, "the replaced write's rows are deleted: {cost}");
}

#[tokio::test]
async fn repair_views_restores_lost_rows() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let b = backend(store.clone(), FaultInjector::disabled());
    let mut pin = full_pin(2);
    pin.allocations = vec![peer(7)];
    b.put(pin.clone(), Precondition::Any).await.expect("put");
    let rows: Vec<Path> = store
        .list(Some(&Path::from("p/views/peer")))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .expect("list rows");
    assert_eq!(rows.len(), 1);
    store.delete(&rows[0]).await.expect("lose the row");
    let by_peer: Vec<_> = b.pins_by_peer(&peer(7)).try_collect().await.expect("pins_by_peer");
    assert!(by_peer.is_empty(), "a lost row hides the pin until repaired");
    let report = b.repair_views().await.expect("repair");
    assert_eq!(report.rows_written, 1, "{report:?}");
    let by_peer: Vec<_> = b.pins_by_peer(&peer(7)).try_collect().await.expect("pins_by_peer");
    assert_eq!(by_peer, vec![pin.cid]);
    assert_eq!(b.repair_views().await.expect("second repair").rows_written, 0);
}

#[tokio::test]
async fn sweep_and_abort_keep_data_published_before_a_crash() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let crashing = backend(store.clone(), FaultInjector::crash_at(FINALIZE_COMMITTED));
    let object = ObjectName::new("x").expect("name");
    let staged =
        crashing.stage(&set("s"), &object, Bytes::from_static(b"kept")).await.expect("stage");
    let result = crashing.finalize(&set("s"), std::slice::from_ref(&staged), Bytes::new()).await;
    assert!(matches!(result, Err(Error::Crashed { .. })), "{result:?}");
    drop(crashing);
    let b = backend(store.clone(), FaultInjector::disabled());
    let pending: Vec<_> =
        store.list(Some(&Path::from("p/pending"))).try_collect().await.expect("list");
    assert_eq!(pending.len(), 1, "the crash left the pending record");
    b.abort(std::slice::from_ref(&staged)).await.expect("abort of a published object");
    let swept = b.sweep(chrono::Utc::now() + chrono::Duration::hours(1)).await.expect("sweep");
    assert_eq!(swept.removed, 0, "published objects are not swept");
    let key = pinvault_core::ObjectKey::new(set("s"), object);
    assert_eq!(Publisher::get(&b, &key).await.expect("get"), Bytes::from_static(b"kept"));
    let pending: Vec<_> =
        store.list(Some(&Path::from("p/pending"))).try_collect().await.expect("list");
    assert!(pending.is_empty(), "the leftover record is cleaned");
}
