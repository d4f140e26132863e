//! The synchronous core of the memory backend: all of its coordination in one place.
//!
//! One `RwLock` guards every table. A commit or finalize takes the write lock, checks all of its
//! preconditions, then applies everything before releasing it, so a reader (who takes the read
//! lock) sees a batch or a publication entirely or not at all. The lock comes from
//! `crate::sync`, which is loom's under `cfg(loom)`: `tests/loom_memory.rs` model-checks these
//! methods from several threads.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;

use super::objects::ObjectTables;
use super::pins::PinTables;
use crate::batch::{Batch, Receipt};
use crate::fault::FaultInjector;
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::pin::PeerId;
use crate::publish::{self, ObjectMeta, Publication, StagedObject, SweepReport};
use crate::state::{Cursor, Expiry, ListEntry, Placement, Versioned};
use crate::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use crate::version::Version;
use crate::{Error, Result};

/// Crash point: a batch passed every check, nothing is applied yet.
pub const COMMIT_VALIDATED: &str = "memory.commit.validated";
/// Crash point: a batch is applied (a crash here must leave it committed).
pub const COMMIT_APPLIED: &str = "memory.commit.applied";
/// Crash point: a finalize passed every check, nothing is published yet.
pub const FINALIZE_VALIDATED: &str = "memory.finalize.validated";
/// Crash point: a set is published (a crash here must leave it published).
pub const FINALIZE_PUBLISHED: &str = "memory.finalize.published";
/// The crash points of the commit path.
pub const PIN_CRASH_POINTS: &[&str] = &[COMMIT_VALIDATED, COMMIT_APPLIED];
/// The crash points of the finalize path.
pub const PUBLISH_CRASH_POINTS: &[&str] = &[FINALIZE_VALIDATED, FINALIZE_PUBLISHED];

/// Largest object `stage` accepts: 64 MiB.
pub const MAX_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

/// The stored-format version of the memory backend (it has only ever had one).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default)]
struct Data {
    /// The last commit sequence handed out (commits and finalizes share it).
    sequence: u64,
    /// The last stage id handed out.
    stage_counter: u64,
    pins: PinTables,
    objects: ObjectTables,
}

/// A handle to the data of one memory store. Clones share the data: a new
/// [`super::MemoryBackend`] opened over a clone is how tests "reopen" a memory store.
#[derive(Clone, Default)]
pub struct MemoryStore {
    data: Arc<RwLock<Data>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    // A poisoned lock means a panic inside a critical section; every critical section validates
    // before it mutates, so the data is still consistent and the guard is safe to take.
    fn read(&self) -> RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates, checks every precondition, and applies the batch, all under the write lock.
    pub fn commit(&self, batch: Batch, faults: &FaultInjector) -> Result<Receipt> {
        batch.validate(None)?;
        let digest = batch.digest();
        let ops = batch.len();
        let mut data = self.write();
        data.pins.check(&batch)?;
        faults.hit(COMMIT_VALIDATED)?;
        data.sequence += 1;
        let sequence = data.sequence;
        let versions = data.pins.apply(batch, sequence);
        drop(data);
        tracing::debug!(sequence, ops, "memory: committed batch");
        faults.hit(COMMIT_APPLIED)?;
        Ok(Receipt { sequence, ops, committed_at: Utc::now(), digest, versions })
    }

    /// The pin of `cid` and its version.
    pub fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.read()
            .pins
            .pins
            .get(&cid.to_bytes())
            .map(|s| Versioned { pin: s.pin.clone(), version: Version::from_u64(s.sequence) })
            .ok_or_else(|| Error::not_found(format!("pin {cid}")))
    }

    /// Up to `limit` entries after `after`, in CID byte order.
    pub fn list_page(&self, after: Option<&Cursor>, limit: usize) -> Vec<ListEntry> {
        self.read()
            .pins
            .page(after.map(|c| c.0.as_slice()), limit)
            .into_iter()
            .map(|(key, s)| ListEntry {
                pin: s.pin,
                version: Version::from_u64(s.sequence),
                cursor: Cursor(key),
            })
            .collect()
    }

    /// CIDs allocated to `peer`, in CID byte order.
    pub fn pins_by_peer(&self, peer: &PeerId) -> Vec<Cid> {
        self.read().pins.by_peer(peer)
    }

    /// Pins expiring strictly before `before`.
    pub fn expiring_before(&self, before: DateTime<Utc>) -> Vec<Expiry> {
        self.read().pins.expiring_before(before)
    }

    /// Desired versus actual placement of `cid`.
    pub fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.read().pins.placement(cid)
    }

    /// Replaces the actual placement of `cid`.
    pub fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.write().pins.record_placement(cid, actual)
    }

    /// Stages `bytes` invisibly.
    pub fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        let size = bytes.len() as u64;
        if size > MAX_OBJECT_SIZE {
            return Err(Error::invalid(
                format!("object {set}/{name}"),
                format!("{size} bytes exceed the memory backend's limit of {MAX_OBJECT_SIZE}"),
            ));
        }
        let sha256 = publish::sha256(&bytes);
        let mut data = self.write();
        data.stage_counter += 1;
        let staged = StagedObject {
            set: set.clone(),
            name: name.clone(),
            stage_id: format!("mem-{:016x}", data.stage_counter),
            size,
            sha256,
            staged_at: Utc::now(),
        };
        data.objects.stage(staged.clone(), bytes);
        Ok(staged)
    }

    /// Publishes `staged` and `manifest` as `set`, all or nothing, first writer wins.
    pub fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
        faults: &FaultInjector,
    ) -> Result<Publication> {
        publish::validate_finalize(set, staged, &manifest)?;
        let mut data = self.write();
        data.objects.check_finalize(set, staged)?;
        faults.hit(FINALIZE_VALIDATED)?;
        data.sequence += 1;
        let version = Version::from_u64(data.sequence);
        let publication = data.objects.publish(set, staged, manifest, version, Utc::now());
        drop(data);
        tracing::debug!(%set, objects = staged.len(), "memory: published set");
        faults.hit(FINALIZE_PUBLISHED)?;
        Ok(publication)
    }

    /// Removes staged objects; missing ones are ignored.
    pub fn abort(&self, staged: &[StagedObject]) {
        self.write().objects.abort(staged);
    }

    /// Removes objects staged strictly before `cutoff`.
    pub fn sweep(&self, cutoff: DateTime<Utc>) -> SweepReport {
        self.write().objects.sweep(cutoff)
    }

    /// How many objects are staged and not yet finalized, aborted or swept. Staged objects are
    /// invisible through the contracts; this is for tests and operators.
    pub fn staged_count(&self) -> usize {
        self.read().objects.staged_count()
    }

    /// Metadata of a published object.
    pub fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.read().objects.head(key)
    }

    /// Bytes of a published object.
    pub fn get_object(&self, key: &ObjectKey) -> Result<Bytes> {
        self.read().objects.get(key)
    }

    /// A published set.
    pub fn publication(&self, set: &SetName) -> Result<Publication> {
        self.read().objects.publication(set)
    }

    /// Published objects whose `set/name` key starts with `prefix`, in key-text order.
    pub fn list_objects(&self, prefix: &str) -> Vec<ObjectMeta> {
        self.read().objects.list(prefix)
    }
}
