//! Batches: all or nothing, the failing op named, receipts (strictly increasing sequence, the
//! batch's digest, op count, a version per op), views updated with the pins, and input checks.
//!
//! A backend without `atomic_batch` must refuse multi-op batches, and one without
//! `conditional_batch` must refuse multi-op batches carrying preconditions, with `Unsupported`.

use std::collections::HashSet;

use futures::StreamExt;
use pinvault_core::{Batch, Error, Pin, Precondition};

use crate::fixtures::{at, cid, full_pin, peer, renamed};
use crate::harness::{
    assert_refused, collect, eventually, expect_err, fresh, must, Harness, TestStore,
};
use crate::preconditions::assert_conflict;

/// Whether the store accepts multi-op batches (conditional ones when `conditional`); when it
/// does not declare it, asserts the refusal and returns false.
pub(crate) async fn multi_op_declared(s: &TestStore, check: &str, conditional: bool) -> bool {
    let caps = s.pin_capabilities();
    let (flag, declared) = if conditional {
        ("conditional_batch", caps.atomic_batch && caps.conditional_batch)
    } else {
        ("atomic_batch", caps.atomic_batch)
    };
    if declared {
        return true;
    }
    let pre = if conditional { Precondition::Absent } else { Precondition::Any };
    let probe = Batch::new().put(full_pin(900), pre.clone()).put(full_pin(901), pre);
    assert_refused(s.state.commit(probe).await, check, flag);
    false
}

/// Every put and remove of a committed batch is visible afterwards.
pub async fn batch_applies_every_op(h: &dyn Harness) {
    let s = fresh(h).await;
    if !multi_op_declared(&s, "batch::batch_applies_every_op", false).await {
        return;
    }
    let old = full_pin(1);
    must(s.state.put(old.clone(), Precondition::Any).await, "put");
    let new: Vec<Pin> = (2..6).map(full_pin).collect();
    let mut batch = Batch::new().remove(old.cid, Precondition::Any);
    for p in &new {
        batch = batch.put(p.clone(), Precondition::Any);
    }
    let receipt = must(s.state.commit(batch).await, "commit");
    expect_err(s.state.get(&old.cid).await, "NotFound", "the batch's remove");
    for (i, p) in new.iter().enumerate() {
        let got = must(s.state.get(&p.cid).await, "get");
        assert_eq!(&got.pin, p, "the batch's put {i} must be visible");
        assert_eq!(
            Some(got.version),
            receipt.versions[i + 1],
            "the receipt's version of op {} must be the stored one",
            i + 1
        );
    }
}

/// A batch whose op in the middle fails its precondition applies nothing: the conflict names
/// that op, every pin keeps its content and version, and the views do not change.
pub async fn failing_op_in_middle_applies_nothing(h: &dyn Harness) {
    let s = fresh(h).await;
    if !multi_op_declared(&s, "batch::failing_op_in_middle_applies_nothing", true).await {
        return;
    }
    let existing: Vec<Pin> = (10..13).map(full_pin).collect();
    let mut versions = Vec::new();
    for p in &existing {
        versions.push(must(s.state.put(p.clone(), Precondition::Any).await, "put"));
    }
    let newcomer = full_pin(20);
    let mut moved = renamed(existing[0].clone(), "moved");
    moved.allocations = vec![peer(50)];
    let batch = Batch::new()
        .put(newcomer.clone(), Precondition::Absent)
        .put(moved, Precondition::Version(versions[0].clone()))
        .put(renamed(existing[1].clone(), "conflicting"), Precondition::Absent)
        .remove(existing[2].cid, Precondition::Version(versions[2].clone()))
        .put(full_pin(21), Precondition::Any);
    let e = match s.state.commit(batch).await {
        Err(e) => e,
        Ok(r) => panic!("a batch with a failing precondition must not commit; got {r:?}"),
    };
    assert_conflict(
        e,
        &existing[1].cid,
        Some(&versions[1]),
        2,
        "batch op 2 (put Absent of an existing pin)",
    );
    for (p, v) in existing.iter().zip(&versions) {
        let got = must(s.state.get(&p.cid).await, "get");
        assert_eq!((&got.pin, &got.version), (p, v), "a failed batch changed {}", p.cid);
    }
    for c in [newcomer.cid, cid(21)] {
        assert!(!must(s.state.has(&c).await, "has"), "a failed batch inserted {c}");
    }
    let by_new_peer = collect(s.state.pins_by_peer(&peer(50)), "pins_by_peer").await;
    assert!(by_new_peer.is_empty(), "a failed batch changed the by-peer view: {by_new_peer:?}");
    let placement = must(s.state.placement(&existing[0].cid).await, "placement");
    assert_eq!(
        placement.desired,
        existing[0].allocations.iter().cloned().collect(),
        "a failed batch changed placements"
    );
}

/// Receipt sequences strictly increase across the commits of a store (single puts included).
pub async fn receipt_sequences_strictly_increase(h: &dyn Harness) {
    let s = fresh(h).await;
    let mut last = None;
    for n in 0..20 {
        let batch = Batch::new().put(full_pin(n), Precondition::Any);
        let r = must(s.state.commit(batch).await, "commit");
        if let Some(prev) = last {
            assert!(
                r.sequence > prev,
                "commit {n}: sequence {} does not exceed the previous {prev}",
                r.sequence
            );
        }
        last = Some(r.sequence);
    }
}

/// A receipt carries the batch's digest, its op count, and one version per op (`None` for
/// removes), and those versions are the ones stored.
pub async fn receipt_describes_the_batch(h: &dyn Harness) {
    let s = fresh(h).await;
    let multi = multi_op_declared(&s, "batch::receipt_describes_the_batch", false).await;
    let pre = full_pin(31);
    must(s.state.put(pre.clone(), Precondition::Any).await, "put");
    let batch = if multi {
        Batch::new()
            .put(full_pin(30), Precondition::Any)
            .remove(pre.cid, Precondition::Any)
            .put(full_pin(32), Precondition::Any)
    } else {
        Batch::new().put(full_pin(30), Precondition::Any)
    };
    let digest = batch.digest();
    let len = batch.len();
    let r = must(s.state.commit(batch.clone()).await, "commit");
    assert_eq!(r.digest, digest, "the receipt must carry Batch::digest() of the committed batch");
    assert_eq!(r.ops, len, "the receipt must count the batch's ops");
    assert_eq!(r.versions.len(), len, "the receipt must carry one version slot per op");
    for (i, op) in batch.ops.iter().enumerate() {
        match op {
            pinvault_core::BatchOp::Put { pin, .. } => {
                let got = must(s.state.get(&pin.cid).await, "get");
                assert_eq!(
                    r.versions[i].as_ref(),
                    Some(&got.version),
                    "receipt version of put op {i}"
                );
            }
            pinvault_core::BatchOp::Remove { .. } => {
                assert_eq!(r.versions[i], None, "a remove's receipt version must be None (op {i})")
            }
        }
    }
}

/// A batch changes the by-peer, expiry and placement views together with the pins.
pub async fn batch_updates_views_with_pins(h: &dyn Harness) {
    let s = fresh(h).await;
    if !multi_op_declared(&s, "batch::batch_updates_views_with_pins", false).await {
        return;
    }
    let atomic = s.pin_capabilities().atomic_views;
    let gone = full_pin(40);
    must(s.state.put(gone.clone(), Precondition::Any).await, "put");
    let mut arrived = full_pin(41);
    arrived.allocations = vec![peer(60)];
    arrived.options.expire_at = Some(at(-5_000));
    let batch =
        Batch::new().remove(gone.cid, Precondition::Any).put(arrived.clone(), Precondition::Any);
    must(s.state.commit(batch).await, "commit");
    let state = &*s.state;
    eventually(atomic, "by-peer view after a batch", || async {
        collect(state.pins_by_peer(&peer(60)), "pins_by_peer").await == vec![arrived.cid]
    })
    .await;
    eventually(atomic, "expiry view after a batch", || async {
        let due = collect(state.expiring_before(at(0)), "expiring_before").await;
        due.iter().map(|e| e.cid).collect::<Vec<_>>() == vec![arrived.cid]
    })
    .await;
    eventually(atomic, "placements after a batch", || async {
        matches!(state.placement(&gone.cid).await, Err(Error::NotFound { .. }))
    })
    .await;
    let gone_peers: Vec<_> = gone.allocations.clone();
    for p in gone_peers {
        let listed = collect(s.state.pins_by_peer(&p), "pins_by_peer").await;
        assert!(!listed.contains(&gone.cid), "a removed pin stayed in the view of {p}");
    }
}

/// A CID twice in one batch is refused as `InvalidInput`; nothing is applied.
pub async fn duplicate_cid_in_batch_is_invalid(h: &dyn Harness) {
    let s = fresh(h).await;
    let a = full_pin(50);
    let batch = Batch::new()
        .put(full_pin(51), Precondition::Any)
        .put(a.clone(), Precondition::Any)
        .remove(a.cid, Precondition::Any);
    expect_err(s.state.commit(batch).await, "InvalidInput", "a batch naming one CID twice");
    for c in [a.cid, cid(51)] {
        assert!(!must(s.state.has(&c).await, "has"), "a refused batch applied an op on {c}");
    }
}

/// An empty batch is refused as `InvalidInput`.
pub async fn empty_batch_is_invalid(h: &dyn Harness) {
    let s = fresh(h).await;
    expect_err(s.state.commit(Batch::new()).await, "InvalidInput", "an empty batch");
}

/// An invalid pin anywhere in a batch refuses the whole batch, naming the op.
pub async fn invalid_pin_in_batch_applies_nothing(h: &dyn Harness) {
    let s = fresh(h).await;
    let mut bad = full_pin(62);
    bad.options.expire_at = chrono::DateTime::from_timestamp(253_402_300_800, 0); // year 10000
    let batch = Batch::new()
        .put(full_pin(60), Precondition::Any)
        .put(full_pin(61), Precondition::Any)
        .put(bad, Precondition::Any);
    let e =
        expect_err(s.state.commit(batch).await, "InvalidInput", "a batch holding an invalid pin");
    assert!(e.to_string().contains("op 2"), "the error must name the invalid op (op 2): {e}");
    for n in 60..63 {
        assert!(
            !must(s.state.has(&cid(n)).await, "has"),
            "a refused batch applied op on {}",
            cid(n)
        );
    }
}

/// A batch above `max_batch_ops` is refused as `InvalidInput`; without a declared limit, a
/// batch of 1000 ops commits whole.
pub async fn batch_size_limit_is_enforced(h: &dyn Harness) {
    let s = fresh(h).await;
    if !multi_op_declared(&s, "batch::batch_size_limit_is_enforced", false).await {
        return;
    }
    let limit = s.pin_capabilities().max_batch_ops;
    let n = limit.map_or(1000, |m| m + 1) as u64;
    let mut batch = Batch::new();
    for i in 0..n {
        batch = batch.put(full_pin(1000 + i), Precondition::Any);
    }
    match limit {
        Some(max) => {
            expect_err(
                s.state.commit(batch).await,
                "InvalidInput",
                &format!("a batch of {n} ops (limit {max})"),
            );
            assert!(
                !must(s.state.has(&cid(1000)).await, "has"),
                "an oversized batch applied its first op"
            );
        }
        None => {
            let r = must(s.state.commit(batch).await, "commit of 1000 ops");
            assert_eq!(r.ops, 1000);
            let listed = s.state.list(None).count().await;
            assert_eq!(listed, 1000, "a 1000-op batch must store 1000 pins");
        }
    }
}

/// Concurrent commits get distinct sequences, and each writer sees its own increase.
pub async fn concurrent_commits_get_distinct_sequences(h: &dyn Harness) {
    let s = fresh(h).await;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let state = s.state.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10u64 {
                let r =
                    state.commit(Batch::new().put(full_pin(t * 100 + i), Precondition::Any)).await;
                seqs.push(must(r, "commit").sequence);
            }
            seqs
        }));
    }
    let mut all = HashSet::new();
    for (t, task) in tasks.into_iter().enumerate() {
        let seqs = task.await.expect("writer task panicked");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "writer {t} saw sequences go backwards: {seqs:?}"
        );
        for q in seqs {
            assert!(all.insert(q), "two commits received sequence {q}");
        }
    }
}
