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
//!   0000–9999, and so pinvault never stores them ([`Pin::validate`]).
//! * `mode` and `type` are their names, peer IDs base58, multiaddrs their text form.
//! * Strings escape `"`, `\`, control characters (`\n`, `\r`, `\t`, `\b`, `\f`, else
//!   `\u00XX`), and, as Go's HTML escaping does, `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`,
//!   `\u003e`, `\u0026`, `\u2028`, `\u2029` (Go 1.22 and later).
//!
//! [`decode_pin_json`] reads a pin as `state import` does: Go's `json.Decoder` decoding into
//! `api.Pin` (through [`super::gojson`]), then the pin ipfs-cluster stores for it. So it takes
//! what Go takes and refuses what Go refuses:
//!
//! * Keys match the field names exactly or case-insensitively (Go's `EqualFold`: `"CID"`, and
//!   `"ſhard_size"` with a long s); unknown keys are ignored; for a key given twice the last
//!   wins, except `metadata`, whose objects merge. `null` leaves a number, string or time as
//!   it was, empties a list, map, CID or reference, and makes `type` `"all"` and `mode`
//!   `"recursive"`.
//! * A missing `type` is Go's bad type; unknown type names are the bad type; `"all"`, `""` and
//!   `null` are stored as a shard pin (Go's `AllType` marshals to wire value 4). Unknown modes
//!   are recursive. A missing `max_depth` is 0.
//! * Numbers must be integer literals that fit 64 bits (`1.0`, `1e3` are refused, as Go
//!   refuses them for an `int`); replication factors and depths are then kept as the 32 bits
//!   ipfs-cluster's protobuf stores.
//! * CIDs, peer IDs and multiaddrs are parsed as go-cid, go-libp2p and go-multiaddr parse them
//!   (a CID is never trimmed, an IPLD link `{"/": ...}` is refused); times are strict RFC 3339
//!   as Go's `time.Time` reads it (`T` and `Z` upper case, seconds up to 59, the raw string
//!   without escapes).
//!
//! Kept different, each refused with [`Error::InvalidInput`] where ipfs-cluster would store the
//! value: a pin with no CID (`null` or missing; ipfs-cluster stores it under an empty key its
//! own listing then skips), identity CIDs with a digest over 64 bytes, peer IDs that are not
//! an identity or 32-byte sha2-256 multihash, and times ipfs-cluster cannot export
//! ([`Pin::validate`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;

use super::gojson;
use crate::multiaddr::Multiaddr;
use crate::pin::{cid_from_bytes, parse_cid, PeerId, Pin, PinMode, PinOptions, PinType};
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

/// Parses one JSON value as `state import` reads a pin (see the module doc). `json` is the
/// value alone; surrounding whitespace is allowed, anything else is refused.
pub fn decode_pin_json(json: impl AsRef<[u8]>) -> Result<Pin> {
    let json = json.as_ref();
    let bad = |why: String| Error::invalid("JSON pin", why);
    let (start, end) = match gojson::next_value(json, true) {
        gojson::Scan::Value { start, end } => (start, end),
        gojson::Scan::End => return Err(bad("no JSON value".into())),
        gojson::Scan::Invalid(why) => return Err(bad(format!("does not parse: {why}"))),
        gojson::Scan::Incomplete => {
            return Err(bad("does not parse: unexpected end of JSON input".into()))
        }
    };
    if !matches!(gojson::next_value(&json[end..], true), gojson::Scan::End) {
        return Err(bad("does not parse: invalid character after top-level value".into()));
    }
    decode_value(gojson::parse(&json[start..end]))
}

/// The pin of one value found by [`gojson::next_value`].
pub(crate) fn decode_value(value: gojson::Value) -> Result<Pin> {
    let members =
        match value {
            gojson::Value::Object(members) => members,
            gojson::Value::Null => return Err(Error::invalid(
                "JSON pin",
                "null: ipfs-cluster would store a pin without a CID, which its own listing skips",
            )),
            other => {
                return Err(Error::invalid(
                    "JSON pin",
                    format!("cannot unmarshal {} into Go value of type api.Pin", other.kind()),
                ))
            }
        };
    let mut pin = GoPin::default();
    for (key, value) in members {
        let Some(field) = FIELDS.iter().copied().find(|name| fold_eq(&key, name)) else { continue };
        pin.set(field, value).map_err(|why| {
            let sep = if why.starts_with('[') { "" } else { ": " };
            Error::invalid("JSON pin", format!("{field}{sep}{why}"))
        })?;
    }
    pin.into_pin()
}

/// `api.Pin`'s JSON field names, embedded `PinOptions` first.
const FIELDS: [&str; 16] = [
    "replication_factor_min",
    "replication_factor_max",
    "name",
    "mode",
    "shard_size",
    "user_allocations",
    "expire_at",
    "metadata",
    "pin_update",
    "origins",
    "cid",
    "type",
    "allocations",
    "max_depth",
    "reference",
    "timestamp",
];

/// Go's `bytes.EqualFold` of a key with a field name (lower-case ASCII): ASCII letters match
/// either case, and the two non-ASCII letters in those fold sets, U+017F (long s) and U+212A
/// (Kelvin sign), match `s` and `k`.
fn fold_eq(key: &str, name: &str) -> bool {
    let mut key = key.chars();
    for n in name.chars() {
        let Some(k) = key.next() else { return false };
        let same = k.to_ascii_lowercase() == n
            || (k == '\u{17F}' && n == 's')
            || (k == '\u{212A}' && n == 'k');
        if !same {
            return false;
        }
    }
    key.next().is_none()
}

/// An `api.Pin` while Go's decoder fills it, with Go's zero values.
#[derive(Default)]
struct GoPin {
    cid: Option<cid::Cid>,
    /// `None` until a `type` key is seen: Go's zero flag, the bad type.
    pin_type: Option<PinType>,
    allocations: Vec<PeerId>,
    max_depth: i64,
    reference: Option<cid::Cid>,
    timestamp: Option<DateTime<Utc>>,
    replication_factor_min: i64,
    replication_factor_max: i64,
    name: String,
    mode: PinMode,
    shard_size: u64,
    user_allocations: Vec<PeerId>,
    expire_at: Option<DateTime<Utc>>,
    metadata: Option<BTreeMap<String, String>>,
    pin_update: Option<cid::Cid>,
    origins: Vec<Multiaddr>,
}

type Why = String;

impl GoPin {
    fn set(&mut self, field: &str, v: gojson::Value) -> std::result::Result<(), Why> {
        use gojson::Value as V;
        match field {
            "replication_factor_min" => set_int(&mut self.replication_factor_min, v),
            "replication_factor_max" => set_int(&mut self.replication_factor_max, v),
            "max_depth" => set_int(&mut self.max_depth, v),
            "shard_size" => match v {
                V::Null => Ok(()),
                V::Number(n) => {
                    self.shard_size = n
                        .parse()
                        .map_err(|_| format!("cannot unmarshal number {n} into uint64"))?;
                    Ok(())
                }
                other => Err(type_error(&other, "uint64")),
            },
            "name" => match v {
                V::Null => Ok(()),
                V::String(s, _) => {
                    self.name = s;
                    Ok(())
                }
                other => Err(type_error(&other, "string")),
            },
            "mode" => {
                self.mode = match go_string_or_empty(v, "PinMode")?.as_str() {
                    "direct" => PinMode::Direct,
                    _ => PinMode::Recursive,
                };
                Ok(())
            }
            "type" => {
                self.pin_type = Some(PinType::from_go_json(&go_string_or_empty(v, "PinType")?));
                Ok(())
            }
            "cid" => set_cid(&mut self.cid, v),
            "pin_update" => set_cid(&mut self.pin_update, v),
            "reference" => set_cid(&mut self.reference, v),
            "timestamp" => set_time(&mut self.timestamp, v),
            "expire_at" => set_time(&mut self.expire_at, v),
            "allocations" => set_list(&mut self.allocations, v, parse_peer),
            "user_allocations" => set_list(&mut self.user_allocations, v, parse_peer),
            "origins" => set_list(&mut self.origins, v, |s| {
                s.parse::<Multiaddr>().map_err(|e| format!("{s:?} is not a multiaddr: {e}"))
            }),
            "metadata" => match v {
                V::Null => {
                    self.metadata = None;
                    Ok(())
                }
                V::Object(members) => {
                    let map = self.metadata.get_or_insert_with(BTreeMap::new);
                    for (key, value) in members {
                        let value = match value {
                            V::String(s, _) => s,
                            V::Null => String::new(),
                            other => return Err(type_error(&other, "string")),
                        };
                        map.insert(key, value);
                    }
                    Ok(())
                }
                other => Err(type_error(&other, "map[string]string")),
            },
            _ => Ok(()),
        }
    }

    /// The pin ipfs-cluster stores for this decoded `api.Pin`.
    fn into_pin(self) -> Result<Pin> {
        let cid = self.cid.ok_or_else(|| {
            Error::invalid(
                "JSON pin",
                "the cid is missing or null: ipfs-cluster would store the pin under an empty key \
                 that its own listing skips",
            )
        })?;
        Ok(Pin {
            cid,
            pin_type: self.pin_type.unwrap_or(PinType::Bad),
            allocations: self.allocations,
            // ipfs-cluster's protobuf keeps 32 bits (`int32(...)` in ProtoMarshal).
            max_depth: self.max_depth as i32,
            reference: self.reference,
            timestamp: self.timestamp,
            options: PinOptions {
                replication_factor_min: self.replication_factor_min as i32,
                replication_factor_max: self.replication_factor_max as i32,
                name: self.name,
                mode: self.mode,
                shard_size: self.shard_size,
                user_allocations: self.user_allocations,
                expire_at: self.expire_at,
                metadata: self.metadata.unwrap_or_default(),
                pin_update: self.pin_update,
                origins: self.origins,
            },
        })
    }
}

fn type_error(v: &gojson::Value, go_type: &str) -> Why {
    format!("cannot unmarshal {} into Go value of type {go_type}", v.kind())
}

/// An `int` field: `null` leaves it, a number must be an integer literal within 64 bits.
fn set_int(slot: &mut i64, v: gojson::Value) -> std::result::Result<(), Why> {
    match v {
        gojson::Value::Null => Ok(()),
        gojson::Value::Number(n) => {
            *slot = n
                .parse()
                .map_err(|_| format!("cannot unmarshal number {n} into Go value of type int"))?;
            Ok(())
        }
        other => Err(type_error(&other, "int")),
    }
}

/// What `json.Unmarshal(b, &str)` gives inside Go's `PinType`/`PinMode` `UnmarshalJSON`: the
/// string, or `""` for `null`.
fn go_string_or_empty(v: gojson::Value, go_type: &str) -> std::result::Result<String, Why> {
    match v {
        gojson::Value::Null => Ok(String::new()),
        gojson::Value::String(s, _) => Ok(s),
        other => Err(type_error(&other, go_type)),
    }
}

/// `api.Cid` (and `*api.Cid`): `null` is undefined, a string must be a CID as go-cid decodes.
fn set_cid(slot: &mut Option<cid::Cid>, v: gojson::Value) -> std::result::Result<(), Why> {
    match v {
        gojson::Value::Null => {
            *slot = None;
            Ok(())
        }
        gojson::Value::String(s, _) => {
            *slot = Some(go_decode_cid(&s).map_err(|e| e.to_string())?);
            Ok(())
        }
        other => Err(type_error(&other, "string")),
    }
}

/// go-cid's `Decode`: 46 characters starting `Qm` are a base58 CIDv0, anything else multibase
/// of a binary CID (which may itself be a CIDv0). Nothing is trimmed.
fn go_decode_cid(s: &str) -> Result<cid::Cid> {
    if s.len() < 2 {
        return Err(Error::invalid("cid", format!("{s:?}: cid too short")));
    }
    if s.len() == 46 && s.starts_with("Qm") {
        return parse_cid(s)
            .map_err(|e| Error::invalid("cid", format!("{s:?}: {e}")).with_source(e));
    }
    // multibase's error type is not a std::error::Error: its text is all there is.
    let (_, bytes) =
        cid::multibase::decode(s).map_err(|e| Error::invalid("cid", format!("{s:?}: {e}")))?;
    cid_from_bytes(&bytes).map_err(|e| Error::invalid("cid", format!("{s:?}: {e}")).with_source(e))
}

/// A `time.Time`: `null` leaves it; a string must be strict RFC 3339, read from its raw text.
fn set_time(slot: &mut Option<DateTime<Utc>>, v: gojson::Value) -> std::result::Result<(), Why> {
    match v {
        gojson::Value::Null => Ok(()),
        gojson::Value::String(s, escaped) => {
            if escaped {
                return Err(format!(
                    "{s:?}: Go reads a time from the raw string, escapes included"
                ));
            }
            *slot = parse_go_time(&s)
                .ok_or_else(|| format!("parsing time {s:?} as RFC 3339 failed"))?;
            Ok(())
        }
        _ => Err("Time.UnmarshalJSON: input is not a JSON string".into()),
    }
}

/// A list: `null` empties it; each element must be a string the parser takes.
fn set_list<T>(
    slot: &mut Vec<T>,
    v: gojson::Value,
    parse: impl Fn(&str) -> std::result::Result<T, Why>,
) -> std::result::Result<(), Why> {
    match v {
        gojson::Value::Null => {
            slot.clear();
            Ok(())
        }
        gojson::Value::Array(items) => {
            slot.clear();
            for (i, item) in items.into_iter().enumerate() {
                let text = match item {
                    gojson::Value::String(s, _) => s,
                    gojson::Value::Null => String::new(),
                    other => return Err(format!("[{i}]: {}", type_error(&other, "string"))),
                };
                slot.push(parse(&text).map_err(|e| format!("[{i}]: {e}"))?);
            }
            Ok(())
        }
        other => Err(type_error(&other, "slice")),
    }
}

fn parse_peer(s: &str) -> std::result::Result<PeerId, Why> {
    s.parse::<PeerId>().map_err(|e| e.to_string())
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

/// Go's strict RFC 3339 (`time.parseRFC3339`, what `Time.UnmarshalJSON` takes): `YYYY-MM-DD`
/// `T` `hh:mm:ss`, an optional `.` fraction of any length (nanoseconds kept), then `Z` or
/// `±hh:mm`, every field in range. `Some(None)` is Go's zero instant; `None` is a refusal.
fn parse_go_time(s: &str) -> Option<Option<DateTime<Utc>>> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>, min: u32, max: u32| -> Option<u32> {
        let digits = b.get(r)?;
        let mut n = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(d - b'0');
        }
        (min..=max).contains(&n).then_some(n)
    };
    if !(b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':') {
        return None;
    }
    let year = num(0..4, 0, 9999)?;
    let month = num(5..7, 1, 12)?;
    let day = num(8..10, 1, 31)?;
    let (hour, minute, second) = (num(11..13, 0, 23)?, num(14..16, 0, 59)?, num(17..19, 0, 59)?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let n = rest[1..].iter().take_while(|d| d.is_ascii_digit()).count();
        for (i, d) in rest[1..=n].iter().enumerate().take(9) {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &rest[1 + n..];
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let field = [*h1, *h2, *m1, *m2];
            if !field.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let (h, m) = (
                u32::from(h1 - b'0') * 10 + u32::from(h2 - b'0'),
                u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0'),
            );
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    let t = local.and_utc().checked_sub_signed(chrono::TimeDelta::try_seconds(offset_secs)?)?;
    Some(Some(t).filter(|t| !is_go_zero(t)))
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
