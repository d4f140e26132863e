//! Read-only opens (`OpenMode::ReadOnly`): they take no lock, so they read a store another
//! process (a child running this binary) or another handle holds for writing, and see a
//! consistent prefix of its commits even while it writes; they write nothing to the store
//! directory (no LOG rotation, no marker adoption); and they work on a read-only bind mount,
//! where a writable open is `Error::Path` (read-only filesystem). The mount check is SKIPPED
//! (counted as ignored) where `mount` is refused.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{Error, FaultInjector, OpenMode, PathProblem, PinState, Precondition};
use pinvault_rocksdb::{RocksBackend, RocksOptions};
use support::{Child, Outcome};

fn open(path: &Path, mode: OpenMode) -> pinvault_core::Result<RocksBackend> {
    support::runtime().block_on(pinvault_rocksdb::open_with_mode(
        path,
        RocksOptions::default(),
        mode,
        FaultInjector::disabled(),
    ))
}

fn count(store: &RocksBackend) -> usize {
    store
        .store()
        .engine()
        .scan(Table::Pins, b"", None, usize::MAX)
        .expect("scan")
        .len()
}

/// Pins 1..=n are all there (so a view of n pins written in order is exactly that prefix).
fn has_prefix(store: &RocksBackend, n: usize) -> bool {
    let rt = support::runtime();
    (1..=n as u64).all(|i| rt.block_on(store.has(&full_pin(i).cid)).expect("has"))
}

fn create_with_pins(path: &Path, pins: u64) {
    let rt = support::runtime();
    rt.block_on(async {
        let store =
            pinvault_rocksdb::open(path, RocksOptions::default(), FaultInjector::disabled())
                .await
                .expect("create");
        for n in 1..=pins {
            store
                .put(full_pin(n), Precondition::Absent)
                .await
                .expect("put");
        }
    });
}

fn listing(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let meta = e.metadata().expect("stat");
            (
                e.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().expect("mtime")),
            )
        })
        .collect()
}

fn beside_a_writer_process() -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 50, false);
    let reader = open(&path, OpenMode::ReadOnly).expect("a read-only open beside a writer");
    assert_eq!(count(&reader), 50, "the writer's committed pins");
    match support::runtime().block_on(reader.put(full_pin(51), Precondition::Absent)) {
        Err(Error::Unsupported { operation, .. }) => {
            assert!(operation.contains("read-only"), "{operation}")
        }
        other => panic!("a write through a read-only open must be refused: {other:?}"),
    }
    drop(reader);
    child.finish();
    Outcome::Passed
}

fn consistent_prefix_while_the_writer_writes() -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 10, true);
    let mut last = 0;
    for _ in 0..8 {
        let reader = open(&path, OpenMode::ReadOnly).expect("read-only open");
        let n = count(&reader);
        assert!(n >= last, "a later open saw fewer pins ({n} < {last})");
        assert!(
            has_prefix(&reader, n),
            "a view of {n} pins is not pins 1..={n}"
        );
        last = n;
        drop(reader);
        std::thread::sleep(Duration::from_millis(30));
    }
    child.finish();
    let after = open(&path, OpenMode::ReadOnly).expect("read-only open");
    assert!(
        count(&after) >= last && last > 10,
        "the writer wrote on ({last})"
    );
    Outcome::Passed
}

fn beside_a_writer_handle_in_this_process() -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let rt = support::runtime();
    let writer = rt
        .block_on(pinvault_rocksdb::open(
            &path,
            RocksOptions::default(),
            FaultInjector::disabled(),
        ))
        .expect("create");
    for n in 1..=20 {
        rt.block_on(writer.put(full_pin(n), Precondition::Absent))
            .expect("put");
    }
    let reader = open(&path, OpenMode::ReadOnly).expect("read-only beside a writer handle");
    assert_eq!(count(&reader), 20);
    rt.block_on(writer.put(full_pin(21), Precondition::Absent))
        .expect("the writer goes on");
    Outcome::Passed
}

fn writes_nothing() -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    create_with_pins(&path, 30);
    // A store made before markers is read, not adopted.
    std::fs::remove_file(path.join(pinvault_core::store_dir::MARKER)).expect("remove marker");
    let before = listing(&path);
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..3 {
        let reader = open(&path, OpenMode::ReadOnly).expect("read-only open");
        assert_eq!(count(&reader), 30);
    }
    assert_eq!(
        listing(&path),
        before,
        "a read-only open changed the store directory"
    );
    Outcome::Passed
}

fn read_only_mount() -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    create_with_pins(&path, 25);
    let mnt = tmp.path().join("ro");
    std::fs::create_dir(&mnt).expect("mkdir");
    let src = path.display().to_string();
    let target = mnt.display().to_string();
    if let Err(why) = support::mount(&["--bind", &src, &target]) {
        return Outcome::Skipped(why);
    }
    let _mounted = support::Mounted(mnt.clone());
    if let Err(why) = support::mount(&["-o", "remount,bind,ro", &target]) {
        return Outcome::Skipped(why);
    }
    assert!(
        std::fs::write(mnt.join("probe"), b"x").is_err(),
        "the bind mount is read-only"
    );
    let reader = open(&mnt, OpenMode::ReadOnly).expect("read-only open on a read-only mount");
    assert_eq!(count(&reader), 25);
    assert!(has_prefix(&reader, 25));
    drop(reader);
    match open(&mnt, OpenMode::MustExist) {
        Err(Error::Path {
            problem: PathProblem::ReadOnlyFilesystem,
            ..
        }) => {}
        other => panic!(
            "a writable open on a read-only mount: {:?}",
            other.map(|_| ())
        ),
    }
    Outcome::Passed
}

fn main() {
    support::child_main();
    support::run(
        "read_only",
        &[
            ("beside_a_writer_process", beside_a_writer_process),
            (
                "consistent_prefix_while_the_writer_writes",
                consistent_prefix_while_the_writer_writes,
            ),
            (
                "beside_a_writer_handle_in_this_process",
                beside_a_writer_handle_in_this_process,
            ),
            ("writes_nothing", writes_nothing),
            ("read_only_mount", read_only_mount),
        ],
    );
}
