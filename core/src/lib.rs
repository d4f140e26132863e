//! # pinvault-core
//!
//! The core of pinvault: the pin model and its ipfs-cluster wire formats, the two contracts every
//! backend implements, the one error type, capabilities, fault injection, and the in-memory
//! reference backend. It depends on no storage engine.
//!
//! ## The two contracts
//!
//! * [`PinState`] — ipfs-cluster's `state.State` (get/has/list/add/rm, export/import, migrate)
//!   with conditional writes ([`Precondition`]), all-or-nothing batches with [`Receipt`]s, and
//!   secondary views (pins by peer, the bucketed expiry queue, placements).
//! * [`Publisher`] — stage objects, then [`Publisher::finalize`] a whole set all or nothing,
//!   crash-safe, first writer wins; abort, sweep, head, get, list.
//!
//! The trait docs state the visibility, crash and race promises; `pinvault-conformance` checks
//! each one against every backend.
//!
//! ## Adding a backend
//!
//! 1. Make a crate `backends/<name>` depending on `pinvault-core` only.
//! 2. Implement [`PinState`] and [`Publisher`], on one type or on two parts joined by
//!    [`Composed`]. Start from [`PinCapabilities::none`] and [`PublishCapabilities::none`] and
//!    switch on only what the engine guarantees; refuse the rest with [`Error::Unsupported`].
//! 3. Store pins with [`codec::protobuf::encode_record`] (ipfs-cluster's protobuf plus
//!    pinvault's lossless extension fields, still readable by ipfs-cluster).
//! 4. Leave the contract's input checks and capability refusals to the checking layer
//!    ([`Checked`], applied by the facade and the conformance harness to every backend: batch
//!    and finalize validation, `Unsupported` for what the capabilities exclude, the batch-size
//!    and object-size limits, the receipt's op count and digest, tracing and metrics). Call
//!    [`FaultInjector::hit`] at each point of the commit and finalize paths where a crash would
//!    leave a different state; list those names in the `crash_points` of the capability half
//!    they belong to.
//! 5. Return listings through [`paging::paged`] (unbounded, page by page) or
//!    [`paging::single_page`] (an answer bounded by what it answers).
//! 6. Run blocking engines through `tokio::task::spawn_blocking` or a dedicated pool.
//! 7. In the crate's tests, invoke `pinvault_conformance::conformance_tests!` with a harness
//!    that opens a fresh store and reopens one over the same data.
//! 8. Export the crate's URL form and an `open_url` that reads a [`BackendUrl`] (its location
//!    and the options it takes, refusing others with [`BackendUrl::check_options`]; a
//!    directory backend takes [`DirOptions`]), then add a row to the facade's table
//!    (`src/open.rs`).
//! 9. A backend whose store is a local directory calls [`store_dir::claim`] before its engine
//!    touches the directory (honouring [`OpenMode`]), creates its files only when the claim
//!    says the store is new, and [`store_dir::Claim::commit`]s once the engine is open; its
//!    tests invoke `pinvault_conformance::store_dir_tests!`.
//!
//! The [`memory`] backend is the reference model: the proptest differential test compares every
//! backend's results with it.

#![deny(missing_docs)]

pub mod audit;
pub mod backend_url;
pub mod batch;
pub mod capability;
pub mod checked;
pub mod clock;
pub mod codec;
pub mod composed;
pub mod error;
pub mod fault;
pub mod keysort;
pub mod kv;
pub mod lock_wait;
pub mod memory;
pub mod multiaddr;
pub mod name;
pub mod paging;
pub mod pin;
pub mod publish;
pub mod repair;
pub mod secret;
pub mod state;
pub mod store_dir;
mod sync;
pub mod transfer;
pub mod version;

pub use backend_url::{BackendUrl, DirOptions};
pub use batch::{Batch, BatchOp, Receipt};
pub use capability::{PinCapabilities, PublishCapabilities};
pub use checked::Checked;
pub use cid::Cid;
pub use composed::Composed;
pub use error::{Error, PathProblem, Result};
pub use fault::FaultInjector;
pub use multiaddr::Multiaddr;
pub use name::{ObjectKey, ObjectName, SetName};
pub use pin::{PeerId, Pin, PinMode, PinOptions, PinType};
pub use publish::{ObjectMeta, Publication, Publisher, PublisherExt, StagedObject, SweepReport};
pub use repair::RepairReport;
pub use secret::Secret;
pub use state::{Cursor, Expiry, ListEntry, MigrationReport, PinState, Placement, Versioned};
pub use store_dir::OpenMode;
pub use version::{Precondition, Version};
