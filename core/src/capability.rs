//! What a backend guarantees, stated up front.
//!
//! The conformance suite reads these flags to decide which promises to check and which
//! operations must be refused with [`crate::Error::Unsupported`]. A backend never claims a
//! guarantee it cannot keep, and never silently downgrades an operation it cannot do.

/// The guarantees of one backend instance (they may depend on its configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
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
    /// Atomic publication of object sets is implemented.
    pub atomic_publication: bool,
    /// The largest object `stage` accepts, in bytes, if limited.
    pub max_object_size: Option<u64>,
    /// Named crash points on the commit and finalize paths that fault injection can fire.
    pub crash_points: &'static [&'static str],
}

impl Capabilities {
    /// A backend that promises nothing; backends start from this and switch on what they keep.
    pub const fn none(backend: &'static str) -> Self {
        Capabilities {
            backend,
            persistent: false,
            durable_on_return: false,
            linearizable_conditional_writes: false,
            atomic_batch: false,
            conditional_batch: false,
            atomic_views: false,
            max_batch_ops: None,
            atomic_publication: false,
            max_object_size: None,
            crash_points: &[],
        }
    }

    /// One row of the README's backend × capability matrix, as `(name, yes/no/limit)` pairs.
    pub fn matrix_row(&self) -> Vec<(&'static str, String)> {
        let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let limit = |l: Option<u64>| l.map_or("unlimited".to_owned(), |n| n.to_string());
        vec![
            ("persistent", yes(self.persistent)),
            ("durable on return", yes(self.durable_on_return)),
            ("linearizable conditional writes", yes(self.linearizable_conditional_writes)),
            ("atomic batch", yes(self.atomic_batch)),
            ("conditional batch", yes(self.conditional_batch)),
            ("atomic views", yes(self.atomic_views)),
            ("max batch ops", limit(self.max_batch_ops.map(|n| n as u64))),
            ("atomic publication", yes(self.atomic_publication)),
            ("max object size", limit(self.max_object_size)),
            ("crash points", self.crash_points.len().to_string()),
        ]
    }
}
