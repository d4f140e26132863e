//! Races between concurrent writers: compare-and-swap increments that end at an exact count
//! with distinct versions, exactly one winner among inserters, conditional deleters,
//! conditional batches and finalizers of one set.
//!
//! As `object_store`'s `put_opts` check does, each race runs real tasks on a multi-thread
//! runtime against one shared instance.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use pinvault_core::{Batch, Error, PinState, Precondition, Version};

use crate::batch::multi_op_declared;
use crate::fixtures::{cid, full_pin, renamed, set};
use crate::harness::{fresh, must, outcome, Harness};
use crate::preconditions::conditional_writes_declared;
use crate::publication::{assert_published, publication_declared, stage_all};

const WRITERS: usize = 8;
const INCREMENTS: usize = 25;

async fn increment(
    state: Arc<dyn PinState>,
    key: pinvault_core::Cid,
    times: usize,
) -> (Vec<Version>, Vec<u64>, usize) {
    let mut versions = Vec::new();
    let mut written = Vec::new();
    let mut conflicts = 0;
    for _ in 0..times {
        loop {
            let current = must(state.get(&key).await, "get");
            let count: u64 =
                current.pin.options.metadata["counter"].parse().expect("counter is a number");
            let mut next = current.pin.clone();
            next.options.metadata.insert("counter".into(), (count + 1).to_string());
            match state.put(next, Precondition::Version(current.version)).await {
                Ok(v) => {
                    versions.push(v);
                    written.push(count + 1);
                    break;
                }
                Err(Error::Conflict { .. }) => conflicts += 1,
                Err(e) => panic!("a CAS increment failed with {e}, not a conflict"),
            }
        }
    }
    (versions, written, conflicts)
}

/// N tasks × M read-then-`put(Version)` increments of one counter, retrying on conflict, end
/// at exactly N×M; every successful put got a distinct version and wrote a distinct value.
pub async fn cas_increments_reach_exact_count(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "races::cas_increments_reach_exact_count").await {
        return;
    }
    let mut pin = full_pin(1);
    pin.options.metadata.insert("counter".into(), "0".into());
    let initial = must(s.state.put(pin.clone(), Precondition::Absent).await, "put");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(increment(s.state.clone(), pin.cid, INCREMENTS)))
        .collect();
    let mut versions = HashSet::from([initial]);
    let mut values = HashSet::new();
    let mut conflicts = 0;
    for t in tasks {
        let (vs, written, c) = t.await.expect("incrementing task panicked");
        conflicts += c;
        for v in vs {
            assert!(
                versions.insert(v.clone()),
                "two successful conditional writes received version {v}: a lost update"
            );
        }
        for w in written {
            assert!(values.insert(w), "two successful increments both wrote {w}: a lost update");
        }
    }
    let total = (WRITERS * INCREMENTS) as u64;
    let last = must(s.state.get(&pin.cid).await, "get");
    assert_eq!(
        last.pin.options.metadata["counter"],
        total.to_string(),
        "the counter must end at exactly N×M"
    );
    assert_eq!(
        values,
        (1..=total).collect(),
        "the increments must have written 1..=N×M, each once"
    );
    eprintln!("races::cas_increments_reach_exact_count: {total} increments, {conflicts} conflicts retried");
}

/// Of N concurrent `put(Absent)` of one new pin, exactly one succeeds; the others conflict
/// with the winner's version, and the stored pin is the winner's.
pub async fn concurrent_inserts_have_one_winner(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "races::concurrent_inserts_have_one_winner").await {
        return;
    }
    let base = full_pin(2);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let state = s.state.clone();
            let pin = renamed(base.clone(), &format!("writer-{i}"));
            tokio::spawn(async move { state.put(pin, Precondition::Absent).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task panicked") {
            Ok(v) => winners.push((i, v)),
            Err(Error::Conflict { current, .. }) => losers.push(current),
            Err(e) => panic!("a racing insert failed with {e}, not a conflict"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {WRITERS} racing inserts must win, got {}",
        winners.len()
    );
    let (winner, version) = winners.pop().expect("one winner");
    for current in losers {
        assert!(current.is_some(), "a losing insert must see the pin as present");
    }
    let got = must(s.state.get(&base.cid).await, "get");
    assert_eq!(
        got.pin.options.name,
        format!("writer-{winner}"),
        "the stored pin must be the winner's"
    );
    assert_eq!(got.version, version);
}

/// Of N concurrent `remove(Version(v))` of one pin, exactly one succeeds.
pub async fn concurrent_conditional_removes_have_one_winner(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "races::concurrent_conditional_removes_have_one_winner")
        .await
    {
        return;
    }
    let pin = full_pin(3);
    let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let state = s.state.clone();
            let v = v.clone();
            tokio::spawn(async move { state.remove(&pin.cid, Precondition::Version(v)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(outcome(&t.await.expect("task panicked")));
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == "Ok").count(),
        1,
        "exactly one conditional remove must win: {outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "Conflict").count(),
        WRITERS - 1,
        "the others must conflict: {outcomes:?}"
    );
    assert!(!must(s.state.has(&pin.cid).await, "has"));
}

/// Of N concurrent conditional batches that each update one shared pin (by version) and
/// insert their own pin, exactly one commits; the losers' own pins were never inserted.
pub async fn concurrent_conditional_batches_have_one_winner(h: &dyn Harness) {
    let s = fresh(h).await;
    if !multi_op_declared(&s, "races::concurrent_conditional_batches_have_one_winner", true).await {
        return;
    }
    let shared = full_pin(4);
    let v = must(s.state.put(shared.clone(), Precondition::Any).await, "put");
    let tasks: Vec<_> = (0..WRITERS as u64)
        .map(|i| {
            let state = s.state.clone();
            let batch = Batch::new()
                .put(
                    renamed(shared.clone(), &format!("batch-{i}")),
                    Precondition::Version(v.clone()),
                )
                .put(full_pin(100 + i), Precondition::Absent);
            tokio::spawn(async move { state.commit(batch).await })
        })
        .collect();
    let mut winner = None;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task panicked") {
            Ok(_) => {
                assert!(winner.is_none(), "two conditional batches on one version both committed");
                winner = Some(i as u64);
            }
            Err(Error::Conflict { op_index, .. }) => {
                assert_eq!(op_index, 0, "the losers conflict on the shared pin (op 0)")
            }
            Err(e) => panic!("a racing batch failed with {e}, not a conflict"),
        }
    }
    let winner = winner.expect("one racing batch must commit");
    assert_eq!(
        must(s.state.get(&shared.cid).await, "get").pin.options.name,
        format!("batch-{winner}")
    );
    for i in 0..WRITERS as u64 {
        assert_eq!(
            must(s.state.has(&cid(100 + i)).await, "has"),
            i == winner,
            "batch {i}'s insert must be visible only if batch {i} won (winner {winner})"
        );
    }
}

/// Of N concurrent finalizers of one set, each with its own staged objects, exactly one wins;
/// the others get `AlreadyExists`, and the published content is the winner's whole set.
pub async fn concurrent_finalizers_have_one_winner(h: &dyn Harness) {
    let s = fresh(h).await;
    if !publication_declared(&s, "races::concurrent_finalizers_have_one_winner").await {
        return;
    }
    const NAMES: [&str; 3] = ["a.parquet", "b.parquet", "c.parquet"];
    let mut staged = Vec::new();
    for w in 0..WRITERS {
        staged.push(stage_all(&*s.publisher, "contested", &NAMES, &format!("writer-{w}")).await);
    }
    let tasks: Vec<_> = staged
        .iter()
        .enumerate()
        .map(|(w, objects)| {
            let publisher = s.publisher.clone();
            let objects = objects.clone();
            tokio::spawn(async move {
                publisher
                    .finalize(
                        &set("contested"),
                        &objects,
                        Bytes::from(format!("manifest of writer-{w}")),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (w, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task panicked") {
            Ok(_) => winners.push(w),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => panic!("a racing finalize failed with {e}, not AlreadyExists"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {WRITERS} racing finalizers must win: {winners:?}"
    );
    let w = winners[0];
    assert_published(
        &*s.publisher,
        "contested",
        &NAMES,
        &format!("writer-{w}"),
        format!("manifest of writer-{w}").as_bytes(),
        "the winner's set",
    )
    .await;
    for (i, objects) in staged.iter().enumerate() {
        if i != w {
            must(s.publisher.abort(objects).await, "abort of a loser's staged objects");
        }
    }
    let swept =
        must(s.publisher.sweep(chrono::Utc::now() + chrono::Duration::hours(1)).await, "sweep");
    assert_eq!(swept.removed, 0, "after the losers abort, nothing stays staged");
}
