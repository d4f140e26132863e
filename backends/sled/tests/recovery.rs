//! What sled 0.34 does with a damaged log, pinned down so the crate docs stay true: sled's
//! recovery reads its log (`db`) up to the first record that fails its checksum or is cut
//! short, and opens with the records before it, without an error or a warning pinvault could
//! pass on. A torn tail (a crash) loses the unacknowledged last write, as it should; damage in
//! the middle of the log loses every later commit *silently*. This is the declared limitation
//! in the crate docs; if a sled release starts reporting it, these checks fail and the docs
//! must change.

use std::path::Path;

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{FaultInjector, OpenMode, PinState, Precondition};
use pinvault_sled::{DirOptions, SledEngine};

const PINS: u64 = 300;

fn store_with_pins(path: &Path) -> std::path::PathBuf {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let store = pinvault_sled::open(path, DirOptions::default(), FaultInjector::disabled())
            .await
            .expect("create");
        for n in 1..=PINS {
            store.put(full_pin(n), Precondition::Absent).await.expect("put");
        }
    });
    path.join("db")
}

/// Opens the damaged store (waiting out sled's lock release) and counts its pins.
fn pins_after(path: &Path) -> usize {
    let engine = SledEngine::open_with_mode(path, &DirOptions::default(), OpenMode::MustExist)
        .expect("sled opens a damaged log without an error");
    engine.scan(Table::Pins, b"", None, usize::MAX).expect("scan").len()
}

fn damage(path: &Path, f: impl FnOnce(&mut Vec<u8>)) -> usize {
    let db = store_with_pins(path);
    let mut bytes = std::fs::read(&db).expect("read log");
    f(&mut bytes);
    std::fs::write(&db, bytes).expect("write log");
    pins_after(path)
}

#[test]
fn torn_tail_drops_the_last_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cut = damage(&tmp.path().join("cut"), |b| b.truncate(b.len() - 5));
    assert_eq!(cut, PINS as usize - 1);
    let flipped = damage(&tmp.path().join("flip"), |b| {
        let at = b.len() - 10;
        b[at] ^= 0x5a;
    });
    assert_eq!(flipped, PINS as usize - 1);
}

#[test]
fn declared_limitation_mid_log_damage_silently_drops_later_commits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let survivors = damage(&tmp.path().join("mid"), |b| {
        let at = b.len() / 2;
        b[at] ^= 0x5a;
    });
    assert!(
        survivors < PINS as usize - 1,
        "sled now keeps {survivors} of {PINS} pins after mid-log damage: update the crate docs"
    );
}
