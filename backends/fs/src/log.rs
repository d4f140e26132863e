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
//! A crash before the append completes leaves at most a torn tail, which recovery removes (and
//! quarantines): the write is then absent, whole.
//!
//! # pins.seq: what the store should contain
//!
//! A truncated log looks like a shorter, valid log, so the log alone cannot show that committed
//! records are missing. `pins.seq` records how many bytes of `pins.log` are committed: 64
//! bytes, two 32-byte slots (`PVSQ`, a counter, the committed length, a CRC-32), each update
//! written to the older slot and `fdatasync`ed, so a torn update leaves the newer valid slot
//! one step behind, never ahead. It is updated
//!
//! * with `durable` (the default): after every commit's record is fsynced and before the commit
//!   returns, so every acknowledged commit lies below the recorded length. Cost: a second
//!   `fdatasync` per commit (on this machine's disk 0.2-1.3 ms per commit for the log alone,
//!   0.5-3.8 ms with pins.seq: about 1.3x-3x per commit, measured with a pwrite+fdatasync loop);
//! * at open (after a repair, once the log is synced), at compaction (the new log's length,
//!   after it is fsynced and before it is renamed in: a crash between the two leaves the old,
//!   longer log under a smaller record, never the reverse) and, without `durable`, when the
//!   engine is dropped (after syncing the log). Without `durable`, commits after the last of
//!   these are not covered: losing them is not detected (a power loss may lose them anyway).
//!
//! So the recorded length never exceeds what is durably in the log, and (with `durable`) every
//! acknowledged commit is below it. Stores of marker format 2 ([`crate::STORE_FORMAT`]) always
//! have it, so its absence is [`Error::Corrupt`]; an older store gets it at its first writable
//! open. Not detected: `pins.log` and `pins.seq` both replaced by an older copy of the pair.
//!
//! # Recovery (at open)
//!
//! Records are replayed in order up to the first record that is short (fewer bytes than its
//! length announces, or a header cut short), whose header checksum fails (a damaged length),
//! whose length is over [`MAX_RECORD`], or whose payload checksum fails. Call its offset `V`
//! (the end of the file when every record is whole) and the recorded committed length `C`:
//!
//! * a valid record anywhere after `V`: damage in the middle of the log, [`Error::Corrupt`]
//!   naming the file and `V`;
//! * `V < C`, damaged record or not: a committed record is damaged or missing, `Corrupt` at
//!   `V` (a crash cannot do this: everything below `C` was fsynced before it was recorded);
//! * otherwise, when `V` is before the end of the file: a **torn tail**, the one record a crash
//!   can leave, namely the record being appended when the crash came (a commit writes one
//!   record and records it in `pins.seq` before the next can start, so at most that record
//!   lies beyond `C`), ending at the end of the file. One record is dropped: on a writable open
//!   its bytes `V..end` are copied to `pins.log.quarantine-<unix seconds>-<V>` in the root
//!   (fsynced, never deleted by pinvault), the log is truncated to `V` and fsynced, and a
//!   warning gives the range, the count and the quarantine file. A read-only open reads the
//!   records before `V`, warns, and changes nothing.
//!
//! A record whose checksums hold but whose payload does not decode is also `Corrupt`, and so
//! is a missing `pins.log` in a marked store. Corrupt opens change no file. In a store without
//! `pins.seq` (made before format 2) `C` is 0 and only the first and last rules apply, once.
//!
//! A read-only open ([`crate::open_read_only`]) never writes: no repair, no `pins.log.tmp`
//! cleanup, no compaction, no `pins.seq` update, and engine writes are refused with
//! [`Error::Unsupported`].
//!
//! # Lock-free readers
//!
//! A read-only open takes no lock (crate docs, "One instance per root"), so a writer in another
//! process may append or compact while it reads. It reads one consistent state anyway:
//!
//! * it opens `pins.log` first, then reads `pins.seq`, then takes the file's size, and reads
//!   no byte past that size. A writer records a length in `pins.seq` only once the log holds
//!   it, so a committed length never exceeds the size the reader took, unless the name was
//!   renamed over in between (below);
//! * the file it opened is only ever appended to: a compaction writes a new file and renames
//!   it over the name, and the writer then appends to the new file only. A reader holding the
//!   old file reads the old log, whole;
//! * a writer appends one record at a time, so at most the last record in the reader's view is
//!   incomplete: that is a write in progress (or a crash's torn tail), read as a torn tail is
//!   (the records before it; a warning; nothing changed). Damage followed by a valid record
//!   cannot come from a live writer, and is still [`Error::Corrupt`];
//! * when a check fails anyway (the name was renamed over between the open and `pins.seq`, or
//!   a writer's open truncated a torn tail under the reader) while `pins.log`'s identity or
//!   size or `pins.seq` changed during the read, the read starts over (a few times, then the
//!   error stands).
//!
//! A reader sees a write once its whole record is in the file, which is at most an fsync
//! earlier than the writer's commit returns.
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
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pinvault_core::kv::{scan_map, KvEngine, KvWrite, Table};
use pinvault_core::store_dir::{self, OpenMode};
use pinvault_core::{Error, Result};
use prost::Message;

use crate::names::{PINS_LOG, PINS_LOG_TMP};
use crate::root::{io_error, Root};

/// The file recording how much of `pins.log` is committed.
pub const PINS_SEQ: &str = "pins.seq";
use crate::{DirOptions, BACKEND};

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

pub(crate) const OP_PUT: u32 = 1;
pub(crate) const OP_DELETE: u32 = 2;

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

pub(crate) fn table_of(id: u32) -> Option<Table> {
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
    /// `pins.seq`, open for updates (`None` when the engine is read-only).
    seq: Option<SeqFile>,
    /// Set after a failure that leaves the file's state unknown; every later write is refused.
    poisoned: Option<String>,
    /// After a compaction failed (e.g. no space for the new log), none is tried again before the
    /// log reaches this length.
    compact_after: u64,
}

/// A [`KvEngine`] over one append-only log and an in-memory index (see the module docs).
pub struct FsLogEngine {
    root: Arc<Root>,
    durable: bool,
    read_only: bool,
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

/// How an open may treat the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access {
    /// Change no file: no repair, no compaction, writes refused.
    pub(crate) read_only: bool,
    /// The store was made by a build that keeps `pins.seq` (marker format 2 or later), so a
    /// missing `pins.seq` is damage, not an older store.
    pub(crate) seq_required: bool,
}

impl Access {
    pub(crate) fn of(claim: &store_dir::Claim, read_only: bool) -> Access {
        let seq_required = claim.marker().is_some_and(|m| m.format >= SEQ_FORMAT);
        Access { read_only, seq_required }
    }
}

/// The first store format (the marker's `format`) whose stores always have `pins.seq`.
const SEQ_FORMAT: u32 = 2;
const SEQ_MAGIC: &[u8; 4] = b"PVSQ";
const SEQ_SLOT: usize = 32;

/// `pins.seq`: how many bytes of `pins.log` are committed, in two checksummed slots written
/// alternately, so a torn update leaves the other, older slot (module docs, "pins.seq").
#[derive(Debug)]
pub(crate) struct SeqFile {
    file: File,
    counter: u64,
}

fn seq_slot(counter: u64, committed: u64) -> [u8; SEQ_SLOT] {
    let mut slot = [0u8; SEQ_SLOT];
    slot[..4].copy_from_slice(SEQ_MAGIC);
    slot[4..12].copy_from_slice(&counter.to_le_bytes());
    slot[12..20].copy_from_slice(&committed.to_le_bytes());
    let crc = crc32fast::hash(&slot[..28]);
    slot[28..].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// The newest valid slot of `bytes` as (counter, committed length).
fn parse_seq(bytes: &[u8]) -> Option<(u64, u64)> {
    bytes
        .chunks_exact(SEQ_SLOT)
        .take(2)
        .filter(|s| &s[..4] == SEQ_MAGIC && crc32fast::hash(&s[..28]) == word(s, 28))
        .map(|s| {
            let at = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&s[i..i + 8]);
                u64::from_le_bytes(b)
            };
            (at(4), at(12))
        })
        .max_by_key(|&(counter, _)| counter)
}

/// The committed length `pins.seq` records; `None` when the file is missing or holds no valid
/// slot (a regular file is required).
pub(crate) fn read_seq(root: &Root) -> Result<Option<u64>> {
    let location = root.display(PINS_SEQ);
    let Some((mut file, size)) = crate::root::open_regular(root.dir(), PINS_SEQ, &location)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(2 * SEQ_SLOT);
    (&mut file)
        .take(2 * SEQ_SLOT as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(&location, e))?;
    match parse_seq(&bytes) {
        Some((_, committed)) if size == 2 * SEQ_SLOT as u64 => Ok(Some(committed)),
        _ => {
            tracing::warn!(file = %location, size, "fs: pins.seq holds no valid slot");
            Ok(None)
        }
    }
}

impl SeqFile {
    /// Opens `pins.seq`, which [`read_seq`] just read.
    fn open(root: &Root) -> Result<SeqFile> {
        let location = root.display(PINS_SEQ);
        let file = root.dir().open_rw(PINS_SEQ, false).map_err(|e| io_error(&location, e))?;
        let mut bytes = [0u8; 2 * SEQ_SLOT];
        file.read_exact_at(&mut bytes, 0).map_err(|e| io_error(&location, e))?;
        let (counter, _) = parse_seq(&bytes)
            .ok_or_else(|| Error::corrupt(&location, "no valid slot (changed while open?)"))?;
        Ok(SeqFile { file, counter })
    }

    /// Creates (or takes over) `pins.seq` recording `committed`, fsynced with its directory.
    pub(crate) fn create(root: &Root, committed: u64) -> Result<SeqFile> {
        let location = root.display(PINS_SEQ);
        let file = root.dir().open_rw(PINS_SEQ, true).map_err(|e| io_error(&location, e))?;
        let mut bytes = [0u8; 2 * SEQ_SLOT];
        let old = file.read_at(&mut bytes, 0).map_err(|e| io_error(&location, e))?;
        let counter = parse_seq(&bytes[..old]).map_or(0, |(c, _)| c) + 1;
        let slot = (counter % 2) as usize * SEQ_SLOT;
        bytes[slot..slot + SEQ_SLOT].copy_from_slice(&seq_slot(counter, committed));
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.set_len(2 * SEQ_SLOT as u64))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&location, e))?;
        root.dir().sync().map_err(|e| io_error(root.path().display(), e))?;
        Ok(SeqFile { file, counter })
    }

    /// Records `committed` in the older slot and `fdatasync`s it.
    fn record(&mut self, committed: u64) -> io::Result<()> {
        let counter = self.counter + 1;
        let at = (counter % 2) * SEQ_SLOT as u64;
        self.file.write_all_at(&seq_slot(counter, committed), at)?;
        self.file.sync_data()?;
        self.counter = counter;
        Ok(())
    }
}

/// Copies `file[from..to]` to a new `pins.log.quarantine-<unix seconds>-<from>` in the root,
/// fsynced with the root; returns its path.
pub(crate) fn quarantine(root: &Root, file: &File, from: u64, to: u64) -> Result<String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("{PINS_LOG}.quarantine-{secs}-{from}");
    let location = root.display(&name);
    let mut bytes = vec![0u8; (to - from) as usize];
    file.read_exact_at(&mut bytes, from).map_err(|e| io_error(root.display(PINS_LOG), e))?;
    crate::root::write_new_file(root.dir(), &name, &bytes, true)
        .map_err(|e| io_error(&location, e))?;
    root.dir().sync().map_err(|e| io_error(root.path().display(), e))?;
    Ok(location)
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

pub(crate) fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Whether a complete, valid record starts at `buf[0]`.
pub(crate) fn valid_record_at(buf: &[u8]) -> bool {
    if buf.len() < HEADER || crc32fast::hash(&buf[..4]) != word(buf, 4) {
        return false;
    }
    let len = word(buf, 0) as usize;
    len <= MAX_RECORD
        && buf.len() - HEADER >= len
        && crc32fast::hash(&buf[HEADER..HEADER + len]) == word(buf, 8)
}

/// How many times a read-only open starts over when the log changed under it.
const READ_RETRIES: u32 = 8;

/// A missing `pins.log` in a store that exists.
fn missing_log(location: &str) -> Error {
    Error::corrupt(
        location,
        "missing: the store exists (its PINVAULT-STORE marker is present), so its pins were \
         lost; nothing was re-created",
    )
}

/// Which file `pins.log` names, its size, and the bytes of `pins.seq`: what a writer changes
/// whenever it does anything, so a read-only open can tell "damaged" from "changed while read".
fn fingerprint(root: &Root) -> Option<((u64, u64), u64, Vec<u8>)> {
    let log = root.dir().stat_at(PINS_LOG).ok()?;
    let mut seq = Vec::new();
    let file = root.dir().open_file(PINS_SEQ).ok()?;
    file.take(4 * SEQ_SLOT as u64).read_to_end(&mut seq).ok()?;
    Some((log.identity, log.size, seq))
}

/// A replayed log and what recovery found, before anything is repaired.
struct Loaded {
    file: File,
    index: Index,
    /// The end of the valid records.
    valid: u64,
    /// The file's size when it was read.
    size: u64,
    /// What `pins.seq` records, if it exists.
    committed: Option<u64>,
    /// Why the bytes `valid..size` were not read (a torn tail, or a writer's append in
    /// progress), when there are any.
    damage: Option<&'static str>,
}

/// Replays the opened `file` and judges what it finds against `pins.seq` (module docs,
/// "Recovery"): damage that is not a torn tail is [`Error::Corrupt`]; nothing is changed.
fn load(root: &Root, file: File, access: Access) -> Result<Loaded> {
    let location = root.display(PINS_LOG);
    // pins.seq before the size: a writer records a length only once the log holds it.
    let committed = match read_seq(root)? {
        Some(seq) => Some(seq),
        None if access.seq_required => {
            return Err(Error::corrupt(
                root.display(PINS_SEQ),
                "missing or unreadable: without it a loss of committed records cannot be \
                 told from a torn write; nothing was changed",
            ));
        }
        None => None,
    };
    let st = crate::sys::fstat(&file).map_err(|e| io_error(&location, e))?;
    if st.kind != crate::sys::Kind::File {
        return Err(Error::corrupt(&location, "not a regular file"));
    }
    let Replayed { index, valid, damage } = replay(&file, st.size, &location)?;
    if let Some(committed) = committed.filter(|&c| valid < c) {
        let what = match damage {
            Some(damage) => format!(
                "{damage}, inside the {committed} bytes pins.seq records as committed and \
                 fsynced: the log is damaged, not torn by a crash; nothing was truncated"
            ),
            None => format!(
                "the log ends here but pins.seq records {committed} committed bytes: \
                 committed records are missing; nothing was changed"
            ),
        };
        return Err(Error::corrupt(format!("{location} at offset {valid}"), what));
    }
    Ok(Loaded { file, index, valid, size: st.size, committed, damage })
}

impl FsLogEngine {
    /// Opens (creating if needed) the pin log of the store at `path`, taking the root's lock,
    /// after the store directory rule ([`pinvault_core::store_dir`]). Blocking. This is the
    /// engine alone, e.g. for `pinvault_conformance::kv_migration`; [`crate::open`] opens the
    /// whole backend.
    pub fn open(path: impl AsRef<Path>, options: &DirOptions) -> Result<Self> {
        let path = path.as_ref();
        let claim =
            store_dir::claim(path, BACKEND, crate::STORE_FORMAT, OpenMode::CreateIfMissing)?;
        let root = Arc::new(Root::open(path, options.lock_wait)?);
        let engine = FsLogEngine::open_in(root, options, Access::of(&claim, false))?;
        claim.commit()?;
        Ok(engine)
    }

    /// Opens the pin log in an opened root: replays it, judges any damage against `pins.seq`
    /// (module docs, "Recovery"), and, when writable, repairs a torn tail and compacts if due.
    pub(crate) fn open_in(root: Arc<Root>, options: &DirOptions, access: Access) -> Result<Self> {
        if access.read_only {
            return Self::open_read_only_in(root, options, access);
        }
        let dir = root.dir();
        let location = root.display(PINS_LOG);
        match dir.unlink(PINS_LOG_TMP) {
            Ok(()) => {
                tracing::info!(root = %root.path().display(), "fs: removed an unfinished pins.log.tmp")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(root.display(PINS_LOG_TMP), e)),
        }
        let opened = match dir.open_rw(PINS_LOG, false) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&location, e)),
        };
        let file = match opened {
            Some(file) => file,
            None if access.seq_required => return Err(missing_log(&location)),
            None => {
                let file = write_fresh_log(&root, &Index::default(), |len| {
                    SeqFile::create(&root, len).map(drop)
                })?;
                tracing::debug!(root = %root.path().display(), "fs: created pins.log");
                file
            }
        };
        let Loaded { file, index, valid, size, committed, damage } = load(&root, file, access)?;
        if let Some(damage) = damage {
            let quarantine = quarantine(&root, &file, valid, size)?;
            file.set_len(valid).map_err(|e| io_error(&location, e))?;
            file.sync_all().map_err(|e| io_error(&location, e))?;
            tracing::warn!(
                log = %location,
                bytes = %format!("{valid}..{size}"),
                records_dropped = 1,
                reason = damage,
                quarantine = %quarantine,
                "fs: repaired a torn tail in the pin log (the last write was cut short by a \
                 crash): truncated it, the dropped bytes are kept in the quarantine file"
            );
        }
        let seq = if committed == Some(valid) {
            SeqFile::open(&root)?
        } else {
            // The log up to `valid` is now known good: make it durable, then record it.
            file.sync_all().map_err(|e| io_error(&location, e))?;
            SeqFile::create(&root, valid)?
        };
        let engine = FsLogEngine {
            root,
            durable: options.sync,
            read_only: false,
            index: RwLock::new(index),
            writer: Mutex::new(Writer {
                file,
                len: valid,
                poisoned: None,
                seq: Some(seq),
                compact_after: 0,
            }),
        };
        {
            let mut writer = engine.lock_writer();
            engine.compact_if_due(&mut writer);
        }
        Ok(engine)
    }

    /// The read-only open: takes no lock and writes nothing, so a writer in another process may
    /// be appending or compacting meanwhile. What it reads is consistent anyway: the log it
    /// opened is only ever appended to (a compaction renames a complete new log over the name,
    /// and the old file stays whole for whoever has it open), `pins.seq` is read after the
    /// log is opened and before its size is taken (so it never claims more than that size,
    /// except when the name was renamed over in between), and an incomplete record at the end
    /// is a writer's append in progress, not damage. When a check still fails while the files
    /// changed under it (a repair or a compaction raced the read), the read starts over.
    fn open_read_only_in(root: Arc<Root>, options: &DirOptions, access: Access) -> Result<Self> {
        let location = root.display(PINS_LOG);
        let mut attempt = 0;
        let loaded = loop {
            let before = fingerprint(&root);
            let file = crate::root::open_regular(root.dir(), PINS_LOG, &location)?
                .map(|(file, _)| file)
                .ok_or_else(|| missing_log(&location))?;
            match load(&root, file, access) {
                Ok(loaded) => break loaded,
                Err(e) if attempt < READ_RETRIES && fingerprint(&root) != before => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "fs: the pin log changed while read; reading it again");
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt as u64));
                }
                Err(e) => return Err(e),
            }
        };
        let Loaded { file, index, valid, size, damage, .. } = loaded;
        if let Some(damage) = damage {
            tracing::warn!(
                log = %location,
                bytes = %format!("{valid}..{size}"),
                records_dropped = 1,
                reason = damage,
                "fs: the pin log ends in an incomplete record (a writer in another process is \
                 appending it, or a crash cut it short); reading the records before it; opened \
                 read-only, so it is left in place for the next writer to repair"
            );
        }
        Ok(FsLogEngine {
            root,
            durable: options.sync,
            read_only: true,
            index: RwLock::new(index),
            writer: Mutex::new(Writer {
                file,
                len: valid,
                poisoned: None,
                seq: None,
                compact_after: 0,
            }),
        })
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
        writer.len > COMPACT_MIN_BYTES
            && writer.len >= writer.compact_after
            && writer.len > 2 * self.read_index().live_bytes
    }

    /// Compacts when due. A failure (typically no space for the new log) fails nothing: the
    /// log stays as it is, still valid, and compaction waits until the log has grown by an
    /// eighth (or the next open) before it is tried again.
    fn compact_if_due(&self, writer: &mut Writer) {
        if !self.compaction_due(writer) {
            return;
        }
        if let Err(e) = self.compact(writer) {
            writer.compact_after = writer.len + (writer.len / 8).max(1);
            tracing::warn!(
                log = %self.root.display(PINS_LOG),
                error = %e,
                retry_at_bytes = writer.compact_after,
                "fs: compaction of the pin log failed; the log is unchanged and still valid; \
                 it is tried again once the log has grown or at the next open"
            );
        }
    }

    /// Writes the live data as a fresh log and renames it over `pins.log`; the caller holds
    /// the writer, so the index cannot change meanwhile.
    fn compact(&self, writer: &mut Writer) -> Result<()> {
        let before = writer.len;
        let file = {
            let index = self.read_index();
            let seq = &mut writer.seq;
            write_fresh_log(&self.root, &index, |len| match seq {
                Some(seq) => seq.record(len).map_err(|e| io_error(self.root.display(PINS_SEQ), e)),
                None => Ok(()),
            })?
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
        let len = writer.len + frame.len() as u64;
        if self.durable {
            if let Some(Err(e)) = writer.seq.as_mut().map(|seq| seq.record(len)) {
                // The record is durable, pins.seq lags behind it (the safe direction): the
                // write survives a restart, but this instance cannot record the next ones.
                writer.poisoned = Some(format!("recording pins.seq failed: {e}"));
                return Err(Error::backend(
                    BACKEND,
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e}; the write is in the log and will be there after a \
                             restart, but this instance refuses further writes: reopen the store",
                            self.root.display(PINS_SEQ)
                        ),
                    ),
                ));
            }
        }
        writer.len = len;
        Ok(())
    }
}

/// Encodes `index` as a complete log in `pins.log.tmp`, fsyncs it, calls `before_rename`
/// with its length (to record it in `pins.seq` while the longer old log is still in place),
/// renames it over `pins.log` and fsyncs the root: returns the new file, open for appends.
fn write_fresh_log(
    root: &Root,
    index: &Index,
    before_rename: impl FnOnce(u64) -> Result<()>,
) -> Result<File> {
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
    let len = match result.and_then(|()| file.metadata().map(|m| m.len())) {
        Ok(len) => len,
        Err(e) => {
            let _ = dir.unlink(PINS_LOG_TMP);
            return Err(io_error(&tmp, e));
        }
    };
    if let Err(e) = before_rename(len) {
        let _ = dir.unlink(PINS_LOG_TMP);
        return Err(e);
    }
    if let Err(e) = dir.rename(PINS_LOG_TMP, dir, PINS_LOG) {
        let _ = dir.unlink(PINS_LOG_TMP);
        return Err(io_error(root.display(PINS_LOG), e));
    }
    dir.sync().map_err(|e| io_error(root.path().display(), e))?;
    Ok(file)
}

/// What [`replay`] found: the index of the valid prefix, its length, and (when the prefix is
/// shorter than the file) why the record at its end was refused.
struct Replayed {
    index: Index,
    valid: u64,
    damage: Option<&'static str>,
}

/// Replays the log. Damage followed by a valid record is [`Error::Corrupt`]; damage with
/// nothing valid after it is returned for the caller to judge against `pins.seq`.
fn replay(file: &File, len: u64, location: &str) -> Result<Replayed> {
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
            return Ok(Replayed { index, valid: offset, damage: None });
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
        // Only up to `len`: bytes a live writer appends after the size was taken are not
        // part of what is judged.
        let mut tail = Vec::new();
        let mut rest = file;
        std::io::Seek::seek(&mut rest, std::io::SeekFrom::Start(offset))
            .and_then(|_| rest.take(len - offset).read_to_end(&mut tail))
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
        return Ok(Replayed { index, valid: offset, damage: Some(damage) });
    }
}

impl Drop for FsLogEngine {
    /// Without `durable`, `pins.seq` is recorded only here, at compaction and at open: the
    /// log is synced first, so pins.seq never claims more than the disk holds.
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.durable || writer.poisoned.is_some() {
            return;
        }
        let len = writer.len;
        if let Some(seq) = writer.seq.as_mut() {
            if let Err(e) = writer.file.sync_data().and_then(|()| seq.record(len)) {
                tracing::warn!(error = %e, "fs: could not record pins.seq at close");
            }
        }
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
        scan_map(&self.read_index().tables[slot(table)], prefix, after, limit)
    }

    fn write(&self, writes: Vec<KvWrite>) -> Result<()> {
        if self.read_only {
            return Err(Error::unsupported(
                BACKEND,
                format!("write: {} was opened read-only", self.root.display(PINS_LOG)),
            ));
        }
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
        // The write is durable and applied: a failed compaction must not fail it.
        self.compact_if_due(&mut writer);
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
