//! The pin tables of the memory backend: pins by CID and the three views, changed together.
//!
//! Pure data and the rules to change it; locking is [`super::store`]'s job.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use cid::Cid;

use crate::batch::{Batch, BatchOp};
use crate::pin::{PeerId, Pin};
use crate::state::{expiry_bucket, Expiry, Placement};
use crate::version::Version;
use crate::{Error, Result};

/// A stored pin and the commit sequence that wrote it (its version).
#[derive(Clone, Debug)]
pub(crate) struct StoredPin {
    pub(crate) pin: Pin,
    pub(crate) sequence: u64,
}

/// Pins keyed by CID bytes (the list order), and the views derived from them.
#[derive(Debug, Default)]
pub(crate) struct PinTables {
    pub(crate) pins: BTreeMap<Vec<u8>, StoredPin>,
    by_peer: BTreeSet<(PeerId, Vec<u8>)>,
    /// `(hour bucket, expire_at, cid bytes)`.
    expiry: BTreeSet<(i64, DateTime<Utc>, Vec<u8>)>,
    /// Actual placements reported by peers, by CID bytes.
    actual: HashMap<Vec<u8>, BTreeSet<PeerId>>,
}

impl PinTables {
    pub(crate) fn current_version(&self, cid: &Cid) -> Option<Version> {
        self.pins.get(&cid.to_bytes()).map(|s| Version::from_u64(s.sequence))
    }

    /// Checks every precondition in op order; the first failure is the batch's error.
    pub(crate) fn check(&self, batch: &Batch) -> Result<()> {
        for (op_index, op) in batch.ops.iter().enumerate() {
            let current = self.current_version(op.cid());
            if !op.precondition().holds(current.as_ref()) {
                return Err(Error::Conflict {
                    key: op.cid().to_string(),
                    expected: op.precondition().describe(),
                    current,
                    op_index,
                });
            }
        }
        Ok(())
    }

    /// Applies a checked batch as commit `sequence`; returns each op's new version.
    pub(crate) fn apply(&mut self, batch: Batch, sequence: u64) -> Vec<Option<Version>> {
        batch
            .ops
            .into_iter()
            .map(|op| match op {
                BatchOp::Put { pin, .. } => {
                    let key = pin.cid.to_bytes();
                    self.unindex(&key);
                    self.index(&key, &pin);
                    self.pins.insert(key, StoredPin { pin, sequence });
                    Some(Version::from_u64(sequence))
                }
                BatchOp::Remove { cid, .. } => {
                    let key = cid.to_bytes();
                    self.unindex(&key);
                    self.pins.remove(&key);
                    self.actual.remove(&key);
                    None
                }
            })
            .collect()
    }

    fn index(&mut self, key: &[u8], pin: &Pin) {
        for peer in &pin.allocations {
            self.by_peer.insert((peer.clone(), key.to_vec()));
        }
        if let Some(at) = pin.options.expire_at {
            self.expiry.insert((expiry_bucket(at), at, key.to_vec()));
        }
    }

    fn unindex(&mut self, key: &[u8]) {
        let Some(old) = self.pins.get(key) else { return };
        for peer in &old.pin.allocations {
            self.by_peer.remove(&(peer.clone(), key.to_vec()));
        }
        if let Some(at) = old.pin.options.expire_at {
            self.expiry.remove(&(expiry_bucket(at), at, key.to_vec()));
        }
    }

    /// Up to `limit` pins strictly after `after` (CID bytes), in CID byte order.
    pub(crate) fn page(&self, after: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, StoredPin)> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_vec()));
        self.pins
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn by_peer(&self, peer: &PeerId) -> Vec<Cid> {
        self.by_peer
            .range((peer.clone(), Vec::new())..)
            .take_while(|(p, _)| p == peer)
            .filter_map(|(_, key)| self.pins.get(key).map(|s| s.pin.cid))
            .collect()
    }

    /// Walks the buckets up to `before`'s only; entries come out in `(expire_at, cid)` order
    /// because the bucket is a function of `expire_at`.
    pub(crate) fn expiring_before(&self, before: DateTime<Utc>) -> Vec<Expiry> {
        let last_bucket = expiry_bucket(before);
        self.expiry
            .iter()
            .take_while(|(bucket, _, _)| *bucket <= last_bucket)
            .filter(|(_, at, _)| *at < before)
            .filter_map(|(_, at, key)| {
                self.pins.get(key).map(|s| Expiry { expire_at: *at, cid: s.pin.cid })
            })
            .collect()
    }

    pub(crate) fn placement(&self, cid: &Cid) -> Result<Placement> {
        let key = cid.to_bytes();
        let stored = self.pins.get(&key).ok_or_else(|| Error::not_found(format!("pin {cid}")))?;
        Ok(Placement {
            cid: *cid,
            desired: stored.pin.allocations.iter().cloned().collect(),
            actual: self.actual.get(&key).cloned().unwrap_or_default(),
        })
    }

    pub(crate) fn record_placement(&mut self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        let key = cid.to_bytes();
        if !self.pins.contains_key(&key) {
            return Err(Error::not_found(format!("pin {cid}")));
        }
        self.actual.insert(key, actual);
        Ok(())
    }
}
