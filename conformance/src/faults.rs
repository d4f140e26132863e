//! Fault injection: crash at every declared crash point in turn, reopen the store over the
//! same data, and check all-or-nothing, then that the store still works.
//!
//! Each point is driven by the operation its name says it lies on (see the crate doc):
//! `finalize`, `stage`, `import`, then `commit`, checked in that order. A point's operation
//! must actually reach it; a point no operation reaches fails the check.

use std::collections::BTreeSet;

use bytes::Bytes;
use pinvault_core::codec::ndjson::encode_pin_json;
use pinvault_core::transfer::{ImportOptions, NoProgress, TransferFormat};
use pinvault_core::{
    Batch, Cid, Error, FaultInjector, Pin, PinCapabilities, Precondition, PublishCapabilities,
};

use crate::fixtures::{full_pin, peer, renamed, set};
use crate::harness::{collect, expect_err, kind, must, reopen_with, Harness};
use crate::publication::{assert_invisible, assert_published, stage_all};
use crate::transfer::batch_size_for;

/// The operation a crash point lies on, from the words of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPath {
    /// A batch commit (`put`, `remove`, `commit`): the name contains `commit`.
    Commit,
    /// A finalize: the name contains `finalize`.
    Finalize,
    /// A stage: the name contains `stage`.
    Stage,
    /// An import's own steps (outside its batch commits): the name contains `import`.
    Import,
}

/// Classifies a crash point by its name; `None` when it follows no convention.
pub fn crash_path(point: &str) -> Option<CrashPath> {
    if point.contains("finalize") {
        Some(CrashPath::Finalize)
    } else if point.contains("stage") {
        Some(CrashPath::Stage)
    } else if point.contains("import") {
        Some(CrashPath::Import)
    } else if point.contains("commit") {
        Some(CrashPath::Commit)
    } else {
        None
    }
}

fn points(
    pins: &PinCapabilities,
    publish: &PublishCapabilities,
    path: CrashPath,
) -> Vec<&'static str> {
    let declared = pins.crash_points.iter().chain(publish.crash_points);
    declared.copied().filter(|p| crash_path(p) == Some(path)).collect()
}

async fn capabilities(h: &dyn Harness) -> (PinCapabilities, PublishCapabilities) {
    let s = must(h.create(FaultInjector::disabled()).await, "harness.create");
    (s.pin_capabilities(), s.publish_capabilities())
}

#[track_caller]
fn crashed_or_ok<T: std::fmt::Debug>(result: &pinvault_core::Result<T>, point: &str, op: &str) {
    match result {
        Ok(_) | Err(Error::Crashed { .. }) => {}
        Err(e) => {
            panic!("crash point {point}: {op} must return Ok or Crashed, got {}: {e}", kind(e))
        }
    }
}

/// Every declared crash point follows the naming convention and lies on a path of the half
/// that declares it (pin state: commit and import; publication: stage and finalize), names are
/// unique, and a persistent backend declares at least one.
pub async fn crash_points_are_declared_and_named(h: &dyn Harness) {
    let (pins, publish) = capabilities(h).await;
    for p in pins.crash_points {
        assert!(
            matches!(crash_path(p), Some(CrashPath::Commit | CrashPath::Import)),
            "pin-state crash point {p:?} names no pin path word (commit, import)"
        );
    }
    for p in publish.crash_points {
        assert!(
            matches!(crash_path(p), Some(CrashPath::Stage | CrashPath::Finalize)),
            "publication crash point {p:?} names no publication path word (stage, finalize)"
        );
    }
    let all: Vec<_> = pins.crash_points.iter().chain(publish.crash_points).collect();
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "crash point names must be unique");
    if pins.persistent {
        assert!(!all.is_empty(), "a persistent backend must declare at least one crash point");
    } else if all.is_empty() {
        eprintln!("faults::crash_points_are_declared_and_named: no crash points declared (persistent: false)");
    }
}

struct CommitScene {
    updated: Pin,
    updated_version: pinvault_core::Version,
    removed: Pin,
    removed_version: pinvault_core::Version,
    inserted: Pin,
    last_sequence: u64,
}

/// Crashing at each commit point leaves a reopened store with the whole batch or none of it,
/// views in step, and a store that commits again with a higher sequence.
pub async fn crash_during_commit_is_all_or_nothing(h: &dyn Harness) {
    const CHECK: &str = "faults::crash_during_commit_is_all_or_nothing";
    let (caps, publish) = capabilities(h).await;
    let commit_points = points(&caps, &publish, CrashPath::Commit);
    if commit_points.is_empty() {
        eprintln!("{CHECK}: no commit crash points declared");
    }
    for point in commit_points {
        let s = must(h.create(FaultInjector::disabled()).await, "harness.create");
        let updated = full_pin(1);
        let removed = full_pin(2);
        let updated_version = must(s.state.put(updated.clone(), Precondition::Any).await, "put");
        let removed_version = must(s.state.put(removed.clone(), Precondition::Any).await, "put");
        let last_sequence =
            must(s.state.commit(Batch::new().put(full_pin(3), Precondition::Any)).await, "commit")
                .sequence;
        let mut inserted = full_pin(4);
        inserted.allocations = vec![peer(77)];
        let scene = CommitScene {
            updated,
            updated_version,
            removed,
            removed_version,
            inserted,
            last_sequence,
        };

        let faults = FaultInjector::crash_at(point);
        let Some(s) = reopen_with(h, s, faults.clone(), CHECK).await else { return };
        let conditional = caps.atomic_batch && caps.conditional_batch;
        let pre = |p: Precondition| if conditional { p } else { Precondition::Any };
        let mut moved = renamed(scene.updated.clone(), "after the batch");
        moved.allocations = vec![peer(78)];
        let batch = if caps.atomic_batch {
            Batch::new()
                .put(scene.inserted.clone(), pre(Precondition::Absent))
                .put(moved.clone(), pre(Precondition::Version(scene.updated_version.clone())))
                .remove(
                    scene.removed.cid,
                    pre(Precondition::Version(scene.removed_version.clone())),
                )
        } else {
            Batch::new().put(scene.inserted.clone(), Precondition::Any)
        };
        let multi = batch.len() > 1;
        let result = s.state.commit(batch).await;
        crashed_or_ok(&result, point, "the commit");
        assert!(faults.fired(), "crash point {point} was not reached by a commit");
        let Some(s) = reopen_with(h, s, FaultInjector::disabled(), CHECK).await else { return };

        let inserted_now = must(s.state.has(&scene.inserted.cid).await, "has");
        if result.is_ok() {
            assert!(
                inserted_now,
                "crash point {point}: the commit returned Ok, so the reopened store must hold it"
            );
        }
        let updated_now = must(s.state.get(&scene.updated.cid).await, "get");
        let removed_now = must(s.state.has(&scene.removed.cid).await, "has");
        if multi {
            if inserted_now {
                assert_eq!(
                    updated_now.pin, moved,
                    "crash point {point}: half a batch (insert applied, update not)"
                );
                assert!(
                    !removed_now,
                    "crash point {point}: half a batch (insert applied, remove not)"
                );
            } else {
                assert_eq!(
                    (updated_now.pin, updated_now.version),
                    (scene.updated.clone(), scene.updated_version.clone()),
                    "crash point {point}: half a batch (insert lost, update applied)"
                );
                assert!(
                    removed_now,
                    "crash point {point}: half a batch (insert lost, remove applied)"
                );
            }
            let on_new_peer = collect(s.state.pins_by_peer(&peer(78)), "pins_by_peer").await;
            let expected: Vec<Cid> = if inserted_now { vec![scene.updated.cid] } else { vec![] };
            if caps.atomic_views {
                assert_eq!(
                    on_new_peer, expected,
                    "crash point {point}: the by-peer view disagrees with the pins"
                );
            }
        }
        let on_inserted_peer = collect(s.state.pins_by_peer(&peer(77)), "pins_by_peer").await;
        if caps.atomic_views {
            assert_eq!(
                on_inserted_peer.contains(&scene.inserted.cid),
                inserted_now,
                "crash point {point}: views disagree with pins"
            );
        } else {
            // Views that converge after a write promise no dangling entry (a view row whose
            // pin is absent is not returned), and `migrate` brings them in line with the pins.
            assert!(
                inserted_now || !on_inserted_peer.contains(&scene.inserted.cid),
                "crash point {point}: the by-peer view returns a pin the store does not hold"
            );
            must(s.state.migrate().await, "migrate after the crash");
            let repaired = collect(s.state.pins_by_peer(&peer(77)), "pins_by_peer").await;
            assert_eq!(
                repaired.contains(&scene.inserted.cid),
                inserted_now,
                "crash point {point}: after migrate the by-peer view still disagrees with the pins"
            );
        }
        eprintln!(
            "{CHECK}: {point}: batch {}",
            if inserted_now { "applied" } else { "not applied" }
        );

        let r = must(
            s.state.commit(Batch::new().put(full_pin(5), Precondition::Any)).await,
            "commit after the crash",
        );
        assert!(
            r.sequence > scene.last_sequence,
            "crash point {point}: a commit after reopening got sequence {} <= {} of an earlier commit",
            r.sequence,
            scene.last_sequence
        );
        must(
            s.state.put(renamed(full_pin(1), "later"), Precondition::Any).await,
            "put after the crash",
        );
    }
}

const SET_NAMES: [&str; 3] = ["p-0.parquet", "p-1.parquet", "p-2.parquet"];

/// Crashing at each finalize point leaves a reopened store with the whole set published or
/// none of it, other sets untouched, and a store that finalizes and sweeps again.
pub async fn crash_during_finalize_is_all_or_nothing(h: &dyn Harness) {
    const CHECK: &str = "faults::crash_during_finalize_is_all_or_nothing";
    let (caps, publish) = capabilities(h).await;
    let finalize_points = points(&caps, &publish, CrashPath::Finalize);
    if finalize_points.is_empty() {
        eprintln!("{CHECK}: no finalize crash points declared");
    }
    for point in finalize_points {
        let s = must(h.create(FaultInjector::disabled()).await, "harness.create");
        let p = &*s.publisher;
        let control = stage_all(p, "control", &SET_NAMES, "control").await;
        must(
            p.finalize(&set("control"), &control, Bytes::from_static(b"control")).await,
            "finalize",
        );
        let staged = stage_all(p, "crashing", &SET_NAMES, "crashing").await;

        let faults = FaultInjector::crash_at(point);
        let Some(s) = reopen_with(h, s, faults.clone(), CHECK).await else { return };
        let result =
            s.publisher.finalize(&set("crashing"), &staged, Bytes::from_static(b"crashing")).await;
        crashed_or_ok(&result, point, "the finalize");
        assert!(faults.fired(), "crash point {point} was not reached by a finalize");
        let Some(s) = reopen_with(h, s, FaultInjector::disabled(), CHECK).await else { return };
        let p = &*s.publisher;

        let published = match p.publication(&set("crashing")).await {
            Ok(_) => true,
            Err(Error::NotFound { .. }) => false,
            Err(e) => panic!("crash point {point}: publication after reopening failed: {e}"),
        };
        if result.is_ok() {
            assert!(published, "crash point {point}: finalize returned Ok, so the set must be published after reopening");
        }
        if published {
            assert_published(
                p,
                "crashing",
                &SET_NAMES,
                "crashing",
                b"crashing",
                &format!("crash point {point}"),
            )
            .await;
            expect_err(
                p.finalize(&set("crashing"), &staged, Bytes::new()).await,
                "AlreadyExists",
                &format!("crash point {point}: finalize of the set published before the crash"),
            );
        } else {
            assert_invisible(
                p,
                "crashing",
                &SET_NAMES,
                &format!("crash point {point}: unpublished set"),
            )
            .await;
            let retry = stage_all(p, "crashing", &SET_NAMES, "crashing").await;
            must(
                p.finalize(&set("crashing"), &retry, Bytes::from_static(b"crashing")).await,
                "finalize after the crash",
            );
            assert_published(
                p,
                "crashing",
                &SET_NAMES,
                "crashing",
                b"crashing",
                "finalize after the crash",
            )
            .await;
        }
        assert_published(
            p,
            "control",
            &SET_NAMES,
            "control",
            b"control",
            &format!("crash point {point}: another set"),
        )
        .await;
        eprintln!(
            "{CHECK}: {point}: set {}",
            if published { "published" } else { "not published" }
        );

        let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
        must(p.sweep(cutoff).await, "sweep after the crash");
        let again = must(p.sweep(cutoff).await, "second sweep");
        assert_eq!(
            again.removed, 0,
            "crash point {point}: a sweep must clean every leftover at once"
        );
        assert_published(
            p,
            "crashing",
            &SET_NAMES,
            "crashing",
            b"crashing",
            "after sweeping leftovers",
        )
        .await;
        let later = stage_all(p, "later", &SET_NAMES[..1], "later").await;
        must(
            p.finalize(&set("later"), &later, Bytes::new()).await,
            "finalize of another set after the crash",
        );
    }
}

/// Crashing at each stage point leaves nothing visible, and a sweep removes the leftovers.
pub async fn crash_during_stage_leaves_nothing_visible(h: &dyn Harness) {
    const CHECK: &str = "faults::crash_during_stage_leaves_nothing_visible";
    let (caps, publish) = capabilities(h).await;
    let stage_points = points(&caps, &publish, CrashPath::Stage);
    if stage_points.is_empty() {
        eprintln!("{CHECK}: no stage crash points declared");
    }
    for point in stage_points {
        let s = must(h.create(FaultInjector::disabled()).await, "harness.create");
        let faults = FaultInjector::crash_at(point);
        let Some(s) = reopen_with(h, s, faults.clone(), CHECK).await else { return };
        let result = s
            .publisher
            .stage(&set("half"), &crate::fixtures::object("x"), Bytes::from_static(b"half written"))
            .await;
        crashed_or_ok(&result, point, "the stage");
        assert!(faults.fired(), "crash point {point} was not reached by a stage");
        let Some(s) = reopen_with(h, s, FaultInjector::disabled(), CHECK).await else { return };
        let p = &*s.publisher;
        assert_invisible(p, "half", &["x"], &format!("crash point {point}")).await;
        let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
        must(p.sweep(cutoff).await, "sweep after the crash");
        assert_eq!(
            must(p.sweep(cutoff).await, "second sweep").removed,
            0,
            "crash point {point}: leftovers survived a sweep"
        );
        let staged = stage_all(p, "half", &["x"], "after").await;
        must(p.finalize(&set("half"), &staged, Bytes::new()).await, "finalize after the crash");
    }
}

fn import_stream(count: u64) -> Vec<u8> {
    let mut out = String::new();
    for n in 0..count {
        out.push_str(&encode_pin_json(&full_pin(n)));
        out.push('\n');
    }
    out.into_bytes()
}

/// Crashing inside an import (at each import point, and at each commit point on the import's
/// second batch) leaves whole batches: the first, and the second entirely or not at all.
pub async fn crash_during_import_keeps_whole_batches(h: &dyn Harness) {
    const CHECK: &str = "faults::crash_during_import_keeps_whole_batches";
    let (caps, publish) = capabilities(h).await;
    let mut runs: Vec<(&'static str, usize)> =
        points(&caps, &publish, CrashPath::Import).into_iter().map(|p| (p, 1)).collect();
    runs.extend(points(&caps, &publish, CrashPath::Commit).into_iter().map(|p| (p, 2)));
    if runs.is_empty() {
        eprintln!("{CHECK}: no import or commit crash points declared");
    }
    let stream = import_stream(30);
    let all: Vec<Pin> = (0..30).map(full_pin).collect();
    for (point, nth) in runs {
        let s = must(h.create(FaultInjector::disabled()).await, "harness.create");
        let batch_size = batch_size_for(&s.pin_capabilities(), 10);
        let faults = FaultInjector::crash_at_nth(point, nth);
        let Some(s) = reopen_with(h, s, faults.clone(), CHECK).await else { return };
        let options = ImportOptions {
            format: TransferFormat::Ndjson,
            batch_size,
            precondition: Precondition::Any,
        };
        let mut reader: &[u8] = &stream;
        let result = s.state.import(&mut reader, &options, &NoProgress).await;
        crashed_or_ok(&result, point, "the import");
        assert!(faults.fired(), "crash point {point} (hit {nth}) was not reached by an import of 30 pins in batches of {batch_size}");
        let Some(s) = reopen_with(h, s, FaultInjector::disabled(), CHECK).await else { return };
        let stored: BTreeSet<Vec<u8>> = collect(s.state.list(None), "list")
            .await
            .into_iter()
            .map(|e| e.pin.cid.to_bytes())
            .collect();
        let prefix = |k: usize| all[..k].iter().map(|p| p.cid.to_bytes()).collect::<BTreeSet<_>>();
        let whole_batches: Vec<usize> = (0..=30).step_by(batch_size).collect();
        assert!(
            whole_batches.iter().any(|&k| stored == prefix(k)),
            "crash point {point} (hit {nth}): the import left {} pins, not a whole number of batches of {batch_size} in order",
            stored.len()
        );
        if nth == 2 {
            assert!(
                stored.len() >= batch_size,
                "crash point {point}: the first batch committed before the crash was lost"
            );
            assert!(
                stored.len() <= 2 * batch_size,
                "crash point {point}: batches after the crash were applied"
            );
        }
        eprintln!("{CHECK}: {point} (hit {nth}): {} pins kept", stored.len());
        let mut reader: &[u8] = &stream;
        let redo = must(
            s.state.import(&mut reader, &options, &NoProgress).await,
            "import after the crash",
        );
        assert_eq!(redo.pins, 30);
        assert_eq!(
            collect(s.state.list(None), "list").await.len(),
            30,
            "a re-import after the crash must hold every pin"
        );
    }
}
