//! [`FsLogEngine`]: a [`KvEngine`] over one checksummed, append-only log file, with every live
//! key held in an in-memory index (the design of Bitcask's keydir, with the values in memory
//! too). The pin contract comes whole from [`pinvault_core::kv::KvBackend`] on top of it.
//!
//! # File format
//!
//! `pins.log` starts with the 8 bytes [`MAGIC`], then holds one record per engine `write`:
//!
//! ```text
//! [u32 len LE][u32 crc32(len bytes) LE][u32 crc32(payload) LE][payload: len bytes]
//! ```
//!
//! The payload is a prost [`LogRecord`]: the write's puts and deletes, in order. The header
//! carries its own checksum (of the length) besides the payload's: without it, a flipped bit
//! in the length of a record in the middle of the log would make the record seem to run past
//! the end of the file, which is exactly what a torn last write looks like, and recovery would
//! cut away every valid record after it.
//!
//! # Atomicity, durability, isolation
//!
//! A `write` appends its one record with one `pwrite` under the writer mutex, `fdatasync`s it
//! when the store is durable (the default), and only then applies it to the index under the
//! index's write lock. So a write is visible only once it is on disk; a reader (`get`, `scan`,
//! under the read lock) sees a write entirely or not at all, and one `scan` reads one snapshot.
//! A crash before the append completes leaves at most a torn tail, which recovery removes: the
//! write is then absent, whole.
//!
//! # Recovery (at open)
//!
//! Records are replayed in order. At the first record that is short, or whose header or
//! payload checksum fails, the rest of the file is searched for any valid record:
//!
//! * none: the damage is a **torn tail** (a crash in the middle of the last append, or unsynced
//!   pages lost with `durable = false`). The file is truncated to the last valid record and
//!   fsynced, and a warning is logged.
//! * one: the damage is in the middle of the log. Open fails with [`Error::Corrupt`] naming the
//!   file and the offset; nothing is skipped or truncated.
//!
//! A record whose checksums hold but whose payload does not decode is also `Corrupt`.
//!
//! # Compaction
//!
//! After a write, when the log is more than twice the size of the live data and larger than
//! 1 MiB, the live data is written as a fresh log to `pins.log.tmp`, fsynced (always, even when
//! `durable` is off: a replaced log must never be lost), renamed over `pins.log`, and the root
//! directory is fsynced. The new file's handle becomes the append handle, so no write can land
//! in the replaced file. A crash at any instant leaves either the old log or the new one, both
//! complete; a leftover `pins.log.tmp` is removed at the next open.
//!
//! # Cost
//!
//! The whole live pinset sits in memory (keys and values, about the size of the compacted
//! log), as in Bitcask. Writes are serialised (one `fdatasync` each, no group commit), so
//! durable write throughput is one commit per fsync latency.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pinvault_core::kv::{KvEngine, KvWrite, Table};
use pinvault_core::store_dir::{self, OpenMode};
use pinvault_core::{Error, Result};
use prost::Message;

use crate::paths::{io_error, Root, PINS_LOG, PINS_LOG_TMP};
use crate::{FsOptions, BACKEND};

/// The first 8 bytes of a pin log.
pub const MAGIC: &[u8; 8] = b"PVFSLOG1";
/// Bytes of a record header.
pub const HEADER: usize = 12;
/// The largest record payload (one engine write), in bytes.
pub const MAX_RECORD: usize = 1 << 30;
/// Compaction starts only above this log size.
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;
/// Payload bytes per record in a compacted log.
const COMPACT_RECORD_BYTES: usize = 1 << 20;
/// Bookkeeping bytes counted per live entry when estimating the compacted size.
const ENTRY_OVERHEAD: u64 = 16;

const OP_PUT: u32 = 1;
const OP_DELETE: u32 = 2;

/// One put or delete of a logged write.
#[derive(Clone, PartialEq, Message)]
pub struct LogWrite {
    /// [`OP_PUT`] or [`OP_DELETE`].
    #[prost(uint32, tag = "1")]
    pub op: u32,
    /// The table's stable id ([`table_id`]).
    #[prost(uint32, tag = "2")]
    pub table: u32,
    /// The key.
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// The value (puts only).
    #[prost(bytes = "vec", tag = "4")]
    pub value: Vec<u8>,
}

/// The payload of one log record: one engine write.
#[derive(Clone, PartialEq, Message)]
pub struct LogRecord {
    /// Its puts and deletes, applied in order.
    #[prost(message, repeated, tag = "1")]
    pub writes: Vec<LogWrite>,
}

/// Stable ids of the tables in the log (never renumber them: they are the stored format).
fn table_id(table: Table) -> u32 {
    match table {
        Table::Meta => 1,
        Table::Pins => 2,
        Table::ByPeer => 3,
        Table::Expiry => 4,
        Table::Placements => 5,
        Table::Staged => 6,
        Table::Blobs => 7,
        Table::Objects => 8,
        Table::Sets => 9,
    }
}

const TABLES: usize = 9;

fn slot(table: Table) -> usize {
    table_id(table) as usize - 1
}

fn table_of(id: u32) -> Option<Table> {
    Table::ALL.iter().copied().find(|t| table_id(*t) == id)
}

/// The live data: one ordered map per table.
#[derive(Debug, Default)]
struct Index {
    tables: [BTreeMap<Vec<u8>, Vec<u8>>; TABLES],
    /// Estimated size of a compacted log of this data.
    live_bytes: u64,
}

impl Index {
    fn apply(&mut self, table: Table, op: Op) {
        let map = &mut self.tables[slot(table)];
        let cost = |k: &[u8], v: &[u8]| k.len() as u64 + v.len() as u64 + ENTRY_OVERHEAD;
        match op {
            Op::Put(key, value) => {
                self.live_bytes += cost(&key, &value);
                if let Some(old) = map.get(&key) {
                    self.live_bytes = self.live_bytes.saturating_sub(cost(&key, old));
                }
                map.insert(key, value);
            }
            Op::Delete(key) => {
                if let Some(old) = map.remove(&key) {
                    self.live_bytes = self.live_bytes.saturating_sub(cost(&key, &old));
                }
            }
        }
    }
}

enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// The append side: the file and its valid length.
#[derive(Debug)]
struct Writer {
    file: File,
    len: u64,
    /// Set after a failure that leaves the file's state unknown; every later write is refused.
    poisoned: Option<String>,
}

/// A [`KvEngine`] over one append-only log and an in-memory index (see the module docs).
pub struct FsLogEngine {
    root: Arc<Root>,
    durable: bool,
    index: RwLock<Index>,
    writer: Mutex<Writer>,
}

impl std::fmt::Debug for FsLogEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsLogEngine")
            .field("root", &self.root.path())
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Whether a complete, valid record starts at `buf[0]`.
fn valid_record_at(buf: &[u8]) -> bool {
    if buf.len() < HEADER || crc32fast::hash(&buf[..4]) != word(buf, 4) {
        return false;
    }
    let len = word(buf, 0) as usize;
    len <= MAX_RECORD
        && buf.len() - HEADER >= len
        && crc32fast::hash(&buf[HEADER..HEADER + len]) == word(buf, 8)
}

impl FsLogEngine {
    /// Opens (creating if needed) the pin log of the store at `path`, taking the root's lock,
    /// after the store directory rule ([`pinvault_core::store_dir`]). Blocking. This is the
    /// engine alone, e.g. for `pinvault_conformance::kv_migration`; [`crate::open`] opens the
    /// whole backend.
    pub fn open(path: impl AsRef<Path>, options: &FsOptions) -> Result<Self> {
        let path = path.as_ref();
        let claim =
            store_dir::claim(path, BACKEND, crate::STORE_FORMAT, OpenMode::CreateIfMissing)?;
        let root = Arc::new(Root::open(path)?);
        let engine = FsLogEngine::open_in(root, options)?;
        claim.commit()?;
        Ok(engine)
    }

    /// Opens the pin log in an opened root: replays it, truncates a torn tail, compacts if due.
    pub(crate) fn open_in(root: Arc<Root>, options: &FsOptions) -> Result<Self> {
        let dir = root.dir();
        match dir.unlink(PINS_LOG_TMP) {
            Ok(()) => {
                tracing::info!(
                    root = %root.path().display(),
                    "fs: removed an unfinished pins.log.tmp"
                )
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(root.display(PINS_LOG_TMP), e)),
        }
        let location = root.display(PINS_LOG);
        let file = match dir.open_rw(PINS_LOG, false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = write_fresh_log(&root, &Index::default())?;
                tracing::debug!(root = %root.path().display(), "fs: created pins.log");
                file
            }
            Err(e) => return Err(io_error(&location, e)),
        };
        let st = crate::sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&file))
            .map_err(|e| io_error(&location, e))?;
        if st.kind != crate::sys::Kind::File {
            return Err(Error::corrupt(&location, "not a regular file"));
        }
        let (index, valid) = replay(&file, st.size, &location)?;
        if valid < st.size {
            tracing::warn!(
                log = %location,
                offset = valid,
                dropped = st.size - valid,
                "fs: truncating a torn tail (the last write was cut short by a crash)"
            );
            file.set_len(valid).map_err(|e| io_error(&location, e))?;
            file.sync_all().map_err(|e| io_error(&location, e))?;
        }
        let engine = FsLogEngine {
            root,
            durable: options.durable,
            index: RwLock::new(index),
            writer: Mutex::new(Writer { file, len: valid, poisoned: None }),
        };
        let mut writer = engine.lock_writer();
        if engine.compaction_due(&writer) {
            engine.compact(&mut writer)?;
        }
        drop(writer);
        Ok(engine)
    }

    /// The root directory of the store.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// The current size of `pins.log` in bytes.
    pub fn log_len(&self) -> u64 {
        self.lock_writer().len
    }

    /// Rewrites the log with the live data only (see the module docs). Blocking.
    pub fn compact_now(&self) -> Result<()> {
        let mut writer = self.lock_writer();
        self.compact(&mut writer)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the writer leaves `len` at the last fully written record (it is
        // updated only after a successful append), so the state is consistent.
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn compaction_due(&self, writer: &Writer) -> bool {
        writer.len > COMPACT_MIN_BYTES && writer.len > 2 * self.read_index().live_bytes
    }

    /// Writes the live data as a fresh log and renames it over `pins.log`; the caller holds
    /// the writer, so the index cannot change meanwhile.
    fn compact(&self, writer: &mut Writer) -> Result<()> {
        let before = writer.len;
        let file = {
            let index = self.read_index();
            write_fresh_log(&self.root, &index)?
        };
        let len = file.metadata().map_err(|e| io_error(self.root.display(PINS_LOG), e))?.len();
        // The rename is done: from now on only the new file is pins.log.
        writer.file = file;
        writer.len = len;
        let log = self.root.display(PINS_LOG);
        tracing::info!(log = %log, before, after = len, "fs: compacted the pin log");
        Ok(())
    }

    fn append(&self, writer: &mut Writer, frame: &[u8]) -> Result<()> {
        let location = self.root.display(PINS_LOG);
        if let Some(reason) = &writer.poisoned {
            return Err(Error::backend(
                BACKEND,
                io::Error::other(format!(
                    "{location}: writes refused since an earlier failure ({reason}); \
                     reopen the store"
                )),
            ));
        }
        if let Err(e) = writer.file.write_all_at(frame, writer.len) {
            // Cut the partial record off, so a later append does not follow garbage.
            let undone = writer.file.set_len(writer.len).and_then(|()| writer.file.sync_all());
            if let Err(u) = undone {
                writer.poisoned = Some(format!("a failed append could not be undone: {u}"));
            }
            return Err(io_error(&location, e));
        }
        if self.durable {
            if let Err(e) = writer.file.sync_data() {
                // After a failed fsync the page cache cannot be trusted (the write may or may
                // not survive): refuse everything until the store is reopened and replayed.
                writer.poisoned = Some(format!("fdatasync failed: {e}"));
                return Err(Error::backend(
                    BACKEND,
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{location}: fdatasync failed ({e}); the write may or may not survive \
                             a restart, and this instance refuses further writes: reopen the store"
                        ),
                    ),
                ));
            }
        }
        writer.len += frame.len() as u64;
        Ok(())
    }
}

/// Encodes `index` as a complete log in `pins.log.tmp`, fsyncs it, renames it over `pins.log`
/// and fsyncs the root: returns the new file, open for appends.
fn write_fresh_log(root: &Root, index: &Index) -> Result<File> {
    let dir = root.dir();
    let tmp = root.display(PINS_LOG_TMP);
    match dir.unlink(PINS_LOG_TMP) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, e)),
    }
    let file = dir.create_rw(PINS_LOG_TMP).map_err(|e| io_error(&tmp, e))?;
    let result = (|| -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, &file);
        out.write_all(MAGIC)?;
        let mut record = LogRecord::default();
        let mut size = 0;
        for table in Table::ALL {
            for (key, value) in &index.tables[slot(table)] {
                size += key.len() + value.len() + 16;
                record.writes.push(LogWrite {
                    op: OP_PUT,
                    table: table_id(table),
                    key: key.clone(),
                    value: value.clone(),
                });
                if size >= COMPACT_RECORD_BYTES {
                    out.write_all(&frame(&record.encode_to_vec()))?;
                    record.writes.clear();
                    size = 0;
                }
            }
        }
        if !record.writes.is_empty() {
            out.write_all(&frame(&record.encode_to_vec()))?;
        }
        out.flush()?;
        drop(out);
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = dir.unlink(PINS_LOG_TMP);
        return Err(io_error(&tmp, e));
    }
    if let Err(e) = dir.rename(PINS_LOG_TMP, dir, PINS_LOG) {
        let _ = dir.unlink(PINS_LOG_TMP);
        return Err(io_error(root.display(PINS_LOG), e));
    }
    dir.sync().map_err(|e| io_error(root.path().display(), e))?;
    Ok(file)
}

/// Replays the log: the index and the length of the valid prefix (shorter than `len` only
/// when the tail is torn). Damage followed by a valid record is [`Error::Corrupt`].
fn replay(file: &File, len: u64, location: &str) -> Result<(Index, u64)> {
    let mut start = file;
    std::io::Seek::seek(&mut start, std::io::SeekFrom::Start(0))
        .map_err(|e| io_error(location, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    if len < MAGIC.len() as u64 || reader.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Err(Error::corrupt(location, "not a pinvault fs pin log (bad magic)"));
    }
    let mut index = Index::default();
    let mut offset = MAGIC.len() as u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    'records: loop {
        if offset == len {
            return Ok((index, offset));
        }
        let damage = 'record: {
            if len - offset < HEADER as u64 {
                break 'record "a record header cut short";
            }
            reader.read_exact(&mut header).map_err(|e| io_error(location, e))?;
            if crc32fast::hash(&header[..4]) != word(&header, 4) {
                break 'record "a record header whose checksum fails";
            }
            let n = word(&header, 0) as usize;
            if n > MAX_RECORD {
                break 'record "a record longer than the limit";
            }
            if len - offset - (HEADER as u64) < n as u64 {
                break 'record "a record cut short by the end of the file";
            }
            payload.resize(n, 0);
            reader.read_exact(&mut payload).map_err(|e| io_error(location, e))?;
            if crc32fast::hash(&payload) != word(&header, 8) {
                break 'record "a record whose payload checksum fails";
            }
            let record = LogRecord::decode(payload.as_slice()).map_err(|e| {
                Error::corrupt(
                    format!("{location} at offset {offset}"),
                    format!("a record with valid checksums does not decode: {e}"),
                )
            })?;
            for w in record.writes {
                let table = table_of(w.table).ok_or_else(|| {
                    Error::corrupt(
                        format!("{location} at offset {offset}"),
                        format!("unknown table id {}", w.table),
                    )
                })?;
                let op = match w.op {
                    OP_PUT => Op::Put(w.key, w.value),
                    OP_DELETE => Op::Delete(w.key),
                    other => {
                        return Err(Error::corrupt(
                            format!("{location} at offset {offset}"),
                            format!("unknown operation {other}"),
                        ))
                    }
                };
                index.apply(table, op);
            }
            offset += (HEADER + n) as u64;
            continue 'records;
        };
        // Torn tail or damage in the middle: is there any valid record after this point?
        let mut tail = Vec::new();
        let mut rest = file;
        std::io::Seek::seek(&mut rest, std::io::SeekFrom::Start(offset))
            .and_then(|_| rest.read_to_end(&mut tail))
            .map_err(|e| io_error(location, e))?;
        if let Some(p) = (1..tail.len()).find(|&p| valid_record_at(&tail[p..])) {
            return Err(Error::corrupt(
                format!("{location} at offset {offset}"),
                format!(
                    "{damage}, followed by a valid record at offset {}: the log is damaged, \
                     not torn by a crash; nothing was truncated",
                    offset + p as u64
                ),
            ));
        }
        return Ok((index, offset));
    }
}

impl KvEngine for FsLogEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read_index().tables[slot(table)].get(key).cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let index = self.read_index();
        Ok(index.tables[slot(table)]
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let record = LogRecord {
            writes: writes
                .iter()
                .map(|w| match w {
                    KvWrite::Put { table, key, value } => LogWrite {
                        op: OP_PUT,
                        table: table_id(*table),
                        key: key.clone(),
                        value: value.clone(),
                    },
                    KvWrite::Delete { table, key } => LogWrite {
                        op: OP_DELETE,
                        table: table_id(*table),
                        key: key.clone(),
                        value: Vec::new(),
                    },
                })
                .collect(),
        };
        let payload = record.encode_to_vec();
        if payload.len() > MAX_RECORD {
            return Err(Error::invalid(
                "write",
                format!(
                    "{} bytes in one write exceed the fs log's record limit of {MAX_RECORD}",
                    payload.len()
                ),
            ));
        }
        let frame = frame(&payload);
        let mut writer = self.lock_writer();
        self.append(&mut writer, &frame)?;
        {
            let mut index = self.write_index();
            for w in writes {
                match w {
                    KvWrite::Put { table, key, value } => index.apply(table, Op::Put(key, value)),
                    KvWrite::Delete { table, key } => index.apply(table, Op::Delete(key)),
                }
            }
        }
        if self.compaction_due(&writer) {
            // The write is durable and applied: a failed compaction must not fail it.
            if let Err(e) = self.compact(&mut writer) {
                tracing::warn!(error = %e, "fs: compaction of the pin log failed; will retry");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_validate_and_damage_is_detected() {
        let f = frame(b"hello");
        assert!(valid_record_at(&f));
        for i in 0..f.len() {
            let mut bad = f.clone();
            bad[i] ^= 0x40;
            assert!(!valid_record_at(&bad), "flip at {i} went unnoticed");
        }
        assert!(!valid_record_at(&f[..f.len() - 1]));
    }

    #[test]
    fn table_ids_are_distinct_and_round_trip() {
        for t in Table::ALL {
            assert_eq!(table_of(table_id(t)), Some(t));
        }
    }
}
