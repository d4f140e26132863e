//! Step 3 of adopting the suite: the whole conformance suite on the toy backend. A store lives
//! in a fresh temporary directory (`DirHarness`); a crash is the instance dropped without any
//! close, and a reopen is a new instance over the same directory.

fn harness() -> impl pinvault_conformance::Harness {
    pinvault_conformance::DirHarness::new("toy", pinvault_conformance_adopter::open_async)
}

mod toy {
    use super::harness;

    pinvault_conformance::conformance_tests!(harness());
}
