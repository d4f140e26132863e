//! The whole conformance suite on sled. A store lives in a fresh temporary directory; a crash is
//! the instance dropped without any close or flush call, and a reopen is a new instance over the
//! same directory.

fn harness() -> impl pinvault_conformance::Harness {
    pinvault_conformance::DirHarness::new("sled", |path, faults| {
        pinvault_sled::open(path, pinvault_sled::DirOptions::default(), faults)
    })
}

mod sled {
    use super::harness;

    pinvault_conformance::conformance_tests!(harness());
}
