//! `repair` (`pinvault state repair`) on RocksDB: a store that RocksDB cannot open because of
//! damage in the middle of its WAL, or a lost `CURRENT`, is repaired by RocksDB's `RepairDB`
//! after every file is kept in a quarantine directory, and opens afterwards with the commits
//! before the damage; a healthy store is left alone; a torn tail is repaired by the open.

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::{Error, PinState, Precondition};
use pinvault_rocksdb::DirOptions;
use support::{
    create, flip_byte, largest, open_existing, pin_count, put_pins, store_with_an_sst,
    store_with_commits_in_the_wal, PINS,
};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_wal_damage_is_repaired_with_the_originals_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = store_with_commits_in_the_wal(&path).await;
    let bytes = flip_byte(&wal, std::fs::metadata(&wal).expect("stat").len() / 2);
    assert!(
        matches!(open_existing(&path).await, Err(Error::Corrupt { .. })),
        "the damage fails the open"
    );

    let report = pinvault_rocksdb::repair(&path, DirOptions::default()).await.expect("repair");
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
        .find(|q| q.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-repair")))
        .unwrap_or_else(|| panic!("a quarantine directory in {report}"));
    assert!(quarantine.starts_with(&path) && quarantine.is_dir(), "{}", quarantine.display());
    let kept =
        std::fs::read(quarantine.join(wal.file_name().expect("name"))).expect("the WAL kept");
    assert_eq!(kept, bytes, "the damaged WAL is kept as it was");

    let store = open_existing(&path).await.expect("the repaired store opens");
    let survivors = pin_count(&store);
    assert!(survivors >= PINS as usize / 2 - 1 && survivors < PINS as usize, "{survivors} pins");
    for n in 1..(PINS / 2 - 1) {
        assert!(store.has(&full_pin(n).cid).await.expect("has"), "pin {n}, before the damage");
    }
    store.put(full_pin(PINS + 1), Precondition::Absent).await.expect("the store takes writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_current_is_rebuilt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    put_pins(&create(&path).await, 1..=PINS).await;
    std::fs::remove_file(path.join("CURRENT")).expect("remove CURRENT");
    assert!(matches!(open_existing(&path).await, Err(Error::Corrupt { .. })));
    let report = pinvault_rocksdb::repair(&path, DirOptions::default()).await.expect("repair");
    assert!(!report.is_clean(), "{report}");
    let store = open_existing(&path).await.expect("the repaired store opens");
    assert_eq!(pin_count(&store), PINS as usize, "every commit is in the WAL RepairDB replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_store_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    store_with_commits_in_the_wal(&path).await;
    let report = pinvault_rocksdb::repair(&path, DirOptions::default()).await.expect("repair");
    assert!(report.is_clean() && report.quarantined.is_empty(), "{report}");
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
    let report = pinvault_rocksdb::repair(&path, DirOptions::default()).await.expect("repair");
    assert!(report.actions.iter().any(|a| a.contains("torn WAL tail")), "{report}");
    assert_eq!(report.quarantined.len(), 1, "{report}");
    let store = open_existing(&path).await.expect("opens");
    assert_eq!(pin_count(&store), PINS as usize - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_store_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("nothing");
    match pinvault_rocksdb::repair(&missing, DirOptions::default()).await {
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
    let sst = largest(&store_with_an_sst(&path).await);
    let bytes = flip_byte(&sst, std::fs::metadata(&sst).expect("stat").len() / 4);

    let report = pinvault_rocksdb::repair(&path, DirOptions::default()).await.expect("repair");
    let text = report.to_string();
    assert!(text.contains("RepairDB") && text.contains("verified: the store opens"), "{text}");
    let quarantine = &report.quarantined[0];
    let kept = std::fs::read(quarantine.join(sst.file_name().expect("name"))).expect("kept");
    assert_eq!(kept, bytes, "the damaged SST is kept as it was");
    assert!(report.quarantined.contains(&path.join("lost")), "{text}");
    let store = open_existing(&path).await.expect("the repaired store opens");
    store.store().engine().verify().expect("and reads back whole");
    store.put(full_pin(PINS + 1), Precondition::Absent).await.expect("the store takes writes");
}
