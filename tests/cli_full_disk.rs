//! The `pinvault` binary on filesystems that refuse writes, for real (mounts, not mocks):
//!
//! * `read_only_mount_fs`: an fs store bind-mounted read-only is read (`pin ls`, `state
//!   digest`, `state verify`) as on its writable mount, and `pin add` exits 13;
//! * `full_disk_<backend>`: on a 4 MiB tmpfs, `state import` that fills the disk exits 14 naming
//!   "no space left on device" and what it committed (pins, batches, last receipt sequence);
//!   reads still work, and so does a small write into the space the failed batch gave back
//!   (fs: even though the compaction that is due cannot get space: it is skipped, not fatal);
//!   once a filler file is deleted, the store reopens, `state verify` passes, `state digest`
//!   is what was acknowledged, a further write works (and fs compacts its log).
//!
//! Mounting needs root (or CAP_SYS_ADMIN). The binary tries one small mount first
//! (`pinvault_conformance::mounts::run`); where it
//! is refused, it prints `SKIPPED: <reason>` and every check is reported *ignored* by the test
//! harness (libtest-mimic, `harness = false`, because libtest cannot decide `#[ignore]` at run
//! time), so `scripts/test.sh` counts them as skipped, never as passed.
//!
//! Run with `cargo test -p pinvault --features fs,rocksdb --test cli_full_disk`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use pinvault_conformance::mounts;

mod common;
use common::*;

fn main() {
    // Whether this process may mount is decided once, by `mounts::run`'s probe mount: where
    // it may not, every check is reported as ignored (with the reason on stdout), never as
    // passed.
    let mut checks: Vec<mounts::Check> = Vec::new();
    if cfg!(feature = "fs") {
        checks.push(("read_only_mount_fs", true, read_only_mount_fs));
        checks.push(("full_disk_fs", true, || full_disk("fs")));
    }
    if cfg!(feature = "rocksdb") {
        checks.push(("full_disk_rocksdb", true, || full_disk("rocksdb")));
    }
    mounts::run(&checks);
}

/// An ipfs-cluster NDJSON export of pins `first..first + count`, ~300 bytes each in a store.
fn export_file(dir: &Path, first: u64, count: u64) -> PathBuf {
    let path = dir.join(format!("pins-{first}-{count}.ndjson"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for n in first..first + count {
        let line = serde_json::json!({
            "replication_factor_min": 0, "replication_factor_max": 0,
            "name": format!("pin-{n}-{}", "x".repeat(150)), "mode": "recursive", "shard_size": 0,
            "user_allocations": null, "expire_at": "0001-01-01T00:00:00Z", "metadata": null,
            "pin_update": null, "origins": [], "cid": cid(n), "type": "pin", "allocations": [],
            "max_depth": -1, "reference": null, "timestamp": "2026-01-01T00:00:00Z"
        });
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    path
}

fn read_only_mount_fs() {
    let dir = scratch_dir("ro");
    let (store, view) = (dir.join("store"), dir.join("view"));
    std::fs::create_dir_all(&view).unwrap();
    let writable = url("fs", &store);
    let input = export_file(&dir, 0, 50);
    expect(&writable, &["state", "import", input.to_str().unwrap()], 0);
    // A writer left a LOCK; remove it, so the mount shows a store no writer ever locked there.
    std::fs::remove_file(store.join("LOCK")).unwrap();
    let before = (listed_cids(&writable), digest(&writable));
    let _mounted = mounts::bind_read_only(&store, &view).unwrap_or_else(|e| panic!("{e}"));
    let read_only = url("fs", &view);
    assert_eq!(
        (listed_cids(&read_only), digest(&read_only)),
        before,
        "read as on the writable mount"
    );
    expect(&read_only, &["state", "verify"], 0);
    expect(&read_only, &["pin", "get", &cid(7)], 0);
    let run = expect(&read_only, &["pin", "add", &cid(1000)], 13);
    assert!(run.stderr.contains("read-only filesystem"), "{}", run.stderr);
    assert!(!store.join("LOCK").exists(), "the readers wrote nothing");
}

/// Writes `path` until the filesystem is full, then gives `leave` bytes back.
fn fill(path: &Path, leave: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(leave)).unwrap();
    file.sync_all().unwrap();
}

/// A number after `word` in `text` (`"... 1200 pins committed"` → `number_before(.., " pins")`).
fn number_before(text: &str, word: &str) -> u64 {
    let at = text.find(word).unwrap_or_else(|| panic!("{word:?} in {text}"));
    let digits: String =
        text[..at].chars().rev().take_while(|c| c.is_ascii_digit()).collect::<String>();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

fn full_disk(backend: &str) {
    const PINS: u64 = 3900;
    let dir = scratch_dir(&format!("full-{backend}"));
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let _mounted = mounts::tmpfs(&disk, "4m").unwrap_or_else(|e| panic!("{e}"));
    let store = disk.join("store");
    let url = url(backend, &store);
    let input = export_file(&dir, 0, PINS);
    let input = input.to_str().unwrap();
    let log = store.join("pins.log");
    let log_len = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);

    // Twice the same pins: the fs log holds them twice (dead data), not yet due for compaction.
    for _ in 0..2 {
        expect(&url, &["state", "import", input, "--batch-size", "100"], 0);
    }
    let filler = disk.join("filler");
    fill(&filler, 768 << 10);

    // The third import runs out of space part-way: exit 14, with what it committed. On fs the
    // same pins again (dead data, so a compaction falls due and cannot get space); RocksDB
    // compresses its tables, so it gets more pins than it has space for.
    let (third_first, third_count) = if backend == "fs" { (0, PINS) } else { (PINS + 3, 40_000) };
    let third = export_file(&dir, third_first, third_count);
    let run =
        expect(&url, &["state", "import", third.to_str().unwrap(), "--batch-size", "100"], 14);
    let message = run.stderr;
    assert!(message.contains("no space left on device"), "{message}");
    assert!(message.contains("stopped after"), "{message}");
    let committed = number_before(&message, " pins committed");
    let batches = number_before(&message, " batches");
    assert!(committed > 0 && committed < third_count, "part of it was committed: {message}");
    assert_eq!(committed, batches * 100, "{message}");
    assert!(message.contains("last receipt sequence"), "{message}");

    // Reads work on the full disk; so does a small write (the failed batch's space came back).
    let new_pins = if backend == "fs" { 0 } else { committed };
    assert_eq!(listed_cids(&url).len() as u64, PINS + new_pins);
    let full_before = log_len();
    if backend == "fs" {
        expect(&url, &["pin", "add", &cid(PINS + 1)], 0);
    } else {
        // RocksDB's writable open flushes the recovered WAL into a new table first, which
        // needs space: on a full disk even a small write exits 14 (and writes nothing).
        let run = expect(&url, &["pin", "add", &cid(PINS + 1)], 14);
        assert!(run.stderr.contains("no space left on device"), "{}", run.stderr);
    }
    let small_write = u64::from(backend == "fs");
    let acknowledged = digest(&url);
    assert!(
        acknowledged.starts_with(&format!("{} pins", PINS + new_pins + small_write)),
        "{acknowledged}"
    );
    if backend == "fs" {
        assert!(log_len() >= full_before, "no compaction could run on the full disk");
        assert!(!store.join("pins.log.tmp").exists(), "a failed compaction leaves nothing");
    }

    // Space again: the store reopens, holds what was acknowledged, and takes writes.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(digest(&url), acknowledged, "reopened after freeing space");
    expect(&url, &["state", "verify"], 0);
    let before_write = log_len();
    expect(&url, &["pin", "add", &cid(PINS + 2)], 0);
    if backend == "fs" {
        assert!(
            log_len() < before_write,
            "the compaction skipped on the full disk ran once there was space \
             ({before_write} -> {} bytes)",
            log_len()
        );
    }
    expect(&url, &["state", "verify"], 0);
    let after = digest(&url);
    assert!(after.starts_with(&format!("{} pins", PINS + new_pins + small_write + 1)), "{after}");
    let cids = listed_cids(&url);
    let acknowledged_cids = (0..PINS)
        .chain([PINS + 1, PINS + 2].into_iter().skip(1 - small_write as usize))
        .chain(third_first..third_first + new_pins)
        .map(cid)
        .collect::<BTreeSet<_>>();
    assert_eq!(cids, acknowledged_cids, "exactly the acknowledged pins");
}
