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
