//! Both contracts over any ordered key-value engine: the shared layer of the embedded backends.
//!
//! `pinvault-rocksdb`, `pinvault-sled` and `pinvault-fs` each implement the small [`KvEngine`]
//! trait (get, ordered scan, one atomic multi-table write) and get every promise of
//! [`PinState`](crate::PinState) and [`Publisher`](crate::Publisher) from [`KvBackend`] (fs
//! implements [`Publisher`](crate::Publisher) itself). Like TiKV's `engine_traits`, this module
//! depends on no engine.
//!
//! # Porting guide: adding an engine
//!
//! 1. Map each [`Table`] to a column family, tree or key prefix.
//! 2. Implement [`KvEngine`]: `write` must be atomic across tables and across a crash, and
//!    invisible to readers until complete; `scan` must read one snapshot; `durable` says whether
//!    a returned write is fsynced.
//! 3. Open with [`KvBackend::open`], run `pinvault-conformance`'s `conformance_tests!` over it
//!    (crash = drop without close and reopen over the same directory), and its SIGKILL test.
//!
//! # How the promises are kept
//!
//! * **Atomicity and crashes.** Every commit, stage and finalize ends in exactly one engine
//!   `write`: the commit point. A crash before it leaves nothing, after it everything.
//! * **Isolation.** Conditional writers lock the stripes of their CIDs ([`LockTable`]) around
//!   read, check and write; publication paths share one mutex. Readers take no lock: the engine
//!   gives them whole writes only.
//! * **Versions and receipts.** One commit sequence, recovered at open from per-stripe slots;
//!   every key a commit writes gets the commit's sequence as its version, so a re-insert after a
//!   remove never repeats a version.
//! * **Views.** The by-peer and expiry rows are written in the same engine write as the pin,
//!   from the old record read under the lock.
//! * **Formats.** `kv/layout.rs` (not public API) holds the key layout, format 2, and what
//!   `migrate` converts.

mod backend;
mod btree;
mod engine;
// The stored format is not API, but it is public for the code outside core that must read or
// write the exact stored rows: the benches' raw RocksDB/sled writers, the fuzz targets and the
// format-migration check in pinvault-conformance.
#[doc(hidden)]
pub mod layout;
pub mod locks;
mod store;

pub use backend::{KvBackend, LIST_PAGE};
pub use btree::BTreeEngine;
pub use engine::{scan_map, scan_range, take_scan, KvEngine, KvWrite, Table};
pub use locks::LockTable;
pub use store::{
    KvStore, COMMIT_VALIDATED, COMMIT_WRITTEN, FINALIZE_VALIDATED, FINALIZE_WRITTEN,
    MAX_OBJECT_SIZE, PIN_CRASH_POINTS, PUBLISH_CRASH_POINTS, STAGE_WRITTEN,
};
