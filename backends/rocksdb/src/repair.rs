//! `pinvault state repair` on RocksDB: every file of the store kept aside first, then the
//! least destructive step that makes the store open, then a normal open to prove it.
//!
//! # Why keep the files first
//!
//! The steps below rewrite the store: a replay that skips damaged WAL records flushes what it
//! read to new SST files and deletes the WAL; RocksDB's `RepairDB` rewrites the MANIFEST and
//! `CURRENT` and moves what it cannot use into `<store>/lost/`. pinvault first hard-links
//! every file of the store (a copy where links are refused) into
//! `<store>/quarantine-<unix secs>-repair/`, so the store as it was can always be inspected.
//!
//! # The steps, least destructive first
//!
//! 1. A store that opens normally (a torn WAL tail included, which the open cuts, keeps and
//!    reports) and reads back whole ([`RocksEngine::verify`]: every block checksum) is not
//!    touched further.
//! 2. A missing `CURRENT` with a MANIFEST beside it: `CURRENT` is written again, naming the
//!    newest MANIFEST.
//! 3. A replay with `WALRecoveryMode::SkipAnyCorruptedRecords` and pinvault's column
//!    families: every WAL record that checks out is replayed, a damaged one is skipped with
//!    the rest of its 32 KiB block (RocksDB's reader cannot find the next record boundary in
//!    a block once a length is in doubt). RocksDB's own "dropping N bytes" messages are copied
//!    into the report. The writable open flushes what it replayed and retires the WALs.
//! 4. Only if that fails (a damaged SST or MANIFEST): `RepairDB`. It learns the column
//!    families from the SST files it finds, and drops WAL records of a column family that
//!    has no SST yet: step 3 runs first for that reason.
//!
//! Each step is followed by a normal open and a full read; the report lists the steps taken and the
//! quarantine paths. A commit a damaged record held is gone (the quarantine keeps its bytes);
//! every other acknowledged commit is kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use pinvault_core::store_dir;
use pinvault_core::{Error, OpenMode, RepairReport, Result};
use rocksdb::{DBRecoveryMode, InfoLogger, LogLevel, DB};

use crate::{io_error, lock, DirOptions, RocksEngine, BACKEND, STORE_FORMAT};

/// Repairs the RocksDB store in `path` on the calling thread (see the module docs).
pub fn repair_blocking(path: &Path, options: &DirOptions) -> Result<RepairReport> {
    let mut report = RepairReport::new(BACKEND, path);
    check_is_store(path)?;
    let damage = match open_and_verify(path, options, &mut report) {
        Ok(()) => return Ok(report),
        Err(e @ Error::Corrupt { .. }) => e,
        Err(e) => return Err(e),
    };
    report.actions.push(format!("the store does not open: {damage}"));
    let held = lock::acquire(path, options.lock_wait)?;
    let quarantine = keep_files(path, &mut report)?;
    report.quarantined.push(quarantine);
    // The repaired store may hold less than the damaged one had reached: that is the repair.
    crate::reached::forget(path)?;
    restore_current(path, &mut report)?;
    let replayed = replay_skipping_damage(path, &mut report);
    drop(held);
    if let Err(e) = replayed.and_then(|()| open_and_verify(path, options, &mut report)) {
        report.actions.push(format!("the store still does not open: {e}"));
        repair_db(path, options, &mut report)?;
    }
    report.actions.push("verified: the store opens".to_owned());
    Ok(report)
}

/// A normal open and a full read of the store; what the open did goes into the report.
fn open_and_verify(path: &Path, options: &DirOptions, report: &mut RepairReport) -> Result<()> {
    let engine = RocksEngine::open_with_mode(path, options, OpenMode::MustExist)?;
    report.actions.extend(engine.open_actions().iter().cloned());
    report.quarantined.extend(engine.open_quarantined().iter().cloned());
    engine.verify().map(drop)
}

/// Step 2: a `CURRENT` naming the newest MANIFEST, when `CURRENT` is gone.
fn restore_current(path: &Path, report: &mut RepairReport) -> Result<()> {
    let current = path.join("CURRENT");
    if current.exists() {
        return Ok(());
    }
    let newest = std::fs::read_dir(path)
        .map_err(|e| io_error(path, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| Some((n.strip_prefix("MANIFEST-")?.parse::<u64>().ok()?, n)))
        .max();
    let Some((_, manifest)) = newest else {
        return Ok(());
    };
    let tmp = path.join("CURRENT.pinvault-repair.tmp");
    std::fs::write(&tmp, format!("{manifest}\n"))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &current))
        .and_then(|()| std::fs::File::open(path)?.sync_all())
        .map_err(|e| io_error(&current, e))?;
    report.actions.push(format!("CURRENT was missing: wrote it naming {manifest}"));
    Ok(())
}

/// Step 3: a writable open that skips damaged WAL records, with RocksDB's messages about them
/// copied into the report.
fn replay_skipping_damage(path: &Path, report: &mut RepairReport) -> Result<()> {
    let dropped = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = dropped.clone();
    let mut db_options = crate::db_options();
    db_options.create_if_missing(false);
    db_options.set_wal_recovery_mode(DBRecoveryMode::SkipAnyCorruptedRecord);
    db_options.set_info_logger(InfoLogger::new_callback_logger(LogLevel::Warn, move |_, msg| {
        if msg.contains("dropping") {
            seen.lock().unwrap_or_else(|p| p.into_inner()).push(msg.trim().to_owned());
        }
    }));
    let db = DB::open_cf_descriptors(&db_options, path, crate::column_families())
        .map_err(|e| crate::engine_error(path, e))?;
    drop(db);
    let dropped = std::mem::take(&mut *dropped.lock().unwrap_or_else(|p| p.into_inner()));
    report.actions.push(format!(
        "replayed the WALs skipping damaged records (SkipAnyCorruptedRecords){}",
        if dropped.is_empty() { String::new() } else { format!(": {}", dropped.join("; ")) }
    ));
    Ok(())
}

/// Step 4: RocksDB's `RepairDB`, then a normal open.
fn repair_db(path: &Path, options: &DirOptions, report: &mut RepairReport) -> Result<()> {
    let held = lock::acquire(path, options.lock_wait)?;
    let mut db_options = crate::db_options();
    db_options.create_if_missing(false);
    DB::repair(&db_options, path).map_err(|e| crate::engine_error(path, e))?;
    drop(held);
    report.actions.push(
        "RocksDB repair (RepairDB): rebuilt the MANIFEST from the SST files and WALs it could \
         read; files it could not use are in lost/"
            .to_owned(),
    );
    let lost = path.join("lost");
    if lost.is_dir() {
        report.quarantined.push(lost);
    }
    open_and_verify(path, options, report).map_err(|e| {
        Error::corrupt(
            path.display().to_string(),
            format!("the store still does not open after RocksDB's repair: {e}"),
        )
    })
}

/// A marked RocksDB store, or one made before markers: anything else is refused as
/// [`store_dir::claim`] would (a marked store whose `CURRENT` is gone is still repaired).
fn check_is_store(path: &Path) -> Result<()> {
    match store_dir::claim(path, BACKEND, STORE_FORMAT, OpenMode::ReadOnly) {
        Ok(_claim) => Ok(()),
        Err(e @ Error::Corrupt { .. }) => match store_dir::read_marker(path) {
            Ok(Some(marker)) if marker.backend == BACKEND => Ok(()),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Hard-links (or copies) every regular file of the store but `LOCK` into a new quarantine
/// directory inside it; returns the directory.
fn keep_files(path: &Path, report: &mut RepairReport) -> Result<PathBuf> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut quarantine = path.join(format!("quarantine-{secs}-repair"));
    let mut n = 1;
    while quarantine.exists() {
        n += 1;
        quarantine = path.join(format!("quarantine-{secs}-repair-{n}"));
    }
    std::fs::create_dir(&quarantine).map_err(|e| io_error(&quarantine, e))?;
    let mut kept = 0usize;
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, e))? {
        let entry = entry.map_err(|e| io_error(path, e))?;
        let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        if !kind.is_file() || entry.file_name() == "LOCK" {
            continue;
        }
        let to = quarantine.join(entry.file_name());
        if std::fs::hard_link(entry.path(), &to).is_err() {
            std::fs::copy(entry.path(), &to).map_err(|e| io_error(&to, e))?;
        }
        kept += 1;
    }
    std::fs::File::open(&quarantine)
        .and_then(|d| d.sync_all())
        .and_then(|()| std::fs::File::open(path))
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&quarantine, e))?;
    report
        .actions
        .push(format!("kept the store's {kept} files as they were in {}", quarantine.display()));
    Ok(quarantine)
}
