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
//! Mounting needs root (or CAP_SYS_ADMIN). The binary tries one small mount first; where it
//! is refused, it prints `SKIPPED: <reason>` and every check is reported *ignored* by the test
//! harness (libtest-mimic, `harness = false`, because libtest cannot decide `#[ignore]` at run
//! time), so `scripts/test.sh` counts them as skipped, never as passed.
//!
//! Run with `cargo test -p pinvault --features fs,rocksdb --test cli_full_disk`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    // Whether this process may mount is decided once, by trying: where it may not, every
    // check is reported as ignored (with the reason on stdout), never as passed.
    let refused = mount_refused();
    if let Some(reason) = &refused {
        println!("SKIPPED: mounting is refused here, so the checks are ignored: {reason}");
    }
    let mut trials = Vec::new();
    if cfg!(feature = "fs") {
        trials.push(libtest_mimic::Trial::test("read_only_mount_fs", || Ok(read_only_mount_fs())));
        trials.push(libtest_mimic::Trial::test("full_disk_fs", || Ok(full_disk("fs"))));
    }
    if cfg!(feature = "rocksdb") {
        trials.push(libtest_mimic::Trial::test("full_disk_rocksdb", || Ok(full_disk("rocksdb"))));
    }
    let trials = trials.into_iter().map(|t| t.with_ignored_flag(refused.is_some())).collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Why this process may not mount a tmpfs, found by mounting (and unmounting) a small one.
fn mount_refused() -> Option<String> {
    let probe = scratch("mount-probe");
    match mount(&["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.to_str()?]) {
        Ok(()) => {
            drop(Mounted(probe));
            None
        }
        Err(reason) => Some(reason),
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pinvault(url: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_pinvault"))
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("PINVAULT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("pinvault starts");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `pinvault` and asserts its exit code; returns its stdout.
fn expect(url: &str, args: &[&str], code: i32) -> Run {
    let run = pinvault(url, args);
    assert_eq!(run.code, code, "{url} {args:?}: stdout {:?}, stderr {:?}", run.stdout, run.stderr);
    run
}

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-full-disk-{}-{n}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `mount` with `args`; `Err` carries what it said.
fn mount(args: &[&str]) -> Result<(), String> {
    let out =
        Command::new("mount").args(args).output().map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Unmounts its directory when dropped, so a failing check leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A CIDv1 (raw, sha2-256) whose digest bytes spell `n`: distinct, valid, no hashing needed.
fn cid(n: u64) -> String {
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.resize(4 + 32, 0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::from("b");
    let (mut acc, mut bits) = (0u32, 0);
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
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

fn url(backend: &str, path: &Path) -> String {
    format!("{backend}://{}", path.display())
}

fn listed_cids(url: &str) -> BTreeSet<String> {
    let run = expect(url, &["--json", "pin", "ls"], 0);
    run.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["pin"]["cid"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn digest(url: &str) -> String {
    expect(url, &["state", "digest"], 0).stdout.trim().to_owned()
}

fn read_only_mount_fs() {
    let dir = scratch("ro");
    let (store, view) = (dir.join("store"), dir.join("view"));
    std::fs::create_dir_all(&view).unwrap();
    let writable = url("fs", &store);
    let input = export_file(&dir, 0, 50);
    expect(&writable, &["state", "import", input.to_str().unwrap()], 0);
    // A writer left a LOCK; remove it, so the mount shows a store no writer ever locked there.
    std::fs::remove_file(store.join("LOCK")).unwrap();
    let before = (listed_cids(&writable), digest(&writable));
    if let Err(e) = mount(&["--bind", store.to_str().unwrap(), view.to_str().unwrap()]) {
        panic!("{e}");
    }
    let _mounted = Mounted(view.clone());
    if let Err(e) = mount(&["-o", "remount,bind,ro", view.to_str().unwrap()]) {
        panic!("{e}");
    }
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
    let dir = scratch(&format!("full-{backend}"));
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    if let Err(e) = mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk.to_str().unwrap()]) {
        panic!("{e}");
    }
    let _mounted = Mounted(disk.clone());
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
