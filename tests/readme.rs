//! The README states facts the code can check: the capability matrix, the URL schemes, the exit
//! codes and the two commands. These tests keep it from drifting.

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The README's capability table as `(backend column, [(capability, value)])`.
fn matrix(readme: &str) -> Vec<(String, Vec<(String, String)>)> {
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
    };
    let mut lines = readme.lines().skip_while(|l| !l.starts_with("| capability |"));
    let header = cells(lines.next().expect("README has the capability table"));
    let rows: Vec<Vec<String>> =
        lines.skip(1).take_while(|l| l.starts_with('|')).map(cells).collect();
    header[1..]
        .iter()
        .enumerate()
        .map(|(i, backend)| {
            let column = rows.iter().map(|r| (r[0].clone(), r[i + 1].clone())).collect();
            (backend.clone(), column)
        })
        .collect()
}

/// A test-service variable (`testenv/pvenv env`); missing means the services were not started,
/// which fails the test rather than skipping a column.
fn test_env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{name} is not set: run testenv/pvenv up and source its env file")
    })
}

#[tokio::test]
async fn capability_matrix_matches_the_compiled_in_backends() {
    let readme = readme();
    let columns = matrix(&readme);
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for entry in pinvault::BACKENDS.iter().filter(|e| e.is_compiled_in()) {
        let url = match entry.scheme() {
            "memory" => "memory:".to_owned(),
            "s3" => format!("s3://{}/readme-matrix", test_env("PINVAULT_S3_BUCKET")),
            "gs" => format!("gs://{}/readme-matrix", test_env("PINVAULT_GCS_BUCKET")),
            "az" => format!("az://{}/readme-matrix", test_env("PINVAULT_AZURE_CONTAINER")),
            "scylla" => format!(
                "scylla://{}/pinvault_readme_matrix",
                test_env("PINVAULT_CASSANDRA_CONTACT_POINTS")
            ),
            scheme => format!("{scheme}://{}", dir.path().join(scheme).display()),
        };
        let store = pinvault::open(&url).await.unwrap();
        let pins = store.state.pin_capabilities();
        let publish = store.publisher.publish_capabilities();
        assert_eq!(pins.backend, publish.backend, "{url}");
        let (_, column) = columns
            .iter()
            .find(|(name, _)| name == pins.backend)
            .unwrap_or_else(|| panic!("README's matrix has no column {}", pins.backend));
        let expected: Vec<(String, String)> = pins
            .matrix_row()
            .into_iter()
            .chain(publish.matrix_row())
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        assert_eq!(column, &expected, "README column {}", pins.backend);
        checked.push(pins.backend);
    }
    // Every column of the README is a backend this build checked (CI builds all features).
    let all_features = cfg!(all(
        feature = "rocksdb",
        feature = "sled",
        feature = "fs",
        feature = "s3",
        feature = "gcs",
        feature = "azure",
        feature = "scylla"
    ));
    if all_features {
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, checked, "README columns versus compiled-in backends");
    }
}

#[test]
fn every_url_scheme_is_listed() {
    let readme = readme();
    for entry in pinvault::BACKENDS {
        assert!(readme.contains(&format!("| `{}` |", entry.url.form)), "{}", entry.url.form);
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
    assert_eq!(codes.len(), 15, "{help}");
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
