//! Conditional writes on one key: `Absent` inserts, `Version` updates and deletes, conflicts
//! that carry the current version and write nothing, and versions that change on every write.
//!
//! A backend that does not declare `linearizable_conditional_writes` must refuse conditional
//! single-key writes with `Unsupported`; each check then asserts that refusal.

use pinvault_core::{Error, PinState, Precondition, Version};

use crate::crud::current_version;
use crate::fixtures::{cid, full_pin, renamed};
use crate::harness::{assert_refused, expect_err, fresh, must, Harness, TestStore};

/// A version no backend hands out, for preconditions that must fail.
pub fn never_issued_version() -> Version {
    Version::from_bytes(b"pinvault-conformance: never issued".to_vec())
}

/// When conditional writes are not declared, asserts an `Absent` put is refused; returns
/// whether the check should go on.
pub(crate) async fn conditional_writes_declared(s: &TestStore, check: &str) -> bool {
    if s.pin_capabilities().linearizable_conditional_writes {
        return true;
    }
    assert_refused(
        s.state.put(full_pin(999), Precondition::Absent).await,
        check,
        "linearizable_conditional_writes",
    );
    false
}

/// Asserts `e` is a conflict on `key` at `op_index` whose current version is `current`.
#[track_caller]
pub fn assert_conflict(
    e: Error,
    key: &pinvault_core::Cid,
    current: Option<&Version>,
    op_index: usize,
    promise: &str,
) {
    match e {
        Error::Conflict { key: k, current: c, op_index: i, .. } => {
            assert_eq!(k, key.to_string(), "{promise}: the conflict must name the key");
            assert_eq!(
                c.as_ref(),
                current,
                "{promise}: the conflict must carry the current version"
            );
            assert_eq!(i, op_index, "{promise}: the conflict must carry the failing op's index");
        }
        other => panic!("{promise}: expected Conflict, got {other}"),
    }
}

async fn conflicted_put(state: &dyn PinState, pin: pinvault_core::Pin, pre: Precondition) -> Error {
    match state.put(pin, pre).await {
        Err(e) => e,
        Ok(v) => panic!("a put whose precondition fails must be refused; it returned version {v}"),
    }
}

/// `put` with `Absent` inserts a new pin.
pub async fn put_absent_inserts_new(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::put_absent_inserts_new").await {
        return;
    }
    let pin = full_pin(1);
    let v = must(s.state.put(pin.clone(), Precondition::Absent).await, "put Absent of a new pin");
    let got = must(s.state.get(&pin.cid).await, "get");
    assert_eq!((got.pin, got.version), (pin, v));
}

/// `put` with `Absent` on an existing pin is a conflict carrying its version; nothing written.
pub async fn put_absent_refuses_existing(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::put_absent_refuses_existing").await {
        return;
    }
    let pin = full_pin(2);
    let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let e = conflicted_put(&*s.state, renamed(pin.clone(), "intruder"), Precondition::Absent).await;
    assert_conflict(e, &pin.cid, Some(&v), 0, "put Absent over an existing pin");
    let got = must(s.state.get(&pin.cid).await, "get");
    assert_eq!((got.pin, got.version), (pin, v), "a refused put must write nothing");
}

/// `put` with the current `Version` updates the pin and gives it a new version.
pub async fn put_version_updates_current(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::put_version_updates_current").await {
        return;
    }
    let pin = full_pin(3);
    let v1 = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let next = renamed(pin.clone(), "updated");
    let v2 = must(
        s.state.put(next.clone(), Precondition::Version(v1.clone())).await,
        "put Version(current)",
    );
    assert_ne!(v1, v2, "an update must change the version");
    let got = must(s.state.get(&pin.cid).await, "get");
    assert_eq!((got.pin, got.version), (next, v2));
}

/// `put` with a stale `Version` is a conflict carrying the current version; nothing written.
pub async fn put_version_refuses_stale(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::put_version_refuses_stale").await {
        return;
    }
    let pin = full_pin(4);
    let v1 = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let current = renamed(pin.clone(), "second");
    let v2 = must(s.state.put(current.clone(), Precondition::Any).await, "put");
    let e =
        conflicted_put(&*s.state, renamed(pin.clone(), "lost update"), Precondition::Version(v1))
            .await;
    assert_conflict(e, &pin.cid, Some(&v2), 0, "put with a stale version");
    let e = conflicted_put(
        &*s.state,
        renamed(pin.clone(), "forged"),
        Precondition::Version(never_issued_version()),
    )
    .await;
    assert_conflict(e, &pin.cid, Some(&v2), 0, "put with a version never issued");
    let got = must(s.state.get(&pin.cid).await, "get");
    assert_eq!((got.pin, got.version), (current, v2), "a refused put must write nothing");
}

/// `put` with `Version` on an absent pin is a conflict whose current version is `None`.
pub async fn put_version_on_absent_conflicts(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::put_version_on_absent_conflicts").await {
        return;
    }
    let pin = full_pin(5);
    let e =
        conflicted_put(&*s.state, pin.clone(), Precondition::Version(never_issued_version())).await;
    assert_conflict(e, &pin.cid, None, 0, "put Version on an absent pin");
    assert!(!must(s.state.has(&pin.cid).await, "has"), "a refused put must not insert");
}

/// `remove` with the current `Version` deletes the pin.
pub async fn remove_version_deletes_current(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::remove_version_deletes_current").await {
        return;
    }
    let pin = full_pin(6);
    let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    must(s.state.remove(&pin.cid, Precondition::Version(v)).await, "remove Version(current)");
    expect_err(s.state.get(&pin.cid).await, "NotFound", "get after a conditional remove");
}

/// `remove` with a stale `Version` is a conflict; the pin stays with its version.
pub async fn remove_version_refuses_stale(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::remove_version_refuses_stale").await {
        return;
    }
    let pin = full_pin(7);
    let v1 = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    let v2 = must(s.state.put(pin.clone(), Precondition::Any).await, "rewrite");
    let e = s
        .state
        .remove(&pin.cid, Precondition::Version(v1))
        .await
        .expect_err("a stale remove must fail");
    assert_conflict(e, &pin.cid, Some(&v2), 0, "remove with a stale version");
    let got = must(s.state.get(&pin.cid).await, "get");
    assert_eq!((got.pin, got.version), (pin.clone(), v2), "a refused remove must delete nothing");
    let e = s.state.remove(&cid(1007), Precondition::Version(never_issued_version())).await;
    assert_conflict(
        e.expect_err("a Version remove of an absent pin must fail"),
        &cid(1007),
        None,
        0,
        "remove Version of an absent pin",
    );
}

/// `remove` with `Absent` can never apply and is refused as `InvalidInput`.
pub async fn remove_absent_is_invalid_input(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(8);
    let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    expect_err(
        s.state.remove(&pin.cid, Precondition::Absent).await,
        "InvalidInput",
        "remove with Absent (present pin)",
    );
    expect_err(
        s.state.remove(&cid(1008), Precondition::Absent).await,
        "InvalidInput",
        "remove with Absent (absent pin)",
    );
    assert_eq!(
        current_version(&*s.state, &pin.cid).await,
        Some(v),
        "a refused remove changed the pin"
    );
}

/// Every write gives the key a new version, even an identical rewrite.
pub async fn version_changes_on_every_write(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(9);
    let mut seen = std::collections::HashSet::new();
    for i in 0..10 {
        let v = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
        assert!(seen.insert(v.clone()), "write {i} of an identical pin reused version {v}");
        assert_eq!(
            current_version(&*s.state, &pin.cid).await,
            Some(v),
            "get must see the newest version"
        );
    }
}

/// A re-insert after a remove gets a version never seen before, so a writer holding the old
/// version cannot overwrite the new pin (no ABA).
pub async fn reinsert_after_remove_gets_fresh_version(h: &dyn Harness) {
    let s = fresh(h).await;
    let pin = full_pin(10);
    let old = must(s.state.put(pin.clone(), Precondition::Any).await, "put");
    must(s.state.remove(&pin.cid, Precondition::Any).await, "remove");
    let new =
        must(s.state.put(renamed(pin.clone(), "reinserted"), Precondition::Any).await, "re-insert");
    assert_ne!(old, new, "a re-insert after remove must not reuse the old version");
    if !conditional_writes_declared(&s, "preconditions::reinsert_after_remove_gets_fresh_version")
        .await
    {
        return;
    }
    let e =
        conflicted_put(&*s.state, renamed(pin.clone(), "ABA"), Precondition::Version(old)).await;
    assert_conflict(e, &pin.cid, Some(&new), 0, "put with the version from before the remove");
    assert_eq!(must(s.state.get(&pin.cid).await, "get").pin.options.name, "reinserted");
}

/// `Any` writes still work between conditional ones, and the versions they hand out are the
/// ones a following conditional write must name.
pub async fn any_write_invalidates_held_version(h: &dyn Harness) {
    let s = fresh(h).await;
    if !conditional_writes_declared(&s, "preconditions::any_write_invalidates_held_version").await {
        return;
    }
    let pin = full_pin(11);
    let held = must(s.state.put(pin.clone(), Precondition::Absent).await, "put Absent");
    let blind =
        must(s.state.put(renamed(pin.clone(), "blind"), Precondition::Any).await, "put Any");
    let e =
        conflicted_put(&*s.state, renamed(pin.clone(), "stale"), Precondition::Version(held)).await;
    assert_conflict(e, &pin.cid, Some(&blind), 0, "put with a version overwritten by an Any write");
    must(
        s.state.put(renamed(pin.clone(), "fresh"), Precondition::Version(blind)).await,
        "put Version(current)",
    );
}
