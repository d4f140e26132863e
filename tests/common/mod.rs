//! What the CLI's integration tests share: running the `pinvault` binary, fresh scratch paths,
//! test CIDs, and reading a store back through the CLI (mounts are `pinvault_conformance::mounts`).
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a run of the binary ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The binary with `args`, run from the package root (so `examples/...` paths resolve) with
/// `PINVAULT_URL` unset.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinvault"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("PINVAULT_URL");
    command
}

/// Runs a prepared command (the binary, or a wrapper such as `unshare` around it), feeding
/// `stdin`, and waits for it.
pub fn run_with_stdin(mut command: Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    child.stdin.take().expect("piped stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("the command ends");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary with `args` and an empty stdin.
pub fn pinvault(args: &[&str]) -> Run {
    run_with_stdin(command(args), "")
}

/// `pinvault --url URL <args>`, asserting its exit code.
pub fn expect(url: &str, args: &[&str], code: i32) -> Run {
    let mut full = vec!["--url", url];
    full.extend_from_slice(args);
    let run = pinvault(&full);
    assert_eq!(
        run.code, code,
        "pinvault {full:?}: stdout {:?}, stderr {:?}",
        run.stdout, run.stderr
    );
    run
}

/// `<backend>://<path>`.
pub fn url(backend: &str, path: &Path) -> String {
    format!("{backend}://{}", path.display())
}

/// A fresh path `name` in a new directory under cargo's per-test scratch directory; the path
/// itself is not created.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir.join(name)
}

/// [`scratch`], created as an empty directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Runs `script` with `exec` (from a file) against a fresh `memory:` backend.
pub fn exec(script: &str) -> Run {
    let path = scratch("script.pinvault");
    std::fs::write(&path, script).expect("write the script");
    pinvault(&["--url", "memory:", "exec", path.to_str().expect("a UTF-8 path")])
}

/// A CIDv1 (raw, sha2-256) whose digest bytes spell `n`: distinct, valid, no hashing needed.
pub fn cid(n: u64) -> String {
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

/// The CIDs `pin ls` lists at `url`.
pub fn listed_cids(url: &str) -> BTreeSet<String> {
    expect(url, &["--json", "pin", "ls"], 0)
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["pin"]["cid"].as_str().expect("a CID").to_owned()
        })
        .collect()
}

/// What `state digest` prints for the store at `url`.
pub fn digest(url: &str) -> String {
    expect(url, &["state", "digest"], 0).stdout.trim().to_owned()
}
