//! pinvault on object stores — S3 (and MinIO), Google Cloud Storage, Azure Blob Storage, a local
//! directory, or memory — through the [`object_store`](https://docs.rs/object_store/0.14)
//! crate. One [`ObjectBackend`] implements both contracts over an `Arc<dyn ObjectStore>` and a
//! key prefix ([`ObjectOptions`]; [`S3Config`], [`GcsConfig`], [`AzureConfig`],
//! [`LocalConfig`], or a URL through [`ObjectConfig::from_url`]).
//!
//! An object store gives exactly two atomic primitives: a PUT of one whole object, and the same
//! PUT made conditional (`If-None-Match: *` = `PutMode::Create`; `If-Match: <etag>` =
//! `PutMode::Update`). Everything below is built on those, and on nothing else: no
//! copy-if-not-exists (MinIO ignores its header mode, `testenv/services/minio/NOTES.md`), no
//! rename, no multi-object transaction.
//!
//! # Atomic publication: one manifest, created once
//!
//! Staging PUTs the bytes under a private key `<prefix>/staging/<stage id>/data` (plus a small
//! `pending/<stage id>` record, written first), where no reader looks. `finalize` (its input
//! checked by the checking layer, [`pinvault_core::checked`]: `InvalidInput`) `HEAD`s the
//! set's manifest key (`AlreadyExists`) and every staged object's bytes (`NotFound`), then
//! commits by creating **one** object, `<prefix>/sets/<encoded set>/_pinvault.manifest`, with
//! `PutMode::Create`. The manifest lists each object's name, size, SHA-256, data location (its
//! stage id) and ETag. Readers (`head`, `get`, `publication`, `list`) go through manifests
//! only, so a set is visible exactly when its manifest exists, and a crash at any instant
//! leaves it entirely published or not at all. Of N racing finalizers, the store lets exactly
//! one `Create` succeed; the others get `AlreadyExists`.
//!
//! Published bytes stay where they were staged: nothing is copied. One finalize of N objects
//! costs N + 1 HEADs (issued together) and **one** conditional PUT, then one bulk DELETE of the
//! N pending records once committed (S3 `DeleteObjects`, Azure blob batch); staging cost 2N
//! PUTs before (record and bytes, in parallel if the caller stages in parallel). The seed
//! design's copy-then-delete (copy each staged object to its final key, delete the staged one)
//! costs 2N requests in the publication step, rewrites every byte server-side, and is not
//! atomic: a crash half-way leaves half a set visible, and "rollback" by deleting is a second
//! non-atomic loop. `benches/finalize.rs` measures both on MinIO (`README.md`): about the same
//! number of requests end to end (3N + 3 against 3N), half of them in the publication step
//! for large N, and 1.2× (N = 1) to 3× (N = 100) faster to publish.
//!
//! Why a pending record per staged object (the extra N PUTs): published bytes stay under
//! `staging/`, so "bytes with no manifest listing them" cannot be found without listing every
//! object ever published. The pending records make `sweep` proportional to what is still
//! unpublished, and let `abort` and `sweep` tell a crashed writer's leftovers from published
//! data.
//!
//! `sweep(cutoff)` lists `pending/`, and for each record older than the cutoff deletes the
//! bytes, then the record — unless the manifest of its set lists it (a crash between the
//! manifest PUT and the pending cleanup), in which case only the record goes. Published data is
//! never deleted. Set and object names cannot collide: the manifest key encodes the set's
//! segments injectively and object names only appear inside manifests ([`layout`]).
//!
//! # Pin state: one object per pin, compare-and-swap on its ETag
//!
//! `<prefix>/pins/<cid hex>` holds the pin with a fresh **write id** (a hybrid-logical-clock
//! sequence plus 64 random bits) that is its [`pinvault_core::Version`]. `Absent` writes with
//! `PutMode::Create` (or `Update` over a tombstone), `Version(v)` with `PutMode::Update` on the
//! ETag read with `v`, `Any` overwrites (the table is at the end of this page). The version is
//! the write id rather than the raw ETag because S3's ETag of a single-part PUT is the MD5 of
//! the body (two writes of one pin would share it: ABA) and a PUT's ETag and a later GET's
//! can differ in form across stores; the ETag read together with the write id is what the
//! conditional PUT checks, so the check stays atomic with the write. Linearizable conditional writes need a
//! store with `PutMode::Update`: S3/MinIO, GCS, Azure and `InMemory` have it; local
//! directories get it from [`LocalCasStore`] (one process per directory).
//!
//! ## Batches are declared non-atomic
//!
//! Capabilities say `atomic_batch: false`, `conditional_batch: false`, `max_batch_ops: 1`:
//! the checking layer ([`pinvault_core::checked`]) refuses a multi-op batch with `Unsupported`
//! (after the batch's input checks, which stay `InvalidInput`), and an import commits pin by
//! pin (`core/src/transfer.rs` lowers its batch size to `max_batch_ops`). A conditional import
//! in batches is refused too. Used without the layer, [`ObjectBackend`] refuses a batch of
//! other than one op itself and checks nothing else of the contract's input. Object stores
//! have no multi-object atomic write; the way to get one is a **commit log** à la Delta Lake:
//! every batch becomes one log object `log/<n>` created with `PutMode::Create` (the `Create`
//! is the atomic commit and serialises writers: exactly one wins slot n), readers replay the
//! log from the last checkpoint, and a background checkpointer folds the log into per-pin
//! objects. That would make batches atomic and conditional, but: every write serialises on the
//! log tail (one `Create` per commit for the whole store, so conditional writers of unrelated
//! keys conflict and retry); every read must first learn the log tail (a LIST, or a HEAD probe
//! of `log/<n+1>`) and replay the entries since the checkpoint, so a point read costs a LIST
//! plus GETs instead of one GET; and checkpointing, log truncation and crash recovery of the
//! checkpointer are a second protocol to get right. For a pinset whose writers mostly touch one
//! pin at a time, per-pin CAS is one GET + one PUT with no global serialisation point; batches
//! that must be atomic belong on a backend that declares it (RocksDB, sled, memory).
//!
//! ## Views converge, verified on read
//!
//! Views (pins by peer, the hour-bucketed expiry queue) are empty index objects whose keys name
//! the pin and the write id they index, written *before* the pin and cleaned after it;
//! placements are one record per pin tied to its incarnation. Readers verify every row against
//! the pin and filter (and lazily delete) stale ones: `atomic_views: false`. What a crash
//! between the row writes and the pin write leaves, and how [`ObjectBackend::repair_views`]
//! (run by `migrate`) repairs it, is in the [`views`] module doc.
//!
//! ## Receipts and durability
//!
//! Receipt sequences come from a hybrid logical clock, `max(last + 1, now µs)`: strictly
//! increasing per instance, and across instances ordered by wall clock (a reopened instance
//! continues above the old one's sequences; two concurrent writers with skewed clocks can
//! interleave). Details in the `clock` module. `durable_on_return: true` and `persistent: true`
//! for the cloud stores (a PUT is acknowledged once stored redundantly) and for local
//! directories with `fsync` (the default); `InMemory` declares neither.
//!
//! # Crash points
//!
//! [`COMMIT_VALIDATED`], [`COMMIT_VIEWS_WRITTEN`], [`COMMIT_WRITTEN`] on the pin path;
//! [`STAGE_PENDING_WRITTEN`], [`STAGE_WRITTEN`] on staging; [`FINALIZE_VALIDATED`] and
//! [`FINALIZE_COMMITTED`] (after the manifest PUT, before the pending cleanup) on finalize.
//!
//! # Errors
//!
//! `object_store` errors map onto [`pinvault_core::Error`] as the `error` module's table says:
//! a lost `Create`/`Update` is `AlreadyExists` (finalize) or `Conflict` (pins); a timeout or
//! connection failure is `Unavailable`, with `outcome_unknown: true` for a write that may have
//! reached the server (a timed-out conditional PUT); `NotImplemented` is `Unsupported`.
//!
//! # Security
//!
//! Credentials live in [`Secret`]s (Debug prints `***`), are read from the environment rather
//! than URLs, and appear in no `Debug` output, error, or tracing span: spans carry the backend
//! name, the set, object and stage id, or the CID.
//!
//! # Pins
//!
//! From the `pins` module doc: `Any` → `Overwrite`; `Absent` →
//! `Create`, or `Update` over a tombstone; `Version(v)` → `Update(etag read with v)`;
//! `remove(Version)` → `Update` to a tombstone (object_store has no conditional DELETE);
//! `remove(Any)` → DELETE.

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
