//! `repair` (`pinvault state repair`) on RocksDB: a store that RocksDB cannot open because of
//! damage in the middle of its WAL, or a lost `CURRENT`, is repaired by RocksDB's `RepairDB`
//! after every file is kept in a quarantine directory, and opens afterwards with the commits
//! before the damage; a healthy store is left alone; a torn tail is repaired by the open.

use std::path::{Path, PathBuf};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{Error, FaultInjector, OpenMode, PinState, Precondition};
use pinvault_rocksdb::{RocksBackend, RocksOptions};

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

fn pins(store: &RocksBackend) -> usize {
    store
        .store()
        .engine()
        .scan(Table::Pins, b"", None, usize::MAX)
        .expect("scan")
        .len()
}

/// A store whose newest WAL holds `PINS` single-pin commits; returns the WAL.
async fn store_with_commits_in_the_wal(path: &Path) -> PathBuf {
    drop(
        pinvault_rocksdb::open(path, RocksOptions::default(), FaultInjector::disabled())
            .await
            .expect("create"),
    );
    let store = open(path).await.expect("reopen");
    for n in 1..=PINS {
        store
            .put(full_pin(n), Precondition::Absent)
            .await
            .expect("put");
    }
    drop(store);
    std::fs::read_dir(path)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("a WAL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_wal_damage_is_repaired_with_the_originals_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = store_with_commits_in_the_wal(&path).await;
    let mut bytes = std::fs::read(&wal).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&wal, &bytes).expect("write");
    assert!(
        matches!(open(&path).await, Err(Error::Corrupt { .. })),
        "the damage fails the open"
    );

    let report = pinvault_rocksdb::repair(&path, RocksOptions::default())
        .await
        .expect("repair");
    assert!(!report.is_clean(), "{report}");
    assert_eq!(report.backend, "rocksdb");
    let text = report.to_string();
    assert!(
        text.contains("skipping damaged records")
            && text.contains("dropping")
            && text.contains("verified: the store opens"),
        "{text}"
    );
    let quarantine = report
        .quarantined
        .iter()
        .find(|q| {
            q.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-repair"))
        })
        .unwrap_or_else(|| panic!("a quarantine directory in {report}"));
    assert!(
        quarantine.starts_with(&path) && quarantine.is_dir(),
        "{}",
        quarantine.display()
    );
    let kept =
        std::fs::read(quarantine.join(wal.file_name().expect("name"))).expect("the WAL kept");
    assert_eq!(kept, bytes, "the damaged WAL is kept as it was");

    let store = open(&path).await.expect("the repaired store opens");
    let survivors = pins(&store);
    assert!(
        survivors >= PINS as usize / 2 - 1 && survivors < PINS as usize,
        "{survivors} pins"
    );
    for n in 1..(PINS / 2 - 1) {
        assert!(
            store.has(&full_pin(n).cid).await.expect("has"),
            "pin {n}, before the damage"
        );
    }
    store
        .put(full_pin(PINS + 1), Precondition::Absent)
        .await
        .expect("the store takes writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_current_is_rebuilt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let store = pinvault_rocksdb::open(&path, RocksOptions::default(), FaultInjector::disabled())
        .await
        .expect("create");
    for n in 1..=PINS {
        store
            .put(full_pin(n), Precondition::Absent)
            .await
            .expect("put");
    }
    drop(store);
    std::fs::remove_file(path.join("CURRENT")).expect("remove CURRENT");
    assert!(matches!(open(&path).await, Err(Error::Corrupt { .. })));
    let report = pinvault_rocksdb::repair(&path, RocksOptions::default())
        .await
        .expect("repair");
    assert!(!report.is_clean(), "{report}");
    let store = open(&path).await.expect("the repaired store opens");
    assert_eq!(
        pins(&store),
        PINS as usize,
        "every commit is in the WAL RepairDB replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_store_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    store_with_commits_in_the_wal(&path).await;
    let report = pinvault_rocksdb::repair(&path, RocksOptions::default())
        .await
        .expect("repair");
    assert!(
        report.is_clean() && report.quarantined.is_empty(),
        "{report}"
    );
    assert!(report.to_string().contains("nothing to repair"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_repaired_by_the_open_and_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = store_with_commits_in_the_wal(&path).await;
    let len = std::fs::metadata(&wal).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open")
        .set_len(len - 5)
        .expect("cut");
    let report = pinvault_rocksdb::repair(&path, RocksOptions::default())
        .await
        .expect("repair");
    assert!(
        report.actions.iter().any(|a| a.contains("torn WAL tail")),
        "{report}"
    );
    assert_eq!(report.quarantined.len(), 1, "{report}");
    let store = open(&path).await.expect("opens");
    assert_eq!(pins(&store), PINS as usize - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_store_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("nothing");
    match pinvault_rocksdb::repair(&missing, RocksOptions::default()).await {
        Err(Error::NoStore { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(!missing.exists(), "repair creates nothing");
}

/// A damaged SST block: the store opens but does not read back whole, so repair gets to
/// RocksDB's `RepairDB`, which sets the damaged SST aside in `lost/`; the original is in the
/// quarantine directory, and the store then opens and reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_sst_goes_through_repairdb() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let store = pinvault_rocksdb::open(&path, RocksOptions::default(), FaultInjector::disabled())
        .await
        .expect("create");
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
    let sst = std::fs::read_dir(&path)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("an SST");
    let mut bytes = std::fs::read(&sst).expect("read");
    let at = bytes.len() / 4;
    bytes[at] ^= 0x5a;
    std::fs::write(&sst, &bytes).expect("write");

    let report = pinvault_rocksdb::repair(&path, RocksOptions::default())
        .await
        .expect("repair");
    let text = report.to_string();
    assert!(
        text.contains("RepairDB") && text.contains("verified: the store opens"),
        "{text}"
    );
    let quarantine = &report.quarantined[0];
    let kept = std::fs::read(quarantine.join(sst.file_name().expect("name"))).expect("kept");
    assert_eq!(kept, bytes, "the damaged SST is kept as it was");
    assert!(report.quarantined.contains(&path.join("lost")), "{text}");
    let store = open(&path).await.expect("the repaired store opens");
    store
        .store()
        .engine()
        .verify()
        .expect("and reads back whole");
    store
        .put(full_pin(PINS + 1), Precondition::Absent)
        .await
        .expect("the store takes writes");
}
