//! The `pinvault` binary on store directories (fs, RocksDB, sled): a directory holding another
//! backend's store or unknown files exits 10 and is left untouched; a store made before
//! markers is adopted; a read-only command on a missing store exits 3 and creates nothing
//! (`--create` and writes create); permission denied, a file in the path and a read-only
//! filesystem exit 11, 12 and 13 (but fs and RocksDB reads need no write access: they work); RocksDB damage exits 8; RocksDB's info log stays bounded.
//!
//! Run with `cargo test -p pinvault --all-features --test cli_store_identity`; without the
//! `rocksdb` and `sled` features only the fs cases run.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::*;

const CID: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
const MARKER: &str = "PINVAULT-STORE";

/// The directory backends compiled into this build.
fn backends() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "fs") {
        out.push("fs");
    }
    if cfg!(feature = "rocksdb") {
        out.push("rocksdb");
    }
    if cfg!(feature = "sled") {
        out.push("sled");
    }
    out
}

/// `"an fs store"`, `"a rocksdb store"`, as messages say it.
fn a_store(backend: &str) -> String {
    format!("{} {backend} store", if backend == "fs" { "an" } else { "a" })
}

/// `pinvault --url <backend>://<path> <args>`, expecting exit `code`.
fn expect_in(backend: &str, path: &Path, args: &[&str], code: i32) -> Run {
    expect(&url(backend, path), args, code)
}

/// A store of `backend` at a fresh path, holding one pin.
fn store_with_a_pin(backend: &str) -> PathBuf {
    let path = scratch(backend);
    expect_in(backend, &path, &["pin", "add", CID], 0);
    assert!(path.join(MARKER).is_file(), "{backend}: the new store has a marker");
    path
}

/// Every file and directory under `dir` with its bytes (directories: empty).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn another_backends_store_exits_10_in_every_direction() {
    for creator in backends() {
        let path = store_with_a_pin(creator);
        for opener in backends().into_iter().filter(|b| *b != creator) {
            let before = snapshot(&path);
            for args in [
                &["pin", "ls"][..],
                &["pin", "add", CID],
                &["state", "import", "examples/pinset.ndjson"],
            ] {
                let run = expect_in(opener, &path, args, 10);
                assert!(
                    run.stderr.contains(&format!("is not {}", a_store(opener))),
                    "{}",
                    run.stderr
                );
                assert!(
                    run.stderr.contains(&format!("{} (PINVAULT-STORE", a_store(creator))),
                    "{}",
                    run.stderr
                );
                assert!(run.stdout.is_empty(), "{}", run.stdout);
            }
            assert_eq!(snapshot(&path), before, "{opener} on a {creator} store wrote nothing");
        }
        expect_in(creator, &path, &["pin", "get", CID], 0);
    }
}

#[test]
fn another_backends_store_made_before_markers_exits_10() {
    for creator in backends() {
        let path = store_with_a_pin(creator);
        std::fs::remove_file(path.join(MARKER)).unwrap();
        for opener in backends().into_iter().filter(|b| *b != creator) {
            let before = snapshot(&path);
            let run = expect_in(opener, &path, &["pin", "ls"], 10);
            let expected = format!("{} made before store markers", a_store(creator));
            assert!(run.stderr.contains(&expected), "{}", run.stderr);
            assert_eq!(snapshot(&path), before, "{opener} on a {creator} store wrote nothing");
        }
    }
}

#[test]
fn unknown_files_exit_10_and_stay_untouched() {
    let dir = scratch("home");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let before = snapshot(&dir);
    for backend in backends() {
        for args in [&["pin", "add", CID][..], &["pin", "ls"], &["--create", "pin", "ls"]] {
            let run = expect_in(backend, &dir, args, 10);
            assert!(run.stderr.contains("files pinvault did not write"), "{}", run.stderr);
            assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);
        }
    }
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn store_made_before_markers_is_adopted_once() {
    for backend in backends() {
        let path = store_with_a_pin(backend);
        std::fs::remove_file(path.join(MARKER)).unwrap();
        // A writer adopts the store (commands that only read change nothing on fs).
        expect_in(backend, &path, &["state", "migrate"], 0);
        let run = expect_in(backend, &path, &["pin", "ls"], 0);
        assert!(
            run.stdout.contains(CID),
            "{backend}: the adopted store keeps its pin: {}",
            run.stdout
        );
        let marker = std::fs::read_to_string(path.join(MARKER)).expect("the marker is written");
        let json: serde_json::Value = serde_json::from_str(&marker).unwrap();
        assert_eq!(json["backend"], backend);
        assert_eq!(json["origin"], "adopted");
        assert_eq!(json["pinvault_store"], 1);
        expect_in(backend, &path, &["pin", "get", CID], 0);
        assert_eq!(std::fs::read_to_string(path.join(MARKER)).unwrap(), marker, "written once");
    }
}

#[test]
fn read_only_commands_on_a_missing_store_exit_3_and_create_nothing() {
    let read_only: &[&[&str]] = &[
        &["pin", "ls"],
        &["pin", "get", CID],
        &["pin", "rm", CID],
        &["state", "export"],
        &["state", "verify"],
        &["state", "digest"],
        &["state", "migrate"],
        &["state", "copy", "--to", "memory:"],
        &["sweep"],
        &["object", "ls"],
        &["object", "get", "set", "name"],
    ];
    for backend in backends() {
        let base = scratch(backend);
        let missing = base.join("no/such/dir");
        for args in read_only {
            let run = expect_in(backend, &missing, args, 3);
            assert!(
                run.stderr.contains(&format!("no store at {}", missing.display())),
                "{backend} {args:?}: {}",
                run.stderr
            );
        }
        assert!(!base.exists(), "{backend}: nothing created");
        std::fs::create_dir_all(&base).unwrap();
        expect_in(backend, &base, &["pin", "ls"], 3);
        assert!(snapshot(&base).is_empty(), "{backend}: nothing written into an empty directory");

        let run = expect_in(backend, &missing, &["--create", "pin", "ls"], 0);
        assert!(run.stdout.is_empty());
        assert!(missing.join(MARKER).is_file(), "{backend}: --create made the store");
        expect_in(backend, &missing, &["pin", "ls"], 0);

        let files = scratch("object.bin");
        std::fs::write(&files, b"bytes").unwrap();
        let creators: &[&[&str]] = &[
            &["pin", "add", CID],
            &["state", "import", "examples/pinset.ndjson"],
            &["publish", "set", files.to_str().unwrap()],
        ];
        for (i, args) in creators.iter().enumerate() {
            let path = base.join(format!("created-{i}"));
            expect_in(backend, &path, args, 0);
            assert!(path.join(MARKER).is_file(), "{backend} {args:?} creates the store");
        }
    }
}

#[test]
fn a_file_in_the_path_exits_12() {
    for backend in backends() {
        let file = scratch("file");
        std::fs::write(&file, b"a file").unwrap();
        for path in [file.join("store"), file.clone()] {
            for args in [&["pin", "add", CID][..], &["pin", "ls"]] {
                let run = expect_in(backend, &path, args, 12);
                assert!(run.stderr.contains("not a directory"), "{backend}: {}", run.stderr);
            }
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"a file");
    }
}

/// The effective uid of this process (the owner of `/proc/self`).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").expect("/proc/self").uid()
}

#[test]
fn permission_denied_exits_11() {
    // A private directory, and a store in a directory the runner may read but not write. As
    // root (who may write anywhere) the binary runs as `nobody` from a copy it can execute.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = tmp.path().join("private");
    std::fs::create_dir(&private).unwrap();
    let stores = tmp.path().join("stores");
    std::fs::create_dir(&stores).unwrap();
    for backend in backends() {
        let store = stores.join(backend);
        expect_in(backend, &store, &["pin", "add", CID], 0);
    }
    let as_root = euid() == 0;
    let binary = if as_root {
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let copy = bin.join("pinvault");
        std::fs::copy(env!("CARGO_BIN_EXE_pinvault"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_pinvault"))
    };
    let lock = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    lock(&private, 0o700);
    if !as_root {
        lock(&private, 0o000);
    }
    let restricted = |args: &[&str]| {
        let mut command = Command::new(&binary);
        if as_root {
            command.uid(65534).gid(65534);
        }
        command.args(args).current_dir(tmp.path()).env_remove("PINVAULT_URL");
        run_with_stdin(command, "")
    };
    for backend in backends() {
        let mut cases = vec![
            (url(backend, &private.join("store")), "pin add", vec!["pin", "add", CID]),
            (url(backend, &private.join("store")), "pin ls", vec!["pin", "ls"]),
        ];
        let store = stores.join(backend);
        if !as_root {
            // Readable, not writable: the engine cannot take its lock.
            for entry in std::fs::read_dir(&store).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    lock(&path, 0o444);
                }
            }
            lock(&store, 0o555);
        }
        cases.push((url(backend, &store), "pin ls on a store it may not write", vec!["pin", "ls"]));
        for (url, what, args) in cases {
            let mut full = vec!["--url", url.as_str()];
            full.extend(args.iter().copied());
            let run = restricted(&full);
            if backend != "sled" && what == "pin ls on a store it may not write" {
                // fs and RocksDB readers take no lock and write nothing: reading is enough.
                assert_eq!(run.code, 0, "{backend} {what}: {}", run.stderr);
                assert!(run.stdout.contains(CID), "{}", run.stdout);
                continue;
            }
            assert_eq!(
                run.code, 11,
                "{backend} {what}: stdout {:?}, stderr {:?}",
                run.stdout, run.stderr
            );
            assert!(run.stderr.contains("permission denied"), "{backend} {what}: {}", run.stderr);
        }
        lock(&store, 0o755);
    }
    lock(&private, 0o700);
}

/// Runs the binary in a private mount namespace (`unshare -rm`) where `dir` is mounted
/// read-only, first as an empty tmpfs when `fresh`, else as a read-only bind of itself.
/// `None` when this machine cannot make such a namespace.
fn on_read_only_mount(dir: &Path, fresh: bool, args: &[&str]) -> Option<Run> {
    let mount = if fresh {
        r#"mount -t tmpfs -o ro none "$1""#
    } else {
        r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1""#
    };
    let script = format!(r#"{mount} || exit 99; shift; exec "$@""#);
    let available = Command::new("unshare")
        .args(["-rm", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["-rm", "sh", "-c", &script, "sh"])
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_pinvault"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PINVAULT_URL");
    let run = run_with_stdin(command, "");
    (run.code != 99 && !run.stderr.contains("unshare:")).then_some(run)
}

#[test]
fn read_only_filesystem_exits_13() {
    let probe = scratch("probe");
    std::fs::create_dir_all(&probe).unwrap();
    // A test that cannot run fails: it is never counted as passed.
    assert!(
        on_read_only_mount(&probe, true, &["--version"]).is_some(),
        "this test mounts a read-only tmpfs in a user namespace (`unshare -rm`), which this \
         machine refuses"
    );
    for backend in backends() {
        let fresh = scratch(backend);
        std::fs::create_dir_all(&fresh).unwrap();
        let store_url = url(backend, &fresh.join("store"));
        let run =
            on_read_only_mount(&fresh, true, &["--url", &store_url, "pin", "add", CID]).unwrap();
        assert_eq!(run.code, 13, "{backend} new store: {}", run.stderr);
        assert!(run.stderr.contains("read-only filesystem"), "{}", run.stderr);

        let existing = store_with_a_pin(backend);
        let store_url = url(backend, &existing);
        let run =
            on_read_only_mount(&existing, false, &["--url", &store_url, "pin", "ls"]).unwrap();
        if backend != "sled" {
            // fs and RocksDB readers write nothing (tests/cli_full_disk.rs: read_only_mount).
            assert_eq!(run.code, 0, "{backend} existing store: {}", run.stderr);
            assert!(run.stdout.contains(CID), "{}", run.stdout);
            continue;
        }
        assert_eq!(run.code, 13, "{backend} existing store: {}", run.stderr);
        assert!(run.stderr.contains("read-only filesystem"), "{}", run.stderr);
    }
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_damage_exits_8() {
    let path = store_with_a_pin("rocksdb");
    std::fs::remove_file(path.join("CURRENT")).unwrap();
    for args in [&["pin", "ls"][..], &["pin", "add", CID]] {
        let run = expect_in("rocksdb", &path, args, 8);
        assert!(run.stderr.contains("corrupt data at"), "{}", run.stderr);
        assert!(run.stderr.contains("CURRENT"), "{}", run.stderr);
    }
    assert!(!path.join("CURRENT").exists(), "never re-created empty");
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_info_log_stays_bounded_across_runs() {
    let path = store_with_a_pin("rocksdb");
    for _ in 0..15 {
        expect_in("rocksdb", &path, &["pin", "ls"], 0);
    }
    let logs: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("LOG"))
        .collect();
    assert!(logs.len() <= 3, "{logs:?}");
}

#[test]
fn help_lists_the_store_exit_codes() {
    let help = pinvault(&["--help"]).stdout;
    for line in [
        "3  not found (pin, input file, no store at the path)",
        "10  not this backend's store",
        "11  permission denied",
        "12  not a directory",
        "13  read-only filesystem",
    ] {
        assert!(help.contains(line), "{line:?} in {help}");
    }
    assert!(help.contains("--create"), "{help}");
}

/// A torn last record (bytes a crash left after the last commit): commands that only read list
/// the committed pins and change no file; the next writer repairs it and keeps the bytes aside.
#[test]
fn read_only_commands_leave_a_torn_fs_log_alone_and_the_next_write_repairs_it() {
    let path = store_with_a_pin("fs");
    let log = path.join("pins.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 0xde, 0xad]); // a record cut short
    std::fs::write(&log, &bytes).unwrap();
    let before = snapshot(&path);
    for args in
        [&["pin", "ls"][..], &["pin", "get", CID], &["state", "export"], &["state", "verify"]]
    {
        let run = expect_in("fs", &path, args, 0);
        assert!(args[1] != "ls" || run.stdout.contains(CID), "{args:?}: {}", run.stdout);
        assert_eq!(snapshot(&path), before, "{args:?} changed the store");
        assert!(
            run.stderr.contains("WARN") && run.stderr.contains("pins.log"),
            "{args:?}: the tear is reported: {}",
            run.stderr
        );
    }
    let run = expect_in(
        "fs",
        &path,
        &["pin", "add", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"],
        0,
    );
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains("quarantine"),
        "the repair is reported: {}",
        run.stderr
    );
    let quarantined: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("pins.log.quarantine-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "the torn bytes are kept aside: {quarantined:?}");
    let run = expect_in("fs", &path, &["pin", "ls"], 0);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}
