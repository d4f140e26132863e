//! The fs backend against a hostile or damaged tree: planted symlinks (never followed, nothing
//! outside the root read or written), look-alike names kept on different paths, a torn tail of
//! the pin log (dropped; more in `damage.rs`), damage in the middle of it (refused, naming the offset), a second
//! instance on one root (refused), and compaction.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::TryStreamExt;
use pinvault_conformance::fixtures::{content, full_pin, object, set};
use pinvault_core::{
    Error, FaultInjector, ObjectKey, PinState, Precondition, Publisher, StagedObject,
};
use pinvault_fs::{published_object_path, published_set_path, DirOptions, FsBackend};

async fn open(path: &Path) -> pinvault_core::Result<FsBackend> {
    pinvault_fs::open(path, DirOptions::default(), FaultInjector::disabled()).await
}

async fn open_ok(path: &Path) -> FsBackend {
    open(path).await.unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Every entry under `dir`: relative path → content (files), `dir`, or the link's target.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(base).expect("under base").to_path_buf();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("link to {:?}", std::fs::read_link(&path).expect("readlink")),
                );
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(
                    rel,
                    format!(
                        "{} bytes {}",
                        bytes.len(),
                        hex::encode(pinvault_core::publish::sha256(&bytes))
                    ),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

async fn publish(store: &FsBackend, set_name: &str, names: &[&str]) -> Vec<StagedObject> {
    let mut staged = Vec::new();
    for name in names {
        let bytes = content(&format!("{set_name}/{name}"), 1000);
        staged.push(store.stage(&set(set_name), &object(name), bytes).await.expect("stage"));
    }
    store
        .finalize(&set(set_name), &staged, Bytes::from(format!("manifest of {set_name}")))
        .await
        .expect("finalize");
    staged
}

#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(result: pinvault_core::Result<T>, what: &str) -> String {
    match result {
        Err(Error::Corrupt { location, reason, .. }) => format!("{location}: {reason}"),
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

/// A symlink planted as a set directory, pointing at a genuine set directory outside the root,
/// is refused by every reader (if it were followed, the reads would succeed), and a finalize
/// of that set writes nothing outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_set_directory_is_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    // A genuine publication of set "evil", made in another store and copied outside.
    let donor = open_ok(&tmp.path().join("donor")).await;
    publish(&donor, "evil", &["x"]).await;
    let evil_dir = tmp.path().join("donor").join(published_set_path(&set("evil")));
    copy_dir(&evil_dir, &outside.join("evil"));
    drop(donor);
    let before = snapshot(&outside);

    let root = tmp.path().join("store");
    let store = open_ok(&root).await;
    publish(&store, "real", &["x"]).await;
    symlink(outside.join("evil"), root.join(published_set_path(&set("evil")))).expect("plant");

    let key = ObjectKey::new(set("evil"), object("x"));
    let why = assert_corrupt(store.publication(&set("evil")).await, "publication through a link");
    assert!(why.contains("symlink"), "{why}");
    assert_corrupt(store.head(&key).await, "head through a link");
    assert_corrupt(Publisher::get(&store, &key).await, "get through a link");
    assert_corrupt(Publisher::list(&store, "").try_collect::<Vec<_>>().await, "list of everything");
    assert_corrupt(Publisher::list(&store, "evil").try_collect::<Vec<_>>().await, "list of evil");
    let real: Vec<_> = Publisher::list(&store, "real/")
        .try_collect()
        .await
        .expect("a prefix the link is not under");
    assert_eq!(real.len(), 1);

    let staged =
        store.stage(&set("evil"), &object("y"), Bytes::from_static(b"y")).await.expect("stage");
    match store.finalize(&set("evil"), &[staged], Bytes::from_static(b"m")).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("finalize over a planted entry must be AlreadyExists, got {other:?}"),
    }
    assert_eq!(snapshot(&outside), before, "nothing outside the root may change");
}

/// Symlinks planted inside a set directory (an object file, the manifest) are refused, even
/// when they point at the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_inside_a_set_are_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let root = tmp.path().join("store");
    let store = open_ok(&root).await;
    publish(&store, "s", &["x", "y"]).await;

    let object_file = root.join(published_object_path(&set("s"), &object("x")));
    std::fs::copy(&object_file, outside.join("x")).expect("copy");
    std::fs::remove_file(&object_file).expect("rm");
    symlink(outside.join("x"), &object_file).expect("plant");
    let x = ObjectKey::new(set("s"), object("x"));
    assert_corrupt(Publisher::get(&store, &x).await, "get of an object file that is a link");
    let y = ObjectKey::new(set("s"), object("y"));
    assert_eq!(Publisher::get(&store, &y).await.expect("the other object"), content("s/y", 1000));

    let manifest = root.join(published_set_path(&set("s"))).join("manifest");
    std::fs::copy(&manifest, outside.join("manifest")).expect("copy");
    std::fs::remove_file(&manifest).expect("rm");
    symlink(outside.join("manifest"), &manifest).expect("plant");
    assert_corrupt(store.publication(&set("s")).await, "publication through a linked manifest");
    assert_corrupt(store.head(&y).await, "head through a linked manifest");
    assert_corrupt(Publisher::list(&store, "s/").try_collect::<Vec<_>>().await, "list");
}

/// A symlinked `staging/` (or `sets/`, or `pins.log`) is refused: while the store is open,
/// stage, abort and sweep fail without writing through it; a reopen fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_top_level_entries_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("staging")).expect("mkdir");
    std::fs::create_dir_all(outside.join("sets")).expect("mkdir");
    std::fs::write(outside.join("pins.log"), b"not yours").expect("write");
    let before = snapshot(&outside);
    let root = tmp.path().join("store");
    let store = open_ok(&root).await;
    let staged =
        store.stage(&set("s"), &object("a"), Bytes::from_static(b"a")).await.expect("stage");

    std::fs::rename(root.join("staging"), tmp.path().join("old-staging")).expect("move aside");
    symlink(outside.join("staging"), root.join("staging")).expect("plant");
    assert_corrupt(store.stage(&set("s"), &object("b"), Bytes::from_static(b"b")).await, "stage");
    assert_corrupt(
        store.finalize(&set("s"), std::slice::from_ref(&staged), Bytes::new()).await,
        "finalize",
    );
    assert_corrupt(store.abort(&[staged]).await, "abort");
    assert_corrupt(store.sweep(chrono::Utc::now()).await, "sweep");
    drop(store);
    assert_corrupt(open(&root).await, "reopen with a linked staging/");
    assert_eq!(snapshot(&outside), before, "nothing outside the root may change");

    for (entry, target) in [("sets", "sets"), ("pins.log", "pins.log")] {
        let root = tmp.path().join(format!("store-{entry}"));
        let store = open_ok(&root).await;
        store.put(full_pin(1), Precondition::Any).await.expect("put");
        drop(store);
        let aside = tmp.path().join(format!("aside-{entry}"));
        std::fs::rename(root.join(entry), &aside).expect("move aside");
        symlink(outside.join(target), root.join(entry)).expect("plant");
        let why = assert_corrupt(open(&root).await, &format!("reopen with a linked {entry}"));
        assert!(why.contains(entry), "the error names {entry}: {why}");
        assert_eq!(snapshot(&outside), before, "nothing outside the root may change ({entry})");
    }
}

/// Set `a/b` + object `c` and set `a` + object `b/c` print alike but live on different paths,
/// keep their own bytes, and list ordered by set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_keys_live_on_different_paths() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let store = open_ok(&root).await;
    let one = published_object_path(&set("a/b"), &object("c"));
    let two = published_object_path(&set("a"), &object("b/c"));
    assert_ne!(one, two, "the two keys must not share a path");
    for path in [&one, &two] {
        assert_eq!(path.components().count(), 3, "{path:?}: sets/<set>/<name>, one component each");
    }
    for (s, n) in [("a/b", "c"), ("a", "b/c")] {
        let staged = store
            .stage(&set(s), &object(n), Bytes::from(format!("set {s} object {n}")))
            .await
            .expect("stage");
        store.finalize(&set(s), &[staged], Bytes::new()).await.expect("finalize");
    }
    assert!(root.join(&one).is_file() && root.join(&two).is_file());
    for (s, n) in [("a/b", "c"), ("a", "b/c")] {
        let bytes = Publisher::get(&store, &ObjectKey::new(set(s), object(n))).await.expect("get");
        assert_eq!(bytes, Bytes::from(format!("set {s} object {n}")));
    }
    let listed: Vec<_> = Publisher::list(&store, "a/").try_collect().await.expect("list");
    let sets: Vec<_> = listed.iter().map(|m| m.key.set.to_string()).collect();
    assert_eq!(sets, ["a", "a/b"], "both listed, ordered by set");
}

fn log_len(store: &FsBackend) -> u64 {
    store.pins.store().engine().log_len()
}

/// Cutting a few bytes off the end of the log (a crash mid-append, before pins.seq recorded the
/// record) drops the last record at the next open, keeps everything before it, and the store
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let store = open_ok(&root).await;
    let v1 = store.put(full_pin(1), Precondition::Absent).await.expect("put 1");
    let after_first = log_len(&store);
    let seq_before_crash = std::fs::read(root.join("pins.seq")).expect("read pins.seq");
    store.put(full_pin(2), Precondition::Absent).await.expect("put 2");
    let after_second = log_len(&store);
    drop(store);
    std::fs::write(root.join("pins.seq"), seq_before_crash).expect("write pins.seq");
    let log = root.join("pins.log");
    assert_eq!(std::fs::metadata(&log).expect("stat").len(), after_second);
    let file = std::fs::OpenOptions::new().write(true).open(&log).expect("open log");
    file.set_len(after_second - 3).expect("truncate");
    drop(file);

    let store = open_ok(&root).await;
    assert_eq!(PinState::get(&store, &full_pin(1).cid).await.expect("pin 1 kept").version, v1);
    assert!(!store.has(&full_pin(2).cid).await.expect("has"), "the torn record is dropped whole");
    assert_eq!(log_len(&store), after_first, "the log is cut back to the last whole record");
    assert_eq!(std::fs::metadata(&log).expect("stat").len(), after_first);
    store.put(full_pin(3), Precondition::Absent).await.expect("put after recovery");
    drop(store);
    let store = open_ok(&root).await;
    assert!(store.has(&full_pin(3).cid).await.expect("has"));
    assert!(store.has(&full_pin(1).cid).await.expect("has"));
}

/// A flipped byte inside a record in the middle of the log (in its payload, or in its length)
/// fails the open with `Corrupt` naming the file and the record's offset, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_the_middle_is_corrupt_naming_the_offset() {
    for (label, delta) in [("payload", 12 + 5), ("length", 0), ("header checksum", 5)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("store");
        let store = open_ok(&root).await;
        store.put(full_pin(1), Precondition::Any).await.expect("put");
        let second = log_len(&store);
        store.put(full_pin(2), Precondition::Any).await.expect("put");
        store.put(full_pin(3), Precondition::Any).await.expect("put");
        drop(store);
        let log = root.join("pins.log");
        let mut bytes = std::fs::read(&log).expect("read log");
        let at = second as usize + delta;
        bytes[at] ^= if label == "length" { 0x80 } else { 0x01 };
        std::fs::write(&log, &bytes).expect("write log");
        match open(&root).await {
            Err(Error::Corrupt { location, reason, .. }) => {
                assert!(location.contains("pins.log"), "{label}: names the file: {location}");
                assert!(
                    location.contains(&format!("offset {second}")),
                    "{label}: names the damaged record's offset {second}: {location} ({reason})"
                );
            }
            other => panic!("{label}: a damaged middle record must be Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&log).expect("read log"), bytes, "{label}: nothing truncated");
    }
}

/// A second instance on a root that is open is `Unavailable`; once the first is dropped, the
/// root opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_of_one_root_is_unavailable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let first = open_ok(&root).await;
    match open(&root).await {
        Err(Error::Unavailable { reason, outcome_unknown: false, .. }) => {
            assert!(reason.contains("LOCK"), "{reason}")
        }
        other => panic!("a second open must be Unavailable, got {other:?}"),
    }
    match pinvault_fs::FsLogEngine::open(&root, &DirOptions::default()) {
        Err(Error::Unavailable { .. }) => {}
        other => panic!("the engine alone must be refused too, got {other:?}"),
    }
    first.put(full_pin(1), Precondition::Any).await.expect("the first instance still works");
    drop(first);
    let again = open_ok(&root).await;
    assert!(again.has(&full_pin(1).cid).await.expect("has"));
}

/// Rewriting one pin many times grows the log past 1 MiB and twice the live data; compaction
/// shrinks it, and the last version survives a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_is_compacted_and_survives_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let options = DirOptions { sync: false, ..DirOptions::default() };
    let store =
        pinvault_fs::open(&root, options.clone(), FaultInjector::disabled()).await.expect("open");
    let mut pin = full_pin(7);
    let mut largest = 0;
    let mut compacted = false;
    let mut last = None;
    for i in 0..2500 {
        pin.options.metadata.insert("filler".into(), format!("{i:0>800}"));
        last = Some(store.put(pin.clone(), Precondition::Any).await.expect("put"));
        let len = log_len(&store);
        compacted |= len < largest;
        largest = largest.max(len);
    }
    assert!(compacted, "the log never shrank (largest {largest} bytes)");
    assert!(log_len(&store) < 2 << 20, "the log stays near its threshold: {}", log_len(&store));
    drop(store);
    let store = pinvault_fs::open(&root, options, FaultInjector::disabled()).await.expect("reopen");
    let got = PinState::get(&store, &pin.cid).await.expect("get");
    assert_eq!((got.pin, Some(got.version)), (pin, last));
    let all: Vec<_> = PinState::list(&store, None).try_collect().await.expect("list");
    assert_eq!(all.len(), 1);
}
