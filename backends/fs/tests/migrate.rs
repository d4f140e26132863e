//! Stored-format checks on the fs pin log: migration from format 1 (a fixture of ipfs-cluster
//! protobufs) and refusal of a newer format. See `pinvault_conformance::kv_migration`.

use pinvault_conformance::kv_migration;
use pinvault_fs::{FsLogEngine, FsOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_format_1_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    kv_migration::check_migrates_format_1(|| {
        FsLogEngine::open(&path, &FsOptions::default()).expect("open the fs pin log")
    })
    .await;
}

#[test]
fn refuses_a_newer_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    kv_migration::check_refuses_newer_format(|| {
        FsLogEngine::open(&path, &FsOptions::default()).expect("open the fs pin log")
    });
}
