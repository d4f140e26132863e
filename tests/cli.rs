//! The `pinvault` binary end to end: `exec` scripts against `memory:`, exit codes, messages, and
//! the shipped example pinset and demo script.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::*;

const CID_V0: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
const CID_V1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
const OTHER_PEER: &str = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn example_lines() -> BTreeSet<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pinset.ndjson"),
    )
    .unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn add_get_ls_rm_round_trip() {
    let run = exec(&format!(
        "# comments and blank lines are skipped\n\
         \n\
         pin add {CID_V1} --name 'sales 2026' --allocation {PEER} --expire-at 2030-01-01T00:00:00Z \
            --metadata team=data --replication-min 1 --replication-max 2 --json\n\
         pin add {CID_V0} --mode direct --allocation {OTHER_PEER} --json\n\
         pin get {CID_V1} --json\n\
         pin ls --json\n\
         pin ls --peer {PEER} --json\n\
         pin ls --expiring-before 2031-01-01T00:00:00Z --json\n\
         pin rm {CID_V1}\n\
         pin ls --json\n"
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let names = |vs: &[Value]| -> Vec<String> {
        vs.iter().map(|v| v["pin"]["cid"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(lines.len(), 2 + 1 + 2 + 1 + 1 + 1, "{}", run.stdout);
    assert_eq!(lines[0]["cid"], CID_V1);
    let v1_version = lines[0]["version"].as_str().unwrap().to_owned();
    assert!(!v1_version.is_empty());

    let got = &lines[2];
    assert_eq!(got["version"], v1_version.as_str());
    assert_eq!(got["pin"]["cid"], CID_V1);
    assert_eq!(got["pin"]["name"], "sales 2026");
    assert_eq!(got["pin"]["allocations"][0], PEER);
    assert_eq!(got["pin"]["expire_at"], "2030-01-01T00:00:00Z");
    assert_eq!(got["pin"]["metadata"]["team"], "data");
    assert_eq!(got["pin"]["replication_factor_min"], 1);
    assert_eq!(got["pin"]["type"], "pin");

    let mut listed = names(&lines[3..5]);
    listed.sort();
    assert_eq!(listed, [CID_V0, CID_V1]);
    let direct = lines[3..5].iter().find(|v| v["pin"]["cid"] == CID_V0).unwrap();
    assert_eq!(direct["pin"]["mode"], "direct");
    assert_eq!(direct["pin"]["max_depth"], 0);
    assert_eq!(names(&lines[5..6]), [CID_V1], "by peer");
    assert_eq!(names(&lines[6..7]), [CID_V1], "expiring");
    assert_eq!(names(&lines[7..8]), [CID_V0], "after rm");
}

#[test]
fn text_output_is_version_tab_export_line() {
    let run = exec(&format!("pin add {CID_V0}\npin get {CID_V0}\npin rm {CID_V0}\npin ls\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "add prints the version, get one line, rm and ls nothing");
    let (version, export_line) = lines[1].split_once('\t').unwrap();
    assert_eq!(version, lines[0]);
    let pin: Value = serde_json::from_str(export_line).unwrap();
    assert_eq!(pin["cid"], CID_V0);
    assert!(export_line.starts_with("{\"replication_factor_min\":"), "ipfs-cluster field order");
}

#[test]
fn missing_pin_exits_3_and_names_the_line() {
    let run = exec(&format!("pin add {CID_V0}\n\npin get {CID_V1}\npin add {CID_V1}\n"));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(":3: not found"), "{}", run.stderr);
    assert!(run.stderr.contains(CID_V1), "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "the script stopped at the failing line");
}

#[test]
fn if_absent_twice_is_a_conflict() {
    let run = exec(&format!("pin add {CID_V1} --if-absent\npin add {CID_V1} --if-absent\n"));
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains(":2: conflict on"), "{}", run.stderr);
    assert!(run.stderr.contains("expected absent"), "{}", run.stderr);
}

#[test]
fn stale_version_is_a_conflict_for_add_and_rm() {
    let stale = "00000000000000ff";
    for line in [
        format!("pin add {CID_V0} --if-version {stale}"),
        format!("pin rm {CID_V0} --if-version {stale}"),
    ] {
        let run = exec(&format!("pin add {CID_V0}\n{line}\npin get {CID_V0}\n"));
        assert_eq!(run.code, 4, "{line}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("expected version {stale}")), "{}", run.stderr);
    }
    let run = exec(&format!("pin rm {CID_V1} --if-version {stale}\n"));
    assert_eq!(run.code, 4, "a version precondition on an absent pin fails: {}", run.stderr);
    assert!(run.stderr.contains("current version is absent"), "{}", run.stderr);
}

#[test]
fn current_version_precondition_applies() {
    // The first run learns the version a fresh memory backend gives the first write; the memory
    // backend numbers writes deterministically, so the second run's first write gets the same.
    let first = exec(&format!("pin add {CID_V0}\n"));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let version = first.stdout.trim();
    let run = exec(&format!(
        "pin add {CID_V0}\npin add {CID_V0} --name renamed --if-version {version}\npin get {CID_V0} --json\n"
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_ne!(lines[1], version, "the update gets a new version");
    let got: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(got["pin"]["name"], "renamed");
    assert_eq!(got["version"], lines[1]);
}

#[test]
fn invalid_cid_exits_5_with_a_clear_message() {
    let run = exec("pin add not-a-cid\n");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("invalid cid"), "{}", run.stderr);
    assert!(run.stderr.contains("\"not-a-cid\""), "{}", run.stderr);

    let run = pinvault(&["pin", "get", "Qm123"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.starts_with("pinvault: invalid cid"), "{}", run.stderr);
}

#[test]
fn other_bad_values_are_invalid_input() {
    for line in [
        format!("pin add {CID_V0} --allocation not-a-peer"),
        format!("pin add {CID_V0} --expire-at next-week"),
        format!("pin add {CID_V0} --metadata novalue"),
        format!("pin add {CID_V0} --if-version xyz"),
        format!("pin add {CID_V0} --replication-min 3 --replication-max 2"),
        "pin ls --peer nobody".to_owned(),
        "pin ls --expiring-before soon".to_owned(),
    ] {
        let run = exec(&format!("{line}\n"));
        assert_eq!(run.code, 5, "{line}: {}", run.stderr);
        assert!(run.stderr.contains(":1: invalid "), "{line}: {}", run.stderr);
    }
}

#[test]
fn unknown_scheme_lists_the_known_forms() {
    let run = pinvault(&["--url", "redis://localhost/0", "pin", "ls"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("unknown scheme \"redis\""), "{}", run.stderr);
    assert!(run.stderr.contains("memory:, rocksdb:///path"), "{}", run.stderr);
    assert!(run.stderr.contains("scylla://host1,host2/keyspace"), "{}", run.stderr);

    let mut env_run = Command::new(env!("CARGO_BIN_EXE_pinvault"));
    let output = env_run.args(["pin", "ls"]).env("PINVAULT_URL", "nope:").output().unwrap();
    assert_eq!(output.status.code(), Some(5), "PINVAULT_URL is read");
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"nope:\""));
}

/// Runs in the default-features build (`scripts/test.sh` tests the facade that way too).
#[cfg(not(feature = "s3"))]
#[test]
fn backend_not_compiled_in_names_its_feature() {
    let run = pinvault(&["--url", "s3://bucket/prefix", "pin", "ls"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("backend s3 is not compiled in: enable feature `s3`"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let run = exec(&format!("pin add {CID_V0}\npin frobnicate\n"));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(":2: error: unrecognized subcommand"), "{}", run.stderr);

    let run = exec(&format!("pin add {CID_V0} --if-absent --if-version 01\n"));
    assert_eq!(run.code, 2, "{}", run.stderr);

    let run = exec("pin add 'unterminated\n");
    assert_eq!(run.code, 2, "{}", run.stderr);

    let run = exec("exec other.pinvault\n");
    assert_eq!(run.code, 2, "exec does not nest: {}", run.stderr);

    let run = pinvault(&["pin", "add"]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    let run = run_with_stdin(command(&["exec", "-"]), "state import -\n");
    assert_eq!(run.code, 2, "stdin already carries the script: {}", run.stderr);
}

#[test]
fn missing_script_or_input_file_exits_3() {
    let run = pinvault(&["exec", "no/such/script.pinvault"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("no/such/script.pinvault"), "{}", run.stderr);
    let run = exec("state import no/such/pins.ndjson\n");
    assert_eq!(run.code, 3, "{}", run.stderr);
}

#[test]
fn help_documents_exit_codes() {
    let run = pinvault(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Exit codes:"), "{}", run.stdout);
    assert!(run.stdout.contains("5  invalid input"), "{}", run.stdout);
    assert!(run.stdout.contains("PINVAULT_URL"), "{}", run.stdout);
}

#[test]
fn script_from_stdin() {
    let run = run_with_stdin(command(&["exec"]), &format!("pin add {CID_V0}\npin ls\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2);
}

#[test]
fn import_then_export_gives_back_the_example_pinset() {
    let run = exec("state import examples/pinset.ndjson --batch-size 8\nstate export\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let summary = lines.next().unwrap();
    assert!(
        summary.starts_with("imported 20 pins in 3 batches, last receipt sequence "),
        "{summary}"
    );
    let exported: BTreeSet<String> = lines.map(str::to_owned).collect();
    assert_eq!(exported, example_lines());
}

#[test]
fn import_summary_as_json_carries_the_receipt() {
    let run = exec("state import examples/pinset.ndjson --json\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = &json_lines(&run.stdout)[0];
    assert_eq!(summary["pins"], 20);
    assert_eq!(summary["batches"], 1);
    assert_eq!(summary["last_receipt"]["ops"], 20);
    assert_eq!(summary["last_receipt"]["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn protobuf_export_to_file_imports_back() {
    let file = scratch("pins.pb");
    let file = file.to_str().unwrap();
    let run = exec(&format!(
        "state import examples/pinset.ndjson\nstate export --format protobuf -o {file}\n"
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("exported 20 pins ("), "{}", run.stdout);
    let leftovers: Vec<_> = std::fs::read_dir(Path::new(file).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pinvault-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the temporary export file was renamed: {leftovers:?}");

    let run = exec(&format!("state import --format protobuf {file}\nstate export\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exported: BTreeSet<String> = run.stdout.lines().skip(1).map(str::to_owned).collect();
    assert_eq!(exported, example_lines());
}

#[test]
fn malformed_import_is_invalid_input_naming_the_line() {
    let file = scratch("bad.ndjson");
    let mut text: Vec<String> = example_lines().into_iter().take(3).collect();
    text.push("{\"cid\": \"not-a-cid\"}".to_owned());
    std::fs::write(&file, text.join("\n")).unwrap();
    let run = exec(&format!("state import {}\n", file.display()));
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("line 4"), "{}", run.stderr);
}

#[test]
fn demo_script_runs() {
    let run = pinvault(&["--url", "memory:", "exec", "examples/demo.pinvault"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    assert!(lines.next().unwrap().starts_with("imported 20 pins in 3 batches"), "{}", run.stdout);
    let version = lines.next().unwrap();
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "pin add prints a version");
    let exported = run.stdout.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(exported, 21, "the export holds the pinset and the new pin");
    let by_peer_or_expiring = run.stdout.lines().filter(|l| l.contains('\t')).count();
    assert!(by_peer_or_expiring >= 2, "{}", run.stdout);
}

/// A directory backend opened by URL keeps pins across processes, and a bad option is refused
/// with exit code 5 before anything is opened.
#[cfg(any(feature = "rocksdb", feature = "sled", feature = "fs"))]
fn directory_url_persists_across_processes(scheme: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{scheme}://{}", dir.path().join("store").display());
    let run = pinvault(&["--url", &url, "pin", "add", CID_V1, "--allocation", PEER]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = pinvault(&["--url", &url, "pin", "get", CID_V1]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(CID_V1), "{}", run.stdout);
    let run = pinvault(&["--url", &format!("{url}?sync=sometimes"), "pin", "ls"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("sync"), "{}", run.stderr);
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_url_persists_across_processes() {
    directory_url_persists_across_processes("rocksdb");
}

#[cfg(feature = "sled")]
#[test]
fn sled_url_persists_across_processes() {
    directory_url_persists_across_processes("sled");
}

#[cfg(feature = "fs")]
#[test]
fn fs_url_persists_across_processes() {
    directory_url_persists_across_processes("fs");
}

/// The Prometheus text file: parsed into `(metric line prefix, value)` samples.
fn metrics_samples(path: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).expect("the metrics file was written");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_owned(), value.parse::<f64>().expect("a number"))
        })
        .collect()
}

#[test]
fn metrics_file_records_the_command_and_its_outcome() {
    let path = scratch("metrics.prom");
    let arg = path.to_str().unwrap();
    let run = pinvault(&["--url", "memory:", "--metrics-file", arg, "pin", "add", CID_V1]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let samples = metrics_samples(&path);
    let count = |outcome: &str| {
        samples.iter().find(|(name, _)| {
            name.starts_with("pinvault_cli_command_seconds_count")
                && name.contains("command=\"pin\"")
                && name.contains(&format!("outcome=\"{outcome}\""))
        })
    };
    assert_eq!(count("ok").map(|(_, v)| *v), Some(1.0), "{samples:?}");
    // A failing command still writes the file, with its outcome.
    let run = pinvault(&["--url", "memory:", "--metrics-file", arg, "pin", "get", CID_V1]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let samples = metrics_samples(&path);
    assert!(
        samples.iter().any(|(n, v)| n.contains("outcome=\"error\"") && *v > 0.0),
        "{samples:?}"
    );
    assert!(!path.with_file_name(".metrics.prom.tmp").exists(), "written by rename");
    // An unwritable path is an error, not a silent loss.
    let run =
        pinvault(&["--url", "memory:", "--metrics-file", "/nonexistent/dir/m.prom", "pin", "ls"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("cannot write metrics file /nonexistent/dir/m.prom"),
        "{}",
        run.stderr
    );
}

/// The Scylla backend's own metrics reach the file (needs the test services' Cassandra).
#[cfg(feature = "scylla")]
#[test]
fn metrics_file_carries_the_scylla_backend_metrics() {
    let hosts = std::env::var("PINVAULT_CASSANDRA_CONTACT_POINTS")
        .expect("PINVAULT_CASSANDRA_CONTACT_POINTS is not set: run testenv/pvenv up and source its env file");
    let url = format!("scylla://{hosts}/pinvault_cli_metrics");
    let path = scratch("scylla.prom");
    let run =
        pinvault(&["--url", &url, "--metrics-file", path.to_str().unwrap(), "pin", "add", CID_V0]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let samples = metrics_samples(&path);
    assert!(
        samples.iter().any(|(n, v)| n.starts_with("pinvault_scylla_op_seconds_count")
            && n.contains("op=\"commit\"")
            && *v >= 1.0),
        "{samples:?}"
    );
}

#[test]
fn state_verify_migrate_digest_and_copy() {
    let script = "state import examples/pinset.ndjson\nstate verify\nstate migrate\nstate digest\n\
                  state copy --to memory: --batch-size 7\n";
    let run = exec(script);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[1].starts_with("checked 20 pins, ") && lines[1].ends_with(": 0 problems"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("stored format "), "{}", lines[2]);
    let digest = lines[3].strip_prefix("20 pins, digest ").expect("digest line");
    assert_eq!(digest.len(), 64);
    assert!(lines[4].starts_with("copied 20 pins in 3 batches;"), "{}", lines[4]);
    assert!(lines[4]
        .contains(&format!("source 20 pins digest {digest}, destination 20 pins digest {digest}")));
}

#[test]
fn state_copy_with_a_bad_checkpoint_is_invalid_input() {
    let checkpoint = scratch("copy.checkpoint");
    std::fs::write(&checkpoint, "not-hex 3\n").unwrap();
    let script = format!("state copy --to memory: --checkpoint {}\n", checkpoint.display());
    let run = exec(&script);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("cursor"), "{}", run.stderr);
}

#[test]
fn publish_list_get_and_sweep() {
    let a = scratch("a.txt");
    std::fs::write(&a, "alpha\n").unwrap();
    let b = a.with_file_name("b.bin");
    std::fs::write(&b, [0u8, 1, 2]).unwrap();
    let missing = a.with_file_name("missing.txt");
    let script = format!(
        "publish sales/2026 {a} {b}\nobject ls sales/\nobject get sales/2026 a.txt\nsweep --older-than 0\n",
        a = a.display(),
        b = b.display()
    );
    let run = exec(&script);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("published sales/2026: 2 objects, 9 bytes, version "),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("sales/2026/a.txt\t6\t"), "{}", lines[1]);
    assert!(lines[2].starts_with("sales/2026/b.bin\t3\t"), "{}", lines[2]);
    assert_eq!(lines[3], "alpha");
    assert!(lines[4].starts_with("swept 0 staged objects (0 bytes)"), "{}", lines[4]);

    // First writer wins: publishing the set again is a conflict (exit 4).
    let again = exec(&format!("publish s {a}\npublish s {a}\n", a = a.display()));
    assert_eq!(again.code, 4, "{}", again.stderr);
    // A missing file stops the publication before anything is staged (exit 3).
    let run = exec(&format!(
        "publish s {a} {missing}\nobject ls\n",
        a = a.display(),
        missing = missing.display()
    ));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // A hostile set name is refused (exit 5).
    let run = exec(&format!("publish ../escape {a}\n", a = a.display()));
    assert_eq!(run.code, 5, "{}", run.stderr);
    // A set name in NFD ("café" as e + U+0301) is refused with its NFC spelling, and a file
    // whose name carries a right-to-left override is refused before anything is staged.
    let run = exec(&format!("publish cafe\u{301} {a}\n", a = a.display()));
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("NFC") && run.stderr.contains("caf\u{e9}"), "{}", run.stderr);
    let rlo = scratch("invoice\u{202E}fdp.exe");
    std::fs::write(&rlo, b"x").unwrap();
    let run = exec(&format!("publish s {}\nobject ls\n", rlo.display()));
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("U+202E"), "{}", run.stderr);
}

#[test]
fn msgpack_dsstate_snapshot_exports_and_imports() {
    let out = scratch("snapshot.msgpack");
    let run = exec(&format!(
        "state import examples/pinset.ndjson\nstate export --format msgpack -o {}\n",
        out.display()
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = exec(&format!("state import --format msgpack {}\nstate export\n", out.display()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exported: BTreeSet<String> = run.stdout.lines().skip(1).map(str::to_owned).collect();
    assert_eq!(exported, example_lines());
}

#[test]
fn conformance_runs_the_suite_against_a_url() {
    let run = pinvault(&["conformance", "memory:", "--filter", "crud::"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 13, "{}", run.stdout);
    assert!(lines[..12].iter().all(|l| l.starts_with("ok      crud::")), "{}", run.stdout);
    assert!(
        lines[12].starts_with("conformance: 12 passed, 0 failed against memory:"),
        "{}",
        lines[12]
    );
    let none = pinvault(&["conformance", "memory:", "--filter", "no-such-check"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    let bad = pinvault(&["conformance", "nosuch://x"]);
    assert_eq!(bad.code, 5, "{}", bad.stderr);
}

/// The whole suite through the CLI, on the default embedded backend: every registered check,
/// each on a fresh directory under the one named.
#[cfg(all(feature = "fs", feature = "conformance"))]
#[test]
fn conformance_passes_on_fs_through_the_cli() {
    let dir = scratch("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("fs://{}", dir.display());
    let run = pinvault(&["--json", "conformance", &url]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lines = json_lines(&run.stdout);
    let checks: Vec<&Value> = lines.iter().filter(|l| l.get("check").is_some()).collect();
    let registered: usize =
        pinvault_conformance::CHECKS.iter().map(|(_, checks)| checks.len()).sum();
    assert!(registered >= 82, "the registry lists {registered} checks");
    assert_eq!(checks.len(), registered);
    assert!(checks.iter().all(|c| c["ok"] == true));
    assert_eq!(lines.last().unwrap()["passed"], registered);
    assert!(std::fs::read_dir(&dir).unwrap().count() > 0, "stores are made under the URL");
}

#[test]
fn bench_prints_a_table_with_ratios_and_writes_a_plot() {
    let plot = scratch("bench.svg");
    let run = pinvault(&[
        "bench",
        "memory:",
        "memory:",
        "--pins",
        "300",
        "--ops",
        "40",
        "--batch-size",
        "64",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("workload: 300 pins imported in batches of 64, then 40 gets"),
        "{}",
        lines[0]
    );
    let phases: Vec<&str> = lines.iter().filter(|l| l.contains(" ops/s |")).copied().collect();
    assert_eq!(phases.len(), 5, "{}", run.stdout);
    for (line, phase) in phases.iter().zip(["import", "list", "get", "update", "remove"]) {
        assert!(
            line.starts_with(&format!("| {phase} ops/s | ")) && line.contains("×) |"),
            "{line}"
        );
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // 5 phases × 2 backends bars, 2 legend swatches, the background.
    assert_eq!(svg.matches("<rect").count(), 13, "{svg}");
    let bad = pinvault(&["bench", "memory:", "--pins", "10", "--ops", "20"]);
    assert_eq!(bad.code, 5, "{}", bad.stderr);
}
