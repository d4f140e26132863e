//! The `pinvault` binary on hostile or extreme input: times and durations at the ends of what
//! chrono represents end with a typed error instead of a panic, a reader closing stdout early
//! is a quiet stop, and files read whole are refused at their limit while being read.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::*;

const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

fn assert_invalid_input(run: &Run, mentions: &str) {
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert!(run.stderr.contains(mentions), "{mentions:?} not in {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn sweep_older_than_the_earliest_time_is_invalid_input() {
    for seconds in ["10000000000000", "9223372036854775807", "18446744073709551615"] {
        let run = pinvault(&["--url", "memory:", "sweep", "--older-than", seconds]);
        assert_invalid_input(&run, "--older-than");
    }
    // A century is far but representable.
    let run = pinvault(&["--url", "memory:", "sweep", "--older-than", "3155760000"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("swept 0 staged objects"), "{}", run.stdout);
}

#[test]
fn expiry_beyond_year_9999_is_refused_and_the_latest_one_verifies() {
    // 10000-01-01T23:58:59Z once the offset is applied; chrono's own last year is 262142.
    for at in ["9999-12-31T23:59:59-23:59", "+262142-12-31T23:59:59Z"] {
        let run = pinvault(&["--url", "memory:", "pin", "add", CID, "--expire-at", at]);
        assert_invalid_input(&run, "expire");
    }
    let line = format!(r#"{{"cid":"{CID}","type":"pin","expire_at":"9999-12-31T23:59:59-23:59"}}"#);
    let import = scratch("far.ndjson");
    std::fs::write(&import, format!("{line}\n")).unwrap();
    let run = exec(&format!("state import {}\n", import.display()));
    assert_invalid_input(&run, "expire_at");

    let run = exec(&format!(
        "pin add {CID} --expire-at 9999-12-31T23:59:59.999999999Z\n\
         state verify\n\
         pin ls --expiring-before 9999-12-31T23:59:59-23:59\n"
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 expiring: 0 problems"), "{}", run.stdout);
    assert!(run.stdout.contains(CID), "{}", run.stdout);
}

/// An NDJSON import of `n` pins with made-up sha2-256 CIDs.
fn many_pins(n: usize) -> PathBuf {
    let path = scratch("many.ndjson");
    let mut text = String::new();
    for i in 0..n {
        let cid = format!("f01551220{i:064x}");
        text.push_str(&format!(r#"{{"cid":"{cid}","type":"pin","name":"pin number {i}"}}"#));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary with its stdout read by a reader that closes it after 10 bytes, as
/// `| head -c 10` does. The output must be larger than a pipe's buffer for the close to be seen.
fn with_early_closing_reader(args: &[&str]) -> Run {
    let mut child = command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pinvault binary starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).expect("10 bytes of output");
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&first).into_owned(),
        stderr,
    }
}

#[test]
fn a_reader_closing_stdout_early_is_a_quiet_stop() {
    let pins = many_pins(3000);
    let big = scratch("big.bin");
    std::fs::write(&big, vec![b'x'; 1 << 20]).unwrap();
    let script = scratch("pipe.pinvault");
    for (script_text, first) in [
        (format!("state import {}\nstate export\n", pins.display()), "imported "),
        (format!("state import {}\npin ls\n", pins.display()), "imported "),
        (format!("state import {}\npin ls --json\n", pins.display()), "imported "),
        (format!("publish s {}\nobject get s big.bin\n", big.display()), "published "),
    ] {
        std::fs::write(&script, &script_text).unwrap();
        let script_path = script.to_str().unwrap();
        let run = with_early_closing_reader(&["--url", "memory:", "exec", script_path]);
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{script_text}");
        assert!(run.stdout.starts_with(first), "{script_text}: {}", run.stdout);
    }

    // `state export` straight to stdout, as `pinvault state export | head -c 10`.
    let dir = scratch("store");
    let url = format!("fs://{}", dir.display());
    let run = pinvault(&["--url", &url, "state", "import", pins.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = with_early_closing_reader(&["--url", &url, "state", "export"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(run.stdout.starts_with("{\""), "{}", run.stdout);
}

#[test]
fn publishing_dev_zero_is_refused_at_the_object_limit() {
    let started = Instant::now();
    let run = pinvault(&["--url", "memory:", "publish", "s", "/dev/zero"]);
    assert_invalid_input(&run, "/dev/zero");
    assert!(run.stderr.contains("largest object (67108864 bytes)"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());

    let small = scratch("small.txt");
    std::fs::write(&small, "small").unwrap();
    let small = small.to_str().unwrap();
    let run = pinvault(&["--url", "memory:", "publish", "s", small, "--manifest", "/dev/zero"]);
    assert_invalid_input(&run, "largest manifest (16777216 bytes)");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn other_inputs_read_whole_are_bounded_too() {
    let run = pinvault(&["--url", "memory:", "exec", "/dev/zero"]);
    assert_invalid_input(&run, "/dev/zero:1: invalid script command: longer than 16777216 bytes");

    let copy = ["state", "copy", "--to", "memory:", "--checkpoint", "/dev/zero"];
    let run = pinvault(&[&["--url", "memory:"][..], &copy].concat());
    assert_invalid_input(&run, "largest size (65536 bytes)");

    // A script of any length streams: the lines before an endless one have run.
    let script = scratch("then-endless.pinvault");
    let mut text = format!("pin add {CID}\npin get {CID}\n").into_bytes();
    text.extend(std::iter::repeat_n(b'#', 17 << 20));
    std::fs::File::create(&script).unwrap().write_all(&text).unwrap();
    let run = pinvault(&["--url", "memory:", "exec", script.to_str().unwrap()]);
    assert_invalid_input(&run, ":3: invalid script command");
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}
