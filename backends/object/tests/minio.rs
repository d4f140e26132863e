//! The whole conformance suite on MinIO (S3), one bucket, a fresh prefix per check. Needs
//! `testenv/pvenv up minio` and its env file sourced; fails (never skips) without them.

mod common;

mod object_minio {
    use super::common::ObjectHarness;

    pinvault_conformance::conformance_tests!(ObjectHarness::minio());
}
