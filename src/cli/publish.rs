//! `pinvault publish|sweep|object`: contract 2 from the command line. `publish` stages files
//! and finalizes them as one set, all or nothing; if a stage fails, the objects already staged
//! are aborted before the error is reported. `sweep` removes what crashed publishers left
//! staged. `object ls|get` read what is published.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Subcommand;
use futures::TryStreamExt;
use pinvault::publish::MAX_MANIFEST_BYTES;
use pinvault::{Error, ObjectKey, ObjectName, PublisherExt, SetName, Store};
use serde_json::json;

use crate::cli::exit::CliError;
use crate::cli::input::read_whole;
use crate::cli::output::{hex, Output};

/// `pinvault object ...`
#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// List published objects whose key (`set/name`) starts with PREFIX.
    Ls {
        /// Key prefix; empty lists everything.
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Write a published object's bytes to stdout or a file.
    Get {
        /// The set it was published in.
        set: String,
        /// Its name inside the set.
        name: String,
        /// Output file; `-` is stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
        output: String,
    },
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |source| CliError::File { path: path.display().to_string(), source }
}

/// `pinvault publish SET FILE... [--manifest FILE]`: each file becomes the object named after
/// its file name. Files are read with the backend's `max_object_size` (and the manifest with
/// `MAX_MANIFEST_BYTES`) enforced while reading.
pub async fn publish(
    store: &Store,
    set: &str,
    files: &[String],
    manifest: Option<&str>,
    out: Output,
) -> Result<(), CliError> {
    let set = SetName::new(set)?;
    let manifest = match manifest {
        Some(path) => Bytes::from(
            read_whole(Path::new(path), MAX_MANIFEST_BYTES as u64, "the largest manifest").await?,
        ),
        None => Bytes::new(),
    };
    let capabilities = store.publisher.publish_capabilities();
    let object_limit = capabilities.max_object_size.unwrap_or(u64::MAX);
    let object_limit_name = format!("the {} backend's largest object", capabilities.backend);
    // Every name and file is checked before anything is staged.
    let mut inputs = Vec::with_capacity(files.len());
    for file in files {
        let path = Path::new(file);
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            CliError::Usage(format!("{file}: has no file name usable as an object name"))
        })?;
        let bytes = read_whole(path, object_limit, &object_limit_name).await?;
        inputs.push((ObjectName::new(name)?, Bytes::from(bytes)));
    }
    let publication = store.publisher.publish(&set, inputs, manifest).await?;
    let bytes: u64 = publication.objects.iter().map(|o| o.size).sum();
    if out.json {
        out.json_line(&json!({
            "set": publication.set.as_str(),
            "version": publication.version.to_string(),
            "objects": publication.objects.len(),
            "bytes": bytes,
        }))
    } else {
        out.line(&format!(
            "published {}: {} objects, {bytes} bytes, version {}",
            publication.set,
            publication.objects.len(),
            publication.version
        ))
    }
}

/// `older_than_secs` before `now`, or `InvalidInput` when that is before the earliest time
/// chrono represents.
fn sweep_cutoff(now: DateTime<Utc>, older_than_secs: u64) -> Result<DateTime<Utc>, Error> {
    i64::try_from(older_than_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| {
            Error::invalid(
                "--older-than",
                format!("{older_than_secs} seconds ago is before the earliest representable time"),
            )
        })
}

/// `pinvault sweep --older-than SECONDS`.
pub async fn sweep(store: &Store, older_than_secs: u64, out: Output) -> Result<(), CliError> {
    let cutoff = sweep_cutoff(Utc::now(), older_than_secs)?;
    let report = store.publisher.sweep(cutoff).await?;
    if out.json {
        out.json_line(&json!({ "removed": report.removed, "bytes": report.bytes }))
    } else {
        out.line(&format!(
            "swept {} staged objects ({} bytes) staged before {}",
            report.removed,
            report.bytes,
            cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    }
}

/// Runs one `object` subcommand.
pub async fn object(store: &Store, command: ObjectCommand, out: Output) -> Result<(), CliError> {
    match command {
        ObjectCommand::Ls { prefix } => {
            let mut listing = store.publisher.list(&prefix);
            while let Some(meta) = listing.try_next().await? {
                if out.json {
                    out.json_line(&json!({
                        "key": meta.key.to_string(),
                        "size": meta.size,
                        "sha256": hex(&meta.sha256),
                        "version": meta.version.to_string(),
                    }))?;
                } else {
                    out.line(&format!("{}\t{}\t{}", meta.key, meta.size, hex(&meta.sha256)))?;
                }
            }
            Ok(())
        }
        ObjectCommand::Get { set, name, output } => {
            let key = ObjectKey::new(SetName::new(set)?, ObjectName::new(name)?);
            let bytes = store.publisher.get(&key).await?;
            if output == "-" {
                use std::io::Write;
                std::io::stdout().lock().write_all(&bytes).map_err(CliError::Output)
            } else {
                std::fs::write(&output, &bytes).map_err(file_error(Path::new(&output)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any `--older-than` at any representable "now" gives a cutoff that many seconds
        /// earlier, or `InvalidInput`; never a panic.
        #[test]
        fn sweep_cutoff_is_checked(
            now_secs in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            older_than in proptest::prop_oneof![proptest::num::u64::ANY, 0u64..100_000_000_000],
        ) {
            let Some(now) = DateTime::<Utc>::from_timestamp(now_secs, 0) else { return Ok(()) };
            match sweep_cutoff(now, older_than) {
                Ok(cutoff) => proptest::prop_assert_eq!((now - cutoff).num_seconds() as u64, older_than),
                Err(e) => proptest::prop_assert!(matches!(e, Error::InvalidInput { .. }), "{e}"),
            }
        }
    }
}
