//! Read-only opens (`OpenMode::ReadOnly`): they take no lock, so they read a store another
//! process (a child running this binary) or another handle holds for writing, and see a
//! consistent prefix of its commits even while it writes; they write nothing to the store
//! directory (no LOG rotation, no marker adoption); and they work on a read-only bind mount,
//! where a writable open is `Error::Path` (read-only filesystem). Where `mount` is refused, the
//! mount check is reported ignored, with `SKIPPED: <reason>` (`pinvault_conformance::mounts`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use pinvault_conformance::fixtures::full_pin;
use pinvault_conformance::mounts;
use pinvault_core::{Error, OpenMode, PathProblem, PinState, Precondition};
use pinvault_rocksdb::{DirOptions, RocksBackend};
use support::{has_prefix, pin_count, Child};

fn open(path: &Path, mode: OpenMode) -> pinvault_core::Result<RocksBackend> {
    support::open_blocking(path, DirOptions::default(), mode)
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

fn beside_a_writer_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 50, false);
    let reader = open(&path, OpenMode::ReadOnly).expect("a read-only open beside a writer");
    assert_eq!(pin_count(&reader), 50, "the writer's committed pins");
    match support::runtime().block_on(reader.put(full_pin(51), Precondition::Absent)) {
        Err(Error::Unsupported { operation, .. }) => {
            assert!(operation.contains("read-only"), "{operation}")
        }
        other => panic!("a write through a read-only open must be refused: {other:?}"),
    }
    drop(reader);
    child.finish();
}

fn consistent_prefix_while_the_writer_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 10, true);
    let mut last = 0;
    for _ in 0..8 {
        let reader = open(&path, OpenMode::ReadOnly).expect("read-only open");
        let n = pin_count(&reader);
        assert!(n >= last, "a later open saw fewer pins ({n} < {last})");
        assert!(has_prefix(&reader, n), "a view of {n} pins is not pins 1..={n}");
        last = n;
        drop(reader);
        std::thread::sleep(Duration::from_millis(30));
    }
    child.finish();
    let after = open(&path, OpenMode::ReadOnly).expect("read-only open");
    assert!(pin_count(&after) >= last && last > 10, "the writer wrote on ({last})");
}

fn beside_a_writer_handle_in_this_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let writer = support::create_with_pins(&path, 20);
    let reader = open(&path, OpenMode::ReadOnly).expect("read-only beside a writer handle");
    assert_eq!(pin_count(&reader), 20);
    support::runtime()
        .block_on(writer.put(full_pin(21), Precondition::Absent))
        .expect("the writer goes on");
}

fn writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    drop(support::create_with_pins(&path, 30));
    // A store made before markers is read, not adopted.
    std::fs::remove_file(path.join(pinvault_core::store_dir::MARKER)).expect("remove marker");
    let before = listing(&path);
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..3 {
        let reader = open(&path, OpenMode::ReadOnly).expect("read-only open");
        assert_eq!(pin_count(&reader), 30);
    }
    assert_eq!(listing(&path), before, "a read-only open changed the store directory");
}

fn read_only_mount() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    drop(support::create_with_pins(&path, 25));
    let mnt = tmp.path().join("ro");
    std::fs::create_dir(&mnt).expect("mkdir");
    let _mounted = mounts::bind_read_only(&path, &mnt).unwrap_or_else(|e| panic!("{e}"));
    assert!(std::fs::write(mnt.join("probe"), b"x").is_err(), "the bind mount is read-only");
    let reader = open(&mnt, OpenMode::ReadOnly).expect("read-only open on a read-only mount");
    assert_eq!(pin_count(&reader), 25);
    assert!(has_prefix(&reader, 25));
    drop(reader);
    match open(&mnt, OpenMode::MustExist) {
        Err(Error::Path { problem: PathProblem::ReadOnlyFilesystem, .. }) => {}
        other => panic!("a writable open on a read-only mount: {:?}", other.map(|_| ())),
    }
}

fn main() {
    support::child_main();
    mounts::run(&[
        ("beside_a_writer_process", false, beside_a_writer_process),
        (
            "consistent_prefix_while_the_writer_writes",
            false,
            consistent_prefix_while_the_writer_writes,
        ),
        ("beside_a_writer_handle_in_this_process", false, beside_a_writer_handle_in_this_process),
        ("writes_nothing", false, writes_nothing),
        ("read_only_mount", true, read_only_mount),
    ]);
}
