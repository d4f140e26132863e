//! `pinvault state repair` on RocksDB: RocksDB's own repairer, after every file of the store
//! has been kept aside, and then a normal open to prove the store is usable again.
//!
//! # Why keep the files first
//!
//! `RepairDB` rebuilds the MANIFEST from whatever SST and WAL files it can read: it converts
//! WALs into SST files (skipping the records it cannot read), rewrites the MANIFEST and
//! `CURRENT`, and moves what it could not use into `<store>/lost/`. Those are new files and
//! renames, but the originals would be gone afterwards. pinvault first hard-links every file
//! of the store (a copy where links are refused) into `<store>/quarantine-<unix secs>-repair/`,
//! so the store as it was before the repair can always be inspected or handed to someone.
//!
//! # What counts as needing repair
//!
//! A store that opens (including a torn WAL tail, which a writable open quarantines and
//! reports itself) is not touched beyond that open: the report says so. Only an open that
//! fails with [`Error::Corrupt`] leads to `RepairDB`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pinvault_core::store_dir;
use pinvault_core::{Error, OpenMode, RepairReport, Result};

use crate::{io_error, lock, RocksEngine, RocksOptions, BACKEND, STORE_FORMAT};

/// Repairs the RocksDB store in `path` on the calling thread (see the module docs).
pub fn repair_blocking(path: &Path, options: &RocksOptions) -> Result<RepairReport> {
    let mut report = RepairReport::new(BACKEND, path);
    check_is_store(path)?;
    match RocksEngine::open_with_mode(path, options, OpenMode::MustExist) {
        Ok(engine) => {
            report.actions.extend(engine.open_actions().iter().cloned());
            report
                .quarantined
                .extend(engine.open_quarantined().iter().cloned());
            return Ok(report);
        }
        Err(Error::Corrupt { location, reason }) => {
            report.actions.push(format!(
                "the store does not open: corrupt data at {location}: {reason}"
            ));
        }
        Err(e) => return Err(e),
    }
    let held = lock::acquire(path, options.lock_wait)?;
    let quarantine = keep_files(path, &mut report)?;
    report.quarantined.push(quarantine);
    let mut db_options = crate::db_options();
    db_options.create_if_missing(false);
    rocksdb::DB::repair(&db_options, path).map_err(|e| crate::engine_error(path, e))?;
    drop(held);
    report.actions.push(
        "RocksDB repair (RepairDB): rebuilt the MANIFEST from the SST files and WALs it could \
         read; WAL records it could not read are dropped; files it could not use are in lost/"
            .to_owned(),
    );
    let lost = path.join("lost");
    if lost.is_dir() {
        report.quarantined.push(lost);
    }
    let engine = RocksEngine::open_with_mode(path, options, OpenMode::MustExist).map_err(|e| {
        Error::corrupt(
            path.display().to_string(),
            format!("the store still does not open after RocksDB's repair: {e}"),
        )
    })?;
    report.actions.extend(engine.open_actions().iter().cloned());
    report
        .quarantined
        .extend(engine.open_quarantined().iter().cloned());
    drop(engine);
    report.actions.push("verified: the store opens".to_owned());
    Ok(report)
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
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
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
    report.actions.push(format!(
        "kept the store's {kept} files as they were in {}",
        quarantine.display()
    ));
    Ok(quarantine)
}
