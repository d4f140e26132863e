//! ipfs-cluster's JSON pin, one per line: the format of `ipfs-cluster-service state export`.
//!
//! `state export` lists the state (each stored protobuf goes through Go's `ProtoUnmarshal`) and
//! writes every `api.Pin` with a `json.Encoder` (HTML escaping on, one value per line).
//! [`encode_pin_json`] writes the bytes Go writes for the pin that [`super::protobuf::decode_pin`]
//! gives back, so the rules are those of Go's `encoding/json` applied to such a pin:
//!
//! * Field order is the struct order, embedded `PinOptions` first: `replication_factor_min`,
//!   `replication_factor_max`, `name`, `mode`, `shard_size`, `user_allocations`, `expire_at`,
//!   `metadata`, `pin_update`, `origins`, then `cid`, `type`, `allocations`, `max_depth`,
//!   `reference`, `timestamp`. No spaces.
//! * CIDs (`api.Cid.MarshalJSON`) are plain strings (base58 for v0, base32 for v1); an absent
//!   `reference` (nil pointer) or `pin_update` (undefined CID) is `null`. `pin_update` has
//!   `omitempty`, but Go never omits a struct, so it is always present.
//! * Nil-versus-empty follows what `ProtoUnmarshal` leaves: `allocations` and `origins` are made
//!   with `make`, so empty is `[]`; `user_allocations` is never set, so empty is `null`;
//!   `metadata` is nil unless the protobuf had entries, so empty is `null`. Map keys are sorted.
//! * Times are RFC 3339 with nanoseconds and trailing zeros trimmed; Go's zero time (our `None`)
//!   is `"0001-01-01T00:00:00Z"`, so `Some` of that very instant reads back as `None`. Times are written in UTC (`Z`): Go writes the exporting host's
//!   local zone, which is UTC on the usual server or container. Go refuses to write years outside
//!   0000–9999; pinvault writes them as chrono's signed extended years, which it reads back.
//! * `mode` and `type` are their names, peer IDs base58, multiaddrs their text form.
//! * Strings escape `"`, `\`, control characters (`\n`, `\r`, `\t`, `\b`, `\f`, else
//!   `\u00XX`), and, as Go's HTML escaping does, `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`,
//!   `\u003e`, `\u0026`, `\u2028`, `\u2029` (Go 1.22 and later).
//!
//! [`decode_pin_json`] reads what Go writes and reasonable variants: missing fields and `null`
//! take defaults (a missing `type` is `pin`, a missing `max_depth` follows `mode`), a CID may also
//! be a `{"/": "..."}` link, times may carry any offset. Unlike Go, an unknown pin type or mode,
//! an invalid CID, peer ID, multiaddr or time is refused with [`Error::InvalidInput`], and so is
//! a key given twice (Go keeps the last); keys match exactly (Go also accepts other cases).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::multiaddr::Multiaddr;
use crate::pin::{parse_cid, PeerId, Pin, PinMode, PinOptions, PinType};
use crate::{Error, Result};

/// Go's zero `time.Time` as `encoding/json` writes it.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `api.Pin` in Go's field order, ready for `serde_json`.
#[derive(Serialize)]
struct PinOut<'a> {
    replication_factor_min: i32,
    replication_factor_max: i32,
    name: &'a str,
    mode: &'static str,
    shard_size: u64,
    user_allocations: Option<Vec<String>>,
    expire_at: String,
    metadata: Option<&'a BTreeMap<String, String>>,
    pin_update: Option<String>,
    origins: Vec<String>,
    cid: String,
    #[serde(rename = "type")]
    pin_type: &'static str,
    allocations: Vec<String>,
    max_depth: i32,
    reference: Option<String>,
    timestamp: String,
}

/// `api.Pin` as read: every field optional, `null` accepted where Go accepts it.
#[derive(Deserialize)]
struct PinIn {
    #[serde(default)]
    replication_factor_min: Option<i32>,
    #[serde(default)]
    replication_factor_max: Option<i32>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    shard_size: Option<u64>,
    #[serde(default)]
    user_allocations: Option<Vec<String>>,
    #[serde(default)]
    expire_at: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pin_update: Option<CidIn>,
    #[serde(default)]
    origins: Option<Vec<String>>,
    #[serde(default)]
    cid: Option<CidIn>,
    #[serde(default, rename = "type")]
    pin_type: Option<String>,
    #[serde(default)]
    allocations: Option<Vec<String>>,
    #[serde(default)]
    max_depth: Option<i32>,
    #[serde(default)]
    reference: Option<CidIn>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// A CID in JSON: a string (Go's `api.Cid`) or an IPLD link `{"/": "..."}` (older releases).
#[derive(Deserialize)]
#[serde(untagged)]
enum CidIn {
    Text(String),
    Link {
        #[serde(rename = "/")]
        link: String,
    },
}

impl CidIn {
    fn parse(&self, field: &str) -> Result<cid::Cid> {
        let text = match self {
            CidIn::Text(s) | CidIn::Link { link: s } => s,
        };
        parse_cid(text).map_err(|e| in_field(field, e))
    }
}

/// One pin as the JSON line Go's `state export` writes for it (without the newline).
pub fn encode_pin_json(pin: &Pin) -> String {
    let o = &pin.options;
    let out = PinOut {
        replication_factor_min: o.replication_factor_min,
        replication_factor_max: o.replication_factor_max,
        name: &o.name,
        mode: o.mode.as_str(),
        shard_size: o.shard_size,
        user_allocations: (!o.user_allocations.is_empty())
            .then(|| o.user_allocations.iter().map(PeerId::to_string).collect()),
        expire_at: go_time_text(o.expire_at),
        metadata: (!o.metadata.is_empty()).then_some(&o.metadata),
        pin_update: o.pin_update.map(|c| c.to_string()),
        origins: o.origins.iter().map(Multiaddr::to_string).collect(),
        cid: pin.cid.to_string(),
        pin_type: pin.pin_type.as_str(),
        allocations: pin.allocations.iter().map(PeerId::to_string).collect(),
        max_depth: pin.max_depth,
        reference: pin.reference.map(|c| c.to_string()),
        timestamp: go_time_text(pin.timestamp),
    };
    // Serializing plain strings, numbers, options and sequences into a String cannot fail.
    let json = serde_json::to_string(&out).unwrap_or_default();
    escape_html_like_go(&json)
}

/// Parses one JSON pin (a line of `state export`, without its newline).
pub fn decode_pin_json(line: &str) -> Result<Pin> {
    let raw: PinIn = serde_json::from_str(line)
        .map_err(|e| Error::invalid("JSON pin", format!("does not parse: {e}")))?;
    let cid = raw
        .cid
        .as_ref()
        .ok_or_else(|| Error::invalid("JSON pin", "field cid is missing"))?
        .parse("cid")?;
    let pin_type = match raw.pin_type.as_deref() {
        None => PinType::Data,
        Some(t) => t.parse().map_err(|e| in_field("type", e))?,
    };
    let mode: PinMode = match raw.mode.as_deref() {
        None => PinMode::Recursive,
        Some(m) => m.parse().map_err(|e| in_field("mode", e))?,
    };
    let options = PinOptions {
        replication_factor_min: raw.replication_factor_min.unwrap_or(0),
        replication_factor_max: raw.replication_factor_max.unwrap_or(0),
        name: raw.name.unwrap_or_default(),
        mode,
        shard_size: raw.shard_size.unwrap_or(0),
        user_allocations: peers(raw.user_allocations, "user_allocations")?,
        expire_at: parse_go_time(raw.expire_at.as_deref(), "expire_at")?,
        metadata: raw.metadata.unwrap_or_default(),
        pin_update: raw.pin_update.as_ref().map(|c| c.parse("pin_update")).transpose()?,
        origins: raw
            .origins
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<Multiaddr>().map_err(|e| {
                    Error::invalid(
                        "JSON pin",
                        format!("origins[{i}]: {s:?} is not a multiaddr: {e}"),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    Ok(Pin {
        cid,
        pin_type,
        allocations: peers(raw.allocations, "allocations")?,
        max_depth: raw.max_depth.unwrap_or_else(|| mode.to_depth()),
        reference: raw.reference.as_ref().map(|c| c.parse("reference")).transpose()?,
        timestamp: parse_go_time(raw.timestamp.as_deref(), "timestamp")?,
        options,
    })
}

fn peers(list: Option<Vec<String>>, field: &str) -> Result<Vec<PeerId>> {
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, s)| s.parse().map_err(|e| in_field(&format!("{field}[{i}]"), e)))
        .collect()
}

/// Rewrites a value's validation error so that it names the JSON field.
fn in_field(field: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput { what, reason } => {
            Error::invalid("JSON pin", format!("{field}: invalid {what}: {reason}"))
        }
        other => other,
    }
}

/// A time as Go's `time.Time.MarshalJSON` writes it in UTC (RFC 3339, nanoseconds with
/// trailing zeros trimmed), without the quotes.
fn go_time_text(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else { return GO_ZERO_TIME.to_owned() };
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(s, ".{}", digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses a time Go wrote (or `null`/absent, Go's zero time). Go's zero instant is `None`.
fn parse_go_time(text: Option<&str>, field: &str) -> Result<Option<DateTime<Utc>>> {
    let Some(text) = text else { return Ok(None) };
    let parsed = DateTime::parse_from_rfc3339(text).or_else(|first| {
        // Years outside 0000-9999 ("+10000-01-01T00:00:00Z"), which pinvault writes and strict
        // RFC 3339 cannot hold.
        let offset_form = match text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
            Some(rest) => format!("{rest}+00:00"),
            None => text.to_owned(),
        };
        DateTime::<FixedOffset>::parse_from_str(&offset_form, "%Y-%m-%dT%H:%M:%S%.f%:z")
            .map_err(|_| first)
    });
    let t = parsed
        .map_err(|e| {
            Error::invalid("JSON pin", format!("{field}: {text:?} is not an RFC 3339 time: {e}"))
        })?
        .with_timezone(&Utc);
    Ok(Some(t).filter(|t| !is_go_zero(t)))
}

fn is_go_zero(t: &DateTime<Utc>) -> bool {
    t.timestamp() == -62_135_596_800 && t.nanosecond() == 0
}

/// Applies Go's `encoding/json` HTML escaping to serde_json's output. The escaped characters
/// can only occur inside JSON strings, so replacing them everywhere is exact.
fn escape_html_like_go(json: &str) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
