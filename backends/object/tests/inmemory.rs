//! The whole conformance suite on `object_store::memory::InMemory`: a fresh store per check, a
//! reopen is a new backend instance over the same `InMemory`. Needs no service.

mod common;

mod object_memory {
    use super::common::{ObjectHarness, Target};

    pinvault_conformance::conformance_tests!(ObjectHarness::new(Target::Memory));
}
