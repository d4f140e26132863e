//! What an explicit repair of a damaged store did, in one shape for every backend.
//!
//! Opening a store never drops damage silently: a torn tail a crash can leave is repaired and
//! reported, anything else is [`crate::Error::Corrupt`]. Getting past real damage is the
//! user's decision, taken with `pinvault state repair`; each embedded backend crate exposes a
//! `repair` function that returns this report, and keeps every byte it removes in a
//! quarantine file beside the store instead of deleting it.

use std::fmt;
use std::path::PathBuf;

/// The outcome of one backend's `repair` on one store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The backend that repaired the store (`"fs"`, `"rocksdb"`).
    pub backend: &'static str,
    /// The store's directory.
    pub path: PathBuf,
    /// What was done, one line per step, in order; empty when the store needed nothing.
    pub actions: Vec<String>,
    /// Files holding the bytes the repair took out of the store, kept for inspection.
    pub quarantined: Vec<PathBuf>,
    /// Records dropped, when the backend can count them.
    pub records_dropped: Option<u64>,
}

impl RepairReport {
    /// An empty report for `backend` at `path`: nothing done yet.
    pub fn new(backend: &'static str, path: impl Into<PathBuf>) -> Self {
        RepairReport { backend, path: path.into(), ..Default::default() }
    }

    /// True when the store needed no change.
    pub fn is_clean(&self) -> bool {
        self.actions.is_empty()
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(f, "{} store {}: nothing to repair", self.backend, self.path.display());
        }
        write!(f, "{} store {}:", self.backend, self.path.display())?;
        for action in &self.actions {
            write!(f, "\n  {action}")?;
        }
        if let Some(n) = self.records_dropped {
            write!(f, "\n  records dropped: {n}")?;
        }
        for q in &self.quarantined {
            write!(f, "\n  quarantined: {}", q.display())?;
        }
        Ok(())
    }
}
