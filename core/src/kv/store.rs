//! The synchronous core of the KV layer: both contracts over any [`KvEngine`], with all the
//! coordination in one place.
//!
//! * **Pins.** A commit locks the stripes of its CIDs ([`LockTable`]), reads their records,
//!   checks every precondition, and builds one engine write holding the pin records, the view
//!   rows to delete and insert, and its commit sequence. That write is the commit point.
//! * **Publication.** Staging writes the staged record and the bytes in one write. `finalize`,
//!   `abort` and `sweep` serialise on one mutex; `finalize` checks, then in one write deletes the
//!   staged records and inserts the object records and the set record. Bytes never move: a
//!   published object points at the blob its staging wrote, so a finalize costs metadata only.
//! * **Sequence.** One counter for commits and finalizes. Each write stores its sequence in the
//!   slot of the lowest stripe it holds (finalizes in their own slot), so every slot only grows
//!   and, after a crash, the largest slot is at least every sequence ever committed.
//!
//! `tests/loom_kv.rs` model-checks this code itself (over `BTreeEngine`) under `cfg(loom)`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use cid::Cid;

use super::engine::{KvEngine, KvWrite, Table};
use super::layout::{self, ObjectRecord, PeerList, SetObject, SetRecord, StagedRecord};
use super::locks::{LockTable, STRIPES};
use crate::batch::{Batch, BatchOp, Receipt};
use crate::codec::protobuf;
use crate::fault::FaultInjector;
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::pin::{PeerId, Pin};
use crate::publish::{self, ObjectMeta, Publication, StagedObject, SweepReport};
use crate::state::{
    expiry_bucket, Cursor, Expiry, ListEntry, MigrationReport, Placement, Versioned,
};
use crate::sync::{AtomicU64, Mutex};
use crate::version::Version;
use crate::{Error, Result};

/// Crash point: a batch passed every check, nothing is written yet.
pub const COMMIT_VALIDATED: &str = "kv.commit.validated";
/// Crash point: a batch's one engine write returned (a crash here must leave it committed).
pub const COMMIT_WRITTEN: &str = "kv.commit.written";
/// Crash point: an object's bytes and record are staged.
pub const STAGE_WRITTEN: &str = "kv.stage.written";
/// Crash point: a finalize passed every check, nothing is published yet.
pub const FINALIZE_VALIDATED: &str = "kv.finalize.validated";
/// Crash point: a set's one engine write returned (a crash here must leave it published).
pub const FINALIZE_WRITTEN: &str = "kv.finalize.written";
/// The crash points of the KV layer's commit path.
pub const PIN_CRASH_POINTS: &[&str] = &[COMMIT_VALIDATED, COMMIT_WRITTEN];
/// The crash points of the KV layer's stage and finalize paths.
pub const PUBLISH_CRASH_POINTS: &[&str] = &[STAGE_WRITTEN, FINALIZE_VALIDATED, FINALIZE_WRITTEN];

/// Largest object `stage` accepts: 64 MiB (one engine value).
pub const MAX_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

/// Rows per engine write when `migrate` or `sweep` rewrites many records.
const REWRITE_CHUNK: usize = 512;

/// Both contracts over one engine, synchronous.
pub struct KvStore<E> {
    engine: E,
    faults: FaultInjector,
    locks: LockTable,
    /// Serialises finalize, abort and sweep.
    publication: Mutex<()>,
    sequence: AtomicU64,
    stage_counter: AtomicU64,
    /// The stored format found at open; anything below [`layout::FORMAT_VERSION`] must be
    /// migrated before use.
    format: AtomicU64,
}

impl<E: KvEngine> fmt::Debug for KvStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvStore")
            .field("backend", &self.engine.backend())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl<E: KvEngine> KvStore<E> {
    /// Opens the store held by `engine`: reads its format and recovers the commit sequence.
    /// An empty engine is initialised to the current format; a format newer than this code
    /// knows is refused.
    pub fn open(engine: E, faults: FaultInjector) -> Result<Self> {
        let backend = engine.backend();
        let format = match engine.get(Table::Meta, layout::META_FORMAT)? {
            Some(bytes) => {
                let word: [u8; 4] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| layout::corrupt(Table::Meta, layout::META_FORMAT, "not a u32"))?;
                u32::from_be_bytes(word)
            }
            None if engine.scan(Table::Pins, b"", None, 1)?.is_empty() => {
                engine.write(vec![KvWrite::Put {
                    table: Table::Meta,
                    key: layout::META_FORMAT.to_vec(),
                    value: layout::FORMAT_VERSION.to_be_bytes().to_vec(),
                }])?;
                layout::FORMAT_VERSION
            }
            None => {
                return Err(layout::corrupt(
                    Table::Meta,
                    layout::META_FORMAT,
                    "the store holds pins but no stored-format version",
                ))
            }
        };
        if format > layout::FORMAT_VERSION {
            return Err(Error::unsupported(
                backend,
                format!(
                    "opening stored format {format}: this build of pinvault knows formats up to {}",
                    layout::FORMAT_VERSION
                ),
            ));
        }
        let mut sequence = 0;
        for (key, value) in engine.scan(Table::Meta, layout::META_SEQ_PREFIX, None, usize::MAX)? {
            let word: [u8; 8] = value
                .as_slice()
                .try_into()
                .map_err(|_| layout::corrupt(Table::Meta, &key, "sequence slot is not a u64"))?;
            sequence = sequence.max(u64::from_be_bytes(word));
        }
        tracing::debug!(backend, format, sequence, "kv: opened store");
        Ok(KvStore {
            engine,
            faults,
            locks: LockTable::new(STRIPES),
            publication: Mutex::new(()),
            sequence: AtomicU64::new(sequence),
            stage_counter: AtomicU64::new(0),
            format: AtomicU64::new(u64::from(format)),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    fn backend(&self) -> &'static str {
        self.engine.backend()
    }

    /// Refuses every operation but `migrate` on a store in an older format.
    fn ready(&self) -> Result<()> {
        let format = self.format.load(Ordering::Acquire);
        if format == u64::from(layout::FORMAT_VERSION) {
            return Ok(());
        }
        Err(Error::unsupported(
            self.backend(),
            format!(
                "using stored format {format} before migration: run migrate() \
                 (`pinvault state migrate`) to convert it to format {}",
                layout::FORMAT_VERSION
            ),
        ))
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn read_pin(&self, key: &[u8]) -> Result<Option<(u64, Pin)>> {
        self.engine.get(Table::Pins, key)?.map(|bytes| layout::decode_pin(key, &bytes)).transpose()
    }

    // ---------------------------------------------------------------- pins

    /// Validates, checks every precondition, and applies the batch in one engine write.
    pub fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.ready()?;
        batch.validate(None)?;
        let digest = batch.digest();
        let ops = batch.len();
        let keys: Vec<Vec<u8>> = batch.ops.iter().map(|op| op.cid().to_bytes()).collect();
        let held = self.locks.lock(keys.iter().map(Vec::as_slice));
        let mut old = Vec::with_capacity(ops);
        for (op_index, (op, key)) in batch.ops.iter().zip(&keys).enumerate() {
            let stored = self.read_pin(key)?;
            let current = stored.as_ref().map(|(v, _)| Version::from_u64(*v));
            if !op.precondition().holds(current.as_ref()) {
                return Err(Error::Conflict {
                    key: op.cid().to_string(),
                    expected: op.precondition().describe(),
                    current,
                    op_index,
                });
            }
            old.push(stored.map(|(_, pin)| pin));
        }
        self.faults.hit(COMMIT_VALIDATED)?;
        let sequence = self.next_sequence();
        let mut writes = Vec::with_capacity(ops * 4 + 1);
        let mut versions = Vec::with_capacity(ops);
        for ((op, key), old) in batch.ops.into_iter().zip(keys).zip(old) {
            if let Some(old) = &old {
                unindex(&mut writes, &key, old);
            }
            match op {
                BatchOp::Put { pin, .. } => {
                    index(&mut writes, &key, &pin);
                    writes.push(KvWrite::Put {
                        table: Table::Pins,
                        value: layout::encode_pin(sequence, &pin),
                        key,
                    });
                    versions.push(Some(Version::from_u64(sequence)));
                }
                BatchOp::Remove { .. } => {
                    if old.is_some() {
                        writes.push(KvWrite::Delete { table: Table::Placements, key: key.clone() });
                        writes.push(KvWrite::Delete { table: Table::Pins, key });
                    }
                    versions.push(None);
                }
            }
        }
        writes.push(sequence_write(layout::seq_slot(held.first), sequence));
        self.engine.write(writes)?;
        drop(held);
        tracing::debug!(backend = self.backend(), sequence, ops, "kv: committed batch");
        self.faults.hit(COMMIT_WRITTEN)?;
        Ok(Receipt { sequence, ops, committed_at: Utc::now(), digest, versions })
    }

    /// The pin of `cid` and its version.
    pub fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.ready()?;
        match self.read_pin(&cid.to_bytes())? {
            Some((version, pin)) => Ok(Versioned { pin, version: Version::from_u64(version) }),
            None => Err(Error::not_found(format!("pin {cid}"))),
        }
    }

    /// Up to `limit` pins after `after`, in CID byte order, from one snapshot.
    pub fn list_page(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<ListEntry>> {
        self.ready()?;
        self.engine
            .scan(Table::Pins, b"", after.map(|c| c.0.as_slice()), limit)?
            .into_iter()
            .map(|(key, value)| {
                let (version, pin) = layout::decode_pin(&key, &value)?;
                Ok(ListEntry { pin, version: Version::from_u64(version), cursor: Cursor(key) })
            })
            .collect()
    }

    /// Up to `limit` CIDs allocated to `peer` after the `by_peer` key `after`, with their keys.
    pub fn by_peer_page(
        &self,
        peer: &PeerId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cid)>> {
        self.ready()?;
        let prefix = layout::by_peer_prefix(peer);
        self.engine
            .scan(Table::ByPeer, &prefix, after, limit)?
            .into_iter()
            .map(|(key, _)| layout::cid_of_by_peer_key(&key).map(|cid| (key, cid)))
            .collect()
    }

    /// Up to `limit` expiry entries after the `expiry` key `after`, stopping at the first entry
    /// at or after `before` (the keys are in time order, so the buckets past `before` are never
    /// read). Returns the entries, the last key read, and whether the queue ended.
    #[allow(clippy::type_complexity)]
    pub fn expiry_page(
        &self,
        before: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Expiry>, Option<Vec<u8>>, bool)> {
        self.ready()?;
        let last_bucket = expiry_bucket(before);
        let rows = self.engine.scan(Table::Expiry, b"", after, limit)?;
        let exhausted = rows.len() < limit;
        let mut out = Vec::with_capacity(rows.len());
        let mut last = None;
        for (key, _) in rows {
            let (bucket, at, cid) = layout::parse_expiry_key(&key)?;
            if bucket > last_bucket || at >= before {
                return Ok((out, None, true));
            }
            out.push(Expiry { expire_at: at, cid });
            last = Some(key);
        }
        Ok((out, last, exhausted))
    }

    /// Desired versus actual placement of `cid`.
    pub fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.ready()?;
        let key = cid.to_bytes();
        let (_, pin) =
            self.read_pin(&key)?.ok_or_else(|| Error::not_found(format!("pin {cid}")))?;
        let actual = match self.engine.get(Table::Placements, &key)? {
            Some(bytes) => {
                let list: PeerList = layout::decode(Table::Placements, &key, &bytes)?;
                list.peers
                    .iter()
                    .map(|p| {
                        PeerId::from_bytes(p).map_err(|e| {
                            layout::corrupt(Table::Placements, &key, e.to_string()).with_source(e)
                        })
                    })
                    .collect::<Result<BTreeSet<_>>>()?
            }
            None => BTreeSet::new(),
        };
        Ok(Placement { cid: *cid, desired: pin.allocations.iter().cloned().collect(), actual })
    }

    /// Replaces the actual placement of `cid`; the pin must exist (checked under its lock).
    pub fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.ready()?;
        let key = cid.to_bytes();
        let _held = self.locks.lock([key.as_slice()]);
        if self.read_pin(&key)?.is_none() {
            return Err(Error::not_found(format!("pin {cid}")));
        }
        let list = PeerList { peers: actual.iter().map(PeerId::to_bytes).collect() };
        self.engine.write(vec![KvWrite::Put {
            table: Table::Placements,
            key,
            value: prost::Message::encode_to_vec(&list),
        }])
    }

    /// Converts a format-1 store (pins only, plain ipfs-cluster protobuf) to the current format:
    /// each pin gets a version and its view rows in one write, so a crash mid-way loses nothing
    /// and a second run resumes. Idempotent.
    pub fn migrate(&self) -> Result<MigrationReport> {
        let from = self.format.load(Ordering::Acquire) as u32;
        let to = layout::FORMAT_VERSION;
        if from == to {
            return Ok(MigrationReport { from, to, records_rewritten: 0 });
        }
        // Every writer is held off while the pins change format.
        let all: Vec<usize> = (0..self.locks.len()).collect();
        let held = self.locks.lock_stripes(&all);
        let mut rewritten = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.engine.scan(Table::Pins, b"", after.as_deref(), REWRITE_CHUNK)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let mut writes = Vec::new();
            let mut sequence = 0;
            for (key, value) in rows {
                if value.first() == Some(&layout::PIN_RECORD_TAG) {
                    continue;
                }
                let pin = protobuf::decode_pin(&value).map_err(|e| {
                    layout::corrupt(Table::Pins, &key, format!("format 1: {e}")).with_source(e)
                })?;
                if pin.cid.to_bytes() != key {
                    return Err(layout::corrupt(
                        Table::Pins,
                        &key,
                        "format-1 record of another CID",
                    ));
                }
                sequence = self.next_sequence();
                index(&mut writes, &key, &pin);
                writes.push(KvWrite::Put {
                    table: Table::Pins,
                    value: layout::encode_pin(sequence, &pin),
                    key,
                });
                rewritten += 1;
            }
            if !writes.is_empty() {
                writes.push(sequence_write(layout::seq_slot(held.first), sequence));
                self.engine.write(writes)?;
            }
        }
        self.engine.write(vec![KvWrite::Put {
            table: Table::Meta,
            key: layout::META_FORMAT.to_vec(),
            value: to.to_be_bytes().to_vec(),
        }])?;
        self.format.store(u64::from(to), Ordering::Release);
        drop(held);
        tracing::info!(backend = self.backend(), from, to, rewritten, "kv: migrated stored format");
        Ok(MigrationReport { from, to, records_rewritten: rewritten })
    }

    // ---------------------------------------------------------------- publication

    /// Writes the bytes and the staged record in one write; both invisible to readers.
    pub fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        self.ready()?;
        let size = bytes.len() as u64;
        if size > MAX_OBJECT_SIZE {
            return Err(Error::invalid(
                format!("object {set}/{name}"),
                format!(
                    "{size} bytes exceed the {} backend's limit of {MAX_OBJECT_SIZE}",
                    self.backend()
                ),
            ));
        }
        let staged_at = Utc::now();
        // Nanoseconds since the epoch and a process-local counter: unique across restarts.
        let stage_id = format!(
            "{}-{:016x}-{:08x}",
            self.backend(),
            staged_at.timestamp_nanos_opt().unwrap_or_default(),
            self.stage_counter.fetch_add(1, Ordering::Relaxed)
        );
        let staged = StagedObject {
            set: set.clone(),
            name: name.clone(),
            stage_id,
            size,
            sha256: publish::sha256(&bytes),
            staged_at,
        };
        let id = staged.stage_id.as_bytes().to_vec();
        self.engine.write(vec![
            KvWrite::Put { table: Table::Blobs, key: id.clone(), value: bytes.to_vec() },
            KvWrite::Put {
                table: Table::Staged,
                key: id,
                value: prost::Message::encode_to_vec(&layout::staged_record(&staged)),
            },
        ])?;
        self.faults.hit(STAGE_WRITTEN)?;
        Ok(staged)
    }

    fn lock_publication(&self) -> crate::sync::MutexGuard<'_, ()> {
        // Poisoning: every path writes through one engine call at its end.
        self.publication.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_staged(&self, stage_id: &str) -> Result<Option<StagedRecord>> {
        let key = stage_id.as_bytes();
        self.engine
            .get(Table::Staged, key)?
            .map(|bytes| layout::decode(Table::Staged, key, &bytes))
            .transpose()
    }

    /// Publishes `staged` and `manifest` as `set` in one engine write, first writer wins.
    pub fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        self.ready()?;
        publish::validate_finalize(set, staged, &manifest)?;
        let _guard = self.lock_publication();
        let set_key = set.as_str().as_bytes().to_vec();
        if self.engine.get(Table::Sets, &set_key)?.is_some() {
            return Err(Error::AlreadyExists { what: format!("published set {set}") });
        }
        for s in staged {
            let same = self.read_staged(&s.stage_id)?.is_some_and(|held| {
                held.set == s.set.as_str()
                    && held.name == s.name.as_str()
                    && held.size == s.size
                    && held.sha256 == s.sha256
            });
            if !same {
                return Err(Error::not_found(format!(
                    "staged object {} ({}) of set {set}",
                    s.name, s.stage_id
                )));
            }
        }
        self.faults.hit(FINALIZE_VALIDATED)?;
        let sequence = self.next_sequence();
        let version = Version::from_u64(sequence);
        let published_at = Utc::now();
        let mut sorted: Vec<&StagedObject> = staged.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut writes = Vec::with_capacity(staged.len() * 2 + 2);
        let mut objects = Vec::with_capacity(staged.len());
        let mut entries = Vec::with_capacity(staged.len());
        for s in sorted {
            let record = ObjectRecord {
                size: s.size,
                sha256: s.sha256.to_vec(),
                version: sequence,
                stage_id: s.stage_id.clone(),
            };
            writes.push(KvWrite::Delete {
                table: Table::Staged,
                key: s.stage_id.as_bytes().to_vec(),
            });
            writes.push(KvWrite::Put {
                table: Table::Objects,
                key: layout::object_key(set, &s.name),
                value: prost::Message::encode_to_vec(&record),
            });
            objects.push(ObjectMeta {
                key: ObjectKey::new(set.clone(), s.name.clone()),
                size: s.size,
                sha256: s.sha256,
                version: version.clone(),
            });
            entries.push(SetObject { name: s.name.to_string(), record: Some(record) });
        }
        let record = SetRecord {
            version: sequence,
            published_secs: published_at.timestamp(),
            published_nanos: published_at.timestamp_subsec_nanos(),
            manifest: manifest.to_vec(),
            objects: entries,
        };
        writes.push(KvWrite::Put {
            table: Table::Sets,
            key: set_key,
            value: prost::Message::encode_to_vec(&record),
        });
        writes.push(sequence_write(layout::seq_slot_publication(), sequence));
        self.engine.write(writes)?;
        tracing::debug!(backend = self.backend(), %set, objects = staged.len(), "kv: published set");
        self.faults.hit(FINALIZE_WRITTEN)?;
        Ok(Publication { set: set.clone(), version, published_at, manifest, objects })
    }

    /// Removes staged objects (their records and bytes); ones already gone are ignored.
    pub fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        self.ready()?;
        let _guard = self.lock_publication();
        let mut writes = Vec::with_capacity(staged.len() * 2);
        for s in staged {
            // Only a still-staged object loses its bytes: a published one points at them.
            if self.read_staged(&s.stage_id)?.is_some() {
                let id = s.stage_id.as_bytes().to_vec();
                writes.push(KvWrite::Delete { table: Table::Blobs, key: id.clone() });
                writes.push(KvWrite::Delete { table: Table::Staged, key: id });
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.engine.write(writes)
    }

    /// Removes objects staged strictly before `cutoff`.
    pub fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        self.ready()?;
        let _guard = self.lock_publication();
        let mut report = SweepReport::default();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.engine.scan(Table::Staged, b"", after.as_deref(), REWRITE_CHUNK)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let mut writes = Vec::new();
            for (key, value) in rows {
                let record: StagedRecord = layout::decode(Table::Staged, &key, &value)?;
                let staged_at = layout::time(record.staged_secs, record.staged_nanos)
                    .ok_or_else(|| layout::corrupt(Table::Staged, &key, "time out of range"))?;
                if staged_at < cutoff {
                    report.removed += 1;
                    report.bytes += record.size;
                    writes.push(KvWrite::Delete { table: Table::Blobs, key: key.clone() });
                    writes.push(KvWrite::Delete { table: Table::Staged, key });
                }
            }
            if !writes.is_empty() {
                self.engine.write(writes)?;
            }
        }
        Ok(report)
    }

    fn object_record(&self, key: &ObjectKey) -> Result<(Vec<u8>, ObjectRecord)> {
        let k = layout::object_key(&key.set, &key.name);
        let bytes = self
            .engine
            .get(Table::Objects, &k)?
            .ok_or_else(|| Error::not_found(format!("object {key}")))?;
        let record = layout::decode(Table::Objects, &k, &bytes)?;
        Ok((k, record))
    }

    fn object_meta(table_key: &[u8], key: ObjectKey, record: &ObjectRecord) -> Result<ObjectMeta> {
        Ok(ObjectMeta {
            key,
            size: record.size,
            sha256: layout::digest(Table::Objects, table_key, &record.sha256)?,
            version: Version::from_u64(record.version),
        })
    }

    /// Metadata of a published object.
    pub fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.ready()?;
        let (k, record) = self.object_record(key)?;
        Self::object_meta(&k, key.clone(), &record)
    }

    /// Bytes of a published object.
    pub fn get_object(&self, key: &ObjectKey) -> Result<Bytes> {
        self.ready()?;
        let (k, record) = self.object_record(key)?;
        let bytes =
            self.engine.get(Table::Blobs, record.stage_id.as_bytes())?.ok_or_else(|| {
                layout::corrupt(Table::Objects, &k, format!("blob {} is missing", record.stage_id))
            })?;
        Ok(Bytes::from(bytes))
    }

    /// A published set.
    pub fn publication(&self, set: &SetName) -> Result<Publication> {
        self.ready()?;
        let key = set.as_str().as_bytes();
        let bytes = self
            .engine
            .get(Table::Sets, key)?
            .ok_or_else(|| Error::not_found(format!("published set {set}")))?;
        let record: SetRecord = layout::decode(Table::Sets, key, &bytes)?;
        let published_at = layout::time(record.published_secs, record.published_nanos)
            .ok_or_else(|| layout::corrupt(Table::Sets, key, "time out of range"))?;
        let objects = record
            .objects
            .iter()
            .map(|o| {
                let name = ObjectName::new(o.name.as_str())
                    .map_err(|e| layout::corrupt(Table::Sets, key, e.to_string()).with_source(e))?;
                let r = o.record.as_ref().ok_or_else(|| {
                    layout::corrupt(Table::Sets, key, format!("object {} has no record", o.name))
                })?;
                Self::object_meta(key, ObjectKey::new(set.clone(), name), r)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Publication {
            set: set.clone(),
            version: Version::from_u64(record.version),
            published_at,
            manifest: Bytes::from(record.manifest),
            objects,
        })
    }

    /// Up to `limit` published objects whose `set/name` starts with `prefix`, after the
    /// `objects` key `after`, in key-text order.
    pub fn objects_page(
        &self,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, ObjectMeta)>> {
        self.ready()?;
        if prefix.contains('\0') {
            // No name holds NUL, so nothing can match (and NUL would reach into the set part).
            return Ok(Vec::new());
        }
        self.engine
            .scan(Table::Objects, prefix.as_bytes(), after, limit)?
            .into_iter()
            .map(|(k, v)| {
                let (set, name) = layout::parse_object_key(&k)?;
                let record: ObjectRecord = layout::decode(Table::Objects, &k, &v)?;
                let meta = Self::object_meta(&k, ObjectKey::new(set, name), &record)?;
                Ok((k, meta))
            })
            .collect()
    }
}

fn sequence_write(slot: Vec<u8>, sequence: u64) -> KvWrite {
    KvWrite::Put { table: Table::Meta, key: slot, value: sequence.to_be_bytes().to_vec() }
}

/// View rows of `pin` (stored under `key`) to insert.
fn index(writes: &mut Vec<KvWrite>, key: &[u8], pin: &Pin) {
    for peer in &pin.allocations {
        writes.push(KvWrite::Put {
            table: Table::ByPeer,
            key: layout::by_peer_key(peer, key),
            value: Vec::new(),
        });
    }
    if let Some(at) = pin.options.expire_at {
        writes.push(KvWrite::Put {
            table: Table::Expiry,
            key: layout::expiry_key(at, key),
            value: Vec::new(),
        });
    }
}

/// View rows of the old `pin` to delete. Deletes come before inserts in one write, so a row both
/// removed and re-added (an unchanged allocation) ends present.
fn unindex(writes: &mut Vec<KvWrite>, key: &[u8], pin: &Pin) {
    for peer in &pin.allocations {
        writes.push(KvWrite::Delete { table: Table::ByPeer, key: layout::by_peer_key(peer, key) });
    }
    if let Some(at) = pin.options.expire_at {
        writes.push(KvWrite::Delete { table: Table::Expiry, key: layout::expiry_key(at, key) });
    }
}
