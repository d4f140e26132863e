//! The pin model: ipfs-cluster v1.1's `api.Pin`, field for field, with real CIDs, peer IDs and
//! multiaddrs instead of strings.
//!
//! The wire formats that must match ipfs-cluster byte for byte live in [`crate::codec`]; this
//! module only holds the values and checks them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use cid::Cid;
use multihash::Multihash;

use crate::multiaddr::Multiaddr;
use crate::{Error, Result};

/// The kind of a pin, as ipfs-cluster's `api.PinType`.
///
/// In Go it is a bit flag (`BadType = 1`, `DataType = 2`, `MetaType = 4`, ...); on the protobuf
/// wire it is the log2 of that flag (`Bad = 0`, `Data = 1`, `Meta = 2`, `ClusterDag = 3`,
/// `Shard = 4`). ipfs-cluster stores and exports whatever flag a pin carries, the bad type and
/// numbers it has no name for included, so pinvault keeps them too: [`PinType::Bad`] and
/// [`PinType::Other`] round-trip exactly as they do through ipfs-cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum PinType {
    /// A regular, non-sharded pin, pinned recursively (`"pin"`).
    #[default]
    Data,
    /// The original CID of a sharded DAG; its reference is the cluster DAG (`"meta-pin"`).
    Meta,
    /// The root of a cluster DAG pointing at all shards (`"clusterdag-pin"`).
    ClusterDag,
    /// The root of one shard (`"shard-pin"`).
    Shard,
    /// Go's `BadType` (`"bad-type"`, wire 0): what ipfs-cluster stores for a JSON pin without a
    /// `type`, or with a type name it does not know.
    Bad,
    /// A wire value from 5 to 63, which ipfs-cluster keeps as the flag `1 << n` and exports as
    /// `"bad-type"`.
    Other(u8),
}

impl PinType {
    /// The four pin types ipfs-cluster gives a meaning to, in wire order.
    pub const ALL: [PinType; 4] =
        [PinType::Data, PinType::Meta, PinType::ClusterDag, PinType::Shard];

    /// The protobuf enum value (log2 of the Go flag).
    pub fn wire_value(self) -> i32 {
        match self {
            PinType::Bad => 0,
            PinType::Data => 1,
            PinType::Meta => 2,
            PinType::ClusterDag => 3,
            PinType::Shard => 4,
            PinType::Other(n) => i32::from(n),
        }
    }

    /// The pin type ipfs-cluster holds after reading the protobuf enum value `v`
    /// (`ProtoUnmarshal` sets the flag `1 << v`, which is 0, Go's undefined type, for a
    /// negative `v` or one above 63; `ProtoMarshal` writes 0 for it).
    pub fn from_wire_value(v: i32) -> Self {
        match v {
            1 => PinType::Data,
            2 => PinType::Meta,
            3 => PinType::ClusterDag,
            4 => PinType::Shard,
            // The range makes the cast exact.
            5..=63 => PinType::Other(v as u8),
            _ => PinType::Bad,
        }
    }

    /// The name ipfs-cluster uses in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PinType::Data => "pin",
            PinType::Meta => "meta-pin",
            PinType::ClusterDag => "clusterdag-pin",
            PinType::Shard => "shard-pin",
            PinType::Bad | PinType::Other(_) => "bad-type",
        }
    }

    /// The type ipfs-cluster stores for a JSON `type` string (`PinTypeFromString`, then
    /// `ProtoMarshal`): unknown names are the bad type, and `"all"` or `""` (Go's `AllType`,
    /// all four flags) is written as wire value 4, a shard pin.
    pub fn from_go_json(s: &str) -> Self {
        match s {
            "pin" => PinType::Data,
            "meta-pin" => PinType::Meta,
            "clusterdag-pin" => PinType::ClusterDag,
            "shard-pin" | "all" | "" => PinType::Shard,
            _ => PinType::Bad,
        }
    }
}

impl fmt::Display for PinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PinType {
    type Err = Error;
    /// One of the four names (or `"bad-type"`), exactly; for ipfs-cluster's lenient JSON
    /// reading see [`PinType::from_go_json`].
    fn from_str(s: &str) -> Result<Self> {
        PinType::ALL
            .into_iter()
            .chain([PinType::Bad])
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::invalid("pin type", format!("unknown pin type {s:?}")))
    }
}

/// How IPFS pins the content, as ipfs-cluster's `api.PinMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PinMode {
    /// The whole DAG (`"recursive"`, max depth -1).
    #[default]
    Recursive,
    /// Only the root block (`"direct"`, max depth 0).
    Direct,
}

impl PinMode {
    /// The name ipfs-cluster uses in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Recursive => "recursive",
            PinMode::Direct => "direct",
        }
    }

    /// The max depth ipfs-cluster derives from a mode.
    pub fn to_depth(self) -> i32 {
        match self {
            PinMode::Recursive => -1,
            PinMode::Direct => 0,
        }
    }
}

impl fmt::Display for PinMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PinMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "recursive" | "" => Ok(PinMode::Recursive),
            "direct" => Ok(PinMode::Direct),
            other => Err(Error::invalid("pin mode", format!("unknown pin mode {other:?}"))),
        }
    }
}

/// A libp2p peer ID: a multihash (identity of a small public key, or sha2-256 of a large one).
///
/// Text form is base58btc, as `peer.ID.String()` in Go; bytes are the multihash, as
/// `peer.ID.Marshal()`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(Multihash<64>);

impl PeerId {
    /// Parses the binary form (a multihash).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mh = Multihash::<64>::from_bytes(bytes).map_err(|e| {
            Error::invalid("peer id", format!("not a multihash: {e}")).with_source(e)
        })?;
        if mh.code() != 0x00 && mh.code() != 0x12 {
            return Err(Error::invalid(
                "peer id",
                format!("multihash code {:#x} is neither identity nor sha2-256", mh.code()),
            ));
        }
        // A sha2-256 peer id hashes a public key: 32 bytes. A shorter digest would export as
        // base58 text that does not start with `Qm`, which no peer-id parser (Go's
        // `peer.Decode` included) reads back (found by fuzz/protobuf_decode).
        if mh.code() == 0x12 && mh.digest().len() != 32 {
            return Err(Error::invalid(
                "peer id",
                format!("a sha2-256 peer id has a 32-byte digest, not {}", mh.digest().len()),
            ));
        }
        Ok(PeerId(mh))
    }

    /// The binary form (a multihash).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// The underlying multihash.
    pub fn multihash(&self) -> &Multihash<64> {
        &self.0
    }
}

impl FromStr for PeerId {
    type Err = Error;
    /// Accepts base58btc (`12D3Koo...`, `Qm...`) and the CIDv1 `libp2p-key` form, as Go's
    /// `peer.Decode`.
    fn from_str(s: &str) -> Result<Self> {
        if s.starts_with("Qm") || s.starts_with('1') {
            let bytes = bs58::decode(s).into_vec().map_err(|e| {
                Error::invalid("peer id", format!("{s:?} is not base58: {e}")).with_source(e)
            })?;
            return PeerId::from_bytes(&bytes);
        }
        let cid = Cid::try_from(s).map_err(|e| {
            Error::invalid("peer id", format!("{s:?} is neither base58 nor a CID: {e}"))
        })?;
        if cid.codec() != 0x72 {
            return Err(Error::invalid("peer id", format!("CID {s} is not a libp2p-key")));
        }
        PeerId::from_bytes(&cid.hash().to_bytes())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0.to_bytes()).into_string())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// User options of a pin, as ipfs-cluster's `api.PinOptions` (embedded in `api.Pin`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PinOptions {
    /// Minimum replication factor; -1 means "everywhere".
    pub replication_factor_min: i32,
    /// Maximum replication factor; -1 means "everywhere".
    pub replication_factor_max: i32,
    /// Human-readable name.
    pub name: String,
    /// Recursive or direct. Not carried by protobuf (Go derives it from the max depth).
    pub mode: PinMode,
    /// Shard size for sharded DAGs, in bytes.
    pub shard_size: u64,
    /// Peers the user asked for. Not carried by protobuf (field 5 is reserved).
    pub user_allocations: Vec<PeerId>,
    /// When the pin expires; `None` is Go's zero time.
    pub expire_at: Option<DateTime<Utc>>,
    /// User metadata. Sorted by key, as the protobuf field 10 requires.
    pub metadata: BTreeMap<String, String>,
    /// The CID this pin updates, if it was created by a pin update.
    pub pin_update: Option<Cid>,
    /// Multiaddresses of peers that hold the content.
    pub origins: Vec<Multiaddr>,
}

/// A pin: one CID of the cluster pinset and everything the cluster knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The pinned content.
    pub cid: Cid,
    /// What kind of pin this is.
    pub pin_type: PinType,
    /// Peers the pin is allocated to (empty = everywhere).
    pub allocations: Vec<PeerId>,
    /// Pin depth: -1 recursive, 0 direct, n for n levels.
    pub max_depth: i32,
    /// Related CID (cluster DAG, meta pin, previous shard), if any.
    pub reference: Option<Cid>,
    /// When the pin was submitted; `None` is Go's zero time.
    pub timestamp: Option<DateTime<Utc>>,
    /// The user's options.
    pub options: PinOptions,
}

impl Pin {
    /// A recursive data pin of `cid` with default options, as Go's `api.PinCid` (without the
    /// timestamp, which the caller sets when it wants one).
    pub fn new(cid: Cid) -> Self {
        Pin {
            cid,
            pin_type: PinType::Data,
            allocations: Vec::new(),
            max_depth: -1,
            reference: None,
            timestamp: None,
            options: PinOptions::default(),
        }
    }

    /// Checks that ipfs-cluster can hold this pin: store it, read it back, and export it. Every
    /// value ipfs-cluster v1.1.6 stores is accepted (a minimum replication above the maximum,
    /// depths below -1, empty metadata keys, the bad pin type), except times it cannot export:
    /// `state export` fails on a year outside 0–9999, so such a pin would make the whole pinset
    /// unexportable. Backends call this before writing.
    pub fn validate(&self) -> Result<()> {
        for (field, t) in [("timestamp", self.timestamp), ("expire_at", self.options.expire_at)] {
            if let Some(t) = t {
                if !(0..=9999).contains(&t.year()) {
                    return Err(Error::invalid(
                        format!("pin {}", self.cid),
                        format!(
                            "{field} {t} is outside the years 0-9999 that ipfs-cluster's JSON \
                             export can write"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Parses a CID from text (CIDv0 base58 `Qm...` or multibase CIDv1), as a typed error.
pub fn parse_cid(s: &str) -> Result<Cid> {
    Cid::try_from(s.trim()).map_err(|e| Error::invalid("cid", format!("{s:?}: {e}")).with_source(e))
}

/// Parses a CID from its binary form, rejecting trailing bytes.
pub fn cid_from_bytes(bytes: &[u8]) -> Result<Cid> {
    let cid = Cid::read_bytes(bytes).map_err(|e| match long_identity_digest(bytes) {
        Some(len) => Error::invalid(
            "cid",
            format!(
                "an identity CID with a {len}-byte digest: pinvault's CIDs hold digests of up to \
                 64 bytes"
            ),
        ),
        None => Error::invalid("cid", format!("binary CID does not decode: {e}")),
    })?;
    if cid.encoded_len() != bytes.len() {
        return Err(Error::invalid("cid", "binary CID has trailing bytes"));
    }
    Ok(cid)
}

/// The digest length of a CIDv1 whose multihash is an identity hash longer than 64 bytes.
fn long_identity_digest(bytes: &[u8]) -> Option<u64> {
    let mut rest = bytes;
    let mut next = || prost::encoding::decode_varint(&mut rest).ok();
    let (version, _codec, code, len) = (next()?, next()?, next()?, next()?);
    (version == 1 && code == 0 && len > 64).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID_V0: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    const CID_V1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
    const PEER_ED25519: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    const PEER_RSA: &str = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";

    #[test]
    fn cids_parse_in_both_versions() {
        let v0 = parse_cid(CID_V0).unwrap();
        assert_eq!(v0.version(), cid::Version::V0);
        assert_eq!(v0.to_string(), CID_V0);
        let v1 = parse_cid(CID_V1).unwrap();
        assert_eq!(v1.version(), cid::Version::V1);
        assert_eq!(cid_from_bytes(&v1.to_bytes()).unwrap(), v1);
    }

    #[test]
    fn bad_cids_are_typed_errors() {
        for bad in ["", "Qm", "not-a-cid", "bafyINVALID"] {
            assert!(matches!(parse_cid(bad), Err(Error::InvalidInput { .. })), "{bad}");
        }
        let mut bytes = parse_cid(CID_V1).unwrap().to_bytes();
        bytes.push(0);
        assert!(matches!(cid_from_bytes(&bytes), Err(Error::InvalidInput { .. })));
        assert!(matches!(cid_from_bytes(&[0x01]), Err(Error::InvalidInput { .. })));
    }

    #[test]
    fn peer_ids_round_trip_text_and_bytes() {
        for s in [PEER_ED25519, PEER_RSA] {
            let p: PeerId = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(PeerId::from_bytes(&p.to_bytes()).unwrap(), p);
        }
        assert!("12D3KooWbad0".parse::<PeerId>().is_err());
        assert!("hello".parse::<PeerId>().is_err());
        // fuzz/regressions/protobuf_decode/peer_sha256_short_digest.bin: a 1-byte sha2-256.
        assert!(PeerId::from_bytes(&[0x12, 0x01, 0xaa]).is_err());
        assert!(CID_V1.parse::<PeerId>().is_err(), "a dag-pb CID is not a peer id");
    }

    #[test]
    fn pin_type_names_and_wire_values() {
        for t in PinType::ALL.into_iter().chain([PinType::Bad]) {
            assert_eq!(t.as_str().parse::<PinType>().unwrap(), t);
            assert_eq!(PinType::from_wire_value(t.wire_value()), t);
        }
        assert_eq!(PinType::from_wire_value(7), PinType::Other(7));
        assert_eq!(PinType::from_wire_value(7).wire_value(), 7);
        assert_eq!(PinType::from_wire_value(64), PinType::Bad);
        assert_eq!(PinType::from_wire_value(-1), PinType::Bad);
        assert_eq!(PinType::from_go_json("all"), PinType::Shard);
        assert_eq!(PinType::from_go_json("Pin"), PinType::Bad);
        assert!("all".parse::<PinType>().is_err());
    }

    #[test]
    fn validate_accepts_what_ipfs_cluster_stores_and_refuses_unexportable_times() {
        let mut pin = Pin::new(parse_cid(CID_V1).unwrap());
        pin.options.replication_factor_min = 3;
        pin.options.replication_factor_max = 2;
        pin.max_depth = -2;
        pin.options.metadata.insert(String::new(), "x".into());
        pin.pin_type = PinType::Bad;
        pin.validate().unwrap();
        pin.timestamp = DateTime::from_timestamp(253_402_300_800, 0); // 10000-01-01
        assert!(pin.validate().is_err());
        pin.timestamp = DateTime::from_timestamp(-62_167_219_201, 0); // -0001-12-31T23:59:59
        assert!(pin.validate().is_err());
        pin.timestamp = DateTime::from_timestamp(-62_167_219_200, 0); // 0000-01-01
        pin.validate().unwrap();
    }
}
