//! loom models of the KV layer's lock table (`pinvault_core::kv::LockTable`) on its own: the
//! isolation and sequence-slot reasoning that `kv::store` relies on, explored under every
//! interleaving. The slot rule is modelled here with atomics standing in for the store;
//! `loom_kv.rs` runs the real `KvStore` commit,
//! finalize and sweep paths, including the same shared-slot race.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p pinvault-core --test loom_locks --release`
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom::thread;
use pinvault_core::kv::LockTable;

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

/// Two keys that land on different stripes of a two-stripe table.
fn two_keys(table: &LockTable) -> (Vec<u8>, Vec<u8>) {
    let a = b"key-0".to_vec();
    let b = (1..64u8)
        .map(|i| format!("key-{i}").into_bytes())
        .find(|k| table.stripe(k) != table.stripe(&a))
        .expect("some key lands on the other stripe");
    (a, b)
}

/// Two batches lock the same two keys, named in opposite orders: no deadlock (loom fails the
/// model on one), and each batch's read-check-write of both counters is isolated, so no
/// increment is lost.
#[test]
fn opposite_key_orders_neither_deadlock_nor_lose_updates() {
    model("opposite_key_orders_neither_deadlock_nor_lose_updates", || {
        let table = Arc::new(LockTable::new(2));
        let (a, b) = two_keys(&table);
        let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let handles: Vec<_> = [(a.clone(), b.clone()), (b, a)]
            .into_iter()
            .map(|(first, second)| {
                let (table, counters) = (table.clone(), counters.clone());
                thread::spawn(move || {
                    let _held = table.lock([first.as_slice(), second.as_slice()]);
                    for c in counters.iter() {
                        // A separate load and store: only the lock keeps this from losing one.
                        let seen = c.load(Ordering::Relaxed);
                        c.store(seen + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(counters[0].load(Ordering::Relaxed), 2);
        assert_eq!(counters[1].load(Ordering::Relaxed), 2);
    });
}

/// The recovery rule of the commit sequence: each commit allocates its sequence while holding
/// its stripes and records it in the slot of its lowest stripe. A slot must only ever grow
/// (so the largest slot after a crash bounds every committed sequence): here a two-key batch
/// and a one-key batch share the lower stripe's slot. (Three threads take minutes to explore.)
#[test]
fn sequence_slots_only_grow() {
    model("sequence_slots_only_grow", || {
        let table = Arc::new(LockTable::new(2));
        let (a, b) = two_keys(&table);
        let sequence = Arc::new(AtomicU64::new(0));
        let slots = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (low, high) = if table.stripe(&a) < table.stripe(&b) { (a, b) } else { (b, a) };
        let batches = [vec![high, low.clone()], vec![low]];
        let handles: Vec<_> = batches
            .into_iter()
            .map(|keys| {
                let (table, sequence, slots) = (table.clone(), sequence.clone(), slots.clone());
                thread::spawn(move || {
                    let held = table.lock(keys.iter().map(Vec::as_slice));
                    let seq = sequence.fetch_add(1, Ordering::SeqCst) + 1;
                    let slot = &slots[held.first];
                    assert!(slot.load(Ordering::SeqCst) < seq, "a slot went backwards");
                    slot.store(seq, Ordering::SeqCst);
                    seq
                })
            })
            .collect();
        let committed: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let recovered = slots.iter().map(|s| s.load(Ordering::SeqCst)).max().unwrap();
        assert_eq!(recovered, *committed.iter().max().unwrap());
    });
}
