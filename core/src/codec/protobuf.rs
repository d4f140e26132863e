//! ipfs-cluster's protobuf pin format, byte for byte, and pinvault's lossless storage record.
//!
//! # Go's format: [`encode_pin`] / [`decode_pin`]
//!
//! [`encode_pin`] writes exactly the bytes of ipfs-cluster's `api.Pin.ProtoMarshal` (message
//! `api.pb.Pin` of `core/proto/types.proto`), following its rules:
//!
//! * `Type` is the log2 of Go's `PinType` flag ([`PinType::wire_value`]).
//! * `Timestamp` and `ExpireAt` are whole Unix seconds (`uint64(t.Unix())`, so an instant before
//!   1970 wraps to a large number, as in Go); Go's zero time (our `None`) and the Unix epoch
//!   itself are omitted, and so is any instant in the first second after the epoch.
//! * `Allocations` are peer-id multihash bytes, `Origins` multiaddr bytes, `Reference` and
//!   `PinUpdate` CID bytes or nothing.
//! * `Options` is always present, even when empty (Go always sets the pointer).
//! * Metadata is written only as field 10 (`SortedMetadata`), sorted by key; the deprecated map
//!   field 6 is never written.
//! * `Mode` and `UserAllocations` are not on the wire.
//!
//! [`decode_pin`] has the semantics of Go's `ProtoUnmarshal` followed by `ProtoMarshal` (what
//! ipfs-cluster stores): metadata is the deprecated map field 6 overwritten by the field 10
//! entries, the mode is derived from `MaxDepth` (0 is direct, anything else recursive), user
//! allocations are empty, a zero `Timestamp`/`ExpireAt` is Go's zero time, a pin type Go has no
//! flag for is the bad type ([`PinType::from_wire_value`]), and a `Reference` or `PinUpdate`
//! that is not a CID is dropped, as Go's `CastCid` failure leaves them unset. An invalid `Cid`
//! is refused with [`Error::InvalidInput`]: ipfs-cluster would store such a record under an
//! undefined CID that its own listing skips (in a dsstate snapshot the key names the CID, see
//! [`decode_pin_for_key`]).
//!
//! # The storage record: [`encode_record`] / [`decode_record`]
//!
//! Every backend stores pins as records: Go's bytes, followed by the extension fields of
//! `core/proto/pinvault_record.proto` (tags 1001–1004: the mode, the user allocations, and the
//! exact timestamp / expiry when Go's whole seconds cannot carry them — a sub-second part, an
//! instant in the first second after the Unix epoch, or Go's zero instant
//! `0001-01-01T00:00:00Z`). Each extension is written only when Go's fields would not give the
//! value back, so the record of a pin that survives Go's round trip *is* Go's bytes, and
//! `decode_record(&encode_record(p)) == p` for every [`Pin`]. Proto3 readers skip unknown
//! fields, so ipfs-cluster (or any `api.pb.Pin` reader) can still read pinvault records and gets
//! exactly what [`decode_pin`] returns.
//!
//! # Streams: [`write_delimited`] / [`read_delimited`]
//!
//! Exports frame each pin as a uvarint length followed by Go's bytes, as Go's `protodelim` writes
//! them. A frame longer than [`MAX_FRAME_LEN`] is refused before anything is allocated.

use chrono::{DateTime, Utc};
use prost::Message;

use crate::multiaddr::Multiaddr;
use crate::pin::{cid_from_bytes, PeerId, Pin, PinMode, PinOptions, PinType};
use crate::{Error, Result};

/// The largest protobuf frame (one pin) [`read_delimited`] and imports accept: 16 MiB.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Hand-written prost messages whose tags match `core/proto/*.proto`.
mod wire {
    use std::collections::BTreeMap;

    /// `api.pb.Pin`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pin {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        #[prost(enumeration = "PinType", tag = "2")]
        pub pin_type: i32,
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub allocations: Vec<Vec<u8>>,
        #[prost(sint32, tag = "4")]
        pub max_depth: i32,
        #[prost(bytes = "vec", tag = "5")]
        pub reference: Vec<u8>,
        #[prost(message, optional, tag = "6")]
        pub options: Option<PinOptions>,
        #[prost(uint64, tag = "7")]
        pub timestamp: u64,
    }

    /// `api.pb.Pin.PinType`: the log2 of Go's `PinType` flag. Variant names are the .proto's.
    #[allow(clippy::enum_variant_names)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum PinType {
        BadType = 0,
        DataType = 1,
        MetaType = 2,
        ClusterDagType = 3,
        ShardType = 4,
    }

    /// `api.pb.PinOptions`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PinOptions {
        #[prost(sint32, tag = "1")]
        pub replication_factor_min: i32,
        #[prost(sint32, tag = "2")]
        pub replication_factor_max: i32,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(uint64, tag = "4")]
        pub shard_size: u64,
        /// Deprecated: read, never written.
        #[prost(btree_map = "string, string", tag = "6")]
        pub metadata: BTreeMap<String, String>,
        #[prost(bytes = "vec", tag = "7")]
        pub pin_update: Vec<u8>,
        #[prost(uint64, tag = "8")]
        pub expire_at: u64,
        #[prost(bytes = "vec", repeated, tag = "9")]
        pub origins: Vec<Vec<u8>>,
        #[prost(message, repeated, tag = "10")]
        pub sorted_metadata: Vec<Metadata>,
    }

    /// `api.pb.Metadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `pinvault.record.PinRecordExtensions`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RecordExtensions {
        #[prost(uint32, optional, tag = "1001")]
        pub mode: Option<u32>,
        #[prost(bytes = "vec", repeated, tag = "1002")]
        pub user_allocations: Vec<Vec<u8>>,
        #[prost(message, optional, tag = "1003")]
        pub exact_timestamp: Option<ExactTime>,
        #[prost(message, optional, tag = "1004")]
        pub exact_expire_at: Option<ExactTime>,
    }

    /// `pinvault.record.ExactTime`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExactTime {
        #[prost(sint64, tag = "1")]
        pub seconds: i64,
        #[prost(uint32, tag = "2")]
        pub nanos: u32,
    }
}

/// Exactly the bytes of ipfs-cluster's `api.Pin.ProtoMarshal` for `pin`.
pub fn encode_pin(pin: &Pin) -> Vec<u8> {
    to_wire(pin).encode_to_vec()
}

/// Decodes an `api.pb.Pin` as Go's `ProtoUnmarshal` does, but refuses what Go would silently
/// turn into an undefined value (see the module doc). Unknown fields (such as pinvault's record
/// extensions) are skipped.
pub fn decode_pin(bytes: &[u8]) -> Result<Pin> {
    let wire = wire::Pin::decode(bytes).map_err(|e| {
        Error::invalid("protobuf pin", format!("does not decode: {e}")).with_source(e)
    })?;
    from_wire(wire, None)
}

/// Decodes a record stored under `cid`'s key, as ipfs-cluster's `dsstate` reads it: the pin's
/// CID is the key's, whatever the record's `Cid` field holds.
pub fn decode_pin_for_key(bytes: &[u8], cid: cid::Cid) -> Result<Pin> {
    let wire = wire::Pin::decode(bytes).map_err(|e| {
        Error::invalid("protobuf pin", format!("does not decode: {e}")).with_source(e)
    })?;
    from_wire(wire, Some(cid))
}

/// The pin as ipfs-cluster holds it after storing `pin` (its `ProtoMarshal` then
/// `ProtoUnmarshal`): what its exports, and so pinvault's, write.
pub fn go_view(pin: &Pin) -> Result<Pin> {
    decode_pin(&encode_pin(pin)).map_err(|e| match e {
        Error::InvalidInput { what, reason, source } => {
            Error::Corrupt { location: format!("pin {} ({what})", pin.cid), reason, source }
        }
        other => other,
    })
}

/// The lossless storage record of `pin`: Go's bytes followed by pinvault's extension fields.
pub fn encode_record(pin: &Pin) -> Vec<u8> {
    let mut out = encode_pin(pin);
    let mode = (pin.options.mode != go_mode_for_depth(pin.max_depth))
        .then(|| go_mode_number(pin.options.mode));
    let extensions = wire::RecordExtensions {
        mode,
        user_allocations: pin.options.user_allocations.iter().map(PeerId::to_bytes).collect(),
        exact_timestamp: exact_time_if_go_loses_it(pin.timestamp),
        exact_expire_at: exact_time_if_go_loses_it(pin.options.expire_at),
    };
    out.extend_from_slice(&extensions.encode_to_vec());
    out
}

/// Decodes a record written by [`encode_record`] (or plain Go bytes, which decode as
/// [`decode_pin`] does). A backend reading its own storage reports a failure as
/// [`Error::Corrupt`] at the record's key.
pub fn decode_record(bytes: &[u8]) -> Result<Pin> {
    let mut pin = decode_pin(bytes)?;
    let ext = wire::RecordExtensions::decode(bytes).map_err(|e| {
        Error::invalid("pin record", format!("extension fields do not decode: {e}"))
    })?;
    if let Some(mode) = ext.mode {
        pin.options.mode = match mode {
            0 => PinMode::Recursive,
            1 => PinMode::Direct,
            other => return Err(Error::invalid("pin record", format!("unknown pin mode {other}"))),
        };
    }
    pin.options.user_allocations = ext
        .user_allocations
        .iter()
        .enumerate()
        .map(|(i, b)| {
            PeerId::from_bytes(b).map_err(|e| in_field(&format!("UserAllocations[{i}]"), e))
        })
        .collect::<Result<_>>()?;
    if let Some(t) = ext.exact_timestamp {
        pin.timestamp = Some(exact_time(&t).map_err(|e| in_field("ExactTimestamp", e))?);
    }
    if let Some(t) = ext.exact_expire_at {
        pin.options.expire_at = Some(exact_time(&t).map_err(|e| in_field("ExactExpireAt", e))?);
    }
    Ok(pin)
}

/// Appends one export frame to `out`: the uvarint length of Go's bytes, then the bytes.
pub fn write_delimited(out: &mut Vec<u8>, pin: &Pin) {
    let bytes = encode_pin(pin);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(&bytes);
}

/// Reads one frame written by [`write_delimited`] from the front of `input` and advances it.
/// `Ok(None)` at the end of the input; a truncated or oversized frame is
/// [`Error::InvalidInput`].
pub fn read_delimited(input: &mut &[u8]) -> Result<Option<Pin>> {
    if input.is_empty() {
        return Ok(None);
    }
    let len = prost::encoding::decode_varint(input).map_err(|e| {
        Error::invalid("protobuf frame", format!("bad length prefix: {e}")).with_source(e)
    })?;
    let len = check_frame_len(len)?;
    if input.len() < len {
        return Err(Error::invalid(
            "protobuf frame",
            format!("truncated: the prefix announces {len} bytes, {} remain", input.len()),
        ));
    }
    let (frame, rest) = input.split_at(len);
    *input = rest;
    decode_pin(frame).map(Some)
}

/// Checks a frame length read from a length prefix against [`MAX_FRAME_LEN`].
pub fn check_frame_len(len: u64) -> Result<usize> {
    match usize::try_from(len) {
        Ok(n) if n <= MAX_FRAME_LEN => Ok(n),
        _ => Err(Error::invalid(
            "protobuf frame",
            format!("length prefix {len} exceeds the {MAX_FRAME_LEN}-byte limit"),
        )),
    }
}

fn to_wire(pin: &Pin) -> wire::Pin {
    let o = &pin.options;
    wire::Pin {
        cid: pin.cid.to_bytes(),
        pin_type: pin.pin_type.wire_value(),
        allocations: pin.allocations.iter().map(PeerId::to_bytes).collect(),
        max_depth: pin.max_depth,
        reference: pin.reference.map(|c| c.to_bytes()).unwrap_or_default(),
        options: Some(wire::PinOptions {
            replication_factor_min: o.replication_factor_min,
            replication_factor_max: o.replication_factor_max,
            name: o.name.clone(),
            shard_size: o.shard_size,
            metadata: Default::default(),
            pin_update: o.pin_update.map(|c| c.to_bytes()).unwrap_or_default(),
            expire_at: go_unix_seconds(o.expire_at),
            origins: o.origins.iter().map(Multiaddr::to_vec).collect(),
            sorted_metadata: o
                .metadata
                .iter()
                .map(|(key, value)| wire::Metadata { key: key.clone(), value: value.clone() })
                .collect(),
        }),
        timestamp: go_unix_seconds(pin.timestamp),
    }
}

fn from_wire(wire: wire::Pin, key_cid: Option<cid::Cid>) -> Result<Pin> {
    let cid = match key_cid {
        Some(cid) => cid,
        None if wire.cid.is_empty() => {
            return Err(Error::invalid("protobuf pin", "field 1 (Cid) is missing"))
        }
        None => cid_from_bytes(&wire.cid).map_err(|e| in_field("Cid", e))?,
    };
    let pin_type = PinType::from_wire_value(wire.pin_type);
    let allocations = wire
        .allocations
        .iter()
        .enumerate()
        .map(|(i, b)| PeerId::from_bytes(b).map_err(|e| in_field(&format!("Allocations[{i}]"), e)))
        .collect::<Result<_>>()?;
    let reference = go_cast_cid(&wire.reference).map_err(|e| in_field("Reference", e))?;
    let timestamp = go_time(wire.timestamp).map_err(|e| in_field("Timestamp", e))?;
    let o = wire.options.unwrap_or_default();

    let mut metadata = o.metadata;
    metadata.extend(o.sorted_metadata.into_iter().map(|m| (m.key, m.value)));
    let origins = o
        .origins
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            Multiaddr::try_from(b).map_err(|e| {
                Error::invalid(
                    "protobuf pin",
                    format!("Options.Origins[{i}]: not a multiaddr: {e}"),
                )
            })
        })
        .collect::<Result<_>>()?;
    let options = PinOptions {
        replication_factor_min: o.replication_factor_min,
        replication_factor_max: o.replication_factor_max,
        name: o.name,
        mode: go_mode_for_depth(wire.max_depth),
        shard_size: o.shard_size,
        user_allocations: Vec::new(),
        expire_at: go_time(o.expire_at).map_err(|e| in_field("Options.ExpireAt", e))?,
        metadata,
        pin_update: go_cast_cid(&o.pin_update).map_err(|e| in_field("Options.PinUpdate", e))?,
        origins,
    };
    Ok(Pin { cid, pin_type, allocations, max_depth: wire.max_depth, reference, timestamp, options })
}

/// Rewrites a field's validation error so that it names the protobuf field.
fn in_field(field: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput { what, reason, source } => Error::InvalidInput {
            what: "protobuf pin".to_owned(),
            reason: format!("{field}: invalid {what}: {reason}"),
            source,
        },
        other => other,
    }
}

/// Go's `CastCid` where ipfs-cluster ignores its error: the CID, or nothing. A CID Go reads
/// but pinvault cannot hold (an identity digest over 64 bytes) is refused, never dropped.
fn go_cast_cid(bytes: &[u8]) -> Result<Option<cid::Cid>> {
    match cid_from_bytes(bytes) {
        Ok(cid) => Ok(Some(cid)),
        Err(e) if e.to_string().contains("identity CID") => Err(e),
        Err(_) => Ok(None),
    }
}

/// The mode Go's `ProtoUnmarshal` derives from a max depth (`PinDepth.ToPinMode`).
fn go_mode_for_depth(max_depth: i32) -> PinMode {
    if max_depth == 0 {
        PinMode::Direct
    } else {
        PinMode::Recursive
    }
}

/// Go's `PinMode` numbers.
fn go_mode_number(mode: PinMode) -> u32 {
    match mode {
        PinMode::Recursive => 0,
        PinMode::Direct => 1,
    }
}

/// What Go's `ProtoMarshal` writes for a time: 0 (omitted) for the zero time and the Unix
/// epoch, else `uint64(t.Unix())` (floored seconds, wrapping below 1970).
fn go_unix_seconds(t: Option<DateTime<Utc>>) -> u64 {
    match t {
        None => 0,
        Some(t) if t == DateTime::UNIX_EPOCH => 0,
        Some(t) if t.timestamp() == GO_ZERO_TIME_UNIX && t.timestamp_subsec_nanos() == 0 => 0,
        Some(t) => t.timestamp() as u64,
    }
}

/// What Go's `ProtoUnmarshal` reads from a time field: 0 is the zero time, anything else
/// `time.Unix(int64(v), 0)` (which is Go's zero time again for -62135596800).
fn go_time(v: u64) -> Result<Option<DateTime<Utc>>> {
    let secs = v as i64;
    if secs == 0 || secs == GO_ZERO_TIME_UNIX {
        return Ok(None);
    }
    DateTime::from_timestamp(secs, 0)
        .map(Some)
        .ok_or_else(|| Error::invalid("time", format!("{secs} Unix seconds is out of range")))
}

fn exact_time_if_go_loses_it(t: Option<DateTime<Utc>>) -> Option<wire::ExactTime> {
    let t = t?;
    let through_go = go_time(go_unix_seconds(Some(t))).ok().flatten();
    (through_go != Some(t))
        .then(|| wire::ExactTime { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() })
}

fn exact_time(t: &wire::ExactTime) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, t.nanos).ok_or_else(|| {
        Error::invalid(
            "time",
            format!("{}s + {}ns is not a representable instant", t.seconds, t.nanos),
        )
    })
}
