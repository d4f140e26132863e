//! `pinvault state check` and `state repair` on a damaged fs store: a byte flipped in the middle
//! of `pins.log` makes reads exit 8 naming the file and the offset of the damaged record, and
//! so does `state check`; `state repair` cuts the log back to that record, keeps the removed
//! bytes in a quarantine file and says so; afterwards the check passes and every pin committed
//! before the damage is there. A backend without a repair exits 6.
//!
//! Run with `cargo test -p pinvault --features fs --test cli_repair`.
#![cfg(feature = "fs")]

use std::collections::BTreeSet;
use std::path::PathBuf;

mod common;
use common::*;

#[test]
fn a_flipped_byte_is_found_by_check_and_cut_out_by_repair() {
    let dir = scratch_dir("fs");
    let store = dir.join("store");
    let url = format!("fs://{}", store.display());
    // 20 commits of 10 pins each, one log record per commit: remember where each ends.
    let mut ends = Vec::new();
    for batch in 0..20u64 {
        let input = dir.join(format!("batch-{batch}.ndjson"));
        let lines: String = (batch * 10..batch * 10 + 10)
            .map(|n| {
                format!("{}\n", serde_json::json!({ "cid": cid(n), "name": format!("pin {n}") }))
            })
            .collect();
        std::fs::write(&input, lines).unwrap();
        expect(&url, &["state", "import", input.to_str().unwrap(), "--batch-size", "10"], 0);
        ends.push(std::fs::metadata(store.join("pins.log")).unwrap().len());
    }
    let log = store.join("pins.log");
    let original = std::fs::read(&log).unwrap();
    let flip = original.len() / 2;
    let mut damaged = original.clone();
    damaged[flip] ^= 0x55;
    std::fs::write(&log, &damaged).unwrap();
    // The damaged record starts where the last commit ending at or before the flip ends.
    let whole = ends.iter().filter(|&&end| end as usize <= flip).count();
    let at = ends[whole - 1];
    let place = format!("pins.log at offset {at}");

    for args in [&["pin", "ls"][..], &["state", "check"]] {
        let run = expect(&url, args, 8);
        assert!(run.stderr.contains(&place), "{args:?} names {place}: {}", run.stderr);
    }
    assert_eq!(std::fs::read(&log).unwrap(), damaged, "reads and checks change nothing");

    let run = expect(&url, &["state", "repair"], 0);
    assert!(run.stdout.contains(&format!("at offset {at}")), "{}", run.stdout);
    assert!(run.stdout.contains("quarantined: "), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("records dropped: {}", 20 - whole)), "{}", run.stdout);
    let quarantined: Vec<PathBuf> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("pins.log.quarantine-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(run.stdout.contains(&quarantined[0].display().to_string()), "{}", run.stdout);
    assert_eq!(
        std::fs::read(&quarantined[0]).unwrap(),
        &damaged[at as usize..],
        "removed bytes kept"
    );
    assert_eq!(std::fs::read(&log).unwrap(), &original[..at as usize], "the records before stay");

    let run = expect(&url, &["state", "check"], 0);
    assert!(run.stdout.contains(&format!("{} pins, digest", whole * 10)), "{}", run.stdout);
    let expected: BTreeSet<String> = (0..whole as u64 * 10).map(cid).collect();
    assert_eq!(listed_cids(&url), expected, "every pin committed before the damage");
    // A healthy store: nothing to do, nothing changed; and it takes writes again.
    let run = expect(&url, &["state", "repair"], 0);
    assert!(run.stdout.contains("nothing to repair"), "{}", run.stdout);
    expect(&url, &["pin", "add", &cid(1000)], 0);
    expect(&url, &["state", "check"], 0);
}

#[test]
fn repair_without_a_backend_repair_exits_6() {
    let run = expect("memory:", &["state", "repair"], 6);
    assert!(run.stderr.contains("no repair"), "{}", run.stderr);
}
