//! The whole conformance suite on `LocalFileSystem` (wrapped in `LocalCasStore`) in a fresh
//! temporary directory per check; a reopen is a new backend instance over the same directory.

mod common;

mod object_local {
    use super::common::{ObjectHarness, Target};

    pinvault_conformance::conformance_tests!(ObjectHarness::new(Target::Local));
}
