//! The `pinvault` binary on one fs store from several processes: commands that only read take
//! no lock, so they run beside a process holding the store for writing; a second writer fails
//! at once with exit 7 naming the lock file, or with `--lock-timeout` waits for the first and
//! goes on, or gives up with exit 7 saying how long it waited; and four processes doing
//! get-then-conditional-put lose no update.
//!
//! Run with `cargo test -p pinvault --features fs --test cli_store_locks`.
#![cfg(feature = "fs")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

const CIDS: [&str; 3] = [
    "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB",
];

/// A `pinvault exec -` holding the store open for writing until its stdin is closed.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    /// Starts the holder and waits until it has committed `pin add CID`: the store is open.
    fn start(url: &str, cid: &str) -> Holder {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pinvault"))
            .args(["--url", url, "exec", "-"])
            .env_remove("PINVAULT_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        writeln!(stdin.as_mut().unwrap(), "pin add {cid}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim().len(), 16, "the holder committed a pin: {line:?}");
        Holder { child, stdin, stdout }
    }

    /// Closes the script: the holder exits and lets go of the store.
    fn finish(mut self) {
        drop(self.stdin.take());
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut rest);
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn readers_run_beside_a_writer_and_a_second_writer_waits_or_gives_up() {
    let store = scratch("store");
    let url = url("fs", &store);
    assert_eq!(pinvault(&["--url", &url, "pin", "add", CIDS[0]]).code, 0);
    let holder = Holder::start(&url, CIDS[1]);

    // Readers take no lock: they see both pins while the writer holds the store.
    let ls = pinvault(&["--url", &url, "pin", "ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    for cid in &CIDS[..2] {
        assert!(ls.stdout.contains(cid), "{cid} listed: {}", ls.stdout);
    }
    for args in [
        &["pin", "get", CIDS[1]][..],
        &["state", "digest"],
        &["state", "verify"],
        &["state", "export"],
        &["object", "ls"],
    ] {
        let run = pinvault(&[&["--url", &url][..], args].concat());
        assert_eq!(run.code, 0, "{args:?} beside a writer: {}", run.stderr);
    }

    // A second writer: at once without a timeout, after the timeout with one.
    let lock = store.join("LOCK").display().to_string();
    let run = pinvault(&["--url", &url, "pin", "add", CIDS[2]]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains(&lock) && run.stderr.contains("--lock-timeout"), "{}", run.stderr);
    let started = Instant::now();
    let run = pinvault(&["--url", &url, "--lock-timeout", "0.5", "pin", "add", CIDS[2]]);
    let waited = started.elapsed();
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains(&lock), "{}", run.stderr);
    assert!(run.stderr.contains("still held after waiting 0.5 s"), "{}", run.stderr);
    assert!(waited >= Duration::from_millis(500), "waited {waited:?}");
    // The URL's lock_timeout wins over the flag.
    let with_query = format!("{url}?lock_timeout=0.2");
    let run = pinvault(&["--url", &with_query, "--lock-timeout", "30", "pin", "add", CIDS[2]]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains("after waiting 0.2 s"), "{}", run.stderr);

    // A writer that waits long enough gets the store once the holder lets go.
    let waiter = Command::new(env!("CARGO_BIN_EXE_pinvault"))
        .args(["--url", &url, "--lock-timeout", "10", "pin", "add", CIDS[2]])
        .env_remove("PINVAULT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    holder.finish();
    let waited = waiter.wait_with_output().unwrap();
    assert!(waited.status.success(), "{}", String::from_utf8_lossy(&waited.stderr));
    let ls = pinvault(&["--url", &url, "pin", "ls"]);
    assert_eq!(ls.stdout.lines().count(), 3, "{}", ls.stdout);
}

/// The pin's version and its `count` metadata, from `pin get --json`.
fn read_counter(url: &str, cid: &str) -> (String, u64) {
    let run = pinvault(&["--url", url, "--json", "pin", "get", cid]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let version = value["version"].as_str().unwrap().to_owned();
    let count = value["pin"]["metadata"]["count"].as_str().unwrap().parse().unwrap();
    (version, count)
}

#[test]
fn four_processes_doing_get_then_conditional_put_lose_no_update() {
    const WORKERS: usize = 4;
    const INCREMENTS: u64 = 25;
    let url = url("fs", &scratch("counter"));
    let cid = CIDS[0];
    assert_eq!(pinvault(&["--url", &url, "pin", "add", cid, "--metadata", "count=0"]).code, 0);
    let started = Instant::now();
    let conflicts: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut conflicts = 0;
                    for _ in 0..INCREMENTS {
                        loop {
                            let (version, count) = read_counter(&url, cid);
                            let metadata = format!("count={}", count + 1);
                            let run = pinvault(&[
                                "--url",
                                &url,
                                "--lock-timeout",
                                "10",
                                "pin",
                                "add",
                                cid,
                                "--if-version",
                                &version,
                                "--metadata",
                                &metadata,
                            ]);
                            match run.code {
                                0 => break,
                                4 => conflicts += 1,
                                code => panic!("pin add exited {code}: {}", run.stderr),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let (_, count) = read_counter(&url, cid);
    assert_eq!(count, WORKERS as u64 * INCREMENTS, "every acknowledged increment is there");
    eprintln!(
        "{WORKERS} processes x {INCREMENTS} increments in {:?}, {} conflicts retried",
        started.elapsed(),
        conflicts.iter().sum::<u64>()
    );
}
