//! Listing: every pin exactly once, a stable order, cursors that resume just after an entry,
//! paging through thousands of pins, and no duplicate or missing untouched pin while other
//! keys are written during the listing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use pinvault_core::{Batch, Cid, ListEntry, PinState, Precondition};

use crate::fixtures::{cid, full_pin, plain_pin};
use crate::harness::{collect, fresh, must, Harness};

/// Stores pins `first..first + count` (full pins), in batches when the backend allows.
pub(crate) async fn fill(state: &dyn PinState, first: u64, count: u64) {
    let caps = state.pin_capabilities();
    let chunk =
        if caps.atomic_batch { caps.max_batch_ops.unwrap_or(250).clamp(1, 250) as u64 } else { 1 };
    let mut n = first;
    while n < first + count {
        let end = (n + chunk).min(first + count);
        let mut batch = Batch::new();
        for i in n..end {
            batch = batch.put(full_pin(i), Precondition::Any);
        }
        must(state.commit(batch).await, "commit while filling the store");
        n = end;
    }
}

async fn listing(state: &dyn PinState) -> Vec<ListEntry> {
    collect(state.list(None), "list").await
}

fn cids_of(entries: &[ListEntry]) -> Vec<Cid> {
    entries.iter().map(|e| e.pin.cid).collect()
}

/// An empty store lists nothing.
pub async fn empty_store_lists_nothing(h: &dyn Harness) {
    let s = fresh(h).await;
    assert!(listing(&*s.state).await.is_empty(), "a fresh store must list no pins");
}

/// A listing yields every stored pin once, with its stored content and version.
pub async fn listing_yields_every_pin_once(h: &dyn Harness) {
    let s = fresh(h).await;
    let mut expected = BTreeMap::new();
    for n in 0..40 {
        let pin = if n % 5 == 0 { plain_pin(n) } else { full_pin(n) };
        let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
        expected.insert(pin.cid.to_bytes(), (pin, v));
    }
    must(s.state.remove(&cid(3), Precondition::Any).await, "remove");
    expected.remove(&cid(3).to_bytes());
    let entries = listing(&*s.state).await;
    assert_eq!(entries.len(), expected.len(), "the listing must hold every pin once");
    for e in &entries {
        let Some((pin, v)) = expected.get(&e.pin.cid.to_bytes()) else {
            panic!("the listing yielded {} which is not stored", e.pin.cid)
        };
        assert_eq!(&e.pin, pin, "a listed pin must equal the stored one");
        assert_eq!(&e.version, v, "a listed entry must carry the stored version");
    }
    let unique: HashSet<_> = cids_of(&entries).into_iter().collect();
    assert_eq!(unique.len(), entries.len(), "the listing yielded a pin twice");
}

/// Two listings of an unchanged store are identical (a stable order).
pub async fn listing_order_is_stable(h: &dyn Harness) {
    let s = fresh(h).await;
    fill(&*s.state, 0, 120).await;
    let first = listing(&*s.state).await;
    let second = listing(&*s.state).await;
    assert_eq!(cids_of(&first), cids_of(&second), "two listings of an unchanged store differ");
    assert_eq!(first, second, "two listings of an unchanged store differ in versions or cursors");
}

/// `list(Some(cursor))` yields exactly the entries after the one carrying `cursor`.
pub async fn cursor_resumes_just_after_entry(h: &dyn Harness) {
    let s = fresh(h).await;
    fill(&*s.state, 0, 75).await;
    let all = listing(&*s.state).await;
    assert_eq!(all.len(), 75);
    for k in [0usize, 1, 36, 73, 74] {
        let rest = collect(s.state.list(Some(all[k].cursor.clone())), "list from cursor").await;
        assert_eq!(
            cids_of(&rest),
            cids_of(&all[k + 1..]),
            "resuming after entry {k} must yield exactly the remaining {} entries",
            all.len() - k - 1
        );
    }
}

/// A cursor stays usable after its own pin is removed: the resumed listing yields exactly the
/// pins after it.
pub async fn cursor_survives_removal_of_its_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    fill(&*s.state, 0, 30).await;
    let all = listing(&*s.state).await;
    let k = 12;
    must(s.state.remove(&all[k].pin.cid, Precondition::Any).await, "remove");
    let rest = collect(s.state.list(Some(all[k].cursor.clone())), "list from cursor").await;
    assert_eq!(cids_of(&rest), cids_of(&all[k + 1..]), "resuming after a removed entry's cursor");
}

/// A listing of 2500 pins pages through all of them, each once, and resumes from a cursor
/// taken deep inside.
pub async fn listing_pages_through_thousands(h: &dyn Harness) {
    let s = fresh(h).await;
    fill(&*s.state, 0, 2500).await;
    let all = listing(&*s.state).await;
    assert_eq!(all.len(), 2500, "the listing must yield all 2500 pins");
    let unique: HashSet<_> = cids_of(&all).into_iter().collect();
    assert_eq!(unique.len(), 2500, "the listing yielded a pin twice");
    let tail = collect(s.state.list(Some(all[2100].cursor.clone())), "list from cursor").await;
    assert_eq!(cids_of(&tail), cids_of(&all[2101..]), "resuming at entry 2100 of 2500");
    let counted = s.state.list(None).take(1234).count().await;
    assert_eq!(counted, 1234, "a listing must be consumable partially");
}

/// While another task inserts and removes other keys, a listing yields each untouched pin
/// exactly once and never a pin twice.
pub async fn concurrent_writes_do_not_disturb_listing(h: &dyn Harness) {
    let s = fresh(h).await;
    fill(&*s.state, 0, 600).await;
    // Pins 100_000.. churn: half exist before the listing and are removed, half are inserted.
    fill(&*s.state, 100_000, 200).await;
    let untouched: HashSet<Cid> = (0..600).map(cid).collect();
    let churn = Arc::clone(&s.state);
    let writer = tokio::spawn(async move {
        for i in 0..200u64 {
            must(churn.remove(&cid(100_000 + i), Precondition::Any).await, "concurrent remove");
            must(churn.put(full_pin(200_000 + i), Precondition::Any).await, "concurrent put");
            tokio::task::yield_now().await;
        }
    });
    let mut seen = HashSet::new();
    let mut stream = s.state.list(None);
    let mut n = 0u64;
    while let Some(entry) = stream.next().await {
        let entry = must(entry, "list during concurrent writes");
        assert!(seen.insert(entry.pin.cid), "the listing yielded {} twice", entry.pin.cid);
        n += 1;
        if n % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(stream);
    writer.await.expect("writer task panicked");
    let missing: Vec<_> = untouched.iter().filter(|c| !seen.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "the listing missed {} untouched pins, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}
