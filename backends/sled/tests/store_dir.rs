//! The store directory checks (`pinvault_conformance::store_dir`) on sled: the
//! `PINVAULT-STORE` marker, other backends' stores and unknown files refused, adoption of a
//! store made before markers, `MustExist`, a path under a file.

mod sled {
    pinvault_conformance::store_dir_tests!(pinvault_conformance::store_dir::DirOpenerFn::new(
        "sled",
        |path, mode| {
            pinvault_sled::open_with_mode(
                path,
                Default::default(),
                mode,
                pinvault_core::FaultInjector::disabled(),
            )
        },
    ));
}
