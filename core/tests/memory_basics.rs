//! The reference model's own specifics, beyond what the conformance suite checks on every
//! backend: versions are commit sequences, the views change with the pins, listing pages stay
//! consistent under writes, sweep's cutoff is strict, finalize shares the commit sequence, and
//! the crash points sit on the right side of the commit point.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use multihash::Multihash;
use pinvault_core::memory::{
    MemoryBackend, COMMIT_APPLIED, COMMIT_VALIDATED, FINALIZE_PUBLISHED, FINALIZE_VALIDATED,
    LIST_PAGE, MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS,
};
use pinvault_core::state::expiry_bucket;
use pinvault_core::{
    Batch, Cid, Error, FaultInjector, ObjectKey, ObjectName, PeerId, Pin, PinState, Precondition,
    Publisher, SetName, StagedObject, Version,
};

fn cid(n: u64) -> Cid {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    Cid::new_v1(0x70, Multihash::<64>::wrap(0x12, &digest).unwrap())
}

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes(&Multihash::<64>::wrap(0x12, &[n; 32]).unwrap().to_bytes()).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn pin_on(n: u64, peers: &[u8]) -> Pin {
    let mut pin = Pin::new(cid(n));
    pin.allocations = peers.iter().map(|p| peer(*p)).collect();
    pin
}

fn expiring(n: u64, secs: i64) -> Pin {
    let mut pin = Pin::new(cid(n));
    pin.options.expire_at = Some(at(secs));
    pin
}

fn set(s: &str) -> SetName {
    SetName::new(s).unwrap()
}

fn name(s: &str) -> ObjectName {
    ObjectName::new(s).unwrap()
}

/// The pin-state face (both traits have `get` and `list`).
fn pins(m: &MemoryBackend) -> &dyn PinState {
    m
}

async fn by_peer(m: &MemoryBackend, p: u8) -> Vec<Cid> {
    m.pins_by_peer(&peer(p)).try_collect().await.unwrap()
}

#[tokio::test]
async fn versions_are_the_store_wide_commit_sequence() {
    let m = MemoryBackend::new();
    let r1 = m.commit(Batch::new().put(Pin::new(cid(1)), Precondition::Absent)).await.unwrap();
    let r2 = m
        .commit(
            Batch::new()
                .put(Pin::new(cid(2)), Precondition::Absent)
                .put(Pin::new(cid(3)), Precondition::Any),
        )
        .await
        .unwrap();
    assert_eq!((r1.sequence, r2.sequence), (1, 2));
    assert_eq!(r1.versions, vec![Some(Version::from_u64(1))]);
    assert_eq!(r2.versions, vec![Some(Version::from_u64(2)), Some(Version::from_u64(2))]);
    assert_eq!(r2.ops, 2);
    assert_eq!(
        r2.digest,
        Batch::new()
            .put(Pin::new(cid(2)), Precondition::Absent)
            .put(Pin::new(cid(3)), Precondition::Any)
            .digest()
    );

    // Remove, then re-insert: the key gets a version it never had (no ABA).
    let v1 = pins(&m).get(&cid(1)).await.unwrap().version;
    m.remove(&cid(1), Precondition::Version(v1.clone())).await.unwrap();
    let v1_again = m.put(Pin::new(cid(1)), Precondition::Absent).await.unwrap();
    assert_eq!(v1_again.to_u64(), Some(4));
    assert!(v1_again > v1);
    let stale = m.put(Pin::new(cid(1)), Precondition::Version(v1)).await.unwrap_err();
    assert!(matches!(stale, Error::Conflict { current: Some(ref c), .. } if *c == v1_again));

    // Removing an absent pin with Any takes a sequence number (the stale put above took none)
    // but changes nothing.
    let r = m.commit(Batch::new().remove(cid(99), Precondition::Any)).await.unwrap();
    assert_eq!((r.sequence, r.versions), (5, vec![None]));
    assert_eq!(pins(&m).list(None).count().await, 3);
    assert_eq!(pins(&m).get(&cid(2)).await.unwrap().version, Version::from_u64(2));
}

#[tokio::test]
async fn first_failing_precondition_names_its_op_and_nothing_is_written() {
    let m = MemoryBackend::new();
    let va = m.put(Pin::new(cid(1)), Precondition::Absent).await.unwrap();
    m.put(Pin::new(cid(2)), Precondition::Absent).await.unwrap();
    let batch = Batch::new()
        .put(pin_on(3, &[1]), Precondition::Absent)
        .put(Pin::new(cid(2)), Precondition::Absent)
        .put(Pin::new(cid(1)), Precondition::Version(Version::from_u64(77)));
    match m.commit(batch).await.unwrap_err() {
        Error::Conflict { key, expected, current, op_index } => {
            assert_eq!(op_index, 1, "the first failing op, not the last");
            assert_eq!(key, cid(2).to_string());
            assert_eq!(expected, "absent");
            assert_eq!(current, Some(Version::from_u64(2)));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(!m.has(&cid(3)).await.unwrap());
    assert!(by_peer(&m, 1).await.is_empty(), "views must not see the refused batch");
    assert_eq!(pins(&m).get(&cid(1)).await.unwrap().version, va);
    // A refused batch does not consume a sequence number.
    let r = m.commit(Batch::new().put(Pin::new(cid(3)), Precondition::Absent)).await.unwrap();
    assert_eq!(r.sequence, 3);
}

#[tokio::test]
async fn invalid_batches_are_refused_before_any_check() {
    let m = MemoryBackend::new();
    for batch in [
        Batch::new(),
        Batch::new().put(Pin::new(cid(1)), Precondition::Any).remove(cid(1), Precondition::Any),
        Batch::new().remove(cid(1), Precondition::Absent),
    ] {
        assert!(matches!(m.commit(batch).await, Err(Error::InvalidInput { .. })));
    }
    assert_eq!(pins(&m).list(None).count().await, 0);
    let r = m.commit(Batch::new().put(Pin::new(cid(1)), Precondition::Any)).await.unwrap();
    assert_eq!(r.sequence, 1);
}

#[tokio::test]
async fn by_peer_view_follows_every_write() {
    let m = MemoryBackend::new();
    m.commit(
        Batch::new()
            .put(pin_on(1, &[1, 2]), Precondition::Any)
            .put(pin_on(2, &[1]), Precondition::Any)
            .put(pin_on(3, &[2]), Precondition::Any),
    )
    .await
    .unwrap();
    let mut on_1 = vec![cid(1), cid(2)];
    on_1.sort_by_key(|c| c.to_bytes());
    assert_eq!(by_peer(&m, 1).await, on_1, "CID byte order");
    // Reallocate 1 away from peer 1 and drop 3, in one batch.
    m.commit(
        Batch::new().put(pin_on(1, &[3]), Precondition::Any).remove(cid(3), Precondition::Any),
    )
    .await
    .unwrap();
    assert_eq!(by_peer(&m, 1).await, vec![cid(2)]);
    assert!(by_peer(&m, 2).await.is_empty());
    assert_eq!(by_peer(&m, 3).await, vec![cid(1)]);
}

#[tokio::test]
async fn expiry_queue_is_strict_ordered_and_follows_changes() {
    let m = MemoryBackend::new();
    let base = 100 * 3600;
    // Two pins share one expiry instant, others span three hour buckets.
    let times =
        [(1, base + 10), (2, base + 3600 + 5), (3, base + 10), (4, base + 7200), (5, base - 1)];
    let mut batch = Batch::new().put(Pin::new(cid(6)), Precondition::Any);
    for (n, t) in times {
        batch = batch.put(expiring(n, t), Precondition::Any);
    }
    m.commit(batch).await.unwrap();
    assert_ne!(expiry_bucket(at(base - 1)), expiry_bucket(at(base + 10)));

    let due: Vec<_> = m.expiring_before(at(base + 7200)).try_collect().await.unwrap();
    let mut expected: Vec<_> = times.iter().filter(|(_, t)| *t < base + 7200).collect();
    expected.sort_by_key(|(n, t)| (*t, cid(*n).to_bytes()));
    let got: Vec<_> = due.iter().map(|e| (e.cid, e.expire_at)).collect();
    let want: Vec<_> = expected.iter().map(|(n, t)| (cid(*n), at(*t))).collect();
    assert_eq!(got, want, "(expire_at, CID bytes) order, strictly before the bound");

    // The bound is strict: a pin expiring exactly at it is not due.
    let at_bound: Vec<_> = m.expiring_before(at(base + 10)).try_collect().await.unwrap();
    assert_eq!(at_bound.iter().map(|e| e.cid).collect::<Vec<_>>(), vec![cid(5)]);

    // Moving an expiry and removing a pin update the queue in the same commit.
    m.commit(
        Batch::new()
            .put(expiring(5, base + 9000), Precondition::Any)
            .remove(cid(1), Precondition::Any),
    )
    .await
    .unwrap();
    let due: Vec<_> = m.expiring_before(at(base + 3600)).try_collect().await.unwrap();
    assert_eq!(due.iter().map(|e| e.cid).collect::<Vec<_>>(), vec![cid(3)]);
    let mut unexpiring = expiring(3, 0);
    unexpiring.options.expire_at = None;
    m.put(unexpiring, Precondition::Any).await.unwrap();
    assert_eq!(m.expiring_before(at(base + 3600)).count().await, 0);
}

#[tokio::test]
async fn placements_keep_actual_across_reputs_and_drop_it_on_remove() {
    let m = MemoryBackend::new();
    let v = m.put(pin_on(1, &[1, 2]), Precondition::Absent).await.unwrap();
    let missing = m.record_placement(&cid(2), BTreeSet::from([peer(1)])).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }));
    assert!(matches!(m.placement(&cid(2)).await, Err(Error::NotFound { .. })));

    m.record_placement(&cid(1), BTreeSet::from([peer(2), peer(3)])).await.unwrap();
    assert_eq!(
        pins(&m).get(&cid(1)).await.unwrap().version,
        v,
        "a placement report is not a write"
    );
    let p = m.placement(&cid(1)).await.unwrap();
    assert_eq!(p.desired, BTreeSet::from([peer(1), peer(2)]));
    assert_eq!(p.missing(), BTreeSet::from([peer(1)]));
    assert_eq!(p.extra(), BTreeSet::from([peer(3)]));

    // A re-put changes desired, keeps the last report.
    m.put(pin_on(1, &[3]), Precondition::Version(v)).await.unwrap();
    let p = m.placement(&cid(1)).await.unwrap();
    assert_eq!(p.desired, BTreeSet::from([peer(3)]));
    assert_eq!(p.actual, BTreeSet::from([peer(2), peer(3)]));

    // Remove, re-insert: the old report is gone.
    m.remove(&cid(1), Precondition::Any).await.unwrap();
    m.put(pin_on(1, &[3]), Precondition::Absent).await.unwrap();
    assert!(m.placement(&cid(1)).await.unwrap().actual.is_empty());
}

#[tokio::test]
async fn listing_pages_resume_and_tolerate_writes_to_other_keys() {
    let m = MemoryBackend::new();
    let total = 2 * LIST_PAGE as u64 + 17;
    let mut batch = Batch::new();
    for n in 0..total {
        batch = batch.put(Pin::new(cid(n)), Precondition::Any);
    }
    m.commit(batch).await.unwrap();
    let mut expected: Vec<Vec<u8>> = (0..total).map(|n| cid(n).to_bytes()).collect();
    expected.sort();

    let mut stream = pins(&m).list(None);
    let mut seen = Vec::new();
    for _ in 0..LIST_PAGE + 3 {
        seen.push(stream.next().await.unwrap().unwrap().pin.cid.to_bytes());
    }
    // Writes between pages: new keys anywhere in the order, and removal of keys not yet listed
    // is fine; keys present for the whole listing must still come out exactly once.
    let mut writes = Batch::new();
    for n in total..total + 50 {
        writes = writes.put(Pin::new(cid(n)), Precondition::Any);
    }
    m.commit(writes).await.unwrap();
    while let Some(entry) = stream.next().await {
        seen.push(entry.unwrap().pin.cid.to_bytes());
    }
    drop(stream);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "strict CID byte order, no duplicate");
    let seen_set: BTreeSet<_> = seen.iter().cloned().collect();
    assert!(expected.iter().all(|k| seen_set.contains(k)), "no pin present throughout is missed");

    // Resuming from a cursor yields exactly what follows it.
    let all: Vec<_> = pins(&m).list(None).try_collect().await.unwrap();
    assert_eq!(all.len() as u64, total + 50);
    let cut = &all[LIST_PAGE + 5];
    let rest: Vec<_> = pins(&m).list(Some(cut.cursor.clone())).try_collect().await.unwrap();
    assert_eq!(rest, all[LIST_PAGE + 6..].to_vec());
    assert_eq!(cut.cursor.0, cut.pin.cid.to_bytes(), "the cursor is the CID's bytes");
}

#[tokio::test]
async fn sweep_cutoff_is_strict_and_leaves_published_data() {
    let m = MemoryBackend::new();
    let s = set("sweep");
    let old = m.stage(&s, &name("old"), Bytes::from_static(b"12345")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let young = m.stage(&s, &name("young"), Bytes::from_static(b"123")).await.unwrap();
    assert!(old.staged_at < young.staged_at);
    let published = m.stage(&set("kept"), &name("x"), Bytes::from_static(b"x")).await.unwrap();
    m.finalize(&set("kept"), &[published], Bytes::new()).await.unwrap();

    let report = m.sweep(young.staged_at).await.unwrap();
    assert_eq!((report.removed, report.bytes), (1, 5), "only what was staged strictly before");
    assert_eq!(m.store().staged_count(), 1);
    assert!(matches!(
        m.finalize(&s, &[old.clone(), young.clone()], Bytes::new()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(m.head(&ObjectKey::new(set("kept"), name("x"))).await.is_ok());

    let report = m.sweep(Utc::now() + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!((report.removed, report.bytes), (1, 3));
    assert_eq!(m.store().staged_count(), 0);
    assert_eq!(Publisher::get(&m, &ObjectKey::new(set("kept"), name("x"))).await.unwrap(), "x");
}

#[tokio::test]
async fn finalize_shares_the_commit_sequence_and_checks_the_staged_token() {
    let m = MemoryBackend::new();
    m.put(Pin::new(cid(1)), Precondition::Any).await.unwrap();
    let s = set("sales/day=1");
    let b = m.stage(&s, &name("b"), Bytes::from_static(b"bb")).await.unwrap();
    let a = m.stage(&s, &name("a"), Bytes::from_static(b"a")).await.unwrap();
    assert_ne!(a.stage_id, b.stage_id);

    let mut forged = a.clone();
    forged.sha256 = [0; 32];
    assert!(matches!(
        m.finalize(&s, &[b.clone(), forged], Bytes::new()).await,
        Err(Error::NotFound { .. })
    ));
    let p = m.finalize(&s, &[b.clone(), a.clone()], Bytes::from_static(b"manifest")).await.unwrap();
    assert_eq!(p.version, Version::from_u64(2), "after commit 1");
    assert_eq!(p.objects.iter().map(|o| o.key.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(p.objects.iter().all(|o| o.version == p.version));
    let r = m.commit(Batch::new().put(Pin::new(cid(2)), Precondition::Any)).await.unwrap();
    assert_eq!(r.sequence, 3);

    // Staged objects are consumed: a second finalize of another set with them is NotFound;
    // the same set again is AlreadyExists first.
    assert!(matches!(
        m.finalize(&s, std::slice::from_ref(&a), Bytes::new()).await,
        Err(Error::AlreadyExists { .. })
    ));
    let other = set("sales/day=2");
    let mut moved = a.clone();
    moved.set = other.clone();
    assert!(matches!(
        m.finalize(&other, &[moved], Bytes::new()).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(m.publication(&s).await.unwrap(), p);
}

#[tokio::test]
async fn object_listing_is_in_key_text_order() {
    let m = MemoryBackend::new();
    let publish = |s: &'static str, names: &'static [&'static str]| {
        let m = m.clone();
        async move {
            let mut staged: Vec<StagedObject> = Vec::new();
            for n in names {
                staged.push(m.stage(&set(s), &name(n), Bytes::from(n.as_bytes())).await.unwrap());
            }
            m.finalize(&set(s), &staged, Bytes::new()).await.unwrap();
        }
    };
    publish("a", &["b/c", "z"]).await;
    publish("a/b", &["c"]).await;
    publish("a-x", &["1"]).await;
    let unpublished = set("a/unpublished");
    m.stage(&unpublished, &name("hidden"), Bytes::new()).await.unwrap();

    let keys: Vec<(String, String)> = Publisher::list(&m, "a")
        .map_ok(|o| (o.key.to_string(), o.key.set.to_string()))
        .try_collect()
        .await
        .unwrap();
    let expected = [("a-x/1", "a-x"), ("a/b/c", "a"), ("a/b/c", "a/b"), ("a/z", "a")];
    assert_eq!(
        keys,
        expected.map(|(k, s)| (k.to_owned(), s.to_owned())).to_vec(),
        "text order of set/name; equal texts ordered by set"
    );
    let under: Vec<_> = Publisher::list(&m, "a/b/").map_ok(|o| o.key).try_collect().await.unwrap();
    assert_eq!(under.len(), 2);
    assert_eq!(Publisher::list(&m, "a/unpublished").count().await, 0);
}

#[tokio::test]
async fn crash_points_sit_on_both_sides_of_the_commit_point() {
    let store = MemoryBackend::new().store();
    let crashed = MemoryBackend::open(store.clone(), FaultInjector::crash_at(COMMIT_VALIDATED));
    let e = crashed.put(Pin::new(cid(1)), Precondition::Absent).await.unwrap_err();
    assert!(matches!(e, Error::Crashed { point: COMMIT_VALIDATED }));
    let reopened = MemoryBackend::open(store.clone(), FaultInjector::disabled());
    assert!(!reopened.has(&cid(1)).await.unwrap());

    let crashed = MemoryBackend::open(store.clone(), FaultInjector::crash_at(COMMIT_APPLIED));
    let batch = Batch::new()
        .put(pin_on(1, &[1]), Precondition::Absent)
        .put(Pin::new(cid(2)), Precondition::Absent);
    assert!(matches!(crashed.commit(batch).await, Err(Error::Crashed { point: COMMIT_APPLIED })));
    let reopened = MemoryBackend::open(store.clone(), FaultInjector::disabled());
    assert_eq!(pins(&reopened).list(None).count().await, 2, "applied before the crash");
    assert_eq!(by_peer(&reopened, 1).await, vec![cid(1)]);

    let s = set("crash");
    for (point, visible) in [(FINALIZE_VALIDATED, false), (FINALIZE_PUBLISHED, true)] {
        let crashed = MemoryBackend::open(store.clone(), FaultInjector::crash_at(point));
        let staged = crashed.stage(&s, &name("o"), Bytes::from_static(b"o")).await.unwrap();
        let e = crashed.finalize(&s, &[staged], Bytes::new()).await.unwrap_err();
        assert!(matches!(e, Error::Crashed { point: p } if p == point));
        let reopened = MemoryBackend::open(store.clone(), FaultInjector::disabled());
        assert_eq!(reopened.publication(&s).await.is_ok(), visible, "{point}");
        assert_eq!(reopened.head(&ObjectKey::new(s.clone(), name("o"))).await.is_ok(), visible);
    }
    // The set published at the second crash point; the first attempt's object is left staged.
    assert_eq!(store.staged_count(), 1);
}

#[tokio::test]
async fn capabilities_migrate_and_limits() {
    let m = MemoryBackend::new();
    let caps = m.pin_capabilities();
    let publish = m.publish_capabilities();
    assert_eq!((caps.backend, publish.backend), ("memory", "memory"));
    assert!(!caps.persistent && !caps.durable_on_return);
    assert!(!publish.persistent && !publish.durable_on_return);
    assert!(caps.linearizable_conditional_writes && caps.atomic_batch && caps.conditional_batch);
    assert!(caps.atomic_views && publish.atomic_publication);
    assert_eq!(caps.max_batch_ops, None);
    assert_eq!(publish.max_object_size, Some(MAX_OBJECT_SIZE));
    assert_eq!(caps.crash_points, [COMMIT_VALIDATED, COMMIT_APPLIED]);
    assert_eq!(caps.crash_points, PIN_CRASH_POINTS);
    assert_eq!(publish.crash_points, [FINALIZE_VALIDATED, FINALIZE_PUBLISHED]);
    assert_eq!(publish.crash_points, PUBLISH_CRASH_POINTS);

    let report = m.migrate().await.unwrap();
    assert_eq!((report.from, report.to, report.records_rewritten), (1, 1, 0));

    let too_big = Bytes::from(vec![0u8; MAX_OBJECT_SIZE as usize + 1]);
    let e = m.stage(&set("big"), &name("o"), too_big).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }));
    assert_eq!(m.store().staged_count(), 0);

    m.put(pin_on(1, &[1]), Precondition::Any).await.unwrap();
    let debug = format!("{m:?}");
    assert!(debug.starts_with("MemoryBackend"));
    assert!(!debug.contains(&cid(1).to_string()), "Debug must not dump data: {debug}");
}
