//! The stored records of the shared KV layer (`pinvault_core::kv::layout`): the publication
//! record (`SetRecord`, the one write that makes a set visible), object, staged and pin records,
//! and the composite keys. Every embedded backend (rocksdb, sled, fs) reads these.
//!
//! (The object-store backend's `ManifestRecord` is not fuzzed here: `pinvault-object` pulls
//! `object_store` with aws-lc-sys, minutes of C on the fuzz build.)
//!
//! The input is read as each record type, as a stored `pins` value, as the value of a published
//! set read through `KvStore::publication`, as an `objects` entry listed by
//! `KvStore::objects_page`, and as each kind of composite key. Properties:
//! * nothing panics; a stored record that does not decode is `Error::Corrupt` (the layout doc:
//!   "a record that does not decode is reported as Error::Corrupt with its table and key");
//! * what decodes re-encodes to something that decodes equal (`decode_pin`/`encode_pin`,
//!   the prost records, `parse_object_key`/`object_key`, `parse_expiry_key`/`expiry_key`);
//! * a publication read from a record reports exactly that record's version, time, manifest
//!   and objects, under the set it was read for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault_core::codec::protobuf;
use pinvault_core::kv::layout::{
    self, cid_of_by_peer_key, decode_pin, encode_pin, object_key, parse_expiry_key,
    parse_object_key, ObjectRecord, PeerList, PinRecord, SetRecord, StagedRecord,
};
use pinvault_core::kv::{KvEngine, KvStore, KvWrite, Table};
use pinvault_core::state::expiry_bucket;
use pinvault_core::{Error, FaultInjector, SetName, Version};
use pinvault_fuzz::BTreeEngine;
use prost::Message;

fn assert_corrupt(e: &Error, what: &str) {
    assert!(
        matches!(e, Error::Corrupt { .. }),
        "{what}: not Corrupt: {e:?}"
    );
}

/// Decodes `data` as `M` through `layout::decode`; on success, re-encoding decodes equal.
fn record_round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(
    table: Table,
    data: &[u8],
) {
    match layout::decode::<M>(table, b"k", data) {
        Ok(record) => {
            let again: M = layout::decode(table, b"k", &record.encode_to_vec())
                .expect("a re-encoded record decodes");
            assert_eq!(again, record);
        }
        Err(e) => {
            assert_corrupt(&e, table.name());
            assert!(
                e.to_string().contains(table.name()),
                "error does not name its table: {e}"
            );
        }
    }
}

fn open_store(writes: Vec<KvWrite>) -> KvStore<BTreeEngine> {
    let engine = BTreeEngine::default();
    let store = KvStore::open(engine, FaultInjector::disabled()).expect("open an empty store");
    store.engine().write(writes).expect("seed the engine");
    store
}

fuzz_target!(|data: &[u8]| {
    record_round_trip::<SetRecord>(Table::Sets, data);
    record_round_trip::<ObjectRecord>(Table::Objects, data);
    record_round_trip::<StagedRecord>(Table::Staged, data);
    record_round_trip::<PeerList>(Table::Placements, data);

    // A stored pin: version + lossless record behind the format-2 tag, keyed by its CID.
    let key = data
        .split_first()
        .and_then(|(_, rest)| PinRecord::decode(rest).ok())
        .and_then(|r| protobuf::decode_record(&r.pin).ok())
        .map(|pin| pin.cid.to_bytes())
        .unwrap_or_else(|| data[..data.len().min(36)].to_vec());
    match decode_pin(&key, data) {
        Ok((version, pin)) => {
            assert_eq!(data[0], layout::PIN_RECORD_TAG);
            assert_eq!(
                pin.cid.to_bytes(),
                key,
                "decode_pin returned a pin of another key"
            );
            let again = decode_pin(&key, &encode_pin(version, &pin)).expect("re-encoded pin");
            assert_eq!(again, (version, pin), "encode_pin/decode_pin round trip");
        }
        Err(e) => assert_corrupt(&e, "decode_pin"),
    }

    // The publication record, read the way every KV backend reads a published set.
    let set = SetName::new("sales/date=2026-11-22").unwrap();
    let store = open_store(vec![KvWrite::Put {
        table: Table::Sets,
        key: set.as_str().as_bytes().to_vec(),
        value: data.to_vec(),
    }]);
    match store.publication(&set) {
        Ok(publication) => {
            let record =
                SetRecord::decode(data).expect("a publication came from a decodable record");
            assert_eq!(publication.set, set);
            assert_eq!(publication.version, Version::from_u64(record.version));
            assert_eq!(publication.published_at.timestamp(), record.published_secs);
            assert_eq!(
                publication.published_at.timestamp_subsec_nanos(),
                record.published_nanos
            );
            assert_eq!(publication.manifest.as_ref(), record.manifest.as_slice());
            assert_eq!(publication.objects.len(), record.objects.len());
            for (meta, object) in publication.objects.iter().zip(&record.objects) {
                let r = object
                    .record
                    .as_ref()
                    .expect("an object without a record was accepted");
                assert_eq!(meta.key.set, set);
                assert_eq!(meta.key.name.as_str(), object.name);
                assert_eq!(meta.size, r.size);
                assert_eq!(meta.sha256.as_slice(), r.sha256.as_slice());
                assert_eq!(meta.version, Version::from_u64(r.version));
            }
        }
        Err(e) => assert_corrupt(&e, "publication"),
    }

    // An `objects` entry: the first byte is the key length, the rest split into key and value.
    if let Some((&n, rest)) = data.split_first() {
        let (k, v) = rest.split_at((n as usize).min(rest.len()));
        let store = open_store(vec![KvWrite::Put {
            table: Table::Objects,
            key: k.to_vec(),
            value: v.to_vec(),
        }]);
        match store.objects_page("", None, 8) {
            Ok(page) => {
                assert!(page.len() <= 1);
                for (table_key, meta) in page {
                    assert_eq!(table_key, k);
                    assert_eq!(object_key(&meta.key.set, &meta.key.name), k);
                    let r =
                        ObjectRecord::decode(v).expect("a listed object has a decodable record");
                    assert_eq!(meta.size, r.size);
                    assert_eq!(meta.sha256.as_slice(), r.sha256.as_slice());
                }
            }
            Err(e) => assert_corrupt(&e, "objects_page"),
        }
    }

    // Composite keys.
    match parse_object_key(data) {
        Ok((set, name)) => assert_eq!(object_key(&set, &name), data, "object key round trip"),
        Err(e) => assert_corrupt(&e, "parse_object_key"),
    }
    match parse_expiry_key(data) {
        Ok((_bucket, at, cid)) => {
            let key = layout::expiry_key(at, &cid.to_bytes());
            let again = parse_expiry_key(&key).expect("a re-built expiry key parses");
            assert_eq!(again, (expiry_bucket(at), at, cid), "expiry key round trip");
        }
        Err(e) => assert_corrupt(&e, "parse_expiry_key"),
    }
    if let Err(e) = cid_of_by_peer_key(data) {
        assert_corrupt(&e, "cid_of_by_peer_key");
    }
});
