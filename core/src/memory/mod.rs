//! The in-memory backend: the reference model of both contracts.
//!
//! Every promise of [`PinState`](crate::PinState) and [`Publisher`](crate::Publisher) holds here
//! in the simplest way that can be checked by eye. The proptest differential test in
//! `pinvault-conformance` runs each backend beside this one and compares every result, so where
//! the contracts' docs leave a detail open, this backend's behaviour is the answer.
//!
//! # How atomicity is achieved
//!
//! All data sits behind **one `RwLock`** in [`MemoryStore`], whose methods are synchronous and
//! hold all of the coordination (so `tests/loom_memory.rs` can model-check them under
//! `cfg(loom)`). A `commit` or `finalize` takes the write lock, checks every precondition
//! (validate), and only then changes anything (apply): the pins and all three views, or the
//! published objects and the publication record, within the same critical section. A reader
//! takes the read lock, so it sees a batch or a publication entirely or not at all, and the
//! apply step cannot fail half-way.
//!
//! # Versions and sequences
//!
//! The store keeps one commit sequence (`u64`), shared by commits and finalizes. Every commit
//! takes the next number, returns it in its [`Receipt`](crate::Receipt), and every key it writes
//! gets `Version::from_u64(sequence)`. A re-insert after a remove therefore always gets a new
//! version (no ABA), and versions of one key grow with time.
//!
//! # Order of listings and views
//!
//! `list` and `pins_by_peer` follow CID binary bytes (the [`Cursor`](crate::Cursor) is those
//! bytes); `expiring_before` follows `(expire_at, CID bytes)`; the object `list` follows the text
//! of the `set/name` key.
//!
//! # Crash points for a store that is not persistent
//!
//! The data lives as long as a [`MemoryStore`] handle; opening a new [`MemoryBackend`] over the
//! same store stands in for "restart the process" in the conformance suite. The four crash
//! points ([`PIN_CRASH_POINTS`], [`PUBLISH_CRASH_POINTS`]) sit on both sides of the commit point of each path: at
//! `*.validated` nothing is applied yet, so a crash leaves nothing; at `commit.applied` /
//! `finalize.published` the batch or set is already complete and visible, so a crash leaves all
//! of it and the caller merely never sees the `Ok`. There is no third state to reach.

mod backend;
mod objects;
mod pins;
mod store;

pub use backend::{MemoryBackend, LIST_PAGE};
pub use store::{
    MemoryStore, COMMIT_APPLIED, COMMIT_VALIDATED, FINALIZE_PUBLISHED, FINALIZE_VALIDATED,
    FORMAT_VERSION, MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS,
};
