//! The README states facts the code can check: the capability matrix, the URL schemes, the exit
//! codes and the two commands. These tests keep it from drifting.

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[tokio::test]
async fn capability_matrix_matches_the_compiled_in_backends() {
    let readme = readme();
    let store = pinvault::open("memory:").await.unwrap();
    let capabilities = store.state.capabilities();
    assert_eq!(capabilities.backend, "memory");
    assert!(readme.contains("| capability | memory |"));
    for (name, value) in capabilities.matrix_row() {
        let row = format!("| {name} | {value} |");
        assert!(readme.contains(&row), "README lacks the matrix row {row:?}");
    }
}

#[test]
fn every_url_scheme_is_listed() {
    let readme = readme();
    for entry in pinvault::BACKENDS {
        assert!(readme.contains(&format!("| `{}` |", entry.form)), "{}", entry.form);
        if let Some(feature) = entry.feature {
            assert!(readme.contains(&format!("`{feature}`")), "feature {feature}");
        }
    }
}

#[test]
fn exit_code_table_matches_the_help() {
    let readme = readme();
    let help = Command::new(env!("CARGO_BIN_EXE_pinvault")).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let codes: Vec<&str> =
        help.lines().skip_while(|l| *l != "Exit codes:").skip(1).map(str::trim).collect();
    assert_eq!(codes.len(), 9, "{help}");
    for line in codes {
        let (code, meaning) = line.split_once("  ").unwrap();
        let row = format!("| {code} | {} |", meaning.replace("--if-absent", "`--if-absent`"));
        let row = row.replace("--if-version", "`--if-version`").replace("``", "`");
        assert!(readme.contains(&row), "README lacks {row:?}");
    }
}

#[test]
fn the_two_commands_are_named() {
    let readme = readme();
    assert!(readme.contains("cargo run --release -- --url memory: exec examples/demo.pinvault"));
    assert!(readme.contains("\nscripts/test.sh\n"));
    assert!(readme.contains("Fresh build + test time:"));
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l == "exec scripts/test.sh"));
}
