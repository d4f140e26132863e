//! Stored-format checks on RocksDB: migration from format 1 (a fixture of ipfs-cluster
//! protobufs) and refusal of a newer format. See `pinvault_conformance::kv_migration`.

use pinvault_conformance::kv_migration;
use pinvault_rocksdb::{RocksEngine, RocksOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_format_1_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    kv_migration::check_migrates_format_1(|| {
        RocksEngine::open(&path, &RocksOptions::default()).expect("open RocksDB")
    })
    .await;
}

#[test]
fn refuses_a_newer_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    kv_migration::check_refuses_newer_format(|| {
        RocksEngine::open(&path, &RocksOptions::default()).expect("open RocksDB")
    });
}
