//! `pinvault state repair` and `state check` for fs stores: getting past damage the open
//! refuses, as the user's explicit decision, keeping every removed byte.
//!
//! Opening never drops damage silently (module `log`, "Recovery"): only a torn tail is
//! repaired on its own. [`repair_blocking`] is the step beyond: under the writer's lock it
//! finds the first record that is damaged (a checksum fails, a header is cut short, or a
//! record with valid checksums does not decode) at offset `V`, copies the bytes `V..end` into
//! `pins.log.quarantine-<unix seconds>-<V>` (fsynced, never deleted by pinvault), truncates the
//! log to `V`, fsyncs it, and records `V` in `pins.seq`. The store then holds exactly the
//! records before the damage: each record is one whole commit (pins and views together), so
//! that prefix is consistent. Every commit from `V` on is lost from the store (its bytes are
//! in the quarantine file); the report counts them as far as their framing still shows.
//!
//! A log that simply ends before what `pins.seq` records (committed records lost, nothing to
//! quarantine) gets `pins.seq` rewritten to the log's length; a missing or unreadable
//! `pins.seq` is recreated. A missing `pins.log`, or one that is not a pin log at all (bad
//! magic), is beyond repair: [`Error::Corrupt`], nothing changed.
//!
//! The log is read into memory whole for the scan (the open holds all live data in memory
//! anyway, module `log`, "Cost").

use std::io::Read;
use std::path::Path;

use pinvault_core::store_dir::{self, OpenMode};
use pinvault_core::{Error, FaultInjector, RepairReport, Result};
use prost::Message;

use crate::log::{self, LogRecord, SeqFile, HEADER, MAGIC, PINS_SEQ};
use crate::names::PINS_LOG;
use crate::root::{io_error, Root};
use crate::{DirOptions, BACKEND, STORE_FORMAT};

/// Repairs the fs store at `path` on the calling thread (see the module docs). Waits up to
/// `options.lock_wait` for a writer holding the store.
pub fn repair_blocking(path: &Path, options: DirOptions) -> Result<RepairReport> {
    let claim = store_dir::claim(path, BACKEND, STORE_FORMAT, OpenMode::MustExist)?;
    let mut report = RepairReport::new(BACKEND, path);
    {
        let root = Root::open(path, options.lock_wait)?;
        repair_log(&root, &mut report)?;
    }
    // Prove it: the repaired store opens (and replays) like any other.
    drop(crate::open_blocking(path.to_path_buf(), options, FaultInjector::disabled())?);
    claim.commit()?;
    Ok(report)
}

/// Opens the store at `path` read-only (no lock, nothing written), which replays and checks
/// every record: `Ok` when the log is whole, the open's [`Error::Corrupt`] naming the file and
/// offset when it is not.
pub fn check_blocking(path: &Path) -> Result<()> {
    crate::open_blocking_read_only(
        path.to_path_buf(),
        DirOptions::default(),
        FaultInjector::disabled(),
    )
    .map(drop)
}

fn repair_log(root: &Root, report: &mut RepairReport) -> Result<()> {
    let location = root.display(PINS_LOG);
    let file = match root.dir().open_rw(PINS_LOG, false) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::corrupt(&location, "missing: there is no log to repair"));
        }
        Err(e) => return Err(io_error(&location, e)),
    };
    let mut bytes = Vec::new();
    (&file).read_to_end(&mut bytes).map_err(|e| io_error(&location, e))?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::corrupt(
            &location,
            "not a pinvault fs pin log (bad magic): beyond repair",
        ));
    }
    let size = bytes.len() as u64;
    let committed = log::read_seq(root)?;
    let mut valid = size;
    if let Some((at, reason)) = first_damage(&bytes) {
        valid = at;
        let quarantine = log::quarantine(root, &file, at, size)?;
        file.set_len(at).and_then(|()| file.sync_all()).map_err(|e| io_error(&location, e))?;
        let dropped = 1 + whole_records_after(&bytes, at);
        report.actions.push(format!(
            "{location}: {reason} at offset {at}; moved bytes {at}..{size} ({} bytes) to the \
             quarantine file and truncated the log to {at} bytes",
            size - at
        ));
        report.quarantined.push(quarantine.into());
        report.records_dropped = Some(dropped);
    }
    match committed {
        Some(c) if c == valid => {}
        Some(c) => {
            if c > valid && report.actions.is_empty() {
                report.actions.push(format!(
                    "{location}: the log ends at {valid} bytes but pins.seq recorded {c} \
                     committed bytes: those records are lost (nothing left to quarantine)"
                ));
            }
            SeqFile::create(root, valid)?;
            report.actions.push(format!(
                "{}: recorded {valid} committed bytes (was {c})",
                root.display(PINS_SEQ)
            ));
        }
        None => {
            SeqFile::create(root, valid)?;
            report.actions.push(format!(
                "{}: missing or unreadable; recreated, recording {valid} committed bytes",
                root.display(PINS_SEQ)
            ));
        }
    }
    Ok(())
}

/// The offset of the first record that is not whole and decodable, and why.
fn first_damage(bytes: &[u8]) -> Option<(u64, String)> {
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if !log::valid_record_at(rest) {
            return Some((at as u64, "a damaged or incomplete record".to_owned()));
        }
        let len = log::word(rest, 0) as usize;
        if let Err(why) = decodes(&rest[HEADER..HEADER + len]) {
            return Some((at as u64, format!("a record with valid checksums that {why}")));
        }
        at += HEADER + len;
    }
    None
}

fn decodes(payload: &[u8]) -> std::result::Result<(), String> {
    let record = LogRecord::decode(payload).map_err(|e| format!("does not decode ({e})"))?;
    for w in record.writes {
        if log::table_of(w.table).is_none() {
            return Err(format!("names unknown table {}", w.table));
        }
        if w.op != log::OP_PUT && w.op != log::OP_DELETE {
            return Err(format!("holds unknown operation {}", w.op));
        }
    }
    Ok(())
}

/// How many whole records can still be told apart in `bytes` after the damaged one at `from`
/// (each chain of valid records found by searching forward, then following their lengths).
fn whole_records_after(bytes: &[u8], from: u64) -> u64 {
    let mut count = 0;
    let mut at = from as usize + 1;
    while at < bytes.len() {
        if log::valid_record_at(&bytes[at..]) {
            count += 1;
            at += HEADER + log::word(&bytes[at..], 0) as usize;
        } else {
            at += 1;
        }
    }
    count
}
