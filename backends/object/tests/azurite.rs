//! The whole conformance suite on Azurite (Azure Blob), one container, a fresh prefix per
//! check. Needs `testenv/pvenv up azurite` and its env file sourced; fails (never skips)
//! without them.

mod common;

mod object_azurite {
    use super::common::ObjectHarness;

    pinvault_conformance::conformance_tests!(ObjectHarness::azurite());
}
