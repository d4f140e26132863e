//! Basic pin-state promises: put, get, has, remove, exact round trips, durability across a
//! reopen, and migration.

use pinvault_core::{Precondition, Version};

use crate::fixtures::{cid, full_pin, plain_pin, renamed};
use crate::harness::{crash_and_reopen, expect_err, fresh, must, Harness};

/// `get` returns exactly the pin `put` stored (every field, CIDv0 and v1, every pin type) with
/// the version `put` returned.
pub async fn put_then_get_returns_equal_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    for n in 0..12 {
        let pin = full_pin(n);
        let version = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
        let got = must(s.state.get(&pin.cid).await, "get");
        assert_eq!(got.pin, pin, "get must return the stored pin field for field ({})", pin.cid);
        assert_eq!(got.version, version, "get must return the version put returned ({})", pin.cid);
    }
}

/// A pin with every option at its default (no timestamp, no expiry, no reference) round-trips.
pub async fn minimal_pin_round_trips(h: &dyn Harness) {
    let s = fresh(h).await;
    for n in [0, 1] {
        let pin = plain_pin(n);
        must(s.state.put(pin.clone(), Precondition::Any).await, "put");
        let got = must(s.state.get(&pin.cid).await, "get");
        assert_eq!(got.pin, pin, "a default pin must round-trip exactly ({})", pin.cid);
    }
}

/// CIDv0 and CIDv1 keys come back in the version they were stored with.
pub async fn cid_versions_are_preserved(h: &dyn Harness) {
    let s = fresh(h).await;
    let (v0, v1) = (cid(10), cid(11));
    assert_eq!(v0.version(), cid::Version::V0);
    assert_eq!(v1.version(), cid::Version::V1);
    for c in [v0, v1] {
        must(s.state.put(plain_pin_of(c), Precondition::Any).await, "put");
        let got = must(s.state.get(&c).await, "get");
        assert_eq!(got.pin.cid, c, "the stored CID must keep its version and codec");
        assert_eq!(got.pin.cid.to_string(), c.to_string());
    }
}

fn plain_pin_of(c: pinvault_core::Cid) -> pinvault_core::Pin {
    pinvault_core::Pin::new(c)
}

/// `get` of a CID never stored is `NotFound`.
pub async fn get_absent_is_not_found(h: &dyn Harness) {
    let s = fresh(h).await;
    expect_err(s.state.get(&cid(1)).await, "NotFound", "get of an absent pin");
    must(s.state.put(full_pin(2), Precondition::Any).await, "put");
    expect_err(
        s.state.get(&cid(3)).await,
        "NotFound",
        "get of an absent pin next to a present one",
    );
}

/// `has` is true exactly while the pin is stored.
pub async fn has_follows_put_and_remove(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(4);
    assert!(!must(s.state.has(&pin.cid).await, "has"), "has before put must be false");
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    assert!(must(s.state.has(&pin.cid).await, "has"), "has after put must be true");
    must(s.state.remove(&pin.cid, Precondition::Any).await, "remove");
    assert!(!must(s.state.has(&pin.cid).await, "has"), "has after remove must be false");
}

/// `remove` deletes the pin and only that pin.
pub async fn remove_deletes_only_its_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    let (a, b) = (full_pin(5), full_pin(6));
    must(s.state.put(a.clone(), Precondition::Any).await, "put a");
    let vb = must(s.state.put(b.clone(), Precondition::Any).await, "put b");
    must(s.state.remove(&a.cid, Precondition::Any).await, "remove a");
    expect_err(s.state.get(&a.cid).await, "NotFound", "get after remove");
    let got = must(s.state.get(&b.cid).await, "get b");
    assert_eq!((got.pin, got.version), (b, vb), "removing one pin must not touch another");
}

/// Removing an absent pin with `Any` succeeds and changes nothing.
pub async fn remove_absent_with_any_is_noop(h: &dyn Harness) {
    let s = fresh(h).await;
    let other = full_pin(8);
    let v = must(s.state.put(other.clone(), Precondition::Any).await, "put");
    must(
        s.state.remove(&cid(7), Precondition::Any).await,
        "remove of an absent pin with Any must succeed",
    );
    expect_err(s.state.get(&cid(7)).await, "NotFound", "get after a no-op remove");
    assert_eq!(
        must(s.state.get(&other.cid).await, "get").version,
        v,
        "a no-op remove wrote something"
    );
}

/// `put` with `Any` replaces the whole stored pin.
pub async fn put_any_replaces_whole_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    let first = full_pin(9);
    must(s.state.put(first.clone(), Precondition::Any).await, "put");
    let mut second = plain_pin(9);
    second.options.name = "replaced".into();
    must(s.state.put(second.clone(), Precondition::Any).await, "overwrite");
    assert_eq!(
        must(s.state.get(&first.cid).await, "get").pin,
        second,
        "an overwrite must replace every field"
    );
}

/// An invalid pin (one ipfs-cluster could store but never export: a time outside the years
/// 0-9999) is refused with `InvalidInput` and nothing is written; values ipfs-cluster stores
/// and exports (a minimum replication above the maximum, a depth below -1) are accepted.
pub async fn invalid_pin_is_refused(h: &dyn Harness) {
    let s = fresh(h).await;
    let mut bad = full_pin(12);
    bad.timestamp = chrono::DateTime::from_timestamp(253_402_300_800, 0); // 10000-01-01
    expect_err(
        s.state.put(bad.clone(), Precondition::Any).await,
        "InvalidInput",
        "put of a pin with a timestamp in the year 10000",
    );
    let mut bad_expiry = full_pin(12);
    bad_expiry.options.expire_at = chrono::DateTime::from_timestamp(-62_167_219_201, 0); // year -1
    expect_err(
        s.state.put(bad_expiry, Precondition::Any).await,
        "InvalidInput",
        "put of a pin expiring in the year -1",
    );
    assert!(!must(s.state.has(&bad.cid).await, "has"), "a refused pin must not be stored");
    let mut odd = full_pin(12);
    odd.options.replication_factor_min = 5;
    odd.options.replication_factor_max = 2;
    odd.max_depth = -2;
    must(s.state.put(odd.clone(), Precondition::Any).await, "put of values ipfs-cluster stores");
    assert_eq!(must(s.state.get(&odd.cid).await, "get").pin, odd);
}

/// A write whose call returned `Ok` is seen by a new instance over the same data, opened after
/// the old one was dropped without closing.
pub async fn committed_writes_survive_reopen(h: &dyn Harness) {
    let s = fresh(h).await;
    let kept = full_pin(13);
    let gone = full_pin(14);
    let v = must(s.state.put(kept.clone(), Precondition::Any).await, "put");
    must(s.state.put(gone.clone(), Precondition::Any).await, "put");
    must(s.state.remove(&gone.cid, Precondition::Any).await, "remove");
    let Some(s) = crash_and_reopen(h, s, "crud::committed_writes_survive_reopen").await else {
        return;
    };
    let got = must(s.state.get(&kept.cid).await, "get after reopen");
    assert_eq!(
        (got.pin, got.version),
        (kept, v),
        "a committed put must survive a reopen unchanged"
    );
    expect_err(
        s.state.get(&gone.cid).await,
        "NotFound",
        "a committed remove must survive a reopen",
    );
}

/// `migrate` leaves pins untouched and is idempotent: a second run rewrites nothing.
pub async fn migrate_is_idempotent(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(15);
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let first = must(s.state.migrate().await, "migrate");
    assert!(first.to >= first.from, "migrate must not go backwards: {first:?}");
    let second = must(s.state.migrate().await, "second migrate");
    assert_eq!(second.from, second.to, "a second migrate must find the current format: {second:?}");
    assert_eq!(second.records_rewritten, 0, "a second migrate must rewrite nothing: {second:?}");
    assert_eq!(must(s.state.get(&pin.cid).await, "get").pin, pin, "migrate changed a pin");
}

/// Helper kept here for the families that need "the version now stored, if any".
pub(crate) async fn current_version(
    state: &dyn pinvault_core::PinState,
    c: &pinvault_core::Cid,
) -> Option<Version> {
    match state.get(c).await {
        Ok(v) => Some(v.version),
        Err(pinvault_core::Error::NotFound { .. }) => None,
        Err(e) => panic!("get {c} failed unexpectedly: {e}"),
    }
}

/// `renamed` pins differ only by name; a put of one over the other is visible.
pub async fn overwrite_is_visible_immediately(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(16);
    must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    for i in 0..5 {
        let next = renamed(pin.clone(), &format!("rev-{i}"));
        must(s.state.put(next.clone(), Precondition::Any).await, "put");
        assert_eq!(
            must(s.state.get(&pin.cid).await, "get").pin,
            next,
            "read-your-writes failed at revision {i}"
        );
    }
}
