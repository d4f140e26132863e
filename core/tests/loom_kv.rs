//! loom models of the real KV layer: `pinvault_core::kv::KvStore` over `BTreeEngine`, with its
//! commit, finalize, sweep and listing paths run unchanged under every interleaving loom can
//! produce. `loom_locks.rs` checks the lock table on its own; this file checks that the store
//! built on it keeps its promises (one winner per precondition, distinct and recoverable
//! sequences, whole batches and whole sets for readers, first finalizer wins, a staged object
//! is published or swept, never both and never lost).
//!
//! Every lock on these paths is loom's under `cfg(loom)` (`core/src/sync.rs`): the lock table's
//! stripes, the publication mutex, the sequence counter and `BTreeEngine`'s mutex. What stays
//! std is never held across a loom operation, so loom runs it as one step: the armed
//! `FaultInjector` of model 5, tracing's callsite registry, and the thread-local hash seeds of
//! `Batch::validate`'s `HashSet` (loom's threads share one OS thread, so they share those
//! seeds, which only perturbs hashing).
//!
//! Each model also counts how its race went over all interleavings and fails if one of the
//! outcomes it asserts about never happened, so no model passes by never racing.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p pinvault-core --test loom_kv --release`
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use chrono::{Duration, Utc};
use cid::Cid;
use loom::sync::Arc;
use loom::thread;
use multihash::Multihash;
use pinvault_core::kv::locks::STRIPES;
use pinvault_core::kv::{
    BTreeEngine, KvEngine, KvStore, LockTable, Table, COMMIT_VALIDATED, COMMIT_WRITTEN,
};
use pinvault_core::{
    Batch, Error, FaultInjector, ObjectName, PeerId, Pin, Precondition, SetName, StagedObject,
    Version,
};
use sha2::{Digest, Sha256};

type Store = KvStore<BTreeEngine>;

fn cid(n: u8) -> Cid {
    let digest = Sha256::digest([n]);
    let mh = Multihash::<64>::wrap(0x12, &digest).expect("sha2-256 digest fits");
    Cid::new_v1(0x70, mh)
}

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes(&Multihash::<64>::wrap(0x12, &[n; 32]).unwrap().to_bytes()).unwrap()
}

fn open(engine: &BTreeEngine) -> Store {
    KvStore::open(engine.clone(), FaultInjector::disabled()).unwrap()
}

/// A pin of `cid(n)` named `name`, allocated to `peer(allocated)`.
fn pin(n: u8, name: &str, allocated: u8) -> Pin {
    let mut pin = Pin::new(cid(n));
    pin.options.name = name.to_owned();
    pin.allocations = vec![peer(allocated)];
    pin
}

/// The CIDs the by-peer view lists for `peer(n)`.
fn allocated_to(store: &Store, n: u8) -> Vec<Cid> {
    store.by_peer_page(&peer(n), None, 10).unwrap().into_iter().map(|(_, c)| c).collect()
}

/// Runs `f` under every interleaving loom can produce within `bound` preemptions (`None`:
/// exhaustive; loom's own `LOOM_MAX_PREEMPTIONS`, when set, overrides it for a quick run), and
/// prints how many it ran and how long it took, so a model that silently explores nothing, or
/// one that grew too big, shows in the test output.
fn model(name: &str, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = bound;
    }
    let bound = builder.preemption_bound;
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f()
    });
    eprintln!(
        "{name}: {} interleavings explored (preemption bound {bound:?}) in {:.1}s",
        runs.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

/// How often each outcome of a model's race happened, over all its interleavings: a model whose
/// race never went one of the ways it asserts about would pass without checking that way, so
/// [`Outcomes::all_seen`] fails it instead.
#[derive(Clone)]
struct Outcomes(std::sync::Arc<Vec<(&'static str, AtomicUsize)>>);

impl Outcomes {
    fn new(names: &[&'static str]) -> Self {
        Outcomes(std::sync::Arc::new(names.iter().map(|&n| (n, AtomicUsize::new(0))).collect()))
    }

    fn saw(&self, index: usize) {
        self.0[index].1.fetch_add(1, Ordering::Relaxed);
    }

    fn all_seen(&self, model: &str) {
        let counts: Vec<_> =
            self.0.iter().map(|(n, c)| format!("{n}: {}", c.load(Ordering::Relaxed))).collect();
        eprintln!("{model}: outcomes {}", counts.join(", "));
        for (name, count) in self.0.iter() {
            assert!(count.load(Ordering::Relaxed) > 0, "{model}: no interleaving had {name}");
        }
    }
}

/// Two writers race a conditional put of one CID, each allocating it to its own peer. Exactly
/// one wins; the loser gets a conflict on op 0 carrying the winner's version; the stored record,
/// its version and the by-peer view are the winner's alone; no version repeats.
/// With `on_version`, a setup commit comes first and both writers expect its version; without,
/// both expect `Absent`.
fn conditional_puts(on_version: bool, outcomes: &Outcomes) {
    let engine = BTreeEngine::default();
    let store = Arc::new(open(&engine));
    // Peer 9 holds the setup pin (if any); writer i allocates to peer i.
    let before = on_version.then(|| {
        let r = store.commit(Batch::new().put(pin(1, "setup", 9), Precondition::Any)).unwrap();
        r.versions[0].clone().unwrap()
    });
    let handles: Vec<_> = (0..2u8)
        .map(|i| {
            let store = store.clone();
            let precondition = match &before {
                Some(v) => Precondition::Version(v.clone()),
                None => Precondition::Absent,
            };
            thread::spawn(move || {
                store.commit(Batch::new().put(pin(1, &format!("writer-{i}"), i), precondition))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one conditional put must win: {results:?}");
    let (winner, loser) = (winners[0], 1 - winners[0]);
    outcomes.saw(winner);
    let receipt = results[winner].as_ref().unwrap();
    let won = receipt.versions[0].clone().unwrap();
    assert_eq!(won, Version::from_u64(receipt.sequence));
    match &results[loser] {
        Err(Error::Conflict { current, op_index: 0, .. }) => {
            assert_eq!(current.as_ref(), Some(&won), "the loser sees the winner's version")
        }
        other => panic!("the loser must get a conflict, got {other:?}"),
    }
    if let Some(before) = &before {
        assert_ne!(before, &won, "a version repeated");
        assert!(before.to_u64() < won.to_u64(), "versions go up");
    }
    let stored = store.get(&cid(1)).unwrap();
    assert_eq!(stored.version, won);
    assert_eq!(stored.pin.options.name, format!("writer-{winner}"));
    assert_eq!(allocated_to(&store, winner as u8), vec![cid(1)]);
    assert!(allocated_to(&store, loser as u8).is_empty(), "the loser's view row was written");
    assert!(allocated_to(&store, 9).is_empty(), "the replaced pin's view row survived");
    let listed = store.list_page(None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, won);
}

/// Model 1a: two insert-if-absent puts of one CID.
#[test]
fn absent_puts_of_one_cid_have_one_winner() {
    let outcomes = Outcomes::new(&["writer 0 won", "writer 1 won"]);
    let seen = outcomes.clone();
    model("absent_puts_of_one_cid_have_one_winner", None, move || conditional_puts(false, &seen));
    outcomes.all_seen("absent_puts_of_one_cid_have_one_winner");
}

/// Model 1b: two puts of one CID conditional on the version both read.
#[test]
fn version_puts_of_one_cid_have_one_winner() {
    let outcomes = Outcomes::new(&["writer 0 won", "writer 1 won"]);
    let seen = outcomes.clone();
    model("version_puts_of_one_cid_have_one_winner", None, move || conditional_puts(true, &seen));
    outcomes.all_seen("version_puts_of_one_cid_have_one_winner");
}

/// Two CIDs on different stripes of the store's lock table, the lower stripe's first. Computed once, in the first
/// interleaving (a loom mutex can only be made inside a model), not in every one.
fn cids_on_two_stripes() -> (u8, u8) {
    static PAIR: std::sync::OnceLock<(u8, u8)> = std::sync::OnceLock::new();
    *PAIR.get_or_init(|| {
        let table = LockTable::new(STRIPES);
        let stripe = |n: u8| table.stripe(&cid(n).to_bytes());
        let other = (2..=255u8).find(|&n| stripe(n) != stripe(1)).expect("a CID on another stripe");
        if stripe(1) < stripe(other) {
            (1, other)
        } else {
            (other, 1)
        }
    })
}

/// Model 2: commits of two CIDs on different stripes (so they run in parallel and record their
/// sequences in different slots) while the main thread "crashes" at an arbitrary point: it reads
/// both pins, then reopens a store over the engine, which recovers the sequence from the slots
/// it sees. The receipts' sequences are distinct; the recovered sequence is above every version
/// read before the reopen (a pin the crash kept), and a reopen after both commits is above both
/// receipts.
#[test]
fn sequences_are_distinct_and_recovered_across_stripes() {
    let name = "sequences_are_distinct_and_recovered_across_stripes";
    let outcomes =
        Outcomes::new(&["the crash kept no pin", "the crash kept one pin", "it kept both"]);
    let seen_by = outcomes.clone();
    model(name, None, move || {
        let engine = BTreeEngine::default();
        let store = Arc::new(open(&engine));
        let (a, b) = cids_on_two_stripes();
        let handles: Vec<_> = [a, b]
            .into_iter()
            .map(|n| {
                let store = store.clone();
                thread::spawn(move || {
                    store.commit(Batch::new().put(Pin::new(cid(n)), Precondition::Absent)).unwrap()
                })
            })
            .collect();
        let seen: Vec<u64> = [a, b]
            .iter()
            .filter_map(|&n| store.get(&cid(n)).ok())
            .map(|v| v.version.to_u64().unwrap())
            .collect();
        let crashed = open(&engine);
        seen_by.saw(seen.len());
        let receipts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_ne!(receipts[0].sequence, receipts[1].sequence, "two commits shared a sequence");
        for r in &receipts {
            assert_eq!(r.versions[0], Some(Version::from_u64(r.sequence)));
        }
        // The reopened stores' next commit shows the sequence each recovered.
        let next = crashed.commit(Batch::new().put(Pin::new(cid(200)), Precondition::Any));
        let recovered = next.unwrap().sequence - 1;
        assert!(
            seen.iter().all(|&v| v <= recovered),
            "a reopen recovered sequence {recovered} but a kept pin has version {seen:?}"
        );
        let reopened = open(&engine);
        let next = reopened.commit(Batch::new().put(Pin::new(cid(201)), Precondition::Any));
        let recovered = next.unwrap().sequence - 1;
        assert!(
            receipts.iter().all(|r| r.sequence <= recovered),
            "a reopen recovered sequence {recovered} below a receipt"
        );
    });
    outcomes.all_seen(name);
}

/// Model 2b: the real form of `loom_locks.rs`'s slot rule. A two-CID batch and a one-CID batch
/// share the lower stripe, so both record their sequence in its slot: the slot must only grow,
/// so a reopen after both recovers a sequence at least as high as both receipts.
#[test]
fn a_shared_sequence_slot_only_grows() {
    let name = "a_shared_sequence_slot_only_grows";
    let outcomes = Outcomes::new(&["the two-CID batch went first", "the one-CID batch did"]);
    let seen = outcomes.clone();
    model(name, None, move || {
        let engine = BTreeEngine::default();
        let store = Arc::new(open(&engine));
        let (low, high) = cids_on_two_stripes();
        let handles: Vec<_> = [vec![high, low], vec![low]]
            .into_iter()
            .map(|cids| {
                let store = store.clone();
                thread::spawn(move || {
                    let batch = cids
                        .iter()
                        .fold(Batch::new(), |b, &n| b.put(Pin::new(cid(n)), Precondition::Any));
                    store.commit(batch).unwrap()
                })
            })
            .collect();
        let receipts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        seen.saw(usize::from(receipts[0].sequence > receipts[1].sequence));
        assert_ne!(receipts[0].sequence, receipts[1].sequence, "two commits shared a sequence");
        let reopened = open(&engine);
        let next = reopened.commit(Batch::new().put(Pin::new(cid(201)), Precondition::Any));
        let recovered = next.unwrap().sequence - 1;
        assert!(
            receipts.iter().all(|r| r.sequence <= recovered),
            "a reopen recovered sequence {recovered} below a receipt: a slot went backwards"
        );
    });
    outcomes.all_seen(name);
}

/// Model 3: a two-pin batch, both allocated to one peer and expiring, committed while the main
/// thread lists pins, the by-peer view and the expiry queue: each read sees the batch whole or
/// not at all, and a view read after a listing that saw the pins sees them too.
#[test]
fn listings_and_views_never_see_half_a_batch() {
    let name = "listings_and_views_never_see_half_a_batch";
    let outcomes = Outcomes::new(&["the listing missed the batch", "it saw the batch"]);
    let seen = outcomes.clone();
    model(name, None, move || {
        let engine = BTreeEngine::default();
        let store = Arc::new(open(&engine));
        let expire_at = Utc::now() + Duration::days(1);
        let writer = {
            let store = store.clone();
            thread::spawn(move || {
                let mut batch = Batch::new();
                for n in 1..=2 {
                    let mut p = pin(n, "batch", 7);
                    p.options.expire_at = Some(expire_at);
                    batch = batch.put(p, Precondition::Absent);
                }
                store.commit(batch).unwrap()
            })
        };
        let listed = store.list_page(None, 10).unwrap();
        assert!(matches!(listed.len(), 0 | 2), "a listing saw {} of 2 pins", listed.len());
        seen.saw(listed.len() / 2);
        if listed.len() == 2 {
            assert_eq!(listed[0].version, listed[1].version, "one batch, one version");
        }
        let allocated = allocated_to(&store, 7).len();
        assert!(allocated == 0 || allocated == 2, "the by-peer view saw {allocated} of 2 pins");
        assert!(allocated >= listed.len(), "the view lagged behind the pins");
        let (expiring, _, _) =
            store.expiry_page(expire_at + Duration::seconds(1), None, 10).unwrap();
        assert!(matches!(expiring.len(), 0 | 2), "the expiry queue saw half a batch");
        assert!(expiring.len() >= allocated, "the expiry queue lagged behind the by-peer view");
        let receipt = writer.join().unwrap();
        let listed = store.list_page(None, 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|e| e.version == Version::from_u64(receipt.sequence)));
        assert_eq!(allocated_to(&store, 7).len(), 2);
    });
    outcomes.all_seen(name);
}

/// Stages `count` objects of `set`, each holding `fill`.
fn stage(store: &Store, set: &SetName, count: u8, fill: u8) -> Vec<StagedObject> {
    (0..count)
        .map(|j| {
            let name = ObjectName::new(format!("part-{j}")).unwrap();
            store.stage(set, &name, Bytes::from(vec![fill; 4])).unwrap()
        })
        .collect()
}

/// Model 4a: two finalizers of one set, each with its own staged objects. One wins, the other
/// gets `AlreadyExists` (the contract's first-writer-wins answer); a concurrent reader sees the
/// set whole or not at all; the published set is the winner's, and the loser's staging is left
/// staged (not published, not lost).
#[test]
fn finalizers_of_one_set_have_one_winner() {
    let name = "finalizers_of_one_set_have_one_winner";
    let outcomes = Outcomes::new(&["finalizer 0 won", "finalizer 1 won"]);
    let seen = outcomes.clone();
    model(name, None, move || {
        let engine = BTreeEngine::default();
        let store = Arc::new(open(&engine));
        let set = SetName::new("sales/day=1").unwrap();
        let handles: Vec<_> = (0..2u8)
            .map(|i| {
                let store = store.clone();
                let set = set.clone();
                let staged = stage(&store, &set, 2, i);
                thread::spawn(move || store.finalize(&set, &staged, Bytes::from(vec![i])))
            })
            .collect();
        let listed = store.objects_page("sales/", None, 10).unwrap().len();
        assert!(listed == 0 || listed == 2, "a listing saw {listed} objects of a 2-object set");
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one finalizer must win: {results:?}");
        let winner = winners[0];
        seen.saw(winner);
        assert!(
            matches!(results[1 - winner], Err(Error::AlreadyExists { .. })),
            "the loser must get AlreadyExists, got {:?}",
            results[1 - winner]
        );
        let published = store.publication(&set).unwrap();
        assert_eq!(published.manifest, Bytes::from(vec![winner as u8]));
        assert_eq!(published.objects.len(), 2);
        for object in &published.objects {
            assert_eq!(store.get_object(&object.key).unwrap(), Bytes::from(vec![winner as u8; 4]));
        }
        // The loser's two objects are still staged, with their bytes: four blobs in all.
        assert_eq!(engine.scan(Table::Staged, b"", None, 10).unwrap().len(), 2);
        assert_eq!(engine.scan(Table::Blobs, b"", None, 10).unwrap().len(), 4);
    });
    outcomes.all_seen(name);
}

/// A finalize races a remover of its staged objects: a sweep whose cutoff covers them, or an
/// abort of them. Either the finalize wins (the set is published, every object readable, the
/// remover removed nothing) or the remover does (both objects and their bytes gone, the sweep
/// counting them, the finalize refused with `NotFound`); never both, and no object is left
/// half-way (a staged record, a blob or a published record without the rest).
fn finalize_racing_removal(sweep: bool, outcomes: &Outcomes) {
    let engine = BTreeEngine::default();
    let store = Arc::new(open(&engine));
    let set = SetName::new("sales/day=2").unwrap();
    let staged = stage(&store, &set, 2, 5);
    let finalizer = {
        let (store, set, staged) = (store.clone(), set.clone(), staged.clone());
        thread::spawn(move || store.finalize(&set, &staged, Bytes::from_static(b"m")))
    };
    let swept = if sweep {
        Some(store.sweep(Utc::now() + Duration::days(1)).unwrap())
    } else {
        store.abort(&staged).unwrap();
        None
    };
    let finalized = finalizer.join().unwrap();
    let blobs = engine.scan(Table::Blobs, b"", None, 10).unwrap().len();
    let staged_left = engine.scan(Table::Staged, b"", None, 10).unwrap().len();
    assert_eq!(staged_left, 0, "a staged record outlived both the finalize and the removal");
    outcomes.saw(usize::from(finalized.is_err()));
    match finalized {
        Ok(publication) => {
            if let Some(swept) = swept {
                assert_eq!(swept.removed, 0, "the sweep removed an object the finalize published");
            }
            assert_eq!(blobs, 2, "a published object lost its bytes");
            for object in &publication.objects {
                assert_eq!(store.get_object(&object.key).unwrap(), Bytes::from(vec![5; 4]));
            }
        }
        Err(Error::NotFound { .. }) => {
            if let Some(swept) = swept {
                assert_eq!((swept.removed, swept.bytes), (2, 8), "the sweep lost count");
            }
            assert_eq!(blobs, 0, "a removed object's bytes were left behind");
            assert!(store.publication(&set).is_err());
            assert!(store.objects_page("", None, 10).unwrap().is_empty());
        }
        Err(other) => panic!("finalize after a removal must be NotFound, got {other}"),
    }
}

/// Model 4b: a finalize races a sweep (see [`finalize_racing_removal`]).
#[test]
fn finalize_and_sweep_never_share_an_object() {
    let name = "finalize_and_sweep_never_share_an_object";
    let outcomes = Outcomes::new(&["the finalize won", "the sweep won"]);
    let seen = outcomes.clone();
    model(name, None, move || finalize_racing_removal(true, &seen));
    outcomes.all_seen(name);
}

/// Model 4c: a finalize races an abort of the same staged objects (see
/// [`finalize_racing_removal`]): an abort never deletes the bytes a published object points at.
#[test]
fn finalize_and_abort_never_share_an_object() {
    let name = "finalize_and_abort_never_share_an_object";
    let outcomes = Outcomes::new(&["the finalize won", "the abort won"]);
    let seen = outcomes.clone();
    model(name, None, move || finalize_racing_removal(false, &seen));
    outcomes.all_seen(name);
}

/// Model 5: two commits of different CIDs under one armed fault injector that crashes the
/// first commit to reach `COMMIT_WRITTEN`; the "process" is then dead, so the other commit fails
/// at its next crash point too. After a reopen, a commit that crashed at `COMMIT_VALIDATED` left
/// nothing, one that crashed at `COMMIT_WRITTEN` (or returned) is there, and the recovered
/// sequence is above every kept pin's version.
#[test]
fn a_crash_keeps_exactly_the_written_commits() {
    let name = "a_crash_keeps_exactly_the_written_commits";
    let outcomes = Outcomes::new(&[
        "the other commit crashed before its write",
        "both crashed after their writes",
    ]);
    let seen = outcomes.clone();
    model(name, None, move || {
        let engine = BTreeEngine::default();
        let store = Arc::new(
            KvStore::open(engine.clone(), FaultInjector::crash_at(COMMIT_WRITTEN)).unwrap(),
        );
        let (a, b) = cids_on_two_stripes();
        let handles: Vec<_> = [a, b]
            .into_iter()
            .map(|n| {
                let store = store.clone();
                thread::spawn(move || {
                    store.commit(Batch::new().put(Pin::new(cid(n)), Precondition::Absent))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        drop(store);
        let reopened = open(&engine);
        let mut kept = Vec::new();
        for (&n, result) in [a, b].iter().zip(&results) {
            let present = reopened.get(&cid(n)).ok();
            match result {
                Err(Error::Crashed { point }) if *point == COMMIT_VALIDATED => {
                    assert!(present.is_none(), "a commit crashed before its write left a pin")
                }
                Err(Error::Crashed { point }) if *point == COMMIT_WRITTEN => {
                    kept.push(present.expect("a commit crashed after its write lost its pin"))
                }
                Ok(receipt) => {
                    let present = present.expect("a returned commit lost its pin");
                    assert_eq!(present.version, Version::from_u64(receipt.sequence));
                    kept.push(present);
                }
                Err(other) => panic!("unexpected commit error {other}"),
            }
        }
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Crashed { point }) if *point == COMMIT_WRITTEN)),
            "the armed point never fired: {results:?}"
        );
        seen.saw(kept.len() - 1);
        let next = reopened.commit(Batch::new().put(Pin::new(cid(200)), Precondition::Any));
        let recovered = next.unwrap().sequence - 1;
        for v in &kept {
            assert!(v.version.to_u64().unwrap() <= recovered, "recovered {recovered} below {v:?}");
        }
    });
    outcomes.all_seen(name);
}
