//! Secondary views kept with the pins: pins by allocated peer, the bucketed expiry queue, and
//! desired versus actual placements.
//!
//! With `atomic_views` the views must be right as soon as the write returns; without it they
//! must converge (checked by polling), never silently stay wrong.

use std::collections::BTreeSet;

use pinvault_core::{Cid, PeerId, Pin, PinState, Precondition};

use crate::fixtures::{at, cid, full_pin, peer};
use crate::harness::{collect, eventually, expect_err, fresh, must, Harness};

fn cid_byte_order(mut cids: Vec<Cid>) -> Vec<Cid> {
    cids.sort_by_key(|c| c.to_bytes());
    cids
}

async fn by_peer(state: &dyn PinState, p: &PeerId) -> Vec<Cid> {
    collect(state.pins_by_peer(p), "pins_by_peer").await
}

async fn due_before(state: &dyn PinState, before: chrono::DateTime<chrono::Utc>) -> Vec<Cid> {
    collect(state.expiring_before(before), "expiring_before")
        .await
        .into_iter()
        .map(|e| e.cid)
        .collect()
}

fn allocated(n: u64, peers: &[PeerId]) -> Pin {
    let mut pin = full_pin(n);
    pin.allocations = peers.to_vec();
    pin
}

/// `pins_by_peer` lists exactly the pins allocated to the peer, in CID byte order.
pub async fn pins_by_peer_lists_allocated_pins(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    let (a, b, c) = (peer(100), peer(101), peer(102));
    let mut on_a = Vec::new();
    for n in 0..12 {
        let peers = match n % 3 {
            0 => vec![a.clone()],
            1 => vec![a.clone(), b.clone()],
            _ => vec![b.clone()],
        };
        if peers.contains(&a) {
            on_a.push(cid(n));
        }
        must(s.state.put(allocated(n, &peers), Precondition::Any).await, "put");
    }
    let expected = cid_byte_order(on_a);
    let state = &*s.state;
    let (pa, pc) = (&a, &c);
    let want = expected.clone();
    eventually(atomic, "pins_by_peer", || {
        let want = want.clone();
        async move { by_peer(state, pa).await == want }
    })
    .await;
    assert_eq!(
        by_peer(state, &a).await,
        expected,
        "pins_by_peer must list exactly the peer's pins in CID byte order"
    );
    assert!(by_peer(state, pc).await.is_empty(), "a peer with no allocation must list nothing");
}

/// Moving a pin to other peers moves it between their views.
pub async fn pins_by_peer_follows_reallocation(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    let (a, b, c) = (peer(110), peer(111), peer(112));
    let pin = allocated(1, &[a.clone(), b.clone()]);
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    must(s.state.put(allocated(1, &[b.clone(), c.clone()]), Precondition::Any).await, "reallocate");
    let state = &*s.state;
    let id = pin.cid;
    let (pa, pb, pc) = (&a, &b, &c);
    eventually(atomic, "pins_by_peer after reallocation", || async move {
        by_peer(state, pa).await.is_empty()
            && by_peer(state, pb).await == vec![id]
            && by_peer(state, pc).await == vec![id]
    })
    .await;
}

/// A removed pin leaves every peer's view.
pub async fn pins_by_peer_drops_removed_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    let a = peer(120);
    let (gone, kept) =
        (allocated(1, std::slice::from_ref(&a)), allocated(2, std::slice::from_ref(&a)));
    must(s.state.put(gone.clone(), Precondition::Any).await, "put");
    must(s.state.put(kept.clone(), Precondition::Any).await, "put");
    must(s.state.remove(&gone.cid, Precondition::Any).await, "remove");
    let state = &*s.state;
    let (pa, k) = (&a, kept.cid);
    eventually(atomic, "pins_by_peer after remove", || async move {
        by_peer(state, pa).await == vec![k]
    })
    .await;
}

/// `expiring_before(t)` yields the pins whose `expire_at` is strictly before `t`, across several
/// hour buckets, ordered by time.
pub async fn expiring_before_is_strict_and_ordered(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    // 10 pins 37 minutes apart span 7 hour buckets; one pin never expires.
    let times: Vec<_> = (0..10).map(|k| at(7_200 + 600 + k * 37 * 60)).collect();
    for (k, t) in times.iter().enumerate() {
        let mut pin = full_pin(k as u64);
        pin.options.expire_at = Some(*t);
        must(s.state.put(pin, Precondition::Any).await, "put");
    }
    let mut eternal = full_pin(50);
    eternal.options.expire_at = None;
    must(s.state.put(eternal, Precondition::Any).await, "put");
    let state = &*s.state;
    eventually(atomic, "expiry queue", || async move {
        due_before(state, at(1_000_000)).await.len() == 10
    })
    .await;
    let all = collect(state.expiring_before(at(1_000_000)), "expiring_before").await;
    assert!(
        all.windows(2).all(|w| w[0].expire_at <= w[1].expire_at),
        "the expiry queue must be in expire_at order"
    );
    assert_eq!(
        all.iter().map(|e| e.expire_at).collect::<Vec<_>>(),
        times,
        "each entry must carry its pin's expire_at"
    );
    for (k, t) in times.iter().enumerate() {
        let due = due_before(state, *t).await;
        let expected: Vec<Cid> = (0..k as u64).map(cid).collect();
        assert_eq!(due, expected, "expiring_before(expire_at of pin {k}) must yield exactly the {k} earlier pins (strict <)");
    }
    assert!(due_before(state, at(0)).await.is_empty(), "nothing expires before the first expiry");
}

/// Changing or clearing a pin's `expire_at` moves it in the expiry queue.
pub async fn expiring_before_follows_expire_at_changes(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    let mut pin = full_pin(1);
    pin.options.expire_at = Some(at(3 * 3600));
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    pin.options.expire_at = Some(at(30 * 3600));
    must(s.state.put(pin.clone(), Precondition::Any).await, "move expiry");
    let state = &*s.state;
    let id = pin.cid;
    eventually(atomic, "expiry queue after a later expire_at", || async move {
        due_before(state, at(10 * 3600)).await.is_empty()
            && due_before(state, at(31 * 3600)).await == vec![id]
    })
    .await;
    pin.options.expire_at = None;
    must(s.state.put(pin.clone(), Precondition::Any).await, "clear expiry");
    eventually(atomic, "expiry queue after clearing expire_at", || async move {
        due_before(state, at(1_000_000)).await.is_empty()
    })
    .await;
}

/// A removed pin leaves the expiry queue.
pub async fn expiring_before_drops_removed_pins(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    for n in 0..4 {
        let mut pin = full_pin(n);
        pin.options.expire_at = Some(at(3600 * n as i64 + 60));
        must(s.state.put(pin, Precondition::Any).await, "put");
    }
    must(s.state.remove(&cid(1), Precondition::Any).await, "remove");
    must(s.state.remove(&cid(3), Precondition::Any).await, "remove");
    let state = &*s.state;
    let want = vec![cid(0), cid(2)];
    eventually(atomic, "expiry queue after removals", || {
        let want = want.clone();
        async move { due_before(state, at(1_000_000)).await == want }
    })
    .await;
}

/// `placement` shows the allocations as desired and follows every put; `record_placement`
/// sets the actual peers without changing the pin's version; missing/extra follow.
pub async fn placement_tracks_desired_and_actual(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    let (a, b, c) = (peer(130), peer(131), peer(132));
    let pin = allocated(1, &[a.clone(), b.clone()]);
    let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let state = &*s.state;
    let id = pin.cid;
    let ab: BTreeSet<PeerId> = [a.clone(), b.clone()].into();
    let want = ab.clone();
    eventually(atomic, "placement desired", || {
        let want = want.clone();
        async move { must(state.placement(&id).await, "placement").desired == want }
    })
    .await;
    let actual: BTreeSet<PeerId> = [b.clone(), c.clone()].into();
    must(s.state.record_placement(&id, actual.clone()).await, "record_placement");
    let p = must(s.state.placement(&id).await, "placement");
    assert_eq!(p.cid, id);
    assert_eq!(p.actual, actual, "placement.actual must be what record_placement reported");
    assert_eq!(p.missing(), [a.clone()].into(), "missing = desired - actual");
    assert_eq!(p.extra(), [c.clone()].into(), "extra = actual - desired");
    assert_eq!(
        must(s.state.get(&id).await, "get").version,
        v,
        "record_placement must not change the pin's version"
    );
    must(s.state.record_placement(&id, [a.clone()].into()).await, "record_placement again");
    assert_eq!(
        must(s.state.placement(&id).await, "placement").actual,
        [a.clone()].into(),
        "a report replaces the previous one"
    );
    must(
        s.state.put(allocated(1, std::slice::from_ref(&c)), Precondition::Any).await,
        "reallocate",
    );
    let want_c: BTreeSet<PeerId> = [c.clone()].into();
    eventually(atomic, "placement desired after reallocation", || {
        let want = want_c.clone();
        async move { must(state.placement(&id).await, "placement").desired == want }
    })
    .await;
}

/// `placement` and `record_placement` of a pin that is not stored are `NotFound`, and a
/// removed pin's placement is dropped (a re-added pin starts with no actual peers).
pub async fn placement_is_dropped_with_its_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    let atomic = s.pin_capabilities().atomic_views;
    expect_err(s.state.placement(&cid(9)).await, "NotFound", "placement of an absent pin");
    expect_err(
        s.state.record_placement(&cid(9), [peer(1)].into()).await,
        "NotFound",
        "record_placement of an absent pin",
    );
    assert!(
        !must(s.state.has(&cid(9)).await, "has"),
        "record_placement on an absent pin must not create it"
    );
    let pin = allocated(2, &[peer(140)]);
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    must(s.state.record_placement(&pin.cid, [peer(140)].into()).await, "record_placement");
    must(s.state.remove(&pin.cid, Precondition::Any).await, "remove");
    let state = &*s.state;
    let id = pin.cid;
    eventually(atomic, "placement after remove", || async move {
        matches!(state.placement(&id).await, Err(pinvault_core::Error::NotFound { .. }))
    })
    .await;
    must(s.state.put(pin.clone(), Precondition::Any).await, "re-add");
    eventually(atomic, "placement after re-add", || async move {
        state.placement(&id).await.map(|p| p.actual.is_empty()).unwrap_or(false)
    })
    .await;
}
