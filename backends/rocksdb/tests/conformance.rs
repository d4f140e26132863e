//! The whole conformance suite on RocksDB (synced commits, the default). A store lives in a
//! fresh temporary directory; a crash is the instance dropped without any close or flush call,
//! and a reopen is a new instance over the same directory.

fn harness() -> impl pinvault_conformance::Harness {
    pinvault_conformance::DirHarness::new("rocksdb", |path, faults| {
        pinvault_rocksdb::open(path, pinvault_rocksdb::DirOptions::default(), faults)
    })
}

mod rocksdb {
    use super::harness;

    pinvault_conformance::conformance_tests!(harness());
}
