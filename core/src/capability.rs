//! What a backend guarantees, stated up front, one half per contract.
//!
//! [`PinCapabilities`] belong to [`crate::PinState`], [`PublishCapabilities`] to
//! [`crate::Publisher`], so a backend may serve its contracts from different parts (fs: pins
//! over the KV layer, publication on its own) and each part states only what it keeps. The
//! checking layer ([`crate::Checked`]) refuses what a half excludes with
//! [`crate::Error::Unsupported`]; the conformance suite reads the flags to decide which promises
//! to check. A backend never claims a guarantee it cannot keep, and never silently downgrades an
//! operation it cannot do.

/// The guarantees of one backend instance's pin state (they may depend on its configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PinCapabilities {
    /// The backend's short name (`"memory"`, `"rocksdb"`, ...).
    pub backend: &'static str,
    /// Data survives the process: a new instance over the same location sees it.
    pub persistent: bool,
    /// A successful write is on stable storage when the call returns (fsync, quorum ack...).
    pub durable_on_return: bool,
    /// Single-key conditional writes (`Absent`, `Version`) are linearizable.
    pub linearizable_conditional_writes: bool,
    /// Multi-op batches of unconditional ops commit all or nothing.
    pub atomic_batch: bool,
    /// Multi-op batches may carry preconditions and still commit all or nothing, isolated from
    /// concurrent writers. When false, such batches are refused with `Unsupported`.
    pub conditional_batch: bool,
    /// The secondary views (by peer, expiry, placements) change in the same atomic step as the
    /// pins; when false, they converge after the write (and the backend documents how).
    pub atomic_views: bool,
    /// The most ops one batch may hold, if limited.
    pub max_batch_ops: Option<usize>,
    /// Named crash points on the commit path that fault injection can fire.
    pub crash_points: &'static [&'static str],
}

/// The guarantees of one backend instance's publication (they may depend on its configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishCapabilities {
    /// The backend's short name (`"memory"`, `"fs"`, ...).
    pub backend: &'static str,
    /// Published sets survive the process.
    pub persistent: bool,
    /// A staged object or a finalized set is on stable storage when the call returns.
    pub durable_on_return: bool,
    /// Atomic publication of object sets is implemented; when false, `stage` and `finalize`
    /// are refused with `Unsupported`.
    pub atomic_publication: bool,
    /// The largest object `stage` accepts, in bytes, if limited.
    pub max_object_size: Option<u64>,
    /// Named crash points on the stage and finalize paths that fault injection can fire.
    pub crash_points: &'static [&'static str],
}

impl PinCapabilities {
    /// Pin state that promises nothing; backends start from this and switch on what they keep.
    pub const fn none(backend: &'static str) -> Self {
        PinCapabilities {
            backend,
            persistent: false,
            durable_on_return: false,
            linearizable_conditional_writes: false,
            atomic_batch: false,
            conditional_batch: false,
            atomic_views: false,
            max_batch_ops: None,
            crash_points: &[],
        }
    }

    /// This half's cells of the README's backend × capability matrix, as `(name, value)`.
    pub fn matrix_row(&self) -> Vec<(&'static str, String)> {
        vec![
            ("persistent", yes(self.persistent)),
            ("durable on return", yes(self.durable_on_return)),
            ("linearizable conditional writes", yes(self.linearizable_conditional_writes)),
            ("atomic batch", yes(self.atomic_batch)),
            ("conditional batch", yes(self.conditional_batch)),
            ("atomic views", yes(self.atomic_views)),
            ("max batch ops", limit(self.max_batch_ops.map(|n| n as u64))),
            ("commit crash points", self.crash_points.len().to_string()),
        ]
    }
}

impl PublishCapabilities {
    /// Publication that promises nothing (and refuses to publish); backends start from this
    /// and switch on what they keep.
    pub const fn none(backend: &'static str) -> Self {
        PublishCapabilities {
            backend,
            persistent: false,
            durable_on_return: false,
            atomic_publication: false,
            max_object_size: None,
            crash_points: &[],
        }
    }

    /// This half's cells of the README's backend × capability matrix, as `(name, value)`.
    pub fn matrix_row(&self) -> Vec<(&'static str, String)> {
        vec![
            ("atomic publication", yes(self.atomic_publication)),
            ("max object size", limit(self.max_object_size)),
            ("publication crash points", self.crash_points.len().to_string()),
        ]
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn limit(l: Option<u64>) -> String {
    l.map_or("unlimited".to_owned(), |n| n.to_string())
}
