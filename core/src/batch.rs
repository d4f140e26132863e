//! Batches of conditional pin writes and the receipts their commits return.
//!
//! A [`Batch`] is validated as a whole before a backend touches storage: every op's pin is
//! checked, a CID may appear once, and a remove cannot ask for `Absent`. The [`Receipt`] of a
//! commit carries a digest of the ops computed the same way by every backend, so two backends
//! given the same batch return the same digest.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use cid::Cid;
use sha2::{Digest, Sha256};

use crate::codec::protobuf::encode_record;
use crate::pin::Pin;
use crate::version::{Precondition, Version};
use crate::{Error, Result};

/// One write of a batch.
// A put carries its whole pin inline: ops live in one Vec, and boxing would only add an
// allocation per op.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Insert or replace `pin` if `precondition` holds.
    Put {
        /// The pin to write.
        pin: Pin,
        /// When the write may happen.
        precondition: Precondition,
    },
    /// Delete the pin of `cid` if `precondition` holds. Removing an absent pin with
    /// `Precondition::Any` succeeds and changes nothing.
    Remove {
        /// The pin to delete.
        cid: Cid,
        /// When the delete may happen (`Any` or `Version`).
        precondition: Precondition,
    },
}

impl BatchOp {
    /// The CID this op writes.
    pub fn cid(&self) -> &Cid {
        match self {
            BatchOp::Put { pin, .. } => &pin.cid,
            BatchOp::Remove { cid, .. } => cid,
        }
    }

    /// This op's precondition.
    pub fn precondition(&self) -> &Precondition {
        match self {
            BatchOp::Put { precondition, .. } | BatchOp::Remove { precondition, .. } => {
                precondition
            }
        }
    }
}

/// An ordered set of writes committed all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The writes, in the order they were added. Each CID appears at most once.
    pub ops: Vec<BatchOp>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(mut self, pin: Pin, precondition: Precondition) -> Self {
        self.ops.push(BatchOp::Put { pin, precondition });
        self
    }

    /// Adds a remove.
    pub fn remove(mut self, cid: Cid, precondition: Precondition) -> Self {
        self.ops.push(BatchOp::Remove { cid, precondition });
        self
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// True when any op carries a precondition other than `Any`.
    pub fn is_conditional(&self) -> bool {
        self.ops.iter().any(|op| op.precondition().is_conditional())
    }

    /// Checks everything that does not depend on stored state. Backends call this first and
    /// write nothing when it fails.
    pub fn validate(&self, max_ops: Option<usize>) -> Result<()> {
        if self.ops.is_empty() {
            return Err(Error::invalid("batch", "a batch needs at least one op"));
        }
        if let Some(max) = max_ops {
            if self.ops.len() > max {
                return Err(Error::invalid(
                    "batch",
                    format!("{} ops exceed this backend's limit of {max}", self.ops.len()),
                ));
            }
        }
        let mut seen = HashSet::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate() {
            if !seen.insert(op.cid()) {
                return Err(Error::invalid(
                    format!("batch op {i}"),
                    format!("{} appears more than once in the batch", op.cid()),
                ));
            }
            match op {
                BatchOp::Put { pin, .. } => pin.validate().map_err(|e| match e {
                    Error::InvalidInput { what, reason, source } => Error::InvalidInput {
                        what: format!("batch op {i} ({what})"),
                        reason,
                        source,
                    },
                    other => other,
                })?,
                BatchOp::Remove { precondition: Precondition::Absent, cid } => {
                    return Err(Error::invalid(
                        format!("batch op {i}"),
                        format!("remove of {cid} with precondition Absent can never apply"),
                    ));
                }
                BatchOp::Remove { .. } => {}
            }
        }
        Ok(())
    }

    /// SHA-256 over a canonical encoding of the ops: kind, precondition, and the pin's record
    /// bytes (or the CID's bytes for a remove). Every backend reports this in its receipts.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for op in &self.ops {
            let (kind, payload) = match op {
                BatchOp::Put { pin, .. } => (b'P', encode_record(pin)),
                BatchOp::Remove { cid, .. } => (b'R', cid.to_bytes()),
            };
            h.update([kind]);
            match op.precondition() {
                Precondition::Any => h.update([0u8]),
                Precondition::Absent => h.update([1u8]),
                Precondition::Version(v) => {
                    h.update([2u8]);
                    h.update((v.as_bytes().len() as u64).to_be_bytes());
                    h.update(v.as_bytes());
                }
            }
            h.update((payload.len() as u64).to_be_bytes());
            h.update(&payload);
        }
        h.finalize().into()
    }
}

/// Proof that a batch was committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The backend's commit sequence: strictly increasing across the commits of one store.
    pub sequence: u64,
    /// How many ops the batch held.
    pub ops: usize,
    /// When the commit happened (backend clock).
    pub committed_at: DateTime<Utc>,
    /// [`Batch::digest`] of the committed batch.
    pub digest: [u8; 32],
    /// The new version of each op's key, in op order (`None` for removes).
    pub versions: Vec<Option<Version>>,
}
