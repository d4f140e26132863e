//! A whole-snapshot [`KvEngine`]: the smallest engine that is honestly durable, written to show
//! what the engine contract asks for, not to be fast.
//!
//! # How it keeps the contract
//!
//! * **State.** Every table lives in memory (one `BTreeMap` per table behind one mutex) and on
//!   disk as one file, `snapshot.pvt`, loaded whole at open.
//! * **Atomic, durable writes.** A `write` applies its writes to the maps under the mutex, then
//!   serialises every table to `snapshot.pvt.tmp`, fsyncs it, renames it over `snapshot.pvt`
//!   and fsyncs the directory. The rename is the commit point: a crash before it leaves the old
//!   file, after it the new one; never a mix. When persisting fails, the writes are undone in
//!   memory so readers never see what is not on disk.
//! * **Readers** take the same mutex, so they see every `write` whole or not at all.
//! * **Integrity.** The file ends in a SHA-256 of everything before it; a file that does not
//!   match is reported as [`Error::Corrupt`] instead of being read.
//!
//! # Limits
//!
//! * Every write rewrites the whole file, blobs included: cost grows with the store size (a
//!   store of N bytes costs N bytes of I/O and two fsyncs per commit, stage or finalize).
//! * The whole store is held in memory.
//! * One process at a time: nothing locks the directory against a second opener.
//! * Readers wait for a writer's fsyncs (one mutex).
//!
//! [`SnapshotEngine::open_without_fsync`] keeps the same temporary-file-and-rename protocol but
//! skips the fsyncs, and says so ([`KvEngine::durable`] is false): a write survives a crash of
//! the process (SIGKILL), not a power loss. The mutation tests use it to stay quick.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use pinvault_core::kv::{scan_map, KvEngine, KvWrite, Table};
use pinvault_core::{Error, Result};
use sha2::{Digest, Sha256};

/// The backend name the engine reports.
pub const BACKEND: &str = "toy";
/// The snapshot file in the store directory.
pub const SNAPSHOT_FILE: &str = "snapshot.pvt";
/// The file a new snapshot is written to before it is renamed over [`SNAPSHOT_FILE`].
pub const TEMP_FILE: &str = "snapshot.pvt.tmp";
/// The first bytes of a snapshot file (and its format version).
const MAGIC: &[u8; 8] = b"PVTOY01\n";
const DIGEST_LEN: usize = 32;

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// The engine: the store's tables in memory, mirrored by one snapshot file.
#[derive(Debug)]
pub struct SnapshotEngine {
    dir: PathBuf,
    tables: Mutex<Tables>,
    /// Whether a write fsyncs the new snapshot and the directory before it returns.
    fsync: bool,
}

impl SnapshotEngine {
    /// Opens the store in `dir`, creating the directory when absent, and loads its snapshot
    /// (none yet: an empty store). A leftover temporary file from a crash is ignored: it was
    /// never renamed, so it was never committed.
    pub fn open(dir: PathBuf) -> Result<Self> {
        SnapshotEngine::open_with(dir, true)
    }

    /// [`SnapshotEngine::open`] without fsyncs: writes survive a process crash, not a power
    /// loss, and [`KvEngine::durable`] says so.
    pub fn open_without_fsync(dir: PathBuf) -> Result<Self> {
        SnapshotEngine::open_with(dir, false)
    }

    fn open_with(dir: PathBuf, fsync: bool) -> Result<Self> {
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| Error::io_at(BACKEND, &dir, e))?;
            if let Some(parent) = dir.parent().filter(|_| fsync) {
                sync_dir(parent)?;
            }
        }
        let path = dir.join(SNAPSHOT_FILE);
        let tables = match fs::read(&path) {
            Ok(bytes) => decode(&path, &bytes)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Tables::new(),
            Err(e) => return Err(Error::io_at(BACKEND, &path, e)),
        };
        Ok(SnapshotEngine { dir, tables: Mutex::new(tables), fsync })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn tables(&self) -> Result<MutexGuard<'_, Tables>> {
        self.tables
            .lock()
            .map_err(|_| Error::backend(BACKEND, "a writer panicked holding the lock"))
    }

    /// Writes `tables` to the temporary file, fsyncs it, renames it over the snapshot and
    /// fsyncs the directory (without the fsyncs when opened without them).
    fn persist(&self, tables: &Tables) -> Result<()> {
        let temp = self.dir.join(TEMP_FILE);
        let bytes = encode(tables);
        let mut file = File::create(&temp).map_err(|e| Error::io_at(BACKEND, &temp, e))?;
        file.write_all(&bytes).map_err(|e| Error::io_at(BACKEND, &temp, e))?;
        if self.fsync {
            file.sync_all().map_err(|e| Error::io_at(BACKEND, &temp, e))?;
        }
        drop(file);
        let path = self.dir.join(SNAPSHOT_FILE);
        fs::rename(&temp, &path).map_err(|e| Error::io_at(BACKEND, &path, e))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// Fsyncs a directory, so that a rename or a creation in it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io_at(BACKEND, dir, e))
}

/// One undo record: `table`'s `key` held `old` before the write.
type Undo = (Table, Vec<u8>, Option<Vec<u8>>);

fn apply(tables: &mut Tables, write: KvWrite) -> Undo {
    match write {
        KvWrite::Put { table, key, value } => {
            let old = tables.entry(table).or_default().insert(key.clone(), value);
            (table, key, old)
        }
        KvWrite::Delete { table, key } => {
            let old = tables.entry(table).or_default().remove(&key);
            (table, key, old)
        }
    }
}

fn undo(tables: &mut Tables, undo: Vec<Undo>) {
    for (table, key, old) in undo.into_iter().rev() {
        let t = tables.entry(table).or_default();
        match old {
            Some(value) => t.insert(key, value),
            None => t.remove(&key),
        };
    }
}

impl KvEngine for SnapshotEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn durable(&self) -> bool {
        self.fsync
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tables()?.get(&table).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tables = self.tables()?;
        let Some(t) = tables.get(&table) else { return Ok(Vec::new()) };
        scan_map(t, prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        let mut tables = self.tables()?;
        let undos: Vec<Undo> = writes.into_iter().map(|w| apply(&mut tables, w)).collect();
        if let Err(e) = self.persist(&tables) {
            undo(&mut tables, undos);
            return Err(e);
        }
        Ok(())
    }
}

fn table_tag(table: Table) -> u8 {
    // Table::ALL has 9 entries: the position always fits a byte.
    Table::ALL.iter().position(|t| *t == table).map_or(u8::MAX, |i| i as u8)
}

/// `MAGIC`, the entry count, each entry as (table tag, key length, key, value length, value)
/// with big-endian lengths, then the SHA-256 of all of it.
fn encode(tables: &Tables) -> Vec<u8> {
    let count: usize = tables.values().map(BTreeMap::len).sum();
    let size: usize = tables.values().flatten().map(|(k, v)| 9 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + size + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(count as u64).to_be_bytes());
    for (table, entries) in tables {
        for (key, value) in entries {
            out.push(table_tag(*table));
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Reads a snapshot file back, refusing anything that is not exactly what [`encode`] wrote.
fn decode(path: &Path, bytes: &[u8]) -> Result<Tables> {
    let corrupt = |reason: &str| Error::corrupt(path.display().to_string(), reason);
    let body_len =
        bytes.len().checked_sub(DIGEST_LEN).ok_or_else(|| corrupt("shorter than its checksum"))?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(corrupt("checksum mismatch"));
    }
    let mut r = Reader { rest: body };
    if r.take(MAGIC.len()).ok_or_else(|| corrupt("truncated header"))? != MAGIC {
        return Err(corrupt("not a toy snapshot (bad magic)"));
    }
    let count = r.u64().ok_or_else(|| corrupt("truncated header"))?;
    let mut tables = Tables::new();
    for i in 0..count {
        let entry = (|| {
            let tag = *r.take(1)?.first()?;
            let key_len = r.u32()? as usize;
            let key = r.take(key_len)?.to_vec();
            let value_len = r.u32()? as usize;
            let value = r.take(value_len)?.to_vec();
            Some((tag, key, value))
        })();
        let (tag, key, value) = entry.ok_or_else(|| corrupt(&format!("entry {i} truncated")))?;
        let table = *Table::ALL
            .get(usize::from(tag))
            .ok_or_else(|| corrupt(&format!("entry {i}: unknown table tag {tag}")))?;
        tables.entry(table).or_default().insert(key, value);
    }
    if !r.rest.is_empty() {
        return Err(corrupt("bytes after the last entry"));
    }
    Ok(tables)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_refuses_damage() {
        let mut tables = Tables::new();
        tables.entry(Table::Pins).or_default().insert(b"k".to_vec(), b"v".to_vec());
        tables.entry(Table::Blobs).or_default().insert(Vec::new(), vec![0; 300]);
        let bytes = encode(&tables);
        let path = Path::new("snapshot");
        assert_eq!(decode(path, &bytes).expect("a fresh snapshot decodes"), tables);
        let mut flipped = bytes.clone();
        flipped[12] ^= 1;
        assert!(matches!(decode(path, &flipped), Err(Error::Corrupt { .. })));
        assert!(matches!(decode(path, &bytes[..bytes.len() - 1]), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_write_is_durable_across_reopen() {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let dir = temp.path().join("store");
        let engine = SnapshotEngine::open(dir.clone()).expect("open");
        engine
            .write(vec![
                KvWrite::Put { table: Table::Pins, key: b"a".to_vec(), value: b"1".to_vec() },
                KvWrite::Delete { table: Table::Pins, key: b"a".to_vec() },
                KvWrite::Put { table: Table::Pins, key: b"a".to_vec(), value: b"2".to_vec() },
            ])
            .expect("write");
        drop(engine);
        let reopened = SnapshotEngine::open(dir.clone()).expect("reopen");
        assert_eq!(reopened.get(Table::Pins, b"a").expect("get"), Some(b"2".to_vec()));
    }
}
