//! How pins, views, staged objects and publications are laid out as keys and values, and the
//! stored-format versions.
//!
//! Values are small prost messages (field tags are the stored format: never renumber them), so a
//! record that does not decode is reported as [`Error::Corrupt`] with its table and key.
//!
//! | table        | key                                        | value                      |
//! |--------------|--------------------------------------------|----------------------------|
//! | `meta`       | `format`                                   | u32 BE                     |
//! | `meta`       | `seq/` + u16 BE stripe, or `seq/pub`       | u64 BE commit sequence     |
//! | `pins`       | CID bytes                                  | `0x02` + [`PinRecord`]     |
//! | `by_peer`    | u8 len + peer multihash + CID bytes        | empty                      |
//! | `expiry`     | hour bucket, seconds, nanos (BE, order-preserving) + CID | empty        |
//! | `placements` | CID bytes                                  | [`PeerList`]               |
//! | `staged`     | stage id                                   | [`StagedRecord`]           |
//! | `blobs`      | stage id                                   | the object's bytes         |
//! | `objects`    | `set/name` text + NUL + set                | [`ObjectRecord`]           |
//! | `sets`       | set name                                   | [`SetRecord`]              |
//!
//! Format 1 (the crate's first development layout) kept only the `pins` table, each value the
//! plain ipfs-cluster protobuf `Pin` (which always starts with byte `0x0a`, field 1), with no
//! version and no views. Format 2 prefixes records with `0x02`, so `migrate` can tell converted
//! records from old ones and a migration interrupted by a crash simply resumes.

use chrono::{DateTime, TimeZone, Utc};
use cid::Cid;
use prost::Message;

use super::engine::Table;
use crate::codec::protobuf;
use crate::pin::{PeerId, Pin};
use crate::publish::StagedObject;
use crate::state::expiry_bucket;
use crate::{Error, ObjectName, Result, SetName};

/// The stored format this code writes.
pub const FORMAT_VERSION: u32 = 2;
/// The previous format, which `migrate` converts.
pub const FORMAT_PINS_ONLY: u32 = 1;
/// The first byte of a format-2 pin record.
pub const PIN_RECORD_TAG: u8 = 0x02;

/// `meta` key of the stored-format version.
pub const META_FORMAT: &[u8] = b"format";
/// `meta` key prefix of the commit-sequence slots.
pub const META_SEQ_PREFIX: &[u8] = b"seq/";

/// The `meta` key of a pin-lock stripe's sequence slot.
pub fn seq_slot(stripe: usize) -> Vec<u8> {
    let mut key = META_SEQ_PREFIX.to_vec();
    key.extend_from_slice(&(stripe as u16).to_be_bytes());
    key
}

/// The `meta` key of the publication path's sequence slot.
pub fn seq_slot_publication() -> Vec<u8> {
    [META_SEQ_PREFIX, b"pub"].concat()
}

/// A stored pin with its version (the commit sequence that wrote it).
#[derive(Clone, PartialEq, Message)]
pub struct PinRecord {
    /// The commit sequence that wrote the pin.
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// The pin, in pinvault's lossless record codec ([`protobuf::encode_record`]).
    #[prost(bytes = "vec", tag = "2")]
    pub pin: Vec<u8>,
}

/// A set of peers.
#[derive(Clone, PartialEq, Message)]
pub struct PeerList {
    /// Peer multihashes.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub peers: Vec<Vec<u8>>,
}

/// A staged object.
#[derive(Clone, PartialEq, Message)]
pub struct StagedRecord {
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
    /// Staging time, Unix seconds.
    #[prost(int64, tag = "5")]
    pub staged_secs: i64,
    /// Staging time, nanoseconds.
    #[prost(uint32, tag = "6")]
    pub staged_nanos: u32,
}

/// A published object.
#[derive(Clone, PartialEq, Message)]
pub struct ObjectRecord {
    /// Size in bytes.
    #[prost(uint64, tag = "1")]
    pub size: u64,
    /// SHA-256 of the bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub sha256: Vec<u8>,
    /// The publication's version.
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// Where its bytes are in `blobs`.
    #[prost(string, tag = "4")]
    pub stage_id: String,
}

/// One object of a [`SetRecord`].
#[derive(Clone, PartialEq, Message)]
pub struct SetObject {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The object record.
    #[prost(message, optional, tag = "2")]
    pub record: Option<ObjectRecord>,
}

/// A published set: the one record whose write makes a publication visible.
#[derive(Clone, PartialEq, Message)]
pub struct SetRecord {
    /// The publication's version.
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// Publication time, Unix seconds.
    #[prost(int64, tag = "2")]
    pub published_secs: i64,
    /// Publication time, nanoseconds.
    #[prost(uint32, tag = "3")]
    pub published_nanos: u32,
    /// The caller's manifest.
    #[prost(bytes = "vec", tag = "4")]
    pub manifest: Vec<u8>,
    /// The objects, in name order.
    #[prost(message, repeated, tag = "5")]
    pub objects: Vec<SetObject>,
}

/// Decodes a prost record, naming its table and key when it does not decode.
pub fn decode<M: Message + Default>(table: Table, key: &[u8], bytes: &[u8]) -> Result<M> {
    M::decode(bytes)
        .map_err(|e| corrupt(table, key, format!("record does not decode: {e}")).with_source(e))
}

/// [`Error::Corrupt`] at a table and key.
pub fn corrupt(table: Table, key: &[u8], reason: impl Into<String>) -> Error {
    Error::corrupt(format!("{} key {}", table.name(), hex::encode(key)), reason)
}

/// Encodes a pin and its version as a format-2 `pins` value.
pub fn encode_pin(version: u64, pin: &Pin) -> Vec<u8> {
    let record = PinRecord { version, pin: protobuf::encode_record(pin) };
    let mut out = Vec::with_capacity(1 + record.encoded_len());
    out.push(PIN_RECORD_TAG);
    record.encode(&mut out).expect("a Vec grows as needed");
    out
}

/// Decodes a format-2 `pins` value into its version and pin, checking it belongs to `key`.
pub fn decode_pin(key: &[u8], bytes: &[u8]) -> Result<(u64, Pin)> {
    let Some((&PIN_RECORD_TAG, rest)) = bytes.split_first() else {
        return Err(corrupt(Table::Pins, key, "not a format-2 pin record (run migrate)"));
    };
    let record: PinRecord = decode(Table::Pins, key, rest)?;
    let pin = protobuf::decode_record(&record.pin)
        .map_err(|e| corrupt(Table::Pins, key, e.to_string()).with_source(e))?;
    if pin.cid.to_bytes() != key {
        return Err(corrupt(Table::Pins, key, format!("record holds pin {}", pin.cid)));
    }
    Ok((record.version, pin))
}

/// The `by_peer` key prefix of one peer.
pub fn by_peer_prefix(peer: &PeerId) -> Vec<u8> {
    let bytes = peer.to_bytes();
    let mut key = Vec::with_capacity(1 + bytes.len() + 40);
    // A PeerId multihash holds at most 64 digest bytes plus a short header: it fits a u8.
    key.push(bytes.len() as u8);
    key.extend_from_slice(&bytes);
    key
}

/// The `by_peer` key of one allocation.
pub fn by_peer_key(peer: &PeerId, cid: &[u8]) -> Vec<u8> {
    let mut key = by_peer_prefix(peer);
    key.extend_from_slice(cid);
    key
}

/// The CID of a `by_peer` key.
pub fn cid_of_by_peer_key(key: &[u8]) -> Result<Cid> {
    let len = *key.first().ok_or_else(|| corrupt(Table::ByPeer, key, "empty key"))? as usize;
    let cid = key.get(1 + len..).ok_or_else(|| corrupt(Table::ByPeer, key, "short key"))?;
    Cid::try_from(cid)
        .map_err(|e| corrupt(Table::ByPeer, key, format!("bad CID: {e}")).with_source(e))
}

fn order_preserving(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn from_order_preserving(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The `expiry` key prefix of every entry up to and including `bucket`'s end.
pub fn expiry_bucket_key(bucket: i64) -> [u8; 8] {
    order_preserving(bucket)
}

/// The `expiry` key of a pin expiring at `at`: ordered by bucket, then time, then CID.
pub fn expiry_key(at: DateTime<Utc>, cid: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(20 + cid.len());
    key.extend_from_slice(&order_preserving(expiry_bucket(at)));
    key.extend_from_slice(&order_preserving(at.timestamp()));
    key.extend_from_slice(&at.timestamp_subsec_nanos().to_be_bytes());
    key.extend_from_slice(cid);
    key
}

/// The bucket, time and CID of an `expiry` key.
pub fn parse_expiry_key(key: &[u8]) -> Result<(i64, DateTime<Utc>, Cid)> {
    let bad = |why: &str| corrupt(Table::Expiry, key, why.to_owned());
    if key.len() < 21 {
        return Err(bad("short key"));
    }
    let word = |i: usize| -> [u8; 8] {
        let mut w = [0; 8];
        w.copy_from_slice(&key[i..i + 8]);
        w
    };
    let bucket = from_order_preserving(word(0));
    let secs = from_order_preserving(word(8));
    let nanos = u32::from_be_bytes([key[16], key[17], key[18], key[19]]);
    let at = time(secs, nanos).ok_or_else(|| bad("time out of range"))?;
    let cid = Cid::try_from(&key[20..]).map_err(|e| bad(&format!("bad CID: {e}")))?;
    Ok((bucket, at, cid))
}

/// A UTC time from Unix seconds and nanoseconds.
pub fn time(secs: i64, nanos: u32) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, nanos).single()
}

/// The `objects` key of `(set, name)`: the `set/name` text (the order of object listings), NUL
/// (which no name contains), then the set, so two keys printing alike stay apart.
pub fn object_key(set: &SetName, name: &ObjectName) -> Vec<u8> {
    let mut key = format!("{set}/{name}").into_bytes();
    key.push(0);
    key.extend_from_slice(set.as_str().as_bytes());
    key
}

/// The set and name of an `objects` key.
pub fn parse_object_key(key: &[u8]) -> Result<(SetName, ObjectName)> {
    let bad = |why: String| corrupt(Table::Objects, key, why);
    let nul = key.iter().position(|&b| b == 0).ok_or_else(|| bad("no NUL".into()))?;
    let text = std::str::from_utf8(&key[..nul]).map_err(|e| bad(e.to_string()))?;
    let set = std::str::from_utf8(&key[nul + 1..]).map_err(|e| bad(e.to_string()))?;
    let name = text
        .strip_prefix(set)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| bad(format!("text {text:?} does not start with set {set:?}")))?;
    Ok((
        SetName::new(set).map_err(|e| bad(e.to_string()))?,
        ObjectName::new(name).map_err(|e| bad(e.to_string()))?,
    ))
}

/// The record of a staged object.
pub fn staged_record(s: &StagedObject) -> StagedRecord {
    StagedRecord {
        set: s.set.to_string(),
        name: s.name.to_string(),
        size: s.size,
        sha256: s.sha256.to_vec(),
        staged_secs: s.staged_at.timestamp(),
        staged_nanos: s.staged_at.timestamp_subsec_nanos(),
    }
}

/// A 32-byte digest from a record field.
pub fn digest(table: Table, key: &[u8], bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| corrupt(table, key, format!("digest of {} bytes", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keys_sort_by_time_including_before_1970() {
        let cid = [1u8; 4];
        let times = [-7200i64, -1, 0, 1, 3599, 3600, 1_800_000_000];
        let keys: Vec<_> = times.iter().map(|&s| expiry_key(time(s, 0).unwrap(), &cid)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn object_keys_keep_look_alike_pairs_apart_and_round_trip() {
        let a = object_key(&SetName::new("a/b").unwrap(), &ObjectName::new("c").unwrap());
        let b = object_key(&SetName::new("a").unwrap(), &ObjectName::new("b/c").unwrap());
        assert_ne!(a, b);
        let (set, name) = parse_object_key(&b).unwrap();
        assert_eq!((set.as_str(), name.as_str()), ("a", "b/c"));
    }
}
