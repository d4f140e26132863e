//! Realistic inputs and the stores under test, shared by every bench so that the framework and
//! the raw engine always see the same pins, objects and options.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use cid::Cid;
use multihash::Multihash;
use pinvault_core::codec::ndjson::encode_pin_json;
use pinvault_core::kv::layout;
use pinvault_core::{FaultInjector, ObjectName, PeerId, Pin, PinOptions, PinType, SetName};
use pinvault_rocksdb::{DirOptions, RocksBackend};
use pinvault_sled::SledBackend;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Multicodec of dag-pb, the codec of most IPFS CIDv1 (`bafybei...`).
const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;
/// Peers the allocations are drawn from.
const PEERS: u64 = 16;

/// Pins in the store of the `get` bench.
pub const GET_PINS: usize = 10_000;
/// Pins of the `list` and `import` benches.
pub const BULK_PINS: usize = 100_000;
/// Pins per committed batch in `import` (the default `ImportOptions::batch_size`).
pub const BATCH: usize = 1_000;
/// Objects per publication in `finalize`.
pub const OBJECTS: usize = 10;
/// Bytes per object in `finalize`.
pub const OBJECT_BYTES: usize = 64 * 1024;

/// The multi-thread tokio runtime that drives the framework (one worker per core).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio multi-thread runtime for the benches")
}

/// A fresh scratch directory (on the same disk as `/tmp`), removed when dropped.
pub fn scratch(what: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pinvault-bench-{what}-"))
        .tempdir()
        .expect("creating a scratch directory for a bench store")
}

fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    Multihash::wrap(SHA2_256, &Sha256::digest(data)).expect("a 32-byte digest fits a multihash")
}

/// Peer `n`: a libp2p peer ID that is the sha2-256 multihash of a (fake) RSA public key, as
/// `Qm...` peer IDs are.
pub fn peer(n: u64) -> PeerId {
    let mh = sha256_multihash(format!("rsa-public-key-of-peer-{n}").as_bytes());
    PeerId::from_bytes(&mh.to_bytes()).expect("a sha2-256 multihash is a valid peer ID")
}

/// The CID of pin `n` of namespace `ns`: CIDv1, dag-pb, sha2-256 (36 bytes).
pub fn cid(ns: &str, n: u64) -> Cid {
    Cid::new_v1(DAG_PB, sha256_multihash(format!("{ns}/{n}").as_bytes()))
}

fn time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("a bench timestamp is in chrono's range")
}

/// Pin `n` of namespace `ns`: a recursive data pin with 3 allocations, replication 2..3, a
/// name, a timestamp, an `expire_at` (spread over hours, so the expiry rows spread over
/// buckets) and 2 metadata entries.
pub fn pin(ns: &str, n: u64) -> Pin {
    let mut metadata = BTreeMap::new();
    metadata.insert("owner".to_owned(), "team-ingest".to_owned());
    metadata.insert("source".to_owned(), format!("s3://lake/raw/{n:08}"));
    Pin {
        cid: cid(ns, n),
        pin_type: PinType::Data,
        allocations: (0..3).map(|k| peer((n + k * 5) % PEERS)).collect(),
        max_depth: -1,
        reference: None,
        timestamp: Some(time(1_767_225_600 + n as i64)),
        options: PinOptions {
            replication_factor_min: 2,
            replication_factor_max: 3,
            name: format!("dataset/date=2026-01-01/part-{n:08}.parquet"),
            expire_at: Some(time(1_798_761_600 + (n as i64) * 37)),
            metadata,
            ..PinOptions::default()
        },
    }
}

/// Pins `0..count` of namespace `ns`.
pub fn pins(ns: &str, count: usize) -> Vec<Pin> {
    (0..count as u64).map(|n| pin(ns, n)).collect()
}

/// `pins` as ipfs-cluster's NDJSON export, one pin per line.
pub fn ndjson(pins: &[Pin]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pins.len() * 700);
    for pin in pins {
        out.extend_from_slice(encode_pin_json(pin).as_bytes());
        out.push(b'\n');
    }
    out
}

/// The `OBJECTS` objects of one publication: names and `OBJECT_BYTES` of incompressible bytes
/// each (xorshift noise, so compression cannot shrink what the engines write).
pub fn objects() -> Vec<(ObjectName, Bytes)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..OBJECTS)
        .map(|i| {
            let mut bytes = Vec::with_capacity(OBJECT_BYTES);
            while bytes.len() < OBJECT_BYTES {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.extend_from_slice(&state.to_le_bytes());
            }
            let name = ObjectName::new(format!("part-{i:05}.parquet"))
                .expect("bench object names are valid");
            (name, Bytes::from(bytes))
        })
        .collect()
}

/// Set `n` of a publication bench.
pub fn set_name(n: u64) -> SetName {
    SetName::new(format!("sales/date=2026-01-01/run-{n:08}")).expect("bench set names are valid")
}

/// The manifest of a publication: a small JSON listing of its objects.
pub fn manifest(objects: &[(ObjectName, Bytes)]) -> Bytes {
    let names: Vec<String> = objects
        .iter()
        .map(|(name, b)| format!("{{\"name\":\"{name}\",\"size\":{}}}", b.len()))
        .collect();
    Bytes::from(format!("{{\"format\":\"parquet\",\"objects\":[{}]}}", names.join(",")))
}

/// Opens the RocksDB backend over `path` with `options` (the default is synced commits).
pub fn open_rocks(rt: &Runtime, path: &Path, options: DirOptions) -> RocksBackend {
    rt.block_on(pinvault_rocksdb::open(path, options, FaultInjector::disabled()))
        .expect("opening the pinvault RocksDB backend")
}

/// Opens the sled backend over `path` with the default options (flush after every write).
pub fn open_sled(rt: &Runtime, path: &Path) -> SledBackend {
    rt.block_on(pinvault_sled::open(path, DirOptions::default(), FaultInjector::disabled()))
        .expect("opening the pinvault sled backend")
}

/// One line describing the sizes of the rows one pin writes, for the README.
pub fn describe_sizes() -> String {
    let p = pin("sizes", 0);
    let key = p.cid.to_bytes();
    let record = layout::encode_pin(1, &p);
    let by_peer = layout::by_peer_key(&p.allocations[0], &key);
    let expiry = layout::expiry_key(p.options.expire_at.expect("bench pins expire"), &key);
    let json = encode_pin_json(&p);
    format!(
        "one pin: CID key {} B, pin record {} B, 3 by_peer keys of {} B, 1 expiry key of {} B \
         (view values empty), meta seq key {} B + 8 B value; NDJSON line {} B",
        key.len(),
        record.len(),
        by_peer.len(),
        expiry.len(),
        layout::seq_slot(0).len(),
        json.len() + 1
    )
}

/// One line describing the sizes of the rows one publication of [`objects`] writes.
pub fn describe_publication_sizes() -> String {
    use prost::Message;
    let objects = objects();
    let manifest = manifest(&objects);
    let set = set_name(1);
    let (name, bytes) = &objects[0];
    let staged = pinvault_core::StagedObject {
        set: set.clone(),
        name: name.clone(),
        stage_id: format!("rocksdb-{:016x}-{:08x}", 0u64, 0u32),
        size: bytes.len() as u64,
        sha256: pinvault_core::publish::sha256(bytes),
        staged_at: Utc::now(),
    };
    let object = layout::ObjectRecord {
        size: staged.size,
        sha256: staged.sha256.to_vec(),
        version: 1,
        stage_id: staged.stage_id.clone(),
    };
    let set_record = layout::SetRecord {
        version: 1,
        published_secs: 1,
        published_nanos: 1,
        manifest: manifest.to_vec(),
        objects: objects
            .iter()
            .map(|(n, _)| layout::SetObject { name: n.to_string(), record: Some(object.clone()) })
            .collect(),
    };
    format!(
        "one publication: {OBJECTS} blobs of {OBJECT_BYTES} B (key: stage id of {} B), {OBJECTS} \
         staged records of ~{} B, {OBJECTS} object records of ~{} B (key {} B), one set record \
         of ~{} B (manifest {} B)",
        staged.stage_id.len(),
        layout::staged_record(&staged).encoded_len(),
        object.encoded_len(),
        layout::object_key(&set, name).len(),
        set_record.encoded_len(),
        manifest.len()
    )
}
