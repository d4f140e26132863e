//! Streaming export and import against the memory reference backend: round trips in both
//! formats, batching, last-write-wins for repeated CIDs, and malformed streams that stop the
//! import at a named position without committing the batch they belong to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use multihash::Multihash;
use pinvault_core::codec::ndjson::encode_pin_json;
use pinvault_core::codec::protobuf::{decode_pin, write_delimited};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::{
    ImportOptions, NoProgress, Progress, TransferFormat, TransferSummary, MAX_RECORD_LEN,
};
use pinvault_core::{Cid, Error, PeerId, Pin, PinState, Precondition};
use tokio::io::{AsyncReadExt, BufReader};

fn golden(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", "golden", name].iter().collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A distinct real CIDv1 (dag-pb, sha2-256) per `n`.
fn cid_n(n: u64) -> Cid {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    Cid::new_v1(0x70, Multihash::<64>::wrap(0x12, &digest).unwrap())
}

/// A pin Go's formats carry exactly (whole-second times, mode matching the depth).
fn pin_n(n: u64) -> Pin {
    let mut pin = Pin::new(cid_n(n));
    pin.options.name = format!("pin <{n}>");
    pin.options.replication_factor_min = 1;
    pin.options.replication_factor_max = 3;
    pin.timestamp = Some(Utc.timestamp_opt(1_700_000_000 + n as i64, 0).unwrap());
    pin.allocations =
        vec!["12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse::<PeerId>().unwrap()];
    if n % 3 == 0 {
        pin.options.metadata.insert("n".into(), n.to_string());
    }
    pin
}

async fn all_pins(state: &dyn PinState) -> BTreeMap<Cid, Pin> {
    let entries: Vec<_> = state.list(None).try_collect().await.unwrap();
    entries.into_iter().map(|e| (e.pin.cid, e.pin)).collect()
}

async fn export(state: &dyn PinState, format: TransferFormat) -> (Vec<u8>, TransferSummary) {
    let mut out = Vec::new();
    let summary = state.export(format, &mut out, &NoProgress).await.unwrap();
    (out, summary)
}

async fn import(
    state: &dyn PinState,
    input: &[u8],
    format: TransferFormat,
    batch_size: usize,
) -> Result<TransferSummary, Error> {
    let options = ImportOptions { format, batch_size, ..ImportOptions::default() };
    let mut reader = BufReader::new(input);
    state.import(&mut reader, &options, &NoProgress).await
}

#[derive(Default)]
struct Counting {
    pins: AtomicU64,
    bytes: AtomicU64,
    calls: AtomicU64,
}

impl Progress for Counting {
    fn advance(&self, pins: u64, bytes: u64) {
        self.pins.fetch_add(pins, Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

fn reason_of(e: Error) -> (String, String) {
    match e {
        Error::InvalidInput { what, reason, .. } => (what, reason),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn round_trip_in_both_formats_with_batches() {
    let source = MemoryBackend::new();
    for n in 0..2_500 {
        source.put(pin_n(n), Precondition::Absent).await.unwrap();
    }
    let expected = all_pins(&source).await;
    for format in [TransferFormat::Ndjson, TransferFormat::Protobuf, TransferFormat::Msgpack] {
        let progress = Counting::default();
        let mut out = Vec::new();
        let exported = source.export(format, &mut out, &progress).await.unwrap();
        assert_eq!(exported.pins, 2_500, "{format}");
        assert_eq!(exported.bytes, out.len() as u64);
        assert_eq!(exported.batches, 0);
        assert_eq!(progress.pins.load(Ordering::SeqCst), 2_500);
        assert_eq!(progress.bytes.load(Ordering::SeqCst), out.len() as u64);

        let target = MemoryBackend::new();
        let progress = Counting::default();
        let options =
            ImportOptions { format, batch_size: 1_000, precondition: Precondition::Absent };
        let summary =
            target.import(&mut BufReader::new(out.as_slice()), &options, &progress).await.unwrap();
        assert_eq!(summary.pins, 2_500);
        assert_eq!(summary.batches, 3);
        assert_eq!(summary.bytes, out.len() as u64);
        assert_eq!(summary.last_receipt.as_ref().map(|r| r.ops), Some(500));
        assert_eq!(progress.pins.load(Ordering::SeqCst), 2_500);
        assert_eq!(progress.bytes.load(Ordering::SeqCst), out.len() as u64);
        assert_eq!(progress.calls.load(Ordering::SeqCst), 3);
        assert_eq!(all_pins(&target).await, expected, "{format}");
    }
}

#[tokio::test]
async fn ndjson_export_lines_are_gos_state_export_lines() {
    let state = MemoryBackend::new();
    let full = pinvault_core::codec::ndjson::decode_pin_json(
        String::from_utf8(golden("full_v1.ndjson")).unwrap().trim_end(),
    )
    .unwrap();
    state.put(full, Precondition::Any).await.unwrap();
    let (out, _) = export(&state, TransferFormat::Ndjson).await;
    assert_eq!(out, golden("full_v1.ndjson"));
    let (out, _) = export(&state, TransferFormat::Protobuf).await;
    let mut frame = out.as_slice();
    let len = prost::encoding::decode_varint(&mut frame).unwrap();
    assert_eq!(frame, golden("full_v1.bin"), "one frame: a uvarint length, then Go's bytes");
    assert_eq!(len, frame.len() as u64);
}

#[tokio::test]
async fn golden_files_import_in_both_formats() {
    // pre_epoch shares minimal_v0's CID; it comes in a later batch and wins.
    let names = ["minimal_v0", "full_v1", "meta_pin", "clusterdag_pin", "shard_pin", "pre_epoch"];
    let ndjson: Vec<u8> = names.iter().flat_map(|n| golden(&format!("{n}.ndjson"))).collect();
    let state = MemoryBackend::new();
    let summary = import(&state, &ndjson, TransferFormat::Ndjson, 4).await.unwrap();
    assert_eq!((summary.pins, summary.batches), (6, 2));
    assert_eq!(all_pins(&state).await.len(), 5);
    let names = &names[1..];
    for name in names {
        let expected = decode_pin(&golden(&format!("{name}.bin"))).unwrap();
        assert_eq!(state.get(&expected.cid).await.unwrap().pin, expected, "{name}");
    }

    let state = MemoryBackend::new();
    let summary =
        import(&state, &golden("export_stream.bin"), TransferFormat::Protobuf, 1000).await.unwrap();
    assert_eq!((summary.pins, summary.batches), (3, 1));
    for name in ["minimal_v0", "full_v1", "meta_pin"] {
        let expected = decode_pin(&golden(&format!("{name}.bin"))).unwrap();
        assert_eq!(state.get(&expected.cid).await.unwrap().pin, expected, "{name}");
    }
}

#[tokio::test]
async fn repeated_cid_in_a_batch_flushes_first_and_last_write_wins() {
    let mut first = pin_n(1);
    first.options.name = "first".into();
    let mut second = pin_n(1);
    second.options.name = "second".into();
    let lines = [&first, &pin_n(2), &second, &pin_n(3)]
        .iter()
        .map(|p| encode_pin_json(p) + "\n")
        .collect::<String>();
    let state = MemoryBackend::new();
    let summary = import(&state, lines.as_bytes(), TransferFormat::Ndjson, 100).await.unwrap();
    assert_eq!(summary.pins, 4);
    assert_eq!(summary.batches, 2, "the repeated CID split the input into two batches");
    assert_eq!(state.get(&cid_n(1)).await.unwrap().pin.options.name, "second");
    assert_eq!(all_pins(&state).await.len(), 3);
}

#[tokio::test]
async fn whitespace_crlf_and_values_across_or_within_lines_are_accepted() {
    // As Go's json.Decoder reads `state import`: any whitespace between values, or none.
    let input = format!(
        "{}\r\n\r\n   \n{}{}",
        encode_pin_json(&pin_n(1)).replace(',', ",\n  "),
        encode_pin_json(&pin_n(2)),
        encode_pin_json(&pin_n(3)), // no final newline
    );
    let state = MemoryBackend::new();
    let summary = import(&state, input.as_bytes(), TransferFormat::Ndjson, 2).await.unwrap();
    assert_eq!((summary.pins, summary.batches, summary.bytes), (3, 2, input.len() as u64));
    for n in 1..=3 {
        assert_eq!(state.get(&cid_n(n)).await.unwrap().pin, pin_n(n));
    }
}

#[tokio::test]
async fn a_bom_is_refused_as_go_refuses_it() {
    let input = format!("\u{feff}{}\n", encode_pin_json(&pin_n(1)));
    let state = MemoryBackend::new();
    let (what, reason) =
        reason_of(import(&state, input.as_bytes(), TransferFormat::Ndjson, 2).await.unwrap_err());
    assert_eq!(what, "import line 1 (value 1)", "{reason}");
    assert!(all_pins(&state).await.is_empty());
}

#[tokio::test]
async fn empty_input_commits_nothing() {
    for format in [TransferFormat::Ndjson, TransferFormat::Protobuf] {
        let state = MemoryBackend::new();
        let summary = import(&state, b"", format, 10).await.unwrap();
        assert_eq!(summary, TransferSummary::default());
        assert!(all_pins(&state).await.is_empty());
    }
    let state = MemoryBackend::new();
    let summary = import(&state, b"\n\n  \n", TransferFormat::Ndjson, 10).await.unwrap();
    assert_eq!((summary.pins, summary.batches, summary.last_receipt), (0, 0, None));
}

#[tokio::test]
async fn bad_json_line_names_the_line_and_keeps_only_earlier_batches() {
    let mut input = String::new();
    for n in 1..=6 {
        input.push_str(&encode_pin_json(&pin_n(n)));
        input.push('\n');
    }
    input.push_str("{\"cid\": \"not a cid\"}\n");
    input.push_str(&encode_pin_json(&pin_n(8)));
    let state = MemoryBackend::new();
    let err = import(&state, input.as_bytes(), TransferFormat::Ndjson, 5).await.unwrap_err();
    let (what, reason) = reason_of(err);
    assert_eq!(what, "import line 7 (value 7)");
    assert!(reason.contains("5 pins were committed"), "{reason}");
    let pins = all_pins(&state).await;
    assert_eq!(pins.len(), 5, "pin 6 shared the bad line's batch and is not committed");
    assert!(!pins.contains_key(&cid_n(6)));
}

#[tokio::test]
async fn invalid_ndjson_records_are_refused_with_their_line() {
    let good = encode_pin_json(&pin_n(1));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (format!("{good}\n{{not json\n").into_bytes(), "import line 2 (value 2)"),
        ([good.as_bytes(), b"\n\n\xff\xfe{}\n"].concat(), "import line 3 (value 2)"),
        (
            format!("{good}\n{{\"cid\":\"{}\",\"timestamp\":\"noon\"}}\n", cid_n(9)).into_bytes(),
            "import line 2 (value 2)",
        ),
        (
            format!("{{\"cid\":\"{}\",\n\"max_depth\":1.5}}\n", cid_n(9)).into_bytes(),
            "import line 1 (value 1)",
        ),
    ];
    for (input, position) in cases {
        let state = MemoryBackend::new();
        let (what, reason) =
            reason_of(import(&state, &input, TransferFormat::Ndjson, 10).await.unwrap_err());
        assert_eq!(what, position, "{reason}");
        assert!(reason.contains("0 pins were committed"), "{reason}");
        assert!(all_pins(&state).await.is_empty());
    }
}

#[tokio::test]
async fn an_endless_line_is_refused_at_the_cap_without_reading_everything() {
    // A JSON string that never ends (64 MiB of 'a'), read through a small buffer: refused after
    // the cap.
    let endless =
        (&b"{\"name\":\""[..]).chain(tokio::io::repeat(b'a').take(4 * MAX_RECORD_LEN as u64));
    let mut reader = BufReader::with_capacity(64 * 1024, endless);
    let state = MemoryBackend::new();
    let err = state.import(&mut reader, &ImportOptions::default(), &NoProgress).await.unwrap_err();
    let (what, reason) = reason_of(err);
    assert_eq!(what, "import line 1 (value 1)");
    assert!(reason.contains("limit"), "{reason}");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
    assert!(rest.len() > MAX_RECORD_LEN, "the import stopped reading at the cap");
}

#[tokio::test]
async fn bad_protobuf_frames_name_record_and_offset() {
    let mut stream = Vec::new();
    write_delimited(&mut stream, &pin_n(1));
    write_delimited(&mut stream, &pin_n(2));
    let offset = stream.len();

    // A truncated third frame.
    let mut truncated = stream.clone();
    write_delimited(&mut truncated, &pin_n(3));
    truncated.truncate(truncated.len() - 3);
    // An oversized length prefix: refused before any allocation.
    let mut oversized = stream.clone();
    prost::encoding::encode_varint(u64::MAX, &mut oversized);
    // A frame that is not a pin (its CID field holds garbage).
    let mut garbage = stream.clone();
    garbage.extend_from_slice(&[4, 0x0a, 0x02, 0xff, 0xff]);
    // A length prefix cut short.
    let mut cut_prefix = stream.clone();
    cut_prefix.push(0x80);

    for (input, needle) in
        [(truncated, "truncated"), (oversized, "limit"), (garbage, "Cid"), (cut_prefix, "prefix")]
    {
        let state = MemoryBackend::new();
        let err = import(&state, &input, TransferFormat::Protobuf, 1).await.unwrap_err();
        let (what, reason) = reason_of(err);
        assert_eq!(what, format!("import record 3 at byte offset {offset}"));
        assert!(reason.contains(needle), "{reason}");
        assert!(reason.contains("2 pins were committed"), "{reason}");
        assert_eq!(all_pins(&state).await.len(), 2);
    }
}

#[tokio::test]
async fn absent_precondition_makes_import_insert_only() {
    let state = MemoryBackend::new();
    state.put(pin_n(2), Precondition::Any).await.unwrap();
    let input: String = (1..=3).map(|n| encode_pin_json(&pin_n(n)) + "\n").collect();
    let options = ImportOptions { precondition: Precondition::Absent, ..ImportOptions::default() };
    let err = state
        .import(&mut BufReader::new(input.as_bytes()), &options, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { op_index: 1, .. }), "{err:?}");
    assert_eq!(all_pins(&state).await.len(), 1, "the failed batch applied nothing");
}

#[tokio::test]
async fn zero_batch_size_and_unknown_format_are_refused() {
    let state = MemoryBackend::new();
    let err = import(&state, b"", TransferFormat::Ndjson, 0).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!("xml".parse::<TransferFormat>().is_err());
    for format in [TransferFormat::Ndjson, TransferFormat::Protobuf, TransferFormat::Msgpack] {
        assert_eq!(format.to_string().parse::<TransferFormat>().unwrap(), format);
    }
}

/// ipfs-cluster's dsstate snapshot (`State.Marshal` over pebble, written by ipfs-cluster's own
/// code: `pvcluster golden`): pinvault writes the same bytes and reads them back.
#[tokio::test]
async fn dsstate_snapshot_golden_round_trips_byte_for_byte() {
    let names = ["minimal_v0", "full_v1", "meta_pin", "clusterdag_pin", "shard_pin"];
    let snapshot = golden("dsstate_snapshot.msgpack");
    // Go's Marshal lists pebble in datastore-key order.
    let mut by_key: Vec<(String, &str)> = names
        .iter()
        .map(|n| {
            let pin = decode_pin(&golden(&format!("{n}.bin"))).unwrap();
            (pinvault_core::codec::msgpack::dsstate_key(&pin.cid), *n)
        })
        .collect();
    by_key.sort();
    let mut written = Vec::new();
    for (_, name) in by_key {
        let pin = decode_pin(&golden(&format!("{name}.bin"))).unwrap();
        pinvault_core::codec::msgpack::write_entry(&mut written, &pin);
    }
    assert_eq!(written, snapshot, "write_entry must produce Go's Marshal bytes");

    let state = MemoryBackend::new();
    let summary = import(&state, &snapshot, TransferFormat::Msgpack, 2).await.unwrap();
    assert_eq!((summary.pins, summary.batches, summary.bytes), (5, 3, snapshot.len() as u64));
    for name in names {
        let expected = decode_pin(&golden(&format!("{name}.bin"))).unwrap();
        assert_eq!(state.get(&expected.cid).await.unwrap().pin, expected, "{name}");
    }
    let mut exported = Vec::new();
    state.export(TransferFormat::Msgpack, &mut exported, &NoProgress).await.unwrap();
    assert_eq!(exported, snapshot, "an export is ipfs-cluster's Marshal, in its key order");
}

#[tokio::test]
async fn bad_dsstate_entries_name_entry_and_offset() {
    let mut stream = Vec::new();
    pinvault_core::codec::msgpack::write_entry(&mut stream, &pin_n(1));
    pinvault_core::codec::msgpack::write_entry(&mut stream, &pin_n(2));
    let offset = stream.len();
    let entry = |pin: &Pin| {
        let mut e = Vec::new();
        pinvault_core::codec::msgpack::write_entry(&mut e, pin);
        e
    };
    let mut truncated = stream.clone();
    let third = entry(&pin_n(3));
    truncated.extend_from_slice(&third[..third.len() - 4]);
    let mut not_a_map = stream.clone();
    not_a_map.push(0x93);
    let mut oversized = stream.clone();
    oversized.extend_from_slice(&[0x82, 0xa1, b'k', 0xc6, 0xff, 0xff, 0xff, 0xff]);
    let mut bad_key = stream.clone();
    let mut lowercase = entry(&pin_n(3));
    let key3 = pinvault_core::codec::msgpack::dsstate_key(&cid_n(3));
    let at = lowercase.windows(key3.len()).position(|w| w == key3.as_bytes()).unwrap();
    lowercase[at..at + key3.len()].make_ascii_lowercase();
    bad_key.extend_from_slice(&lowercase);
    let mut no_key = stream.clone();
    no_key.extend_from_slice(&[0x82, 0xa1, b'x', 0xa0, 0xa1, b'v', 0xa0]);
    let mut nested = stream.clone();
    nested.extend_from_slice(&[0x81, 0xa1, b'x', 0x91, 0xc0]);

    for (input, needle) in [
        (truncated, "truncated"),
        (not_a_map, "map"),
        (oversized, "limit"),
        (bad_key, "base32"),
        (no_key, "no \"k\""),
        (nested, "nested"),
    ] {
        let state = MemoryBackend::new();
        let err = import(&state, &input, TransferFormat::Msgpack, 1).await.unwrap_err();
        let (what, reason) = reason_of(err);
        assert_eq!(what, format!("import entry 3 at byte offset {offset}"), "{needle}");
        assert!(reason.contains(needle), "{needle}: {reason}");
        assert_eq!(all_pins(&state).await.len(), 2);
    }
}
