//! What a directory backend does with a damaged store: the rule every embedded backend keeps.
//!
//! - A read-only open writes nothing, whatever it finds.
//! - A torn tail, which a crash in the middle of an append can leave, is repaired by the next
//!   writable open, and the bytes it drops are kept in a quarantine file in the store
//!   directory, never deleted. A read-only open reads the store up to the tear and leaves it.
//! - Damage anywhere else (a flipped byte inside the log) is `Error::Corrupt` naming the file,
//!   for writable and read-only opens alike, and the store is left as it was: getting past it
//!   is the user's decision (`pinvault state repair`).
//! - A store whose log is gone is `Error::Corrupt` too, never an empty or shortened store.
//!
//! A backend's test opts in with a [`LogKit`] that says which file its commits are appended to:
//!
//! ```text
//! mod fs {
//!     pinvault_conformance::damage_tests!(opener, pinvault_conformance::damage::LogFile::named("pins.log"));
//! }
//! ```
//!
//! A backend that cannot see a torn tail (its engine drops it silently) cannot pass these and
//! must say so in its documentation rather than run them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use pinvault_core::{Error, OpenMode, PinState, Precondition};

use crate::fixtures::full_pin;
use crate::store_dir::{snapshot, DirOpener};

/// Commits written before each damage: one pin each, so the log holds one record per commit.
const COMMITS: u64 = 12;

/// Where a directory backend appends its commits.
pub trait LogKit: Send + Sync {
    /// The file the newest commits of the closed store at `store` were appended to.
    fn last_log(&self, store: &Path) -> PathBuf;

    /// Files, relative to the store, that the engine rewrites on every open for its own
    /// diagnostics (RocksDB's `LOG`), which the "left as it was" comparisons skip.
    fn is_diagnostic(&self, _relative: &Path) -> bool {
        false
    }
}

/// A [`LogKit`] for a backend whose log is one file with a fixed name.
pub struct LogFile(&'static str);

impl LogFile {
    /// The log is `<store>/<name>`.
    pub fn named(name: &'static str) -> Self {
        LogFile(name)
    }
}

impl LogKit for LogFile {
    fn last_log(&self, store: &Path) -> PathBuf {
        store.join(self.0)
    }
}

/// A [`LogKit`] for RocksDB: the newest write-ahead log (`<number>.log`); `LOG` and its
/// rotations are diagnostics.
pub struct RocksWal;

impl LogKit for RocksWal {
    fn last_log(&self, store: &Path) -> PathBuf {
        let newest = std::fs::read_dir(store)
            .expect("read the store directory")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let number: u64 = name.strip_suffix(".log")?.parse().ok()?;
                Some((number, e.path()))
            })
            .max();
        newest.expect("a RocksDB store holds a write-ahead log").1
    }

    fn is_diagnostic(&self, relative: &Path) -> bool {
        relative.to_str().is_some_and(|n| n == "LOG" || n.starts_with("LOG.old"))
    }
}

fn tempdir(backend: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pinvault-damage-{backend}-"))
        .tempdir()
        .expect("tempdir")
}

async fn open(o: &dyn DirOpener, path: &Path, mode: OpenMode) -> Arc<dyn PinState> {
    o.open(path, mode)
        .await
        .unwrap_or_else(|e| panic!("{}: opening {} in {mode:?}: {e}", o.backend(), path.display()))
}

/// A closed store at `path` with pins 1..=COMMITS, one durable commit each.
async fn store_of_single_commits(o: &dyn DirOpener, path: &Path) {
    let store = open(o, path, OpenMode::CreateIfMissing).await;
    for n in 1..=COMMITS {
        store.put(full_pin(n), Precondition::Absent).await.expect("put");
    }
}

async fn pin_numbers(o: &dyn DirOpener, store: &dyn PinState) -> BTreeSet<u64> {
    let listed: Vec<_> = store
        .list(None)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{}: listing: {e}", o.backend()));
    let mut numbers = BTreeSet::new();
    for entry in listed {
        let n = (1..=COMMITS)
            .find(|n| full_pin(*n).cid == entry.pin.cid)
            .unwrap_or_else(|| panic!("{}: a pin nobody wrote: {}", o.backend(), entry.pin.cid));
        assert_eq!(entry.pin, full_pin(n), "{}: pin {n} reads back changed", o.backend());
        numbers.insert(n);
    }
    numbers
}

/// The store's files, without the engine's diagnostics.
fn files(kit: &dyn LogKit, path: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = snapshot(path);
    all.retain(|rel, _| !kit.is_diagnostic(rel));
    all
}

/// Panics with the names of the files that differ between `before` and the store now.
fn assert_unchanged(
    kit: &dyn LogKit,
    path: &Path,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    let now = files(kit, path);
    let names: BTreeSet<&PathBuf> = before.keys().chain(now.keys()).collect();
    let changed: Vec<String> = names
        .into_iter()
        .filter(|name| before.get(*name) != now.get(*name))
        .map(|name| match (before.get(name), now.get(name)) {
            (Some(_), None) => format!("{} removed", name.display()),
            (None, Some(_)) => format!("{} added", name.display()),
            _ => format!("{} changed", name.display()),
        })
        .collect();
    assert!(changed.is_empty(), "{what}: {}", changed.join(", "));
}

fn quarantined(path: &Path) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = std::fs::read_dir(path)
        .expect("read the store directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.contains("quarantine").then(|| {
                let size = walk_size(&e.path());
                (name, size)
            })
        })
        .collect();
    found.sort();
    found
}

fn walk_size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| walk_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// A read-only open reads every pin and changes no byte of the store.
pub async fn read_only_open_writes_nothing(o: &dyn DirOpener, kit: &dyn LogKit) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_of_single_commits(o, &path).await;
    let before = files(kit, &path);
    let store = open(o, &path, OpenMode::ReadOnly).await;
    assert_eq!(pin_numbers(o, &*store).await, (1..=COMMITS).collect(), "{}", o.backend());
    drop(store);
    assert_unchanged(
        kit,
        &path,
        &before,
        &format!("{}: a read-only open wrote to the store", o.backend()),
    );
}

/// Every file under `dir` (not directories) with its bytes, by relative path.
fn file_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read a store directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under the root").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read a store file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Leaves the store at `path` as a crash in the middle of appending its last commit would:
/// every file as it was once commit `COMMITS - 1` had returned, except the log, which holds
/// that state's log followed by all but the last 3 bytes of the last commit's record.
async fn crash_while_appending_the_last_commit(o: &dyn DirOpener, kit: &dyn LogKit, path: &Path) {
    let store = open(o, path, OpenMode::CreateIfMissing).await;
    for n in 1..COMMITS {
        store.put(full_pin(n), Precondition::Absent).await.expect("put");
    }
    let acknowledged = file_bytes(path);
    store.put(full_pin(COMMITS), Precondition::Absent).await.expect("put the last commit");
    drop(store);
    let log = kit.last_log(path);
    let relative = log.strip_prefix(path).expect("the log is in the store").to_path_buf();
    let before = acknowledged.get(&relative).unwrap_or_else(|| {
        panic!("{}: {} did not exist before the last commit", o.backend(), log.display())
    });
    let after = std::fs::read(&log).expect("read the log");
    assert!(
        after.len() > before.len() + 3 && after.starts_with(before),
        "{}: the last commit must append to {} ({} then {} bytes)",
        o.backend(),
        log.display(),
        before.len(),
        after.len()
    );
    std::fs::remove_dir_all(path).expect("clear the store");
    for (rel, bytes) in &acknowledged {
        let file = path.join(rel);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&file, bytes).expect("restore a file");
    }
    std::fs::write(&log, &after[..after.len() - 3]).expect("write the torn log");
}

/// A log whose last record was cut short by a crash before the commit returned: a read-only
/// open reads the commits before it and writes nothing; the next writable open drops the torn
/// record, keeps its bytes in a quarantine file, and the store takes writes.
pub async fn torn_tail_is_repaired_and_kept(o: &dyn DirOpener, kit: &dyn LogKit) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    crash_while_appending_the_last_commit(o, kit, &path).await;
    let torn = files(kit, &path);
    let before: BTreeSet<u64> = (1..COMMITS).collect();

    let reader = open(o, &path, OpenMode::ReadOnly).await;
    assert_eq!(pin_numbers(o, &*reader).await, before, "{}: read-only, torn", o.backend());
    drop(reader);
    assert_unchanged(
        kit,
        &path,
        &torn,
        &format!("{}: a read-only open repaired the tear", o.backend()),
    );
    assert!(quarantined(&path).is_empty(), "{}: a read-only open quarantined", o.backend());

    let store = open(o, &path, OpenMode::MustExist).await;
    assert_eq!(pin_numbers(o, &*store).await, before, "{}: after repair", o.backend());
    let kept = quarantined(&path);
    assert!(
        !kept.is_empty() && kept.iter().all(|(_, size)| *size > 0),
        "{}: the torn bytes must be kept in a quarantine file, found {kept:?}",
        o.backend()
    );
    store.put(full_pin(COMMITS), Precondition::Absent).await.expect("write after the repair");
    drop(store);
    let store = open(o, &path, OpenMode::MustExist).await;
    assert_eq!(
        pin_numbers(o, &*store).await,
        (1..=COMMITS).collect(),
        "{}: the write after the repair survives a reopen",
        o.backend()
    );
    assert_eq!(quarantined(&path), kept, "{}: a clean reopen quarantines nothing", o.backend());
}

/// A flipped byte in the middle of the log is `Corrupt` naming the log, for writable and
/// read-only opens, and the store is left byte for byte as it was.
pub async fn damage_inside_the_log_is_corrupt(o: &dyn DirOpener, kit: &dyn LogKit) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_of_single_commits(o, &path).await;
    let log = kit.last_log(&path);
    let mut bytes = std::fs::read(&log).expect("read the log");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&log, &bytes).expect("damage the log");
    let damaged = files(kit, &path);
    let log_name = log.file_name().and_then(|n| n.to_str()).expect("a log name").to_owned();
    for mode in [OpenMode::ReadOnly, OpenMode::MustExist, OpenMode::CreateIfMissing] {
        match o.open(&path, mode).await {
            Err(e @ Error::Corrupt { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(&log_name),
                    "{}: {mode:?}: {text:?} must name {log_name}",
                    o.backend()
                );
            }
            Err(other) => panic!("{}: {mode:?} must be Corrupt, got {other}", o.backend()),
            Ok(store) => {
                let numbers = pin_numbers(o, &*store).await;
                panic!("{}: {mode:?} opened a damaged store, pins {numbers:?}", o.backend())
            }
        }
        assert_unchanged(
            kit,
            &path,
            &damaged,
            &format!("{}: {mode:?} changed a damaged store", o.backend()),
        );
        // Let an engine that releases its lock in the background (sled) let go.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store whose log file is gone (deleted, or lost with a disk) knows it: every open is
/// `Corrupt`, never an empty or shortened store, and nothing is re-created.
pub async fn lost_log_is_corrupt(o: &dyn DirOpener, kit: &dyn LogKit) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_of_single_commits(o, &path).await;
    std::fs::remove_file(kit.last_log(&path)).expect("remove the log");
    let lost = files(kit, &path);
    for mode in [OpenMode::ReadOnly, OpenMode::MustExist, OpenMode::CreateIfMissing] {
        match o.open(&path, mode).await {
            Err(Error::Corrupt { .. }) => {}
            Err(other) => panic!("{}: {mode:?} must be Corrupt, got {other}", o.backend()),
            Ok(store) => {
                let numbers = pin_numbers(o, &*store).await;
                panic!(
                    "{}: {mode:?} opened a store that lost its log, pins {numbers:?}",
                    o.backend()
                )
            }
        }
        assert_unchanged(
            kit,
            &path,
            &lost,
            &format!("{}: {mode:?} changed a store that lost its log", o.backend()),
        );
    }
}

/// Defines one `#[tokio::test]` per damage check for the [`DirOpener`] `$opener` and the
/// [`LogKit`] `$kit`, in a module `damage`.
#[macro_export]
macro_rules! damage_tests {
    ($opener:expr, $kit:expr) => {
        $crate::__damage_tests_for! { ($opener, $kit)
            read_only_open_writes_nothing, torn_tail_is_repaired_and_kept,
            damage_inside_the_log_is_corrupt, lost_log_is_corrupt,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __damage_tests_for {
    ( ($opener:expr, $kit:expr) $( $check:ident ),* $(,)? ) => {
        #[allow(unused_imports)]
        mod damage {
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let opener = $opener;
                    let kit = $kit;
                    $crate::damage::$check(&opener, &kit).await;
                }
            )*
        }
    };
}
