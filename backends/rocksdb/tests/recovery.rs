//! RocksDB damage and housekeeping: damage in the middle of the WAL fails the open as
//! `Corrupt` instead of silently dropping acknowledged commits (RocksDB's default
//! point-in-time recovery would drop them, as the first check shows on a copy) and names the
//! WAL, a torn WAL tail is dropped, reported and kept in a quarantine file, a missing `CURRENT` or SST and a damaged SST block are `Corrupt`, and the
//! info log stays bounded however many times a store is opened.

use std::path::{Path, PathBuf};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{Error, FaultInjector, OpenMode, PinState, Precondition};
use pinvault_rocksdb::{DirOptions, RocksEngine, INFO_LOG_FILES_KEPT};
use support::{
    create, files, flip_byte, largest, open_existing, pin_count, put_pins, store_with_an_sst,
    store_with_commits_in_the_wal, PINS,
};

mod support;

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
    let pins = db.cf_handle(Table::Pins.name()).expect("pins column family");
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
    match open_existing(&path).await {
        Err(Error::Corrupt { location, reason, .. }) => {
            assert!(
                location.starts_with(&format!("{} at offset ", wal.display())),
                "the error names the WAL: {location}"
            );
            assert!(
                reason.contains("checksum") && reason.contains("nothing was changed"),
                "{reason}"
            );
        }
        Err(other) => panic!("mid-WAL damage must be Corrupt, got {other}"),
        Ok(store) => panic!("opened with {:?} of {PINS} pins: a silent loss", pin_count(&store)),
    }
    match open_existing(&path).await {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("the damage is still reported on a second open: {:?}", other.map(|_| ())),
    }
}

/// The quarantine files beside the WAL, with the offset their name records.
fn quarantine_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    files(dir, "")
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let (_, rest) = name.split_once(".log.quarantine-")?;
            let (_, from) = rest.split_once('-')?;
            Some((p, from.parse().ok()?))
        })
        .collect()
}

/// How a torn tail is made: cut a few bytes into the last record, or flip a byte in it.
#[derive(Clone, Copy, Debug)]
enum Tear {
    Cut,
    FlipInLastRecord,
}

fn tear(wal: &Path, how: Tear) -> Vec<u8> {
    let original = std::fs::read(wal).expect("read WAL");
    let len = original.len() as u64;
    match how {
        Tear::Cut => {
            let file = std::fs::OpenOptions::new().write(true).open(wal).expect("open WAL");
            file.set_len(len - 5).expect("truncate");
        }
        Tear::FlipInLastRecord => {
            flip_byte(wal, len - 10);
        }
    }
    original
}

/// A WAL whose last record is torn (cut short, or failing its checksum at the end of the file:
/// both a crash can leave) opens for writing: the torn record, never acknowledged, is dropped,
/// its bytes are kept in `<wal>.quarantine-<secs>-<offset>`, a warning names the WAL, the byte
/// range and the record count, and every earlier commit is there.
fn torn_tail_is_quarantined_and_reported(how: Tear) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = support::runtime().block_on(store_with_commits_in_the_wal(&path));
    let original = tear(&wal, how);
    let torn_len = std::fs::metadata(&wal).expect("stat").len();
    let (engine, warnings) = support::warnings(|| {
        RocksEngine::open_with_mode(&path, &DirOptions::default(), OpenMode::MustExist)
    });
    let engine = engine.expect("a torn tail opens");
    let quarantined = quarantine_files(&path);
    let [(file, from)] = quarantined.as_slice() else {
        panic!("{how:?}: one quarantine file, got {quarantined:?}")
    };
    let kept = std::fs::read(file).expect("read quarantine");
    let torn = match how {
        Tear::Cut => original[*from as usize..torn_len as usize].to_vec(),
        Tear::FlipInLastRecord => {
            let mut bytes = original[*from as usize..].to_vec();
            let at = bytes.len() - 10;
            bytes[at] ^= 0x5a;
            bytes
        }
    };
    assert_eq!(kept, torn, "{how:?}: the quarantine holds exactly the dropped bytes");
    assert_eq!(engine.open_quarantined(), std::slice::from_ref(file));
    assert!(engine.open_actions()[0].contains("1 record dropped"), "{:?}", engine.open_actions());
    let warning = warnings
        .iter()
        .find(|w| w.contains("torn WAL tail"))
        .unwrap_or_else(|| panic!("{how:?}: no warning among {warnings:?}"));
    for part in [
        wal.display().to_string(),
        format!("{from}..{torn_len}"),
        "records_dropped=1".to_owned(),
        file.display().to_string(),
    ] {
        assert!(warning.contains(&part), "{how:?}: the warning has {part}: {warning}");
    }
    let pins = engine.scan(Table::Pins, b"", None, usize::MAX).expect("scan").len();
    assert_eq!(pins, PINS as usize - 1, "{how:?}: only the torn commit is gone");
    drop(engine);
    let rt = support::runtime();
    let store = rt.block_on(open_existing(&path)).expect("reopen");
    assert!(!rt.block_on(store.has(&full_pin(PINS).cid)).expect("has"));
    rt.block_on(store.put(full_pin(PINS), Precondition::Absent)).expect("the store goes on");
    drop(store);
    assert_eq!(quarantine_files(&path).len(), 1, "{how:?}: a clean reopen quarantines nothing");
}

#[test]
fn torn_wal_tail_cut_short_is_quarantined_and_reported() {
    torn_tail_is_quarantined_and_reported(Tear::Cut);
}

#[test]
fn torn_wal_tail_failing_its_checksum_is_quarantined_and_reported() {
    torn_tail_is_quarantined_and_reported(Tear::FlipInLastRecord);
}

/// A read-only open of a store with a torn WAL tail reads the commits before it, warns, and
/// changes nothing: the WAL keeps its bytes and nothing is quarantined.
#[test]
fn read_only_open_leaves_a_torn_tail_in_place() {
    for how in [Tear::Cut, Tear::FlipInLastRecord] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("store");
        let wal = support::runtime().block_on(store_with_commits_in_the_wal(&path));
        tear(&wal, how);
        let damaged = std::fs::read(&wal).expect("read");
        let (engine, warnings) = support::warnings(|| {
            RocksEngine::open_with_mode(&path, &DirOptions::default(), OpenMode::ReadOnly)
        });
        let engine = engine.unwrap_or_else(|e| panic!("{how:?}: read-only open: {e}"));
        let pins = engine.scan(Table::Pins, b"", None, usize::MAX).expect("scan").len();
        assert_eq!(pins, PINS as usize - 1, "{how:?}");
        assert!(warnings.iter().any(|w| w.contains("left in place")), "{how:?}: {warnings:?}");
        drop(engine);
        assert_eq!(std::fs::read(&wal).expect("read"), damaged, "{how:?}: the WAL is unchanged");
        assert!(quarantine_files(&path).is_empty(), "{how:?}");
    }
}

/// A store whose `CURRENT` is gone is `Corrupt`, and is not re-created empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_current_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    put_pins(&create(&path).await, 1..=1).await;
    std::fs::remove_file(path.join("CURRENT")).expect("remove CURRENT");
    for result in [
        open_existing(&path).await,
        pinvault_rocksdb::open(&path, DirOptions::default(), FaultInjector::disabled()).await,
    ] {
        match result {
            Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("CURRENT"), "{reason}"),
            Err(other) => panic!("a missing CURRENT must be Corrupt, got {other}"),
            Ok(_) => panic!("a store without CURRENT opened"),
        }
    }
    assert!(!path.join("CURRENT").exists(), "no new, empty database over the old files");
}

/// A missing SST file is `Corrupt` naming the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sst_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    for sst in store_with_an_sst(&path).await {
        std::fs::remove_file(sst).expect("remove SST");
    }
    match open_existing(&path).await {
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
    let largest = largest(&ssts);
    let len = std::fs::metadata(&largest).expect("stat").len();
    flip_byte(&largest, len / 4);
    let result = match open_existing(&path).await {
        Ok(store) => store.store().engine().scan(Table::Pins, b"", None, usize::MAX).map(|_| ()),
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
        let store = open_existing(&path).await.expect("reopen");
        store.put(full_pin(n), Precondition::Any).await.expect("put");
    }
    let logs: Vec<String> = std::fs::read_dir(&path)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("LOG"))
        .collect();
    assert!(logs.contains(&"LOG".to_owned()), "{logs:?}");
    assert!(logs.len() <= INFO_LOG_FILES_KEPT, "{} info log files: {logs:?}", logs.len());
}

/// Large commits span several 32 KiB WAL blocks (First, Middle.., Last fragments): a WAL of
/// them walks clean, and a cut anywhere inside the last one (in a middle fragment, at a block
/// boundary, inside a fragment's header) is a torn tail that drops that commit only.
#[test]
fn torn_tail_inside_a_multi_block_record() {
    const BATCH: u64 = 1500;
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let rt = support::runtime();
    let wal = rt.block_on(async {
        drop(create(&path).await);
        let store = open_existing(&path).await.expect("reopen");
        let crash = support::CrashAfter::open(&path);
        for b in 0..3 {
            let batch = (1..=BATCH).fold(pinvault_core::Batch::new(), |batch, n| {
                batch.put(full_pin(b * BATCH + n), Precondition::Absent)
            });
            store.commit(batch).await.expect("commit");
        }
        drop(store);
        crash.leave();
        largest(&files(&path, ".log"))
    });
    let len = std::fs::metadata(&wal).expect("stat").len();
    assert!(len > 4 * 32 * 1024, "the commits span blocks ({len} bytes)");
    let clean = tmp.path().join("clean");
    copy_dir(&path, &clean);
    let engine = RocksEngine::open_with_mode(&clean, &DirOptions::default(), OpenMode::MustExist)
        .expect("a clean WAL of fragmented records opens");
    assert!(engine.open_actions().is_empty(), "{:?}", engine.open_actions());
    drop(engine);
    let last_block = (len - 1) / 32768 * 32768;
    for cut in [len - 1, len - 3000, last_block, last_block + 3, last_block - 32768 + 100] {
        let copy = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&path, &copy);
        let copy_wal = copy.join(wal.file_name().expect("name"));
        let file = std::fs::OpenOptions::new().write(true).open(&copy_wal).expect("open");
        file.set_len(cut).expect("cut");
        drop(file);
        let engine =
            RocksEngine::open_with_mode(&copy, &DirOptions::default(), OpenMode::MustExist)
                .unwrap_or_else(|e| panic!("cut at {cut} of {len}: {e}"));
        assert_eq!(engine.open_quarantined().len(), 1, "cut at {cut}");
        let pins = engine.scan(Table::Pins, b"", None, usize::MAX).expect("scan").len();
        assert_eq!(
            pins,
            2 * BATCH as usize,
            "cut at {cut} of {len}: the last commit is gone whole"
        );
    }
}

/// A store closed cleanly recorded the sequence it reached: a last record cut off afterwards is
/// not a crash's tear but the loss of a recorded commit, so every open is `Corrupt` naming
/// the record, and nothing is cut or quarantined.
#[test]
fn a_tail_cut_after_a_clean_close_is_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let wal = support::runtime().block_on(async {
        let store = create(&path).await;
        support::put_pins(&store, 1..=PINS).await;
        drop(store);
        largest(&files(&path, ".log"))
    });
    let original = tear(&wal, Tear::Cut);
    let cut = std::fs::read(&wal).expect("read");
    for mode in [OpenMode::ReadOnly, OpenMode::MustExist] {
        match RocksEngine::open_with_mode(&path, &DirOptions::default(), mode) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains(pinvault_rocksdb::REACHED_FILE), "{mode:?}: {reason}")
            }
            Err(other) => panic!("{mode:?}: must be Corrupt, got {other}"),
            Ok(_) => panic!("{mode:?}: opened a store that lost a recorded commit"),
        }
        assert!(std::fs::read(&wal).expect("read") == cut, "{mode:?}: the WAL is left as it was");
        assert!(quarantine_files(&path).is_empty(), "{mode:?}: nothing quarantined");
    }
    assert!(original.len() > cut.len());
}
