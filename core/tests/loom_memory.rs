//! loom models of the memory backend's coordination: the commit and finalize critical sections
//! of `MemoryStore`, explored under every interleaving loom can produce.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p pinvault-core --test loom_memory --release`
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cid::Cid;
use loom::thread;
use multihash::Multihash;
use pinvault_core::memory::MemoryStore;
use pinvault_core::{
    Batch, Error, FaultInjector, ObjectName, PeerId, Pin, Precondition, SetName, Version,
};
use sha2::{Digest, Sha256};

fn cid(n: u8) -> Cid {
    let digest = Sha256::digest([n]);
    let mh = Multihash::<64>::wrap(0x12, &digest).expect("sha2-256 digest fits");
    Cid::new_v1(0x70, mh)
}

/// Runs `f` under every interleaving (no preemption bound: the models are small enough to be
/// explored exhaustively) and prints how many loom ran, so a model that silently explores
/// nothing shows up in the test output.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f()
    });
    eprintln!("{name}: {} interleavings explored", runs.load(Ordering::Relaxed));
}

/// Two writers read version v and race a `Version(v)` put: exactly one wins, and the loser's
/// conflict carries the winner's version.
#[test]
fn version_conditional_puts_have_one_winner() {
    model("version_conditional_puts_have_one_winner", || {
        let store = MemoryStore::new();
        let none = FaultInjector::disabled();
        let v0 =
            store.commit(Batch::new().put(Pin::new(cid(1)), Precondition::Any), &none).unwrap();
        let read_version = v0.versions[0].clone().unwrap();
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let store = store.clone();
                let expected = read_version.clone();
                thread::spawn(move || {
                    let mut pin = Pin::new(cid(1));
                    pin.options.name = format!("writer-{i}");
                    store.commit(
                        Batch::new().put(pin, Precondition::Version(expected)),
                        &FaultInjector::disabled(),
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one conditional put must win");
        let winner_version = winners[0].versions[0].clone();
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        match loser {
            Error::Conflict { current, op_index: 0, .. } => assert_eq!(*current, winner_version),
            other => panic!("loser must get a conflict, got {other}"),
        }
        assert_eq!(store.get(&cid(1)).unwrap().version, winner_version.unwrap());
    });
}

/// Readers concurrent with a two-op batch see both pins or neither, in the pins and in a view.
#[test]
fn readers_never_see_half_a_batch() {
    model("readers_never_see_half_a_batch", || {
        let store = MemoryStore::new();
        let peer =
            PeerId::from_bytes(&Multihash::<64>::wrap(0x12, &[7; 32]).unwrap().to_bytes()).unwrap();
        let writer = {
            let store = store.clone();
            let peer = peer.clone();
            thread::spawn(move || {
                let mut batch = Batch::new();
                for n in 1..=2 {
                    let mut pin = Pin::new(cid(n));
                    pin.allocations = vec![peer.clone()];
                    batch = batch.put(pin, Precondition::Absent);
                }
                store.commit(batch, &FaultInjector::disabled()).unwrap();
            })
        };
        let listed = store.list_page(None, 10).len();
        assert!(listed == 0 || listed == 2, "a listing saw {listed} pins of a 2-pin batch");
        let allocated = store.pins_by_peer(&peer).len();
        assert!(allocated == 0 || allocated == 2, "the by-peer view saw {allocated} of 2 pins");
        // Two separate reads: "first absent, second present" is possible (the batch landed in
        // between); "first present, second absent" never is.
        let first = store.get(&cid(1)).is_ok();
        let second = store.get(&cid(2)).is_ok();
        assert!(second || !first, "saw pin 1 without pin 2 of the same batch");
        writer.join().unwrap();
        let page = store.list_page(None, 10);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].version, page[1].version, "one batch, one version");
        assert_eq!(store.pins_by_peer(&peer).len(), 2);
    });
}

/// Two finalizers of one set: one wins, the other gets AlreadyExists, and the published set is
/// the winner's, complete.
#[test]
fn finalizers_of_one_set_have_one_winner() {
    model("finalizers_of_one_set_have_one_winner", || {
        let store = MemoryStore::new();
        let set = SetName::new("sales/day=1").unwrap();
        let handles: Vec<_> = (0..2u8)
            .map(|i| {
                let store = store.clone();
                let set = set.clone();
                let staged: Vec<_> = (0..2)
                    .map(|j| {
                        let name = ObjectName::new(format!("part-{j}")).unwrap();
                        store.stage(&set, &name, Bytes::from(vec![i; 4])).unwrap()
                    })
                    .collect();
                thread::spawn(move || {
                    store
                        .finalize(&set, &staged, Bytes::from(vec![i]), &FaultInjector::disabled())
                        .map(|p| (i, p))
                })
            })
            .collect();
        // A concurrent reader sees the whole set or nothing of it; once the publication record
        // is visible, so are its objects.
        let listed = store.list_objects("sales/").len();
        assert!(listed == 0 || listed == 2, "a listing saw {listed} objects of a 2-object set");
        if let Ok(seen) = store.publication(&set) {
            for object in &seen.objects {
                assert!(store.head(&object.key).is_ok(), "publication visible before its objects");
            }
        }
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1);
        assert!(results.iter().any(|r| matches!(r, Err(Error::AlreadyExists { .. }))));
        let (winner, _) = winners[0];
        let published = store.publication(&set).unwrap();
        assert_eq!(published.manifest, Bytes::from(vec![*winner]));
        assert_eq!(published.objects.len(), 2);
        for object in &published.objects {
            assert_eq!(store.get_object(&object.key).unwrap(), Bytes::from(vec![*winner; 4]));
        }
    });
}

/// Two threads commit twice each: every receipt gets its own sequence, each thread's receipts
/// strictly increase, and each key's version is the sequence of the commit that wrote it.
#[test]
fn receipts_are_strictly_ordered_across_threads() {
    model("receipts_are_strictly_ordered_across_threads", || {
        let store = MemoryStore::new();
        let handles: Vec<_> = (0..2u8)
            .map(|t| {
                let store = store.clone();
                thread::spawn(move || {
                    (1..=2u8)
                        .map(|k| {
                            let pin = Pin::new(cid(t * 10 + k));
                            store
                                .commit(
                                    Batch::new().put(pin, Precondition::Absent),
                                    &FaultInjector::disabled(),
                                )
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let per_thread: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for receipts in &per_thread {
            assert!(receipts[0].sequence < receipts[1].sequence, "one thread's commits go up");
        }
        let mut all: Vec<u64> = per_thread.iter().flatten().map(|r| r.sequence).collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3, 4], "every commit takes the next sequence, none shared");
        for (t, receipts) in per_thread.iter().enumerate() {
            for (k, r) in receipts.iter().enumerate() {
                assert_eq!(r.versions[0], Some(Version::from_u64(r.sequence)));
                let key = cid(t as u8 * 10 + k as u8 + 1);
                assert_eq!(store.get(&key).unwrap().version, Version::from_u64(r.sequence));
            }
        }
    });
}
