//! Torn WAL tails: found, kept and reported by pinvault before RocksDB replays the WAL.
//!
//! # Why pinvault reads the WAL itself
//!
//! With [`rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords`] RocksDB drops a WAL cut
//! short inside its last record (a truncated header or body) *silently*: its log reader treats
//! the end of the file as the end of the log and reports nothing, not even in its info `LOG`
//! (`db/log_reader.cc`, the `kEof` / `kBadHeader` / `kBadRecordLen`-at-EOF cases). And a last
//! record whose bytes are all there but whose checksum fails (a crash that persisted the file
//! size before all of the data) fails the open as corruption, although a crash can leave it.
//! pinvault's rule is that what a crash can leave is repaired *and* reported, with the dropped
//! bytes kept, and anything else is [`Error::Corrupt`] naming the file: neither can be read
//! from RocksDB, so [`inspect`] walks the WAL's physical records (the `log::Writer` format:
//! 32 KiB blocks, 7-byte headers of masked CRC32C, length and type; fragments `First`,
//! `Middle`, `Last`) before RocksDB opens.
//!
//! # The verdict
//!
//! * Every record checks out: nothing to do.
//! * Only the *last* logical record of the newest non-empty WAL is incomplete (cut short, or
//!   its checksum fails and it ends the file), or the file ends in zeros after the last record:
//!   a torn tail. A writable open copies the bytes from the end of the last good record to the
//!   end of the file into `<store>/<wal>.quarantine-<unix secs>-<offset>` (fsynced, never
//!   deleted), cuts the WAL there (fsynced) and logs a `tracing` warning with the file, the
//!   byte range, the records dropped and the quarantine file. A read-only open leaves the file
//!   alone and warns. With `sync = true` the torn record was never acknowledged.
//! * Anything else (a bad record followed by good ones, a torn tail in a WAL that a newer,
//!   non-empty WAL follows, an unknown record type) is [`Error::Corrupt`] naming the WAL and
//!   the offset; nothing is changed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pinvault_core::{Error, Result};

use crate::io_error;

const BLOCK: usize = 32 * 1024;
const HEADER: usize = 7;
const RECYCLABLE_HEADER: usize = 11;

const ZERO: u8 = 0;
const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;
const RECYCLABLE_FULL: u8 = 5;
const RECYCLABLE_FIRST: u8 = 6;
const RECYCLABLE_MIDDLE: u8 = 7;
const RECYCLABLE_LAST: u8 = 8;
const SET_COMPRESSION: u8 = 9;
const TIMESTAMP_SIZE: u8 = 10;
const RECYCLABLE_TIMESTAMP_SIZE: u8 = 11;
const PREDECESSOR_INFO: u8 = 130;
const RECYCLABLE_PREDECESSOR_INFO: u8 = 131;
/// Record types with this bit set may be ignored by readers that do not know them.
const SAFE_TO_IGNORE: u8 = 0x80;

/// A torn tail found in a WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TornTail {
    pub wal: PathBuf,
    /// The end of the last good record: the WAL is valid up to here.
    pub from: u64,
    /// The WAL's length.
    pub to: u64,
    /// Incomplete logical records in the tail (0 for a tail of zeros).
    pub records: u64,
    /// What is wrong with it, in words.
    pub why: &'static str,
    /// The tail's last record has all its bytes and a failing checksum (RocksDB's
    /// tolerant recovery fails on that; it drops a record cut short by itself).
    pub checksum: bool,
}

/// What a walk of one WAL found.
enum Walk {
    Clean,
    Torn { from: u64, records: u64, why: &'static str, checksum: bool },
    Damaged { at: u64, why: String },
}

/// The WAL files of the store in `dir` (`<number>.log`), oldest first.
fn wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut wals = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        wals.push((number, entry.path()));
    }
    wals.sort();
    Ok(wals)
}

/// The bytes the WALs of the store in `dir` hold.
pub(crate) fn total_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for (_, wal) in wal_files(dir)? {
        total += std::fs::metadata(&wal).map_or(0, |m| m.len());
    }
    Ok(total)
}

/// Walks every WAL of the store in `dir`: `Ok(Some)` for a torn tail (see the module docs),
/// [`Error::Corrupt`] for damage; writes nothing.
pub(crate) fn inspect(dir: &Path) -> Result<Option<TornTail>> {
    let wals = wal_files(dir)?;
    let mut torn: Option<TornTail> = None;
    for (_, wal) in &wals {
        // A live writer (beside a read-only open) may delete a WAL it has flushed.
        let len = match std::fs::metadata(wal) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(wal, e)),
        };
        if len == 0 {
            continue;
        }
        if let Some(earlier) = torn.take() {
            return Err(Error::corrupt(
                format!("{} at offset {}", earlier.wal.display(), earlier.from),
                format!(
                    "{} in a WAL that a newer one ({}) follows: the newer commits would be \
                     replayed over a hole; nothing was changed",
                    earlier.why,
                    wal.display()
                ),
            ));
        }
        let file = match File::open(wal) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(wal, e)),
        };
        match walk(file, len).map_err(|e| io_error(wal, e))? {
            Walk::Clean => {}
            Walk::Torn { from, records, why, checksum } => {
                torn = Some(TornTail { wal: wal.clone(), from, to: len, records, why, checksum })
            }
            Walk::Damaged { at, why } => {
                return Err(Error::corrupt(
                    format!("{} at offset {at}", wal.display()),
                    format!(
                        "{why}, with records after it: the WAL is damaged, not torn by a \
                         crash; nothing was changed"
                    ),
                ))
            }
        }
    }
    Ok(torn)
}

/// Walks the physical records of one WAL of `len` bytes.
fn walk(mut file: File, len: u64) -> io::Result<Walk> {
    let mut block = vec![0u8; BLOCK];
    let mut block_start = 0u64;
    // The end of the last complete logical record, and where an unfinished one began.
    let mut good_end = 0u64;
    let mut fragment_start: Option<u64> = None;
    while block_start < len {
        let size = (len - block_start).min(BLOCK as u64) as usize;
        file.read_exact(&mut block[..size])?;
        let last_block = block_start + size as u64 == len;
        let mut pos = 0usize;
        while pos < size {
            let at = block_start + pos as u64;
            let rest = size - pos;
            if rest < HEADER {
                if last_block && size < BLOCK {
                    let partial =
                        fragment_start.is_some() || block[pos..size].iter().any(|b| *b != 0);
                    return Ok(Walk::Torn {
                        from: good_end,
                        records: u64::from(partial),
                        why: "a record header cut short",
                        checksum: false,
                    });
                }
                // The writer pads the end of a block too small for a header.
                break;
            }
            let header = &block[pos..pos + HEADER];
            let length = usize::from(u16::from_le_bytes([header[4], header[5]]));
            let kind = header[6];
            if kind == ZERO && length == 0 {
                if rest_is_zero(&mut file, &block[pos..size], block_start + size as u64, len)? {
                    return Ok(Walk::Torn {
                        from: good_end,
                        records: u64::from(fragment_start.is_some()),
                        why: "zeros after the last record",
                        checksum: false,
                    });
                }
                return Ok(Walk::Damaged { at, why: "a zeroed record header".to_owned() });
            }
            let recyclable = (RECYCLABLE_FULL..=RECYCLABLE_LAST).contains(&kind)
                || kind == RECYCLABLE_TIMESTAMP_SIZE
                || kind == RECYCLABLE_PREDECESSOR_INFO;
            let header_len = if recyclable { RECYCLABLE_HEADER } else { HEADER };
            if header_len + length > rest {
                if last_block && size < BLOCK {
                    return Ok(Walk::Torn {
                        from: good_end,
                        records: 1,
                        why: "the last record is cut short",
                        checksum: false,
                    });
                }
                return Ok(Walk::Damaged {
                    at,
                    why: format!("a record length ({length}) past its block"),
                });
            }
            let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let actual = crc32c(&block[pos + 6..pos + header_len + length]);
            if unmask(stored) != actual {
                let ends_file = last_block && pos + header_len + length == size;
                let only_zeros_after = !ends_file
                    && last_block
                    && block[pos + header_len + length..size].iter().all(|b| *b == 0);
                if ends_file || only_zeros_after {
                    return Ok(Walk::Torn {
                        from: good_end,
                        records: 1,
                        why: "the last record fails its checksum",
                        checksum: true,
                    });
                }
                return Ok(Walk::Damaged { at, why: "a record fails its checksum".to_owned() });
            }
            let end = at + (header_len + length) as u64;
            match kind {
                FULL | RECYCLABLE_FULL => {
                    if fragment_start.is_some() {
                        return Ok(Walk::Damaged {
                            at,
                            why: "a record inside an unfinished fragmented one".to_owned(),
                        });
                    }
                    good_end = end;
                }
                FIRST | RECYCLABLE_FIRST => {
                    if fragment_start.is_some() {
                        return Ok(Walk::Damaged {
                            at,
                            why: "a record inside an unfinished fragmented one".to_owned(),
                        });
                    }
                    fragment_start = Some(at);
                }
                MIDDLE | RECYCLABLE_MIDDLE => {
                    if fragment_start.is_none() {
                        return Ok(Walk::Damaged {
                            at,
                            why: "a middle fragment without a first one".to_owned(),
                        });
                    }
                }
                LAST | RECYCLABLE_LAST => {
                    if fragment_start.take().is_none() {
                        return Ok(Walk::Damaged {
                            at,
                            why: "a last fragment without a first one".to_owned(),
                        });
                    }
                    good_end = end;
                }
                SET_COMPRESSION
                | TIMESTAMP_SIZE
                | RECYCLABLE_TIMESTAMP_SIZE
                | PREDECESSOR_INFO
                | RECYCLABLE_PREDECESSOR_INFO => {
                    if fragment_start.is_none() {
                        good_end = end;
                    }
                }
                k if k & SAFE_TO_IGNORE != 0 => {
                    if fragment_start.is_none() {
                        good_end = end;
                    }
                }
                k => return Ok(Walk::Damaged { at, why: format!("an unknown record type {k}") }),
            }
            pos += header_len + length;
        }
        block_start += size as u64;
    }
    Ok(match fragment_start {
        Some(_) => Walk::Torn {
            from: good_end,
            records: 1,
            why: "the last record's fragments end early",
            checksum: false,
        },
        None if good_end < len && !padding_only(good_end, len) => Walk::Torn {
            from: good_end,
            records: 0,
            why: "bytes after the last record",
            checksum: false,
        },
        None => Walk::Clean,
    })
}

/// True when `from..to` is only the zero padding a writer leaves at the end of a block.
fn padding_only(from: u64, to: u64) -> bool {
    to - from < HEADER as u64 && to % BLOCK as u64 == 0
}

/// True when `in_block` and every byte of the file from `next` to `len` are zero.
fn rest_is_zero(file: &mut File, in_block: &[u8], next: u64, len: u64) -> io::Result<bool> {
    if in_block.iter().any(|b| *b != 0) {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(next))?;
    let mut buf = vec![0u8; BLOCK];
    let mut left = len - next;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        file.read_exact(&mut buf[..n])?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Keeps the torn tail's bytes in a quarantine file beside the WAL, cuts the WAL at the end
/// of its last good record, and reports it; returns the action and the quarantine file.
pub(crate) fn quarantine(dir: &Path, tail: &TornTail) -> Result<(String, PathBuf)> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let name = tail.wal.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = dir.join(format!("{name}.quarantine-{secs}-{}", tail.from));
    let mut wal = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tail.wal)
        .map_err(|e| io_error(&tail.wal, e))?;
    let mut bytes = Vec::new();
    wal.seek(SeekFrom::Start(tail.from))
        .and_then(|_| (&mut wal).take(tail.to - tail.from).read_to_end(&mut bytes))
        .map_err(|e| io_error(&tail.wal, e))?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .map_err(|e| io_error(&target, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))?;
    wal.set_len(tail.from).and_then(|()| wal.sync_all()).map_err(|e| io_error(&tail.wal, e))?;
    tracing::warn!(
        wal = %tail.wal.display(),
        bytes = %format!("{}..{}", tail.from, tail.to),
        records_dropped = tail.records,
        reason = tail.why,
        quarantine = %target.display(),
        "rocksdb: repaired a torn WAL tail (the last write was cut short by a crash): cut the \
         WAL at its last good record, the dropped bytes are kept in the quarantine file"
    );
    let action = format!(
        "torn WAL tail in {} ({}): bytes {}..{} ({} record{} dropped) cut off and kept in {}",
        tail.wal.display(),
        tail.why,
        tail.from,
        tail.to,
        tail.records,
        if tail.records == 1 { "" } else { "s" },
        target.display()
    );
    Ok((action, target))
}

/// Warns about a torn tail a read-only open leaves in place.
pub(crate) fn report_left_in_place(tail: &TornTail) {
    tracing::warn!(
        wal = %tail.wal.display(),
        bytes = %format!("{}..{}", tail.from, tail.to),
        records_dropped = tail.records,
        reason = tail.why,
        "rocksdb: torn WAL tail (a crash, or a write in progress by a live writer); reading the \
         records before it; opened read-only, so it is left in place until the store is opened \
         for writing"
    );
}

/// RocksDB's masked CRC32C, unmasked.
fn unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

/// CRC-32C (Castagnoli), as RocksDB checksums its log records.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for b in data {
        crc = TABLE[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn unmask_inverts_rocksdbs_mask() {
        let crc = 0x1234_5678u32;
        let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(unmask(masked), crc);
    }
}
