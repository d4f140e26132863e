//! The store directory checks (`pinvault_conformance::store_dir`) on the fs backend: the
//! `PINVAULT-STORE` marker, other backends' stores and unknown files refused, adoption of a
//! store made before markers, `MustExist`, a path under a file.

mod fs {
    pinvault_conformance::store_dir_tests!(pinvault_conformance::store_dir::DirOpenerFn::new(
        "fs",
        |path, mode| {
            pinvault_fs::open_with_mode(
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
mod fs_damage {
    pinvault_conformance::damage_tests!(
        pinvault_conformance::store_dir::DirOpenerFn::new("fs", |path, mode| {
            pinvault_fs::open_with_mode(
                path,
                Default::default(),
                mode,
                pinvault_core::FaultInjector::disabled(),
            )
        }),
        pinvault_conformance::damage::LogFile::named("pins.log")
    );
}
