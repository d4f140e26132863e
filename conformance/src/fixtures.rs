//! Real test data: CIDs (v0 and v1) and peer IDs built from real multihashes, and pins with
//! every field set, all derived from a counter so a failing check can be replayed exactly.
//!
//! Times are whole seconds because ipfs-cluster's wire formats carry Unix seconds.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use cid::multihash::Multihash;
use pinvault_core::pin::PinMode;
use pinvault_core::{Cid, ObjectName, PeerId, Pin, PinOptions, PinType, SetName};
use sha2::{Digest, Sha256};

const SHA2_256: u64 = 0x12;
const IDENTITY: u64 = 0x00;
const DAG_PB: u64 = 0x70;
const RAW: u64 = 0x55;
const DAG_CBOR: u64 = 0x71;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A sha2-256 multihash of `("pinvault-conformance", domain, n)`.
fn multihash(domain: &str, n: u64) -> Multihash<64> {
    let digest = sha256(&[b"pinvault-conformance", domain.as_bytes(), &n.to_be_bytes()]);
    Multihash::wrap(SHA2_256, &digest).expect("a 32-byte digest fits a 64-byte multihash")
}

/// The `n`th test CID: CIDv0 when `n` is even, CIDv1 (dag-pb, raw or dag-cbor) when odd.
pub fn cid(n: u64) -> Cid {
    let mh = multihash("cid", n);
    if n % 2 == 0 {
        Cid::new_v0(mh).expect("sha2-256 multihash makes a CIDv0")
    } else {
        let codec = [DAG_PB, RAW, DAG_CBOR][(n / 2 % 3) as usize];
        Cid::new_v1(codec, mh)
    }
}

/// `count` distinct CIDs starting at `first`.
pub fn cids(first: u64, count: u64) -> Vec<Cid> {
    (first..first + count).map(cid).collect()
}

/// The `n`th test peer: an Ed25519-style peer (identity multihash of a protobuf public key with
/// 32 derived bytes) when `n` is even, a sha2-256 peer (as for RSA keys) when odd.
pub fn peer(n: u64) -> PeerId {
    let key = sha256(&[b"pinvault-conformance-peer", &n.to_be_bytes()]);
    let bytes = if n % 2 == 0 {
        // libp2p PublicKey protobuf: field 1 (KeyType) = 1 (Ed25519), field 2 (Data) = 32 bytes.
        let mut public_key = vec![0x08, 0x01, 0x12, 0x20];
        public_key.extend_from_slice(&key);
        Multihash::<64>::wrap(IDENTITY, &public_key).expect("36 bytes fit").to_bytes()
    } else {
        Multihash::<64>::wrap(SHA2_256, &key).expect("32 bytes fit").to_bytes()
    };
    PeerId::from_bytes(&bytes).expect("fixture peer ids are valid multihashes")
}

/// A whole-second instant: 2030-01-01T00:00:00Z plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_893_456_000 + seconds, 0).single().expect("fixture times are in range")
}

/// A pin of `cid(n)` with every field set (type, allocations, depth, reference, timestamp and
/// every option), varied by `n`.
pub fn full_pin(n: u64) -> Pin {
    let pin_type = PinType::ALL[(n % 4) as usize];
    let mode = if n % 3 == 0 { PinMode::Direct } else { PinMode::Recursive };
    let mut metadata = BTreeMap::new();
    metadata.insert("owner".to_owned(), format!("team-{}", n % 5));
    metadata.insert("source".to_owned(), format!("conformance pin {n} ✓"));
    Pin {
        cid: cid(n),
        pin_type,
        allocations: vec![peer(n % 7), peer(n % 7 + 1)],
        max_depth: mode.to_depth(),
        reference: Some(cid(n + 1_000_000)),
        timestamp: Some(at(n as i64)),
        options: PinOptions {
            replication_factor_min: 2,
            replication_factor_max: 3,
            name: format!("pin-{n}"),
            mode,
            shard_size: 1_048_576 * (1 + n % 4),
            user_allocations: vec![peer(n % 7 + 2)],
            expire_at: Some(at(86_400 + 600 * n as i64)),
            metadata,
            pin_update: Some(cid(n + 2_000_000)),
            origins: vec![
                format!("/ip4/10.0.{}.{}/tcp/4001", n / 256 % 256, n % 256)
                    .parse()
                    .expect("valid multiaddr"),
                format!("/ip6/fd00::{:x}/udp/4001/quic-v1", n % 65_536)
                    .parse()
                    .expect("valid multiaddr"),
            ],
        },
    }
}

/// A minimal pin: `Pin::new(cid(n))`, every option at its default.
pub fn plain_pin(n: u64) -> Pin {
    Pin::new(cid(n))
}

/// `full_pin(n)` with a different name, to tell two writes of one key apart.
pub fn renamed(mut pin: Pin, name: &str) -> Pin {
    pin.options.name = name.to_owned();
    pin
}

/// A set name.
pub fn set(name: &str) -> SetName {
    SetName::new(name).expect("fixture set names are valid")
}

/// An object name.
pub fn object(name: &str) -> ObjectName {
    ObjectName::new(name).expect("fixture object names are valid")
}

/// Deterministic object content: `len` bytes derived from `seed`.
pub fn content(seed: &str, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = sha256(&[seed.as_bytes()]);
    while out.len() < len {
        out.extend_from_slice(&block);
        block = sha256(&[&block]);
    }
    out.truncate(len);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_alternate_versions_and_are_distinct() {
        let all = cids(0, 200);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 200);
        assert_eq!(cid(0).version(), cid::Version::V0);
        assert_eq!(cid(1).version(), cid::Version::V1);
        for c in &all {
            assert_eq!(pinvault_core::pin::parse_cid(&c.to_string()).unwrap(), *c);
        }
    }

    #[test]
    fn peers_are_real_libp2p_ids() {
        let ed25519 = peer(0).to_string();
        assert!(ed25519.starts_with("12D3KooW"), "an Ed25519 identity peer id: {ed25519}");
        let sha = peer(1).to_string();
        assert!(sha.starts_with("Qm"), "a sha2-256 peer id: {sha}");
        for n in 0..10 {
            assert_eq!(peer(n).to_string().parse::<PeerId>().unwrap(), peer(n));
        }
    }

    #[test]
    fn full_pins_are_valid_and_set_every_field() {
        for n in 0..20 {
            let pin = full_pin(n);
            pin.validate().unwrap();
            assert!(pin.reference.is_some() && pin.timestamp.is_some());
            let o = &pin.options;
            assert!(o.expire_at.is_some() && o.pin_update.is_some() && !o.origins.is_empty());
            assert!(
                !o.user_allocations.is_empty()
                    && !o.metadata.is_empty()
                    && !pin.allocations.is_empty()
            );
        }
    }

    #[test]
    fn content_is_deterministic() {
        assert_eq!(content("a", 100), content("a", 100));
        assert_ne!(content("a", 100), content("b", 100));
        assert_eq!(content("a", 1000).len(), 1000);
    }
}

/// A small deterministic generator (splitmix64), so a failing randomized run (the kill test,
/// the linearizability recorder) can be replayed from the seed it prints.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The environment variable `name` as a number, `default` when unset or not a number.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
