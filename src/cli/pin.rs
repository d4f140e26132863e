//! `pinvault pin ...`: add, remove, read and list single pins, with preconditions.
//!
//! Every value that names something (CID, peer ID, time, version, metadata) is taken as text and
//! parsed here with pinvault's own parsers, so bad input is an `InvalidInput` error (exit 5)
//! with pinvault's message, not a usage error.

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use clap::{Args, Subcommand};
use futures::StreamExt;
use pinvault::pin::parse_cid;
use pinvault::{Cid, Error, PeerId, Pin, PinMode, Precondition, Version};
use serde_json::json;

use crate::cli::exit::CliError;
use crate::cli::output::Output;
use pinvault::Store;

/// `pinvault pin ...`
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Pin a CID (insert or replace); prints the pin's new version.
    Add(AddArgs),
    /// Unpin a CID. Removing a CID that is not pinned succeeds unless --if-version is given.
    Rm(RmArgs),
    /// Print one pin: `VERSION<TAB>` then its line in ipfs-cluster's NDJSON export format.
    Get {
        /// The CID (v0 `Qm...` or v1 `bafy...`).
        cid: String,
    },
    /// List pins, one per line as `pin get` prints them.
    Ls(LsArgs),
}

/// Arguments of `pin add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The CID to pin (v0 `Qm...` or v1 `bafy...`).
    pub cid: String,
    /// Human-readable name.
    #[arg(long)]
    pub name: Option<String>,
    /// Minimum replication factor (-1 = every peer, 0 = the cluster's default).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub replication_min: Option<i32>,
    /// Maximum replication factor (-1 = every peer, 0 = the cluster's default).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub replication_max: Option<i32>,
    /// A peer to allocate the pin to (repeatable); fills the pin's `allocations`.
    #[arg(long = "allocation", value_name = "PEER")]
    pub allocations: Vec<String>,
    /// When the pin expires, as RFC 3339 (2030-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub expire_at: Option<String>,
    /// User metadata (repeatable).
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Pin the whole DAG or only the root block.
    #[arg(long, value_parser = ["recursive", "direct"], default_value = "recursive")]
    pub mode: String,
    /// Only pin if the CID is not pinned yet (exit 4 otherwise).
    #[arg(long, conflicts_with = "if_version")]
    pub if_absent: bool,
    /// Only replace the pin if its version is still HEX (exit 4 otherwise).
    #[arg(long, value_name = "HEX")]
    pub if_version: Option<String>,
}

/// Arguments of `pin rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The CID to unpin.
    pub cid: String,
    /// Only remove the pin if its version is still HEX (exit 4 otherwise, also when the CID is
    /// not pinned any more).
    #[arg(long, value_name = "HEX")]
    pub if_version: Option<String>,
}

/// Arguments of `pin ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only pins allocated to this peer.
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,
    /// Only pins whose expire_at is strictly before this time (RFC 3339), soonest first.
    #[arg(long, value_name = "RFC3339")]
    pub expiring_before: Option<String>,
}

/// Runs one `pin` subcommand.
pub async fn run(store: &Store, command: PinCommand, out: Output) -> Result<(), CliError> {
    match command {
        PinCommand::Add(args) => add(store, args, out).await,
        PinCommand::Rm(args) => rm(store, args, out).await,
        PinCommand::Get { cid } => {
            let cid = parse_cid(&cid)?;
            let versioned = store.state.get(&cid).await?;
            out.pin(&versioned.pin, &versioned.version)
        }
        PinCommand::Ls(args) => ls(store, args, out).await,
    }
}

async fn add(store: &Store, args: AddArgs, out: Output) -> Result<(), CliError> {
    let precondition = if args.if_absent {
        Precondition::Absent
    } else {
        version_precondition(args.if_version.as_deref())?
    };
    let pin = build_pin(&args, Utc::now())?;
    let cid = pin.cid;
    let version = store.state.put(pin, precondition).await?;
    if out.json {
        out.json_line(&json!({ "cid": cid.to_string(), "version": version.to_string() }))
    } else {
        out.line(&version.to_string())
    }
}

async fn rm(store: &Store, args: RmArgs, out: Output) -> Result<(), CliError> {
    let cid = parse_cid(&args.cid)?;
    let precondition = version_precondition(args.if_version.as_deref())?;
    store.state.remove(&cid, precondition).await?;
    if out.json {
        out.json_line(&json!({ "cid": cid.to_string(), "removed": true }))?;
    }
    Ok(())
}

async fn ls(store: &Store, args: LsArgs, out: Output) -> Result<(), CliError> {
    let peer = args.peer.as_deref().map(str::parse::<PeerId>).transpose()?;
    let before = args.expiring_before.as_deref().map(|t| parse_time("--expiring-before", t));
    match (before.transpose()?, peer) {
        (None, None) => {
            let mut entries = store.state.list(None);
            while let Some(entry) = entries.next().await {
                let entry = entry?;
                out.pin(&entry.pin, &entry.version)?;
            }
        }
        (None, Some(peer)) => {
            let mut cids = store.state.pins_by_peer(&peer);
            while let Some(cid) = cids.next().await {
                print_current(store, &cid?, None, out).await?;
            }
        }
        (Some(before), peer) => {
            let mut expiring = store.state.expiring_before(before);
            while let Some(expiry) = expiring.next().await {
                print_current(store, &expiry?.cid, peer.as_ref(), out).await?;
            }
        }
    }
    Ok(())
}

/// Prints the pin a view named, skipping it when it was removed since (or, with `peer`, when it
/// is not allocated to that peer).
async fn print_current(
    store: &Store,
    cid: &Cid,
    peer: Option<&PeerId>,
    out: Output,
) -> Result<(), CliError> {
    match store.state.get(cid).await {
        Ok(v) if peer.is_none_or(|p| v.pin.allocations.contains(p)) => out.pin(&v.pin, &v.version),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn version_precondition(hex: Option<&str>) -> Result<Precondition, Error> {
    Ok(match hex {
        Some(hex) => Precondition::Version(Version::parse_hex(hex)?),
        None => Precondition::Any,
    })
}

/// The pin `pin add` writes, stamped with `now` (in whole seconds, as ipfs-cluster stores it).
fn build_pin(args: &AddArgs, now: DateTime<Utc>) -> Result<Pin, Error> {
    let mut pin = Pin::new(parse_cid(&args.cid)?);
    pin.timestamp = Some(now.with_nanosecond(0).unwrap_or(now));
    let mode: PinMode = args.mode.parse()?;
    pin.max_depth = mode.to_depth();
    pin.options.mode = mode;
    if let Some(name) = &args.name {
        pin.options.name = name.clone();
    }
    if let Some(min) = args.replication_min {
        pin.options.replication_factor_min = min;
    }
    if let Some(max) = args.replication_max {
        pin.options.replication_factor_max = max;
    }
    // ipfs-cluster's pin API refuses this (`isReplicationFactorValid`), though its state
    // stores whatever it is given.
    if let (Some(min), Some(max)) = (args.replication_min, args.replication_max) {
        if min > max {
            return Err(Error::invalid(
                "--replication-min",
                format!("{min} is larger than --replication-max {max}"),
            ));
        }
    }
    let peers = args.allocations.iter().map(|p| p.parse()).collect::<Result<Vec<PeerId>, _>>()?;
    pin.allocations = peers;
    if let Some(at) = &args.expire_at {
        pin.options.expire_at = Some(parse_time("--expire-at", at)?);
    }
    pin.options.metadata = parse_metadata(&args.metadata)?;
    pin.validate()?;
    Ok(pin)
}

fn parse_time(what: &str, text: &str) -> Result<DateTime<Utc>, Error> {
    let at = DateTime::parse_from_rfc3339(text).map_err(|e| {
        Error::invalid(what, format!("{text:?} is not an RFC 3339 time: {e}")).with_source(e)
    })?;
    Ok(at.with_timezone(&Utc))
}

fn parse_metadata(pairs: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut metadata = BTreeMap::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::invalid("--metadata", format!("{pair:?} is not KEY=VALUE")))?;
        if key.is_empty() {
            return Err(Error::invalid("--metadata", format!("{pair:?} has an empty key")));
        }
        if metadata.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Error::invalid("--metadata", format!("key {key:?} is given twice")));
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::*;

    const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
    const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

    fn args() -> AddArgs {
        AddArgs {
            cid: CID.into(),
            name: None,
            replication_min: None,
            replication_max: None,
            allocations: vec![],
            expire_at: None,
            metadata: vec![],
            mode: "recursive".into(),
            if_absent: false,
            if_version: None,
        }
    }

    #[test]
    fn add_arguments_fill_the_pin() {
        let now = Utc::now();
        let pin = build_pin(
            &AddArgs {
                name: Some("dataset".into()),
                replication_min: Some(2),
                replication_max: Some(3),
                allocations: vec![PEER.into()],
                expire_at: Some("2030-01-01T00:00:00+01:00".into()),
                metadata: vec!["team=data".into(), "eq=a=b".into()],
                mode: "direct".into(),
                ..args()
            },
            now,
        )
        .unwrap();
        assert_eq!(pin.cid.to_string(), CID);
        assert_eq!(pin.max_depth, 0);
        assert_eq!(pin.options.mode, PinMode::Direct);
        assert_eq!(pin.options.name, "dataset");
        assert_eq!(
            (pin.options.replication_factor_min, pin.options.replication_factor_max),
            (2, 3)
        );
        assert_eq!(pin.allocations, vec![PEER.parse::<PeerId>().unwrap()]);
        assert_eq!(pin.options.expire_at.unwrap().to_rfc3339(), "2029-12-31T23:00:00+00:00");
        assert_eq!(pin.options.metadata["eq"], "a=b");
        assert_eq!(pin.timestamp.unwrap().timestamp(), now.timestamp());
        assert_eq!(pin.timestamp.unwrap().nanosecond(), 0);
    }

    #[test]
    fn bad_values_are_invalid_input() {
        let bad = [
            AddArgs { cid: "not-a-cid".into(), ..args() },
            AddArgs { allocations: vec!["peer".into()], ..args() },
            AddArgs { expire_at: Some("tomorrow".into()), ..args() },
            AddArgs { metadata: vec!["novalue".into()], ..args() },
            AddArgs { metadata: vec!["=v".into()], ..args() },
            AddArgs { metadata: vec!["k=1".into(), "k=2".into()], ..args() },
            AddArgs { replication_min: Some(3), replication_max: Some(2), ..args() },
        ];
        for a in bad {
            let err = build_pin(&a, Utc::now()).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{a:?}: {err}");
        }
        assert!(matches!(version_precondition(Some("xyz")), Err(Error::InvalidInput { .. })));
        assert_eq!(version_precondition(None).unwrap(), Precondition::Any);
    }

    /// An RFC 3339 time in any year chrono can or cannot represent, with any offset.
    fn rfc3339(year: i64, offset_minutes: i32, second: u32) -> String {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let (h, m) = (offset_minutes.unsigned_abs() / 60, offset_minutes.unsigned_abs() % 60);
        let year =
            if (0..=9999).contains(&year) { format!("{year:04}") } else { format!("{year:+}") };
        format!("{year}-12-31T23:59:{second:02}{sign}{h:02}:{m:02}")
    }

    proptest::proptest! {
        /// `pin add --expire-at` with any year, offset and "now": a pin whose every time
        /// ipfs-cluster can store (and whose NDJSON line encodes), or `InvalidInput`; never a
        /// panic in parsing, conversion to UTC or validation.
        #[test]
        fn any_expire_at_is_a_valid_pin_or_invalid_input(
            year in proptest::prop_oneof![-300_000i64..300_000, -2i64..3, 9_998i64..10_001],
            offset in -(23 * 60 + 59)..=(23 * 60 + 59),
            second in 0u32..61,
            now_secs in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        ) {
            let Some(now) = DateTime::<Utc>::from_timestamp(now_secs, 0) else { return Ok(()) };
            let text = rfc3339(year, offset, second);
            match build_pin(&AddArgs { expire_at: Some(text.clone()), ..args() }, now) {
                Ok(pin) => {
                    let at = pin.options.expire_at.unwrap();
                    proptest::prop_assert!((0..=9999).contains(&at.year()), "{text} gave {at}");
                    proptest::prop_assert!(
                        pinvault::codec::ndjson::encode_pin_json(&pin).contains("expire_at"),
                        "{text}"
                    );
                }
                Err(e) => proptest::prop_assert!(matches!(e, Error::InvalidInput { .. }), "{text}: {e}"),
            }
        }

        /// Any text at all as a time argument parses or is `InvalidInput`.
        #[test]
        fn any_text_as_a_time_is_parsed_or_refused(text in "\\PC{0,40}") {
            if let Err(e) = parse_time("--expire-at", &text) {
                proptest::prop_assert!(matches!(e, Error::InvalidInput { .. }), "{text:?}: {e}");
            }
        }
    }
}
