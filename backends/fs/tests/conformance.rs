//! The whole conformance suite on the fs backend (durable, the default). A store lives in a
//! fresh temporary directory; a crash is the instance dropped without any close or flush call,
//! and a reopen is a new instance over the same directory.

fn harness() -> impl pinvault_conformance::Harness {
    pinvault_conformance::DirHarness::new("fs", |path, faults| {
        pinvault_fs::open(path, pinvault_fs::DirOptions::default(), faults)
    })
}

mod fs {
    use super::harness;

    pinvault_conformance::conformance_tests!(harness());
}
