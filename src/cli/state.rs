//! `pinvault state ...`: stream the whole pinset out of or into a backend, in ipfs-cluster's
//! NDJSON export format or its length-delimited protobuf.
//!
//! An export to a file is written beside it under a temporary name and renamed into place when
//! complete, so a failed export never leaves a truncated file where a good one is expected.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pinvault::transfer::{ImportOptions, TransferFormat, TransferSummary};
use pinvault::Store;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader, BufWriter};

use crate::cli::audit;
use crate::cli::exit::CliError;
use crate::cli::output::{receipt_json, AsyncStdout, Output};
use crate::cli::progress::TerminalProgress;

/// `pinvault state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Write every pin, in the backend's list order.
    Export {
        /// Stream format.
        #[arg(long, value_parser = ["ndjson", "protobuf", "msgpack"], default_value = "ndjson")]
        format: String,
        /// Output file; `-` is stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
        output: String,
    },
    /// Read pins and commit them in batches; prints pins, batches and the last receipt.
    Import {
        /// Input file; `-` is stdin.
        #[arg(value_name = "FILE", default_value = "-")]
        input: String,
        /// Stream format.
        #[arg(long, value_parser = ["ndjson", "protobuf", "msgpack"], default_value = "ndjson")]
        format: String,
        /// Pins per committed batch (lowered to the backend's limit).
        #[arg(long, value_name = "N", default_value_t = ImportOptions::default().batch_size)]
        batch_size: usize,
    },
    /// Copy every pin of this store (--url) to another backend, then compare both sides'
    /// pin count and digest (exit 9 if they differ).
    Copy {
        /// The destination backend.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Pins per committed batch (lowered to the destination's limit).
        #[arg(long, value_name = "N", default_value_t = ImportOptions::default().batch_size)]
        batch_size: usize,
        /// Resume from, and record progress in, this file (removed once the copy is verified).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Check that every view (pins by peer, expiry queue, placements) agrees with the pins
    /// (exit 9 if not).
    Verify,
    /// Bring the stored format up to date (and, where the backend does, repair views).
    Migrate,
    /// Print the pin count and an order-independent digest of the pinset.
    Digest,
    /// Read-only health check: every record of the store is read and checked (exit 8 naming
    /// the file and offset of damage), the views are verified (exit 9), and the pin count and
    /// digest are printed. Writes nothing.
    Check,
    /// Repair a damaged store (fs, rocksdb): what cannot be read is moved to a quarantine file
    /// beside the store, the rest is kept; prints what was done. A healthy store is left as it
    /// is. Not inside `exec` (the store is open there).
    Repair,
}

/// Whether stdin may still be read by a command (not when it carries the `exec` script).
#[derive(Clone, Copy, Debug)]
pub struct Stdin {
    /// True when stdin is free for `state import -`.
    pub available: bool,
}

/// Runs one `state` subcommand.
pub async fn run(
    store: &Store,
    command: StateCommand,
    out: Output,
    stdin: Stdin,
) -> Result<(), CliError> {
    match command {
        StateCommand::Export { format, output } => export(store, &format, &output, out).await,
        StateCommand::Import { input, format, batch_size } => {
            let options =
                ImportOptions { format: format.parse()?, batch_size, ..ImportOptions::default() };
            import(store, &input, &options, out, stdin).await
        }
        StateCommand::Copy { to, batch_size, checkpoint } => {
            audit::copy(store, &to, batch_size, checkpoint.as_deref(), out).await
        }
        StateCommand::Verify => audit::verify(store, out).await,
        StateCommand::Migrate => audit::migrate(store, out).await,
        StateCommand::Digest => audit::digest(store, out).await,
        StateCommand::Check => {
            // Opening read-only already read and checked every record.
            audit::verify(store, out).await?;
            audit::digest(store, out).await
        }
        StateCommand::Repair => Err(CliError::Usage(
            "state repair works on a store no one has open: run it as its own command, not \
             inside exec"
                .into(),
        )),
    }
}

/// `pinvault state repair`: the backend's repair of the store at `url`, before anything opens
/// it (an open refuses a damaged store).
pub async fn repair(
    url: &str,
    lock_wait: Option<std::time::Duration>,
    out: Output,
) -> Result<(), CliError> {
    let report = pinvault::open::repair(url, lock_wait).await?;
    if out.json {
        return out.json_line(&json!({
            "backend": report.backend,
            "path": report.path,
            "actions": report.actions,
            "quarantined": report.quarantined,
            "records_dropped": report.records_dropped,
            "clean": report.is_clean(),
        }));
    }
    out.line(&report.to_string())
}

async fn export(store: &Store, format: &str, output: &str, out: Output) -> Result<(), CliError> {
    let format: TransferFormat = format.parse()?;
    let progress = TerminalProgress::on_terminal("exported");
    if output == "-" {
        let mut stdout = BufWriter::new(AsyncStdout::new());
        let result = async {
            store.state.export(format, &mut stdout, progress.as_progress()).await?;
            stdout.flush().await.map_err(CliError::Output)
        }
        .await;
        progress.finish();
        return match result {
            Err(_) if stdout.get_ref().reader_gone() => {
                Err(CliError::Output(std::io::ErrorKind::BrokenPipe.into()))
            }
            result => result,
        };
    }
    let temporary = temporary_path(Path::new(output));
    let file_error = |source| CliError::File { path: output.to_owned(), source };
    let result = async {
        let file = tokio::fs::File::create(&temporary).await.map_err(file_error)?;
        let mut writer = BufWriter::new(file);
        let summary = store.state.export(format, &mut writer, progress.as_progress()).await?;
        writer.flush().await.map_err(file_error)?;
        writer.get_ref().sync_all().await.map_err(file_error)?;
        tokio::fs::rename(&temporary, output).await.map_err(file_error)?;
        Ok::<_, CliError>(summary)
    }
    .await;
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: the export already failed, and the temporary name is ours alone.
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(e);
        }
    };
    if out.json {
        out.json_line(&json!({ "pins": summary.pins, "bytes": summary.bytes, "file": output }))
    } else {
        out.line(&format!("exported {} pins ({} bytes) to {output}", summary.pins, summary.bytes))
    }
}

async fn import(
    store: &Store,
    input: &str,
    options: &ImportOptions,
    out: Output,
    stdin: Stdin,
) -> Result<(), CliError> {
    let mut reader: Box<dyn AsyncBufRead + Unpin + Send> = if input == "-" {
        if !stdin.available {
            return Err(CliError::Usage(
                "state import -: stdin carries the exec script; name a file instead".into(),
            ));
        }
        Box::new(BufReader::new(tokio::io::stdin()))
    } else {
        let file = tokio::fs::File::open(input)
            .await
            .map_err(|source| CliError::File { path: input.to_owned(), source })?;
        Box::new(BufReader::new(file))
    };
    let progress = TerminalProgress::on_terminal("imported");
    let result = store.state.import(&mut reader, options, progress.as_progress()).await;
    progress.finish();
    print_import(&result?, out)
}

fn print_import(summary: &TransferSummary, out: Output) -> Result<(), CliError> {
    if out.json {
        return out.json_line(&json!({
            "pins": summary.pins,
            "bytes": summary.bytes,
            "batches": summary.batches,
            "last_receipt": summary.last_receipt.as_ref().map(receipt_json),
        }));
    }
    let last = match &summary.last_receipt {
        Some(receipt) => receipt.sequence.to_string(),
        None => "none".to_owned(),
    };
    out.line(&format!(
        "imported {} pins in {} batches, last receipt sequence {last}",
        summary.pins, summary.batches
    ))
}

/// `dir/.name.pinvault-tmp-PID` beside `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.pinvault-tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_export_file_sits_beside_the_target() {
        let tmp = temporary_path(Path::new("out/pins.ndjson"));
        assert_eq!(tmp.parent(), Some(Path::new("out")));
        assert!(tmp.to_string_lossy().contains(".pins.ndjson.pinvault-tmp-"));
    }
}
