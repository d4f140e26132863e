//! RocksDB damage and housekeeping: damage in the middle of the WAL fails the open as
//! `Corrupt` instead of silently dropping acknowledged commits (RocksDB's default
//! point-in-time recovery would drop them, as the first check shows on a copy), a torn WAL
//! tail is dropped, a missing `CURRENT` or SST and a damaged SST block are `Corrupt`, and the
//! info log stays bounded however many times a store is opened.

use std::path::{Path, PathBuf};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{Error, FaultInjector, OpenMode, PinState, Precondition};
use pinvault_rocksdb::{RocksBackend, RocksOptions, INFO_LOG_FILES_KEPT};

const PINS: u64 = 300;

async fn open(path: &Path) -> pinvault_core::Result<RocksBackend> {
    pinvault_rocksdb::open_with_mode(
        path,
        RocksOptions::default(),
        OpenMode::MustExist,
        FaultInjector::disabled(),
    )
    .await
}

async fn create(path: &Path) -> RocksBackend {
    pinvault_rocksdb::open(path, RocksOptions::default(), FaultInjector::disabled())
        .await
        .expect("create")
}

/// The pins, read through the engine (a full scan of the pins column family).
async fn count(store: &RocksBackend) -> pinvault_core::Result<usize> {
    Ok(store
        .store()
        .engine()
        .scan(Table::Pins, b"", None, usize::MAX)?
        .len())
}

/// A store whose newest WAL holds `PINS` commits, one synced record each: the store is
/// created and reopened first (recovery flushes the first WAL to an SST), so the records land
/// in a fresh WAL that nothing flushes before the instance is dropped.
async fn store_with_commits_in_the_wal(path: &Path) -> PathBuf {
    drop(create(path).await);
    let store = open(path).await.expect("reopen");
    for n in 1..=PINS {
        store
            .put(full_pin(n), Precondition::Absent)
            .await
            .expect("put");
    }
    drop(store);
    files(path, ".log")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("a WAL")
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect()
}

fn flip_byte(file: &Path, at: u64) {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[at as usize] ^= 0x5a;
    std::fs::write(file, bytes).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// How many pins RocksDB's default (point-in-time) recovery would open the damaged copy with.
fn pins_with_point_in_time_recovery(path: &Path) -> usize {
    let mut options = pinvault_rocksdb::db_options();
    options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
    let db = rocksdb::DB::open_cf_descriptors(&options, path, pinvault_rocksdb::column_families())
        .expect("point-in-time recovery opens a damaged WAL");
    let pins = db
        .cf_handle(Table::Pins.name())
        .expect("pins column family");
    db.iterator_cf(pins, rocksdb::IteratorMode::Start).count()
}

/// A flipped byte in the middle of the WAL fails the open with `Corrupt` naming the store;
/// the default recovery mode would have opened the same bytes with commits missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_wal_damage_fails_the_open_as_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = store_with_commits_in_the_wal(&path).await;
    let len = std::fs::metadata(&wal).expect("stat").len();
    flip_byte(&wal, len / 2);
    let copy = tmp.path().join("copy");
    copy_dir(&path, &copy);
    let survivors = pins_with_point_in_time_recovery(&copy);
    assert!(
        survivors < PINS as usize,
        "the default recovery mode keeps {survivors} of {PINS} pins: the damage must cut commits"
    );
    match open(&path).await {
        Err(Error::Corrupt { location, reason }) => {
            assert_eq!(location, path.display().to_string());
            assert!(reason.contains("Corruption"), "{reason}");
        }
        Err(other) => panic!("mid-WAL damage must be Corrupt, got {other}"),
        Ok(store) => panic!(
            "opened with {:?} of {PINS} pins: a silent loss",
            count(&store).await
        ),
    }
    match open(&path).await {
        Err(Error::Corrupt { .. }) => {}
        other => panic!(
            "the damage is still reported on a second open: {:?}",
            other.map(|_| ())
        ),
    }
}

/// A WAL cut short inside its last record (a crash mid-append) opens: the torn record, never
/// acknowledged, is dropped and every earlier commit is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_wal_tail_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = store_with_commits_in_the_wal(&path).await;
    let len = std::fs::metadata(&wal).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open WAL");
    file.set_len(len - 5).expect("truncate");
    drop(file);
    let store = open(&path).await.expect("a torn tail opens");
    assert_eq!(
        count(&store).await.expect("list"),
        PINS as usize - 1,
        "only the torn commit is gone"
    );
    assert!(!store.has(&full_pin(PINS).cid).await.expect("has"));
    store
        .put(full_pin(PINS), Precondition::Absent)
        .await
        .expect("the store goes on");
}

/// A store whose `CURRENT` is gone is `Corrupt`, and is not re-created empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_current_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let store = create(&path).await;
    store
        .put(full_pin(1), Precondition::Absent)
        .await
        .expect("put");
    drop(store);
    std::fs::remove_file(path.join("CURRENT")).expect("remove CURRENT");
    for result in [
        open(&path).await,
        pinvault_rocksdb::open(&path, RocksOptions::default(), FaultInjector::disabled()).await,
    ] {
        match result {
            Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("CURRENT"), "{reason}"),
            Err(other) => panic!("a missing CURRENT must be Corrupt, got {other}"),
            Ok(_) => panic!("a store without CURRENT opened"),
        }
    }
    assert!(
        !path.join("CURRENT").exists(),
        "no new, empty database over the old files"
    );
}

/// Pins flushed to an SST; returns the SST files.
async fn store_with_an_sst(path: &Path) -> Vec<PathBuf> {
    let store = create(path).await;
    for n in 1..=PINS {
        store
            .put(full_pin(n), Precondition::Absent)
            .await
            .expect("put");
    }
    let db = store.store().engine().db();
    for table in Table::ALL {
        db.flush_cf(db.cf_handle(table.name()).expect("cf"))
            .expect("flush");
    }
    drop(store);
    let ssts = files(path, ".sst");
    assert!(!ssts.is_empty(), "the flush wrote SST files");
    ssts
}

/// A missing SST file is `Corrupt` naming the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sst_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    for sst in store_with_an_sst(&path).await {
        std::fs::remove_file(sst).expect("remove SST");
    }
    match open(&path).await {
        Err(Error::Corrupt { location, .. }) => assert_eq!(location, path.display().to_string()),
        Err(other) => panic!("a missing SST must be Corrupt, got {other}"),
        Ok(_) => panic!("a store missing its SST files opened"),
    }
}

/// A damaged block in an SST is `Corrupt` when the open or a read meets it, never wrong data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_sst_block_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let ssts = store_with_an_sst(&path).await;
    let largest = ssts
        .iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("an SST");
    let len = std::fs::metadata(largest).expect("stat").len();
    flip_byte(largest, len / 4);
    let result = match open(&path).await {
        Ok(store) => count(&store).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("Corruption"), "{reason}"),
        other => panic!("a damaged SST block must be Corrupt, got {other:?}"),
    }
}

/// RocksDB rotates its info `LOG` at every open; the store keeps at most
/// `INFO_LOG_FILES_KEPT` of them, however many opens (a CLI run is one open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_log_files_stay_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    drop(create(&path).await);
    for n in 1..=12 {
        let store = open(&path).await.expect("reopen");
        store
            .put(full_pin(n), Precondition::Any)
            .await
            .expect("put");
    }
    let logs: Vec<String> = std::fs::read_dir(&path)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("LOG"))
        .collect();
    assert!(logs.contains(&"LOG".to_owned()), "{logs:?}");
    assert!(
        logs.len() <= INFO_LOG_FILES_KEPT,
        "{} info log files: {logs:?}",
        logs.len()
    );
}
