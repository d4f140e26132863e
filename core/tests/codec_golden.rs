//! Golden tests of the ipfs-cluster wire formats: the fixtures in `testdata/golden/` were made
//! independently of this crate (protobuf by Google's Python runtime, NDJSON by hand from Go's
//! `encoding/json` rules; see the README there), and pinvault must produce and read them
//! exactly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use pinvault_core::codec::ndjson::{decode_pin_json, encode_pin_json};
use pinvault_core::codec::protobuf::{
    decode_pin, decode_record, encode_pin, encode_record, read_delimited, write_delimited,
    MAX_FRAME_LEN,
};
use pinvault_core::pin::parse_cid;
use pinvault_core::{Cid, Error, PeerId, Pin, PinMode, PinOptions, PinType};

const CID_V0: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
const CID_V1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
const CID_EMPTY_DIR: &str = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";
const CID_RAW: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
const CID_HELLO: &str = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
const PEER_ED25519: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
const PEER_RSA: &str = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";

fn golden(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", "golden", name].iter().collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden_line(name: &str) -> String {
    let text = String::from_utf8(golden(name)).unwrap();
    let line = text.strip_suffix('\n').expect("Go's json.Encoder ends each value with a newline");
    assert!(!line.contains('\n'), "{name} holds one line");
    line.to_owned()
}

fn cid(s: &str) -> Cid {
    parse_cid(s).unwrap()
}

fn peer(s: &str) -> PeerId {
    s.parse().unwrap()
}

fn at(secs: i64) -> Option<DateTime<Utc>> {
    Some(Utc.timestamp_opt(secs, 0).unwrap())
}

fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn minimal_v0() -> Pin {
    Pin::new(cid(CID_V0))
}

fn full_v1() -> Pin {
    Pin {
        cid: cid(CID_V1),
        pin_type: PinType::Shard,
        allocations: vec![peer(PEER_ED25519), peer(PEER_RSA)],
        max_depth: 1,
        reference: Some(cid(CID_V0)),
        timestamp: at(1_714_979_289),
        options: PinOptions {
            replication_factor_min: -1,
            replication_factor_max: -1,
            name: "shard <1> & more".into(),
            mode: PinMode::Recursive,
            shard_size: 104_857_600,
            user_allocations: vec![],
            expire_at: at(1_893_553_445),
            metadata: metadata(&[("zeta", "last"), ("alpha", "a<b"), ("mid", "m")]),
            pin_update: Some(cid(CID_EMPTY_DIR)),
            origins: vec![
                format!("/ip4/1.2.3.4/tcp/4001/p2p/{PEER_ED25519}").parse().unwrap(),
                format!("/ip6/::1/udp/4001/quic-v1/p2p/{PEER_RSA}").parse().unwrap(),
            ],
        },
    }
}

fn meta_pin() -> Pin {
    let mut pin = Pin::new(cid(CID_HELLO));
    pin.pin_type = PinType::Meta;
    pin.reference = Some(cid(CID_EMPTY_DIR));
    pin.timestamp = at(1_700_000_000);
    pin.options.replication_factor_min = 2;
    pin.options.replication_factor_max = 3;
    pin.options.name = "big file".into();
    pin.options.shard_size = 1_048_576;
    pin
}

fn clusterdag_pin() -> Pin {
    let mut pin = Pin::new(cid(CID_EMPTY_DIR));
    pin.pin_type = PinType::ClusterDag;
    pin.max_depth = 0;
    pin.options.mode = PinMode::Direct;
    pin.reference = Some(cid(CID_HELLO));
    pin.timestamp = at(1_700_000_001);
    pin.options.replication_factor_min = -1;
    pin.options.replication_factor_max = -1;
    pin.options.name = "big file-clusterDAG".into();
    pin
}

fn shard_pin() -> Pin {
    let mut pin = Pin::new(cid(CID_RAW));
    pin.pin_type = PinType::Shard;
    pin.max_depth = 1;
    pin.allocations = vec![peer(PEER_RSA)];
    pin.reference = Some(cid(CID_V0));
    pin.timestamp = at(1_700_000_002);
    pin.options.replication_factor_min = 1;
    pin.options.replication_factor_max = 1;
    pin.options.name = "big file-shard-0".into();
    pin
}

fn pre_epoch() -> Pin {
    let mut pin = Pin::new(cid(CID_V0));
    pin.timestamp = at(-1);
    pin.options.expire_at = at(-86_400);
    pin
}

fn deprecated_field6_decoded() -> Pin {
    let mut pin = Pin::new(cid(CID_V0));
    pin.options.metadata = metadata(&[("legacy", "yes"), ("shared", "from-10"), ("zz", "z")]);
    pin
}

/// The fixtures Go writes and reads back unchanged: (name, pin).
fn go_fixtures() -> Vec<(&'static str, Pin)> {
    vec![
        ("minimal_v0", minimal_v0()),
        ("full_v1", full_v1()),
        ("meta_pin", meta_pin()),
        ("clusterdag_pin", clusterdag_pin()),
        ("shard_pin", shard_pin()),
        ("pre_epoch", pre_epoch()),
    ]
}

#[test]
fn protobuf_encode_matches_golden_bytes() {
    for (name, pin) in go_fixtures() {
        assert_eq!(encode_pin(&pin), golden(&format!("{name}.bin")), "{name}");
    }
}

#[test]
fn protobuf_decode_of_golden_bytes_gives_the_pin() {
    for (name, pin) in go_fixtures() {
        assert_eq!(decode_pin(&golden(&format!("{name}.bin"))).unwrap(), pin, "{name}");
    }
}

#[test]
fn record_of_a_go_representable_pin_is_exactly_gos_bytes() {
    for (name, pin) in go_fixtures() {
        let bytes = golden(&format!("{name}.bin"));
        assert_eq!(encode_record(&pin), bytes, "{name}");
        assert_eq!(decode_record(&bytes).unwrap(), pin, "{name}");
    }
}

#[test]
fn deprecated_metadata_map_is_merged_and_field_10_wins() {
    let bytes = golden("deprecated_metadata_field6.bin");
    let pin = decode_pin(&bytes).unwrap();
    assert_eq!(pin, deprecated_field6_decoded());
    // pinvault never writes field 6: re-encoding gives field 10 only, which reads back the same.
    let reencoded = encode_pin(&pin);
    assert_ne!(reencoded, bytes);
    assert_eq!(decode_pin(&reencoded).unwrap(), pin);
}

#[test]
fn record_extensions_match_golden_and_are_invisible_to_go() {
    let mut pin = Pin::new(cid(CID_V1));
    pin.options.mode = PinMode::Direct; // differs from what max_depth -1 gives in Go
    pin.options.user_allocations = vec![peer(PEER_ED25519)];
    pin.timestamp = Some(Utc.timestamp_opt(0, 500_000_000).unwrap());
    pin.options.expire_at = Some(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());

    let bytes = golden("record_extensions.bin");
    assert_eq!(encode_record(&pin), bytes);
    assert_eq!(decode_record(&bytes).unwrap(), pin);
    // What ipfs-cluster reads from the same record: the extensions are skipped.
    assert_eq!(decode_pin(&bytes).unwrap(), Pin::new(cid(CID_V1)));
    assert!(bytes.starts_with(&encode_pin(&pin)));
}

#[test]
fn record_keeps_epoch_and_pre_1970_instants_exactly() {
    let cases = [
        Utc.timestamp_opt(0, 0).unwrap(),
        Utc.timestamp_opt(-1, 999_999_999).unwrap(),
        Utc.timestamp_opt(-62_135_596_800, 0).unwrap(),
        Utc.timestamp_opt(-62_135_596_800, 1).unwrap(),
        Utc.timestamp_opt(-99_999_999_999, 0).unwrap(),
    ];
    for t in cases {
        let mut pin = Pin::new(cid(CID_V0));
        pin.timestamp = Some(t);
        pin.options.expire_at = Some(t);
        assert_eq!(decode_record(&encode_record(&pin)).unwrap(), pin, "{t:?}");
    }
    // Go's zero instant on the wire (which Go itself never writes) reads as Go's zero time.
    let go_zero_secs = (-62_135_596_800i64) as u64;
    let mut bytes = encode_pin(&Pin::new(cid(CID_V0)));
    bytes.push(7 << 3);
    prost::encoding::encode_varint(go_zero_secs, &mut bytes);
    assert_eq!(decode_pin(&bytes).unwrap().timestamp, None);
    // A leap second, as chrono represents it (nanos >= 1e9 on second :59).
    let leap = DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
    let mut pin = Pin::new(cid(CID_V0));
    pin.timestamp = Some(leap);
    assert_eq!(decode_record(&encode_record(&pin)).unwrap(), pin);
}

#[test]
fn export_stream_frames_match_golden() {
    let pins = [minimal_v0(), full_v1(), meta_pin()];
    let mut out = Vec::new();
    for pin in &pins {
        write_delimited(&mut out, pin);
    }
    let stream = golden("export_stream.bin");
    assert_eq!(out, stream);
    let mut input = stream.as_slice();
    for pin in &pins {
        assert_eq!(read_delimited(&mut input).unwrap().as_ref(), Some(pin));
    }
    assert!(read_delimited(&mut input).unwrap().is_none());
}

#[test]
fn ndjson_encode_matches_golden_lines() {
    for (name, pin) in go_fixtures() {
        assert_eq!(encode_pin_json(&pin), golden_line(&format!("{name}.ndjson")), "{name}");
    }
    assert_eq!(
        encode_pin_json(&deprecated_field6_decoded()),
        golden_line("deprecated_metadata_field6.ndjson")
    );
}

#[test]
fn ndjson_decode_of_golden_lines_gives_the_pin() {
    for (name, pin) in go_fixtures() {
        assert_eq!(
            decode_pin_json(&golden_line(&format!("{name}.ndjson"))).unwrap(),
            pin,
            "{name}"
        );
    }
}

fn json_only_escapes() -> Pin {
    let mut pin = Pin::new(cid(CID_V1));
    pin.allocations = vec![peer(PEER_ED25519)];
    pin.max_depth = 0;
    pin.timestamp = Some(Utc.timestamp_opt(1_714_979_289, 123_400_000).unwrap());
    pin.options = PinOptions {
        replication_factor_min: 1,
        replication_factor_max: 2,
        name: "tab\there \"quoted\" back\\slash\nline\u{1} café \u{2028} <script>".into(),
        mode: PinMode::Direct,
        shard_size: 0,
        user_allocations: vec![peer(PEER_RSA), peer(PEER_ED25519)],
        expire_at: Some(Utc.timestamp_opt(1_893_553_445, 500_000_000).unwrap()),
        metadata: metadata(&[("a&b", "\r\u{c}\u{8}")]),
        pin_update: None,
        origins: vec![],
    };
    pin
}

#[test]
fn ndjson_escapes_strings_and_trims_fractions_like_go() {
    let line = golden_line("json_only_escapes.ndjson");
    assert_eq!(encode_pin_json(&json_only_escapes()), line);
    assert_eq!(decode_pin_json(&line).unwrap(), json_only_escapes());
}

#[test]
fn ndjson_reads_what_go_reads() {
    // Only a CID: Go's zero values, so the bad type and depth 0 (a direct pin).
    let pin = decode_pin_json(format!(r#"{{"cid":"{CID_V0}"}}"#)).unwrap();
    assert_eq!(
        (pin.pin_type, pin.max_depth, pin.options.mode),
        (PinType::Bad, 0, PinMode::Recursive)
    );
    // Keys in any case, the last of a repeated key, metadata objects merged, nulls that leave
    // numbers and strings alone, values spread over lines, times with an offset.
    let json = format!(
        "{{\"CID\":\"{CID_V1}\",\"Type\":\"meta-pin\",\"name\":\"a\",\"name\":null,\n\
         \"max_depth\":3,\"max_depth\":null,\"metadata\":{{\"x\":\"1\"}},\"metadata\":{{\"y\":null}},\n\
         \"\u{17F}hard_size\":7,\"timestamp\":\"2024-05-06T09:08:09+02:00\",\"unknown\":[1,{{}}]}}"
    );
    let pin = decode_pin_json(&json).unwrap();
    assert_eq!(pin.cid, cid(CID_V1));
    assert_eq!(pin.pin_type, PinType::Meta);
    assert_eq!((pin.options.name.as_str(), pin.max_depth, pin.options.shard_size), ("a", 3, 7));
    let metadata: Vec<_> =
        pin.options.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(metadata, [("x", "1"), ("y", "")]);
    assert_eq!(pin.timestamp, at(1_714_979_289));
    // `type` null is Go's AllType, which ipfs-cluster stores as a shard pin; unknown names are
    // the bad type; unknown modes are recursive.
    let with = |extra: &str| decode_pin_json(format!(r#"{{"cid":"{CID_V0}",{extra}}}"#));
    assert_eq!(with(r#""type":null"#).unwrap().pin_type, PinType::Shard);
    assert_eq!(with(r#""type":"Pin""#).unwrap().pin_type, PinType::Bad);
    assert_eq!(with(r#""mode":"Direct""#).unwrap().options.mode, PinMode::Recursive);
    // Numbers beyond 32 bits keep the low 32, as ipfs-cluster's protobuf does.
    let wide = with(r#""replication_factor_min":4294967297,"max_depth":-4294967298"#).unwrap();
    assert_eq!((wide.options.replication_factor_min, wide.max_depth), (1, -2));
    // Invalid UTF-8 and lone surrogates become U+FFFD.
    let mut raw = format!(r#"{{"cid":"{CID_V0}","name":"a\ud800"#).into_bytes();
    raw.extend_from_slice(b"\xff\"}");
    assert_eq!(decode_pin_json(&raw).unwrap().options.name, "a\u{FFFD}\u{FFFD}");
    // Go's zero time with an offset is still the zero time.
    assert_eq!(with(r#""timestamp":"0001-01-01T01:00:00+01:00""#).unwrap().timestamp, None);
}

#[test]
fn ndjson_refuses_what_go_refuses() {
    let with = |extra: &str| decode_pin_json(format!(r#"{{"cid":"{CID_V0}",{extra}}}"#));
    for time in [
        "2016-12-31T23:59:60Z",
        "2024-01-02t03:04:05z",
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04:05\\u005a",
        "+10000-01-01T00:00:00Z",
    ] {
        assert_invalid(with(&format!(r#""timestamp":"{time}""#)), "timestamp");
    }
    assert_invalid(decode_pin_json(format!(r#"{{"cid":{{"/":"{CID_V0}"}}}}"#)), "cid");
    assert_invalid(decode_pin_json(format!(r#"{{"cid":" {CID_V0}"}}"#)), "cid");
    assert_invalid(decode_pin_json(format!("\u{feff}{{\"cid\":\"{CID_V0}\"}}")), "JSON pin");
    assert_invalid(with(r#""max_depth":1.0"#), "max_depth");
    assert_invalid(with(r#""shard_size":-1"#), "shard_size");
    assert_invalid(
        with(r#""replication_factor_min":9223372036854775808"#),
        "replication_factor_min",
    );
    assert_invalid(with(r#""name":1"#), "name");
}

#[test]
fn times_ipfs_cluster_cannot_export_are_refused() {
    for y in [10_000, -50] {
        let mut pin = Pin::new(cid(CID_V0));
        pin.timestamp = Some(Utc.with_ymd_and_hms(y, 3, 4, 5, 6, 7).unwrap());
        assert_invalid(pin.validate(), "timestamp");
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, needle: &str) {
    match result {
        Err(Error::InvalidInput { what, reason, .. }) => {
            let text = format!("{what}: {reason}");
            assert!(text.contains(needle), "{text:?} does not mention {needle:?}");
        }
        other => panic!("expected InvalidInput mentioning {needle:?}, got {other:?}"),
    }
}

/// A protobuf field: tag, wire type, payload (already encoded for varints).
fn field(tag: u32, wire_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wire_type)), &mut out);
    if wire_type == 2 {
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
    }
    out.extend_from_slice(payload);
    out
}

#[test]
fn malformed_protobuf_is_a_typed_error() {
    let good = golden("full_v1.bin");
    for cut in [1, 5, good.len() / 2, good.len() - 1] {
        assert_invalid(decode_pin(&good[..cut]), "protobuf pin");
    }
    // Field 1 (Cid) sent as a varint instead of bytes.
    assert_invalid(decode_pin(&field(1, 0, &[1])), "protobuf pin");
    // No CID at all (Go would make CidUndef).
    assert_invalid(decode_pin(&field(2, 0, &[1])), "Cid");
    // Garbage CID bytes.
    let bad_cid = [field(1, 2, &[0x01, 0x70, 0x12, 0x20, 0xaa]), field(2, 0, &[1])].concat();
    assert_invalid(decode_pin(&bad_cid), "Cid");
    let cid_bytes = cid(CID_V0).to_bytes();
    let with = |extra: Vec<u8>| [field(1, 2, &cid_bytes), field(2, 0, &[1]), extra].concat();
    // Invalid peer id in Allocations.
    assert_invalid(decode_pin(&with(field(3, 2, b"not a multihash"))), "Allocations[0]");
    // Go's bad type and pin types it has no name for are kept, as ipfs-cluster keeps them.
    assert_eq!(decode_pin(&[field(1, 2, &cid_bytes)].concat()).unwrap().pin_type, PinType::Bad);
    let nine = decode_pin(&[field(1, 2, &cid_bytes), field(2, 0, &[9])].concat()).unwrap();
    assert_eq!(
        (nine.pin_type, encode_pin(&nine)[..].ends_with(&[0x32, 0])),
        (PinType::Other(9), true)
    );
    // A reference or pin update that is not a CID is dropped, as Go's CastCid failure drops it.
    assert_eq!(decode_pin(&with(field(5, 2, &[0xff, 0xff]))).unwrap().reference, None);
    assert_eq!(
        decode_pin(&with(field(6, 2, &field(7, 2, &[0x12])))).unwrap().options.pin_update,
        None
    );
    // An invalid origin fails Go's ProtoUnmarshal.
    assert_invalid(decode_pin(&with(field(6, 2, &field(9, 2, &[0xff, 0x7f])))), "Origins[0]");
    // Invalid UTF-8 in the name (proto3 strings must be UTF-8, as Go checks).
    assert_invalid(decode_pin(&with(field(6, 2, &field(3, 2, &[0xc3, 0x28])))), "protobuf pin");
    // Record extensions: unknown mode, bad user allocation.
    assert_invalid(decode_record(&with(field(1001, 0, &[7]))), "mode");
    assert_invalid(decode_record(&with(field(1002, 2, b"xx"))), "UserAllocations[0]");
}

#[test]
fn hostile_frames_are_refused_without_allocating() {
    // A length prefix of 2^63: refused from the prefix alone.
    let mut huge = Vec::new();
    prost::encoding::encode_varint(1 << 63, &mut huge);
    assert_invalid(read_delimited(&mut huge.as_slice()), "limit");
    let mut just_over = Vec::new();
    prost::encoding::encode_varint(MAX_FRAME_LEN as u64 + 1, &mut just_over);
    assert_invalid(read_delimited(&mut just_over.as_slice()), "limit");
    // A varint that never ends, and a frame shorter than its prefix.
    assert_invalid(read_delimited(&mut [0xffu8; 11].as_slice()), "length prefix");
    let stream = golden("export_stream.bin");
    assert_invalid(read_delimited(&mut &stream[..20]), "truncated");
}

#[test]
fn malformed_json_is_a_typed_error() {
    assert_invalid(decode_pin_json("{"), "JSON pin");
    assert_invalid(decode_pin_json("[]"), "JSON pin");
    assert_invalid(decode_pin_json(r#"{"name":"x"}"#), "cid is missing");
    assert_invalid(decode_pin_json(r#"{"cid":"QmNotACid"}"#), "cid");
    let with = |extra: &str| decode_pin_json(&format!(r#"{{"cid":"{CID_V0}",{extra}}}"#));
    assert_invalid(with(r#""timestamp":"2024-13-01T00:00:00Z""#), "timestamp");
    assert_invalid(with(r#""expire_at":"yesterday""#), "expire_at");
    assert_invalid(with(r#""allocations":["12D3KooWbad0"]"#), "allocations[0]");
    assert_invalid(with(r#""user_allocations":["hello"]"#), "user_allocations[0]");
    assert_invalid(with(r#""origins":["/ip4/999.1.1.1"]"#), "origins[0]");
    assert_invalid(with(r#""reference":"bafyINVALID""#), "reference");
    assert_invalid(with(r#""pin_update":7"#), "JSON pin");
    assert_invalid(with(r#""max_depth":1.5"#), "JSON pin");
    assert_invalid(with(r#""replication_factor_min":1e3"#), "JSON pin");
}

mod properties {
    use super::*;
    use multihash::Multihash;
    use proptest::prelude::*;

    fn arb_cid() -> impl Strategy<Value = Cid> {
        (any::<[u8; 32]>(), prop::sample::select(vec![0u64, 0x55, 0x70, 0x71])).prop_map(
            |(digest, codec)| {
                let mh = Multihash::<64>::wrap(0x12, &digest).unwrap();
                if codec == 0 {
                    Cid::new_v0(mh).unwrap()
                } else {
                    Cid::new_v1(codec, mh)
                }
            },
        )
    }

    fn arb_peer() -> impl Strategy<Value = PeerId> {
        any::<[u8; 32]>().prop_map(|d| {
            PeerId::from_bytes(&Multihash::<64>::wrap(0x12, &d).unwrap().to_bytes()).unwrap()
        })
    }

    fn arb_multiaddr() -> impl Strategy<Value = pinvault_core::Multiaddr> {
        (any::<[u8; 4]>(), any::<u16>(), prop::option::of(arb_peer())).prop_map(|(ip, port, p)| {
            let mut s = format!("/ip4/{}.{}.{}.{}/tcp/{port}", ip[0], ip[1], ip[2], ip[3]);
            if let Some(p) = p {
                s.push_str(&format!("/p2p/{p}"));
            }
            s.parse().unwrap()
        })
    }

    /// Instants across chrono's range, with the values Go's format treats specially.
    fn arb_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        let min = DateTime::<Utc>::MIN_UTC.timestamp();
        let max = DateTime::<Utc>::MAX_UTC.timestamp();
        prop_oneof![
            Just(None),
            Just(Some(DateTime::UNIX_EPOCH)),
            Just(Some(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap())),
            (0u32..1_000_000_000).prop_map(|n| DateTime::from_timestamp(0, n)),
            (-3_000_000_000i64..5_000_000_000, prop_oneof![Just(0u32), 0u32..1_000_000_000])
                .prop_map(|(s, n)| DateTime::from_timestamp(s, n)),
            (min..max, 0u32..1_000_000_000).prop_map(|(s, n)| DateTime::from_timestamp(s, n)),
        ]
    }

    prop_compose! {
        fn arb_pin()(
            cid in arb_cid(),
            pin_type in prop::sample::select(PinType::ALL.to_vec()),
            allocations in prop::collection::vec(arb_peer(), 0..3),
            max_depth in -1i32..4,
            reference in prop::option::of(arb_cid()),
            timestamp in arb_time(),
            replication_factor_min in -1i32..10,
            replication_factor_max in -1i32..10,
            name in ".*",
            direct in any::<bool>(),
            shard_size in any::<u64>(),
            user_allocations in prop::collection::vec(arb_peer(), 0..3),
            expire_at in arb_time(),
            metadata in prop::collection::btree_map(".*", ".*", 0..4),
            pin_update in prop::option::of(arb_cid()),
            origins in prop::collection::vec(arb_multiaddr(), 0..3),
        ) -> Pin {
            Pin {
                cid, pin_type, allocations, max_depth, reference, timestamp,
                options: PinOptions {
                    replication_factor_min, replication_factor_max, name,
                    mode: if direct { PinMode::Direct } else { PinMode::Recursive },
                    shard_size, user_allocations, expire_at, metadata, pin_update, origins,
                },
            }
        }
    }

    /// What ipfs-cluster keeps of a pin after ProtoMarshal + ProtoUnmarshal, derived from the
    /// Go rules independently of the codec.
    fn through_go(pin: &Pin) -> Pin {
        let go_time = |t: Option<DateTime<Utc>>| {
            let t = t?;
            let go_zero = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
            if t.timestamp() == go_zero.timestamp() || t.timestamp() == 0 {
                None
            } else {
                DateTime::from_timestamp(t.timestamp(), 0)
            }
        };
        let mut go = pin.clone();
        go.timestamp = go_time(pin.timestamp);
        go.options.expire_at = go_time(pin.options.expire_at);
        go.options.mode = if pin.max_depth == 0 { PinMode::Direct } else { PinMode::Recursive };
        go.options.user_allocations.clear();
        go
    }

    proptest! {
        #[test]
        fn record_codec_is_lossless(pin in arb_pin()) {
            prop_assert_eq!(decode_record(&encode_record(&pin)).unwrap(), pin);
        }

        #[test]
        fn protobuf_round_trip_keeps_what_go_keeps(pin in arb_pin()) {
            let go = through_go(&pin);
            prop_assert_eq!(decode_pin(&encode_pin(&pin)).unwrap(), go.clone());
            // A pin Go keeps unchanged is stored as exactly Go's bytes.
            prop_assert_eq!(encode_record(&go), encode_pin(&go));
        }

        #[test]
        fn ndjson_round_trip(pin in arb_pin()) {
            prop_assume!(pin.validate().is_ok());
            let line = encode_pin_json(&pin);
            prop_assert!(!line.contains('\n'));
            let mut expected = pin.clone();
            let go_zero = Some(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());
            if expected.timestamp == go_zero { expected.timestamp = None; }
            if expected.options.expire_at == go_zero { expected.options.expire_at = None; }
            prop_assert_eq!(decode_pin_json(&line).unwrap(), expected);
        }

        #[test]
        fn garbage_gives_invalid_input_never_a_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let typed = |r: Result<Option<Pin>, Error>| {
                matches!(r, Ok(_) | Err(Error::InvalidInput { .. }))
            };
            prop_assert!(typed(decode_pin(&bytes).map(Some)));
            prop_assert!(typed(decode_record(&bytes).map(Some)));
            prop_assert!(typed(read_delimited(&mut bytes.as_slice())));
            prop_assert!(typed(decode_pin_json(&bytes).map(Some)));
        }
    }
}

/// Inputs the fuzzers found (`fuzz/regressions/protobuf_decode/`): each must decode to a pin
/// whose JSON export imports back equal, or be refused as invalid input.
#[test]
fn fuzz_regressions_round_trip_or_are_refused() {
    let dir: std::path::PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "fuzz", "regressions", "protobuf_decode"]
            .iter()
            .collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        seen += 1;
        match pinvault_core::codec::protobuf::decode_pin(&bytes) {
            Ok(pin) => {
                let line = pinvault_core::codec::ndjson::encode_pin_json(&pin);
                let back = pinvault_core::codec::ndjson::decode_pin_json(&line)
                    .unwrap_or_else(|e| panic!("{}: export does not import: {e}", path.display()));
                assert_eq!(back, pin, "{}", path.display());
            }
            Err(e) => assert!(matches!(e, Error::InvalidInput { .. }), "{}: {e}", path.display()),
        }
    }
    assert!(seen > 0, "no regression inputs in {}", dir.display());
}
