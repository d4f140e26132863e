//! The stored format: where every record lives under the store's prefix, and what it holds.
//!
//! | key (under `<prefix>/`)                                  | value                          |
//! |----------------------------------------------------------|--------------------------------|
//! | `pins/<cid hex>`                                         | [`PinRecord`] (live or tombstone) |
//! | `views/peer/<peer hex>/<cid hex>.<write id hex>`          | empty: "this write of the pin is allocated to the peer" |
//! | `views/expiry/<bucket>/<time>.<cid hex>.<write id hex>`   | empty: "this write of the pin expires at time" |
//! | `placements/<cid hex>`                                   | [`PlacementRecord`]            |
//! | `staging/<stage id>/data`                                | a staged or published object's bytes (never moved) |
//! | `pending/<stage id>`                                     | [`PendingRecord`]: the object is staged and not yet published |
//! | `sets/<segment>/…/<segment>/_pinvault.manifest`          | [`ManifestRecord`]: the set is published |
//!
//! * CIDs and peers are the hex of their binary form, so key order is byte order.
//! * `<bucket>` is the expiry hour bucket and `<time>` the expiry time (seconds, then
//!   nanoseconds), both as order-preserving fixed-width hex, so key order is time order.
//! * A set name's segments are kept as they are when they only hold `[A-Za-z0-9._=-]`, and
//!   written `+<hex of the segment>` otherwise (`+` is not a plain character, so the mapping is
//!   injective, and no segment ever needs the store's own escaping). The manifest's leaf name
//!   starts with `_pinvault`, which no set segment may (see `pinvault_core::name`), so set `a`
//!   and set `a/_pinvault.manifest` cannot meet. Object names never appear in keys: an object is
//!   addressed by its stage id, so (set `a/b`, object `c`) and (set `a`, object `b/c`) are two
//!   manifests entries with two different stage ids and can never share a key.
//! * A stage id is `<staged at, ns, 16 hex>-<nonce, 16 hex>-<binding, 32 hex>`: the time lets
//!   `sweep` age it without a read, and the binding (the first 16 bytes of SHA-256 over the
//!   set, name, size and digest) lets `finalize` check that a `StagedObject` was not altered
//!   with one `HEAD` of the data instead of a read of the pending record.
//!
//! Records are prost messages; their field tags are the stored format (never renumber them).
//! [`FORMAT_VERSION`] is written in every pin and manifest record.

use chrono::{DateTime, TimeZone, Utc};
use object_store::path::Path;
use pinvault_core::state::expiry_bucket;
use pinvault_core::{Cid, Error, ObjectName, PeerId, Result, SetName, StagedObject};
use prost::Message;
use sha2::{Digest, Sha256};

/// The stored format this code writes.
pub const FORMAT_VERSION: u32 = 1;

/// The leaf name of a set's manifest.
pub const MANIFEST_LEAF: &str = "_pinvault.manifest";

/// A pin as stored: a live pin or the tombstone a conditional remove leaves.
#[derive(Clone, PartialEq, Message)]
pub struct PinRecord {
    /// [`FORMAT_VERSION`].
    #[prost(uint32, tag = "1")]
    pub format: u32,
    /// The write id of this write: the pin's [`pinvault_core::Version`].
    #[prost(bytes = "vec", tag = "2")]
    pub write_id: Vec<u8>,
    /// Stays the same from an insert until the pin is removed; placements carry it, so a
    /// re-added pin never inherits the reports of the removed one.
    #[prost(bytes = "vec", tag = "3")]
    pub incarnation: Vec<u8>,
    /// True for the tombstone of a conditional remove: the pin is absent.
    #[prost(bool, tag = "4")]
    pub tombstone: bool,
    /// The pin in pinvault's lossless record codec (`codec::protobuf::encode_record`).
    #[prost(bytes = "vec", tag = "5")]
    pub pin: Vec<u8>,
}

/// Where peers report a pin: its actual placement.
#[derive(Clone, PartialEq, Message)]
pub struct PlacementRecord {
    /// The incarnation of the pin the report is about.
    #[prost(bytes = "vec", tag = "1")]
    pub incarnation: Vec<u8>,
    /// Peer multihashes.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub peers: Vec<Vec<u8>>,
}

/// A staged object that is not published yet (written before its bytes, deleted after them).
#[derive(Clone, PartialEq, Message)]
pub struct PendingRecord {
    /// Its set.
    #[prost(string, tag = "1")]
    pub set: String,
    /// Its name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Size in bytes.
    #[prost(uint64, tag = "3")]
    pub size: u64,
    /// SHA-256 of the bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub sha256: Vec<u8>,
}

/// One object of a published set.
#[derive(Clone, PartialEq, Message)]
pub struct ManifestObject {
    /// Its name in the set.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Size in bytes.
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// SHA-256 of the bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub sha256: Vec<u8>,
    /// Where its bytes are: `staging/<stage_id>/data`.
    #[prost(string, tag = "4")]
    pub stage_id: String,
    /// The data object's ETag when it was published (reads check it when present).
    #[prost(string, tag = "5")]
    pub e_tag: String,
    /// The data object's version (e.g. a GCS generation), when the store has one.
    #[prost(string, tag = "6")]
    pub data_version: String,
}

/// A published set: the one object whose creation publishes it.
#[derive(Clone, PartialEq, Message)]
pub struct ManifestRecord {
    /// [`FORMAT_VERSION`].
    #[prost(uint32, tag = "1")]
    pub format: u32,
    /// The set's name.
    #[prost(string, tag = "2")]
    pub set: String,
    /// The publication's version (a write id).
    #[prost(bytes = "vec", tag = "3")]
    pub version: Vec<u8>,
    /// Publication time, Unix seconds.
    #[prost(int64, tag = "4")]
    pub published_secs: i64,
    /// Publication time, nanoseconds.
    #[prost(uint32, tag = "5")]
    pub published_nanos: u32,
    /// The caller's manifest bytes.
    #[prost(bytes = "vec", tag = "6")]
    pub manifest: Vec<u8>,
    /// The objects, in name order.
    #[prost(message, repeated, tag = "7")]
    pub objects: Vec<ManifestObject>,
}

/// Decodes a record, reporting the key when it does not decode.
pub fn decode<M: Message + Default>(path: &Path, bytes: &[u8]) -> Result<M> {
    M::decode(bytes)
        .map_err(|e| corrupt(path, format!("record does not decode: {e}")).with_source(e))
}

/// [`Error::Corrupt`] at a key.
pub fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::corrupt(format!("object {path}"), reason)
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'=')
}

/// A name segment as a key segment (see the module doc).
pub fn encode_segment(segment: &str) -> String {
    let plain =
        !segment.is_empty() && segment != "." && segment != ".." && segment.bytes().all(is_plain);
    if plain {
        segment.to_owned()
    } else {
        format!("+{}", hex::encode(segment))
    }
}

/// The inverse of [`encode_segment`].
pub fn decode_segment(segment: &str) -> Option<String> {
    match segment.strip_prefix('+') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => Some(segment.to_owned()),
    }
}

fn order_preserving(n: i64) -> String {
    format!("{:016x}", (n as u64) ^ (1 << 63))
}

fn from_order_preserving(s: &str) -> Option<i64> {
    Some((u64::from_str_radix(s, 16).ok()? ^ (1 << 63)) as i64)
}

/// The binding of a stage id to the staged object's set, name, size and digest.
pub fn binding(set: &SetName, name: &ObjectName, size: u64, sha256: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    for part in [set.as_str().as_bytes(), name.as_str().as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(size.to_be_bytes());
    h.update(sha256);
    hex::encode(&h.finalize()[..16])
}

/// A stage id for an object staged at `at` (see the module doc).
pub fn stage_id(at: DateTime<Utc>, nonce: [u8; 8], binding: &str) -> String {
    let nanos = at.timestamp_nanos_opt().unwrap_or_default();
    format!("{}-{}-{binding}", order_preserving(nanos), hex::encode(nonce))
}

/// The staging time and binding of a stage id; `None` when it is not one of ours.
pub fn parse_stage_id(id: &str) -> Option<(DateTime<Utc>, &str)> {
    let mut parts = id.split('-');
    let (time, nonce, binding) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || time.len() != 16 || nonce.len() != 16 || binding.len() != 32 {
        return None;
    }
    if !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return None;
    }
    let nanos = from_order_preserving(time)?;
    Some((Utc.timestamp_nanos(nanos), binding))
}

/// Whether `staged` is exactly what its stage id was issued for.
pub fn binding_holds(staged: &StagedObject) -> bool {
    let expected = binding(&staged.set, &staged.name, staged.size, &staged.sha256);
    match parse_stage_id(&staged.stage_id) {
        Some((at, b)) => b == expected && at == staged.staged_at,
        None => false,
    }
}

/// An expiry row: the time, the CID and the write id it indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryRow {
    /// When the pin expires.
    pub at: DateTime<Utc>,
    /// The pin.
    pub cid: Cid,
    /// The write of the pin this row was made for.
    pub write_id: Vec<u8>,
}

/// Every key of one store, under its prefix.
#[derive(Clone, Debug)]
pub struct Layout {
    root: Path,
}

fn child(path: &Path, part: &str) -> Path {
    path.clone().join(part)
}

impl Layout {
    /// The layout under `prefix` (may be the root).
    pub fn new(root: Path) -> Self {
        Layout { root }
    }

    /// The store prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of the pins.
    pub fn pins_dir(&self) -> Path {
        child(&self.root, "pins")
    }

    /// A pin's record.
    pub fn pin(&self, cid: &Cid) -> Path {
        child(&self.pins_dir(), &hex::encode(cid.to_bytes()))
    }

    /// The CID of a pin key.
    pub fn cid_of_pin(&self, path: &Path) -> Result<Cid> {
        let leaf = path.filename().ok_or_else(|| corrupt(path, "no file name"))?;
        let bytes =
            hex::decode(leaf).map_err(|e| corrupt(path, format!("not hex: {e}")).with_source(e))?;
        Cid::try_from(bytes.as_slice())
            .map_err(|e| corrupt(path, format!("not a CID: {e}")).with_source(e))
    }

    /// Directory of one peer's view rows.
    pub fn peer_dir(&self, peer: &PeerId) -> Path {
        child(&child(&child(&self.root, "views"), "peer"), &hex::encode(peer.to_bytes()))
    }

    /// A by-peer row.
    pub fn peer_row(&self, peer: &PeerId, cid: &Cid, write_id: &[u8]) -> Path {
        let leaf = format!("{}.{}", hex::encode(cid.to_bytes()), hex::encode(write_id));
        child(&self.peer_dir(peer), &leaf)
    }

    /// The CID and write id of a by-peer row.
    pub fn parse_peer_row(&self, path: &Path) -> Result<(Cid, Vec<u8>)> {
        let leaf = path.filename().ok_or_else(|| corrupt(path, "no file name"))?;
        let (cid, write_id) =
            leaf.split_once('.').ok_or_else(|| corrupt(path, "not <cid>.<write id>"))?;
        let cid = hex::decode(cid)
            .ok()
            .and_then(|b| Cid::try_from(b.as_slice()).ok())
            .ok_or_else(|| corrupt(path, "bad CID"))?;
        let write_id = hex::decode(write_id).map_err(|_| corrupt(path, "bad write id"))?;
        Ok((cid, write_id))
    }

    /// Directory of the expiry queue.
    pub fn expiry_dir(&self) -> Path {
        child(&child(&self.root, "views"), "expiry")
    }

    /// Directory of one expiry hour bucket.
    pub fn expiry_bucket_dir(&self, bucket: i64) -> Path {
        child(&self.expiry_dir(), &order_preserving(bucket))
    }

    /// The bucket of an expiry bucket directory.
    pub fn parse_expiry_bucket(&self, path: &Path) -> Option<i64> {
        from_order_preserving(path.filename()?)
    }

    /// An expiry row.
    pub fn expiry_row(&self, at: DateTime<Utc>, cid: &Cid, write_id: &[u8]) -> Path {
        let leaf = format!(
            "{}{:08x}.{}.{}",
            order_preserving(at.timestamp()),
            at.timestamp_subsec_nanos(),
            hex::encode(cid.to_bytes()),
            hex::encode(write_id)
        );
        child(&self.expiry_bucket_dir(expiry_bucket(at)), &leaf)
    }

    /// The time, CID and write id of an expiry row.
    pub fn parse_expiry_row(&self, path: &Path) -> Result<ExpiryRow> {
        let bad = |why: &str| corrupt(path, why.to_owned());
        let leaf = path.filename().ok_or_else(|| bad("no file name"))?;
        let mut parts = leaf.split('.');
        let (time, cid, write_id) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(c), Some(w)) if t.len() == 24 && t.is_ascii() => (t, c, w),
            _ => return Err(bad("not <time>.<cid>.<write id>")),
        };
        let secs = from_order_preserving(&time[..16]).ok_or_else(|| bad("bad seconds"))?;
        let nanos = u32::from_str_radix(&time[16..], 16).map_err(|_| bad("bad nanoseconds"))?;
        let at = Utc.timestamp_opt(secs, nanos).single().ok_or_else(|| bad("time out of range"))?;
        let cid = hex::decode(cid)
            .ok()
            .and_then(|b| Cid::try_from(b.as_slice()).ok())
            .ok_or_else(|| bad("bad CID"))?;
        let write_id = hex::decode(write_id).map_err(|_| bad("bad write id"))?;
        Ok(ExpiryRow { at, cid, write_id })
    }

    /// A pin's placement record.
    pub fn placement(&self, cid: &Cid) -> Path {
        child(&child(&self.root, "placements"), &hex::encode(cid.to_bytes()))
    }

    /// A staged object's bytes.
    pub fn staged_data(&self, stage_id: &str) -> Path {
        child(&child(&child(&self.root, "staging"), stage_id), "data")
    }

    /// Directory of the pending records.
    pub fn pending_dir(&self) -> Path {
        child(&self.root, "pending")
    }

    /// A staged object's pending record.
    pub fn pending(&self, stage_id: &str) -> Path {
        child(&self.pending_dir(), stage_id)
    }

    /// Directory of the manifests.
    pub fn sets_dir(&self) -> Path {
        child(&self.root, "sets")
    }

    /// The directory holding every manifest of a set whose name starts with `segment/` or is
    /// `segment`.
    pub fn sets_under(&self, segment: &str) -> Path {
        child(&self.sets_dir(), &encode_segment(segment))
    }

    /// A set's manifest.
    pub fn manifest(&self, set: &SetName) -> Path {
        let mut path = self.sets_dir();
        for segment in set.as_str().split('/') {
            path = child(&path, &encode_segment(segment));
        }
        child(&path, MANIFEST_LEAF)
    }

    /// The set whose manifest is at `path`, or `None` for any other key.
    pub fn set_of_manifest(&self, path: &Path) -> Option<SetName> {
        let sets = self.sets_dir();
        let parts: Vec<_> = path.prefix_match(&sets)?.collect();
        let (leaf, segments) = parts.split_last()?;
        if leaf.as_ref() != MANIFEST_LEAF || segments.is_empty() {
            return None;
        }
        let decoded: Option<Vec<String>> =
            segments.iter().map(|p| decode_segment(p.as_ref())).collect();
        SetName::new(decoded?.join("/")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SetName {
        SetName::new(s).unwrap()
    }

    #[test]
    fn manifest_keys_round_trip_and_never_collide() {
        let l = Layout::new(Path::from("root/x"));
        let names = ["a", "a/b", "ab", "sales/date=2026-11-22", "ünï/c d", "a+b", "+61", "x.y/z_w"];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let p = l.manifest(&set(n));
            assert!(seen.insert(p.to_string()), "collision at {p}");
            assert_eq!(l.set_of_manifest(&p), Some(set(n)), "{p}");
        }
        assert_eq!(
            l.set_of_manifest(
                &l.pin(
                    &pinvault_core::pin::parse_cid(
                        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
                    )
                    .unwrap()
                )
            ),
            None
        );
    }

    #[test]
    fn stage_ids_bind_their_object() {
        let at = Utc.timestamp_opt(1_800_000_000, 123_456_789).single().unwrap();
        let (s, n) = (set("a/b"), ObjectName::new("c").unwrap());
        let b = binding(&s, &n, 3, &[7; 32]);
        let id = stage_id(at, [1; 8], &b);
        let (t, parsed) = parse_stage_id(&id).unwrap();
        assert_eq!((t, parsed), (at, b.as_str()));
        let mut staged =
            StagedObject { set: s, name: n, stage_id: id, size: 3, sha256: [7; 32], staged_at: at };
        assert!(binding_holds(&staged));
        staged.size = 4;
        assert!(!binding_holds(&staged));
        assert!(parse_stage_id("not-a-stage-id").is_none());
    }

    #[test]
    fn expiry_rows_round_trip_and_sort_by_time() {
        let l = Layout::new(Path::from("r"));
        let cid = pinvault_core::pin::parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
            .unwrap();
        let times = [-7200i64, -1, 0, 1, 3599, 3600, 1_800_000_000];
        let rows: Vec<Path> = times
            .iter()
            .map(|&s| l.expiry_row(Utc.timestamp_opt(s, 5).single().unwrap(), &cid, &[9; 16]))
            .collect();
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(rows, sorted);
        let back = l.parse_expiry_row(&rows[3]).unwrap();
        assert_eq!(back.at, Utc.timestamp_opt(1, 5).single().unwrap());
        assert_eq!(back.cid, cid);
        assert_eq!(back.write_id, vec![9; 16]);
    }
}
