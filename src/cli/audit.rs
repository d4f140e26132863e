//! `pinvault state verify|migrate|digest|copy`: whole-pinset checks and maintenance, over
//! `pinvault::audit` (core), for any backend.
//!
//! `state copy` is resumable: with `--checkpoint FILE` it writes the cursor of the last
//! committed batch there (by rename) after every batch, and a later run with the same file
//! resumes just after it. When the copy is complete it compares the pin count and the
//! order-independent digest of both sides, and fails with exit code 9 if they differ (the
//! destination was not empty, or changed meanwhile).

use std::path::{Path, PathBuf};

use pinvault::audit::{self, PinsetDigest};
use pinvault::{Cursor, Error, Store};
use serde_json::json;

use crate::cli::exit::CliError;
use crate::cli::input::read_whole;
use crate::cli::output::Output;
use crate::cli::progress::TerminalProgress;

/// `pinvault state verify`: every view agrees with the pins.
pub async fn verify(store: &Store, out: Output) -> Result<(), CliError> {
    let report = audit::verify_views(&*store.state).await?;
    if out.json {
        out.json_line(&json!({
            "pins": report.pins,
            "peers": report.peers,
            "expiring": report.expiring,
            "problems": report.problem_count,
            "listed": report.problems,
        }))?;
    } else {
        out.line(&format!(
            "checked {} pins, {} peers' views, {} expiring: {} problems",
            report.pins, report.peers, report.expiring, report.problem_count
        ))?;
        for problem in &report.problems {
            out.line(&format!("  {problem}"))?;
        }
    }
    if report.is_consistent() {
        Ok(())
    } else {
        Err(CliError::Mismatch(format!("{} view inconsistencies", report.problem_count)))
    }
}

/// `pinvault state migrate`: brings the stored format up to date (and repairs views where the
/// backend does that as part of migrating).
pub async fn migrate(store: &Store, out: Output) -> Result<(), CliError> {
    let report = store.state.migrate().await?;
    if out.json {
        out.json_line(&json!({
            "from": report.from,
            "to": report.to,
            "records_rewritten": report.records_rewritten,
        }))
    } else {
        out.line(&format!(
            "stored format {} -> {}, {} records rewritten",
            report.from, report.to, report.records_rewritten
        ))
    }
}

/// `pinvault state digest`: the pin count and order-independent digest.
pub async fn digest(store: &Store, out: Output) -> Result<(), CliError> {
    let d = audit::digest(&*store.state).await?;
    if out.json {
        out.json_line(&json!({ "pins": d.pins, "digest": d.hex() }))
    } else {
        out.line(&format!("{} pins, digest {}", d.pins, d.hex()))
    }
}

/// `pinvault state copy --to URL [--checkpoint FILE]`: copies every pin of `from`.
pub async fn copy(
    from: &Store,
    to_url: &str,
    batch_size: usize,
    checkpoint: Option<&Path>,
    out: Output,
) -> Result<(), CliError> {
    let to = pinvault::open(to_url).await?;
    let (after, already) = match checkpoint {
        Some(path) => read_checkpoint(path).await?,
        None => (None, 0),
    };
    let resumed = after.is_some();
    let mut save = |cursor: &Cursor, copied: u64| -> pinvault::Result<()> {
        match checkpoint {
            Some(path) => write_checkpoint(path, cursor, already + copied),
            None => Ok(()),
        }
    };
    let progress = TerminalProgress::on_terminal("copied");
    let result =
        audit::copy(&*from.state, &*to.state, after, batch_size, &mut save, progress.as_progress())
            .await;
    progress.finish();
    let summary = result?;
    let source = audit::digest(&*from.state).await?;
    let copied = audit::digest(&*to.state).await?;
    let matches = source == copied;
    if out.json {
        out.json_line(&json!({
            "pins": summary.pins,
            "batches": summary.batches,
            "resumed": resumed,
            "source": digest_json(&source),
            "destination": digest_json(&copied),
            "verified": matches,
        }))?;
    } else {
        out.line(&format!(
            "copied {} pins in {} batches{}; source {} pins digest {}, destination {} pins digest {}",
            summary.pins,
            summary.batches,
            if resumed { " (resumed)" } else { "" },
            source.pins,
            source.hex(),
            copied.pins,
            copied.hex()
        ))?;
    }
    if !matches {
        return Err(CliError::Mismatch(format!(
            "the destination holds {} pins (digest {}), the source {} (digest {}): was the \
             destination empty, and did either side change during the copy?",
            copied.pins,
            copied.hex(),
            source.pins,
            source.hex()
        )));
    }
    if let Some(path) = checkpoint {
        // The copy is complete and verified: a rerun with this file would start over.
        std::fs::remove_file(path)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|source| CliError::File { path: path.display().to_string(), source })?;
    }
    Ok(())
}

fn digest_json(d: &PinsetDigest) -> serde_json::Value {
    json!({ "pins": d.pins, "digest": d.hex() })
}

/// The largest checkpoint file read: far above any backend's cursor in hex.
const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024;

/// The checkpoint file: one line `<cursor hex> <pins copied>`; absent = start from the beginning.
async fn read_checkpoint(path: &Path) -> Result<(Option<Cursor>, u64), CliError> {
    let bytes = match read_whole(path, MAX_CHECKPOINT_BYTES, "a checkpoint's largest size").await {
        Ok(bytes) => bytes,
        Err(CliError::File { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok((None, 0))
        }
        Err(e) => return Err(e),
    };
    let bad =
        |why: &str| Error::invalid(format!("checkpoint file {}", path.display()), why.to_owned());
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8"))?;
    let mut fields = text.split_whitespace();
    let cursor = fields.next().ok_or_else(|| bad("it is empty"))?;
    let copied = fields
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the second field is not a pin count"))?;
    if fields.next().is_some() {
        return Err(bad("expected `<cursor hex> <pins copied>`").into());
    }
    Ok((Some(Cursor::from_hex(cursor)?), copied))
}

fn write_checkpoint(path: &Path, cursor: &Cursor, copied: u64) -> pinvault::Result<()> {
    let tmp: PathBuf = {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let io = |e: std::io::Error| {
        Error::invalid(format!("checkpoint file {}", path.display()), e.to_string())
    };
    std::fs::write(&tmp, format!("{} {copied}\n", cursor.to_hex())).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
