//! The store directory checks (`pinvault_conformance::store_dir`) on RocksDB: the
//! `PINVAULT-STORE` marker, other backends' stores and unknown files refused, adoption of a
//! store made before markers, `MustExist`, a path under a file.

mod rocksdb {
    pinvault_conformance::store_dir_tests!(pinvault_conformance::store_dir::DirOpenerFn::new(
        "rocksdb",
        |path, mode| {
            pinvault_rocksdb::open_with_mode(
                path,
                Default::default(),
                mode,
                pinvault_core::FaultInjector::disabled(),
            )
        },
    ));
}

/// The damage rule (`pinvault_conformance::damage`): read-only opens write nothing, a torn
/// tail is repaired and kept in quarantine, damage inside the log is `Corrupt`.
mod rocksdb_damage {
    pinvault_conformance::damage_tests!(
        pinvault_conformance::store_dir::DirOpenerFn::new("rocksdb", |path, mode| {
            pinvault_rocksdb::open_with_mode(
                path,
                Default::default(),
                mode,
                pinvault_core::FaultInjector::disabled(),
            )
        }),
        pinvault_conformance::damage::RocksWal
    );
}
