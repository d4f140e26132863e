//! # pinvault-conformance-adopter
//!
//! An example of what a third party writes to bring its own storage engine to pinvault and to
//! prove it with the conformance suite, built outside pinvault's workspace as such a crate
//! would be.
//!
//! * [`snapshot::SnapshotEngine`] is a toy but durable [`KvEngine`](pinvault_core::kv::KvEngine):
//!   the whole store is one file, rewritten (temporary file, fsync, rename, directory fsync) on
//!   every write. [`open`] wraps it in [`KvBackend`], which gives both contracts,
//!   [`PinState`](pinvault_core::PinState) and [`Publisher`](pinvault_core::Publisher).
//! * `tests/conformance.rs` runs the whole suite on it, `tests/kill.rs` the SIGKILL test.
//! * [`mutants`] holds deliberately broken variants; `tests/mutants.rs` and
//!   `tests/kill_mutant.rs` assert that the suite catches each one, by name.
//!
//! See README.md for the three adoption steps and what each mutant breaks.

pub mod mutants;
pub mod snapshot;

use std::path::PathBuf;

use pinvault_core::kv::KvBackend;
use pinvault_core::{FaultInjector, Result};

pub use snapshot::SnapshotEngine;

/// The toy backend: both contracts over the snapshot engine.
pub type ToyBackend = KvBackend<SnapshotEngine>;

/// Opens (creating when absent) the toy store in `dir`. Blocking: it reads the whole snapshot.
pub fn open(dir: impl Into<PathBuf>, faults: FaultInjector) -> Result<ToyBackend> {
    KvBackend::open(SnapshotEngine::open(dir.into())?, faults)
}

/// [`open`] without fsyncs ([`SnapshotEngine::open_without_fsync`]): survives a process
/// crash, not a power loss. For the mutation tests, which test the suite, not durability.
pub async fn open_without_fsync(
    dir: impl Into<PathBuf>,
    faults: FaultInjector,
) -> Result<ToyBackend> {
    let dir = dir.into();
    KvBackend::open_async(move || SnapshotEngine::open_without_fsync(dir), faults).await
}

/// [`open`] on tokio's blocking pool.
pub async fn open_async(dir: impl Into<PathBuf>, faults: FaultInjector) -> Result<ToyBackend> {
    let dir = dir.into();
    KvBackend::open_async(move || SnapshotEngine::open(dir), faults).await
}
