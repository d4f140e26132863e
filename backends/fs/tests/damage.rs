//! The recovery rule of the pin log (module docs of `log.rs`) against damage made by hand: a
//! torn tail a crash can leave (the record beyond what `pins.seq` records) is repaired on a
//! writable open, reported and quarantined, and only reported on a read-only open, which changes
//! no file; damage to committed records, committed records cut off, and a missing `pins.log` or
//! `pins.seq` are `Error::Corrupt` naming the file and offset, with every file left as it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::{Error, FaultInjector, PinState, Precondition, Result};
use pinvault_fs::{DirOptions, FsBackend};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata};

/// Collects the fields of every warning.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(fields.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Warnings {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Opens on this thread, collecting the warnings of the open.
fn open_watched(root: &Path, read_only: bool) -> (Result<FsBackend>, Vec<String>) {
    let warnings = Warnings::default();
    let opened = tracing::subscriber::with_default(warnings.clone(), || {
        let (path, options, faults) =
            (root.to_path_buf(), DirOptions::default(), FaultInjector::disabled());
        if read_only {
            pinvault_fs::open_blocking_read_only(path, options, faults)
        } else {
            pinvault_fs::open_blocking(path, options, faults)
        }
    });
    (opened, warnings.take())
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            out.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

fn quarantined(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files(dir)
        .into_iter()
        .filter_map(|(path, bytes)| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("pins.log.quarantine-").then_some((name, bytes))
        })
        .collect()
}

/// A store holding pins 1..=3, one commit each. Returns the runtime, the root, the log length
/// after each commit (index 0: before pin 1), and pins.seq as it was before the last commit.
struct Fixture {
    rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
    root: PathBuf,
    lens: Vec<u64>,
    seq_before_last: Vec<u8>,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let store =
        pinvault_fs::open_blocking(root.clone(), DirOptions::default(), FaultInjector::disabled())
            .expect("open");
    let mut lens = vec![store.pins.store().engine().log_len()];
    let mut seq_before_last = Vec::new();
    for i in 1..=3 {
        if i == 3 {
            seq_before_last = std::fs::read(root.join("pins.seq")).expect("read pins.seq");
        }
        rt.block_on(store.put(full_pin(i), Precondition::Absent)).expect("put");
        lens.push(store.pins.store().engine().log_len());
    }
    drop(store);
    Fixture { rt, _tmp: tmp, root, lens, seq_before_last }
}

impl Fixture {
    fn log(&self) -> PathBuf {
        self.root.join("pins.log")
    }

    /// Makes the last commit look unrecorded, as when a crash hit before pins.seq was updated.
    fn forget_last_commit(&self) {
        std::fs::write(self.root.join("pins.seq"), &self.seq_before_last).expect("write pins.seq");
    }

    fn has(&self, store: &FsBackend, i: u64) -> bool {
        self.rt.block_on(store.has(&full_pin(i).cid)).expect("has")
    }
}

/// The damage done to the last record (pin 3's commit), starting at `start`.
#[derive(Clone, Copy, Debug)]
enum LastRecord {
    FlipPayload,
    FlipLength,
    CutShort,
}

impl LastRecord {
    const ALL: [LastRecord; 3] =
        [LastRecord::FlipPayload, LastRecord::FlipLength, LastRecord::CutShort];

    fn apply(self, log: &Path, start: u64) {
        let mut bytes = std::fs::read(log).expect("read log");
        match self {
            LastRecord::FlipPayload => bytes[start as usize + 12 + 3] ^= 0x01,
            LastRecord::FlipLength => bytes[start as usize] ^= 0x80,
            LastRecord::CutShort => bytes.truncate(bytes.len() - 3),
        }
        std::fs::write(log, &bytes).expect("write log");
    }
}

#[track_caller]
fn assert_corrupt_at(opened: Result<FsBackend>, file: &str, offset: u64, label: &str) {
    match opened {
        Err(Error::Corrupt { location, reason, .. }) => {
            assert!(location.contains(file), "{label}: names {file}: {location} ({reason})");
            assert!(
                location.contains(&format!("offset {offset}")),
                "{label}: names offset {offset}: {location} ({reason})"
            );
        }
        Err(other) => panic!("{label}: expected Corrupt, got {other}"),
        Ok(_) => panic!("{label}: expected Corrupt, the store opened"),
    }
}

/// A last record torn by a crash (its commit not yet in pins.seq): a read-only open reads the
/// records before it, warns with the byte range, and changes no file; a writable open
/// truncates it, keeps its bytes in a quarantine file, warns, and the store goes on.
#[test]
fn torn_unrecorded_last_record_is_repaired_quarantined_and_reported() {
    for damage in LastRecord::ALL {
        let label = format!("{damage:?}");
        let f = fixture();
        f.forget_last_commit();
        damage.apply(&f.log(), f.lens[2]);
        let before = files(&f.root);
        let torn = before[&f.log()][f.lens[2] as usize..].to_vec();
        let range = format!("{}..{}", f.lens[2], f.lens[2] + torn.len() as u64);

        let (opened, warnings) = open_watched(&f.root, true);
        let store = opened.unwrap_or_else(|e| panic!("{label}: read-only open: {e}"));
        assert!(f.has(&store, 2) && !f.has(&store, 3), "{label}: reads the valid prefix");
        assert!(
            warnings.iter().any(|w| w.contains(&range) && w.contains("records_dropped=1")),
            "{label}: read-only open warns with the range {range}: {warnings:?}"
        );
        let refused = f.rt.block_on(store.put(full_pin(9), Precondition::Absent));
        assert!(matches!(refused, Err(Error::Unsupported { .. })), "{label}: {refused:?}");
        drop(store);
        assert_eq!(files(&f.root), before, "{label}: a read-only open changes no file");

        let (opened, warnings) = open_watched(&f.root, false);
        let store = opened.unwrap_or_else(|e| panic!("{label}: writable open: {e}"));
        assert!(f.has(&store, 1) && f.has(&store, 2) && !f.has(&store, 3), "{label}");
        assert_eq!(
            store.pins.store().engine().log_len(),
            f.lens[2],
            "{label}: cut back to the last record"
        );
        let kept = quarantined(&f.root);
        assert_eq!(kept.len(), 1, "{label}: one quarantine file");
        assert_eq!(kept[0].1, torn, "{label}: the quarantine holds the dropped bytes");
        assert!(kept[0].0.ends_with(&format!("-{}", f.lens[2])), "{label}: {}", kept[0].0);
        assert!(
            warnings.iter().any(|w| w.contains(&range)
                && w.contains("records_dropped=1")
                && w.contains(&kept[0].0)),
            "{label}: warns with the range and the quarantine file: {warnings:?}"
        );
        f.rt.block_on(store.put(full_pin(4), Precondition::Absent)).expect("put after repair");
        drop(store);
        let (opened, warnings) = open_watched(&f.root, false);
        let store = opened.unwrap_or_else(|e| panic!("{label}: reopen: {e}"));
        assert!(f.has(&store, 4) && f.has(&store, 2), "{label}");
        assert!(warnings.is_empty(), "{label}: a repaired store opens quietly: {warnings:?}");
        assert_eq!(quarantined(&f.root).len(), 1, "{label}: the quarantine is never deleted");
    }
}

/// The same damage to a committed last record (pins.seq records it) is not something a crash
/// leaves: Corrupt at the record's offset, on both opens, with every file left as it was.
#[test]
fn damaged_committed_last_record_is_corrupt() {
    for damage in LastRecord::ALL {
        let label = format!("{damage:?}");
        let f = fixture();
        damage.apply(&f.log(), f.lens[2]);
        let before = files(&f.root);
        for read_only in [true, false] {
            let (opened, _) = open_watched(&f.root, read_only);
            assert_corrupt_at(opened, "pins.log", f.lens[2], &format!("{label} ro={read_only}"));
            assert_eq!(files(&f.root), before, "{label}: nothing changed");
        }
    }
}

/// Whole committed records cut off the end: Corrupt at the new end of the log, unchanged.
#[test]
fn committed_records_cut_off_the_end_are_corrupt() {
    let f = fixture();
    let file = std::fs::OpenOptions::new().write(true).open(f.log()).expect("open log");
    file.set_len(f.lens[1]).expect("truncate");
    drop(file);
    let before = files(&f.root);
    for read_only in [true, false] {
        let (opened, _) = open_watched(&f.root, read_only);
        assert_corrupt_at(opened, "pins.log", f.lens[1], &format!("ro={read_only}"));
        assert_eq!(files(&f.root), before);
    }
}

/// A byte flipped in a record followed by valid records: Corrupt at that record, unchanged,
/// even when pins.seq would allow a torn tail there.
#[test]
fn flip_in_the_middle_is_corrupt() {
    let f = fixture();
    f.forget_last_commit();
    let mut bytes = std::fs::read(f.log()).expect("read");
    bytes[f.lens[1] as usize + 12 + 2] ^= 0x01;
    std::fs::write(f.log(), &bytes).expect("write");
    let before = files(&f.root);
    for read_only in [true, false] {
        let (opened, _) = open_watched(&f.root, read_only);
        assert_corrupt_at(opened, "pins.log", f.lens[1], &format!("ro={read_only}"));
        assert_eq!(files(&f.root), before);
    }
}

/// A store whose pins.log was deleted is Corrupt, not a new empty store; so is one whose
/// pins.seq was deleted (it could no longer tell a lost record from a torn one).
#[test]
fn missing_log_or_seq_is_corrupt() {
    for name in ["pins.log", "pins.seq"] {
        let f = fixture();
        std::fs::remove_file(f.root.join(name)).expect("remove");
        let before = files(&f.root);
        for read_only in [true, false] {
            match open_watched(&f.root, read_only).0 {
                Err(Error::Corrupt { location, reason, .. }) => {
                    assert!(
                        location.contains(&f.root.display().to_string()),
                        "{location}: {reason}"
                    );
                    assert!(format!("{location} {reason}").contains(name), "{location}: {reason}");
                }
                Err(other) => panic!("{name} ro={read_only}: expected Corrupt, got {other}"),
                Ok(_) => panic!("{name} ro={read_only}: expected Corrupt, the store opened"),
            }
            assert_eq!(files(&f.root), before, "{name}: nothing re-created");
        }
    }
}
