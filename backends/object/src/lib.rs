//! pinvault on object stores — S3 (and MinIO), Google Cloud Storage, Azure Blob Storage, a local
//! directory, or memory — through the [`object_store`](https://docs.rs/object_store/0.14)
//! crate. One [`ObjectBackend`] implements both contracts over an `Arc<dyn ObjectStore>` and a
//! key prefix ([`ObjectOptions`]; [`S3Config`], [`GcsConfig`], [`AzureConfig`],
//! [`LocalConfig`], or a URL through [`ObjectConfig::from_url`]).
//!
//! Everything rests on the two atomic primitives an object store gives: a PUT of one whole
//! object, and the same PUT made conditional (`If-None-Match: *` = `PutMode::Create`;
//! `If-Match: <etag>` = `PutMode::Update`). Nothing else is relied on: no copy-if-not-exists
//! (MinIO ignores its header mode, `testenv/services/minio/NOTES.md`), no rename, no
//! multi-object transaction. On those two:
//!
//! * **Publication** (module `publish`): a set is published by creating **one** manifest object
//!   with `PutMode::Create`; it lists the staged objects, whose bytes stay where they were
//!   staged. Readers go through manifests only, so a set is visible exactly when its manifest
//!   exists, and of N racing finalizers exactly one wins.
//! * **Pins** (module `pins`): one object per pin, written with compare-and-swap on its ETag.
//!   The pin's [`pinvault_core::Version`] is a fresh write id (module `clock`), never the ETag,
//!   which can repeat.
//! * **Batches are not atomic**: `max_batch_ops: 1`, so the checking layer refuses larger
//!   batches with `Unsupported`; [`ObjectBackend`] used directly refuses them too.
//! * **Views** ([`views`]) are index objects verified against the pins on every read
//!   (`atomic_views: false`); [`ObjectBackend::repair_views`] rebuilds them.
//! * Where every record lives: [`layout`].
//!
//! The crate's `README.md` has the capabilities per store, the request costs, why staged objects
//! carry pending records, why batches are not made atomic with a commit log, and the benchmark
//! against copy-then-delete publication.

#![deny(missing_docs)]

mod backend;
mod clock;
pub mod config;
pub mod counting;
mod error;
pub mod layout;
mod listing;
pub mod local_cas;
mod pins;
mod publish;
mod store;
pub mod views;

pub use backend::{ObjectBackend, LIST_PAGE};
pub use config::{
    AzureConfig, GcsConfig, LocalConfig, ObjectConfig, ObjectOptions, S3Config, StoreConfig,
    StoreKind, URL_FORMS,
};
pub use counting::{CountingStore, RequestCounts};
pub use local_cas::LocalCasStore;
pub use pinvault_core::Secret;
pub use views::RepairReport;

/// Crash point: a pin write passed its checks; nothing is written yet.
pub const COMMIT_VALIDATED: &str = "object.commit.validated";
/// Crash point: a pin write's view rows are written, the pin is not (rows are unmatched).
pub const COMMIT_VIEWS_WRITTEN: &str = "object.commit.views_written";
/// Crash point: the pin's conditional PUT (or delete) returned; old rows not yet cleaned.
pub const COMMIT_WRITTEN: &str = "object.commit.written";
/// Crash point: a staged object's pending record is written, its bytes are not.
pub const STAGE_PENDING_WRITTEN: &str = "object.stage.pending_written";
/// Crash point: a staged object's record and bytes are written.
pub const STAGE_WRITTEN: &str = "object.stage.written";
/// Crash point: a finalize passed every check; the manifest is not written.
pub const FINALIZE_VALIDATED: &str = "object.finalize.validated";
/// Crash point: the manifest is created (the set is published); pending records remain.
pub const FINALIZE_COMMITTED: &str = "object.finalize.committed";
/// The crash points of the object backend's commit path.
pub const PIN_CRASH_POINTS: &[&str] = &[COMMIT_VALIDATED, COMMIT_VIEWS_WRITTEN, COMMIT_WRITTEN];
/// The crash points of the object backend's stage and finalize paths.
pub const PUBLISH_CRASH_POINTS: &[&str] =
    &[STAGE_PENDING_WRITTEN, STAGE_WRITTEN, FINALIZE_VALIDATED, FINALIZE_COMMITTED];

/// Largest object `stage` accepts: 5 GiB, the largest single PUT of S3 (one PUT is one atomic
/// write; a multipart upload would be too, but is not needed for pinvault's objects).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Opens a backend over `options` (reads and writes nothing).
pub fn open(options: ObjectOptions) -> ObjectBackend {
    ObjectBackend::open(options)
}

/// Opens the backend a URL of [`URL_FORMS`] names ([`ObjectConfig::from_url`]; credentials from
/// the environment). Sends no request: a prefix holding no pins is an empty store.
pub fn open_url(
    url: &pinvault_core::BackendUrl,
    faults: pinvault_core::FaultInjector,
) -> pinvault_core::Result<ObjectBackend> {
    let config = ObjectConfig::from_url(url)?;
    Ok(open(config.options()?.with_faults(faults)))
}
