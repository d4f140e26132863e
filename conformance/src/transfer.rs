//! Export and import: NDJSON and length-delimited protobuf round trips into a second store, and
//! malformed or truncated input that stops the import at the bad record, naming its line or
//! byte offset, with every earlier batch committed and nothing of the bad record's batch.
//!
//! NDJSON carries every field, so its round trip is exact; the protobuf stream carries Go's
//! bytes, so its round trip gives back each pin as Go would (`decode_pin(encode_pin(pin))`: no
//! user allocations, the mode derived from the depth).

use std::collections::BTreeMap;

use pinvault_core::codec::protobuf::{decode_pin, encode_pin, read_delimited};
use pinvault_core::transfer::{ImportOptions, NoProgress, TransferFormat, TransferSummary};
use pinvault_core::{Error, Pin, PinState, Precondition};

use crate::fixtures::full_pin;
use crate::harness::{collect, expect_err, fresh, must, Harness};
use crate::list::fill;

/// A pin as ipfs-cluster's formats carry it.
pub fn as_go_sees_it(pin: &Pin) -> Pin {
    decode_pin(&encode_pin(pin)).expect("Go's bytes of a valid pin decode")
}

/// The batch size an import into a backend with `caps` can use: `wanted`, lowered to the
/// backend's limit, or 1 when it does not declare atomic multi-op batches.
pub fn batch_size_for(caps: &pinvault_core::PinCapabilities, wanted: usize) -> usize {
    if !caps.atomic_batch {
        return 1;
    }
    caps.max_batch_ops.map_or(wanted, |max| wanted.min(max.max(1)))
}

async fn export(state: &dyn PinState, format: TransferFormat) -> (Vec<u8>, TransferSummary) {
    let mut out = Vec::new();
    let summary = must(state.export(format, &mut out, &NoProgress).await, "export");
    (out, summary)
}

async fn import(
    state: &dyn PinState,
    bytes: &[u8],
    format: TransferFormat,
    batch_size: usize,
) -> pinvault_core::Result<TransferSummary> {
    let mut reader: &[u8] = bytes;
    let options = ImportOptions { format, batch_size, precondition: Precondition::Any };
    state.import(&mut reader, &options, &NoProgress).await
}

async fn pins_by_cid(state: &dyn PinState) -> BTreeMap<Vec<u8>, Pin> {
    collect(state.list(None), "list")
        .await
        .into_iter()
        .map(|e| (e.pin.cid.to_bytes(), e.pin))
        .collect()
}

async fn round_trip(h: &dyn Harness, format: TransferFormat) {
    let source = fresh(h).await;
    fill(&*source.state, 0, 130).await;
    let (bytes, summary) = export(&*source.state, format).await;
    assert_eq!(summary.pins, 130, "the {format} export must count every pin");
    assert_eq!(
        summary.bytes,
        bytes.len() as u64,
        "the {format} export must count the bytes it wrote"
    );
    let target = fresh(h).await;
    let batch_size = batch_size_for(&target.pin_capabilities(), 50);
    let imported = must(import(&*target.state, &bytes, format, batch_size).await, "import");
    assert_eq!(imported.pins, 130, "the {format} import must commit every pin");
    assert_eq!(
        imported.batches,
        130u64.div_ceil(batch_size as u64),
        "130 pins in batches of {batch_size}"
    );
    assert_eq!(
        imported.bytes,
        bytes.len() as u64,
        "the {format} import must count the bytes it read"
    );
    assert!(
        imported.last_receipt.is_some(),
        "an import that committed must return its last receipt"
    );
    // Every format carries the pin as ipfs-cluster holds it (exports are ipfs-cluster's).
    let carried = as_go_sees_it;
    let expected: BTreeMap<_, _> =
        pins_by_cid(&*source.state).await.into_iter().map(|(k, p)| (k, carried(&p))).collect();
    let got = pins_by_cid(&*target.state).await;
    assert_eq!(got.len(), expected.len(), "the {format} round trip changed the pin count");
    for (k, want) in &expected {
        assert_eq!(got.get(k), Some(want), "the {format} round trip changed pin {}", want.cid);
    }
}

/// Export to NDJSON then import into a fresh store gives back the same pinset.
pub async fn ndjson_round_trip(h: &dyn Harness) {
    round_trip(h, TransferFormat::Ndjson).await;
}

/// Export to length-delimited protobuf then import into a fresh store gives back the same pinset.
pub async fn protobuf_round_trip(h: &dyn Harness) {
    round_trip(h, TransferFormat::Protobuf).await;
}

/// An NDJSON export writes one line per pin, and an empty store exports nothing.
pub async fn ndjson_export_is_one_line_per_pin(h: &dyn Harness) {
    let s = fresh(h).await;
    let (empty, summary) = export(&*s.state, TransferFormat::Ndjson).await;
    assert!(empty.is_empty() && summary.pins == 0, "an empty store must export nothing");
    fill(&*s.state, 0, 17).await;
    let (bytes, _) = export(&*s.state, TransferFormat::Ndjson).await;
    let text = String::from_utf8(bytes).expect("an NDJSON export is UTF-8");
    assert!(text.ends_with('\n'), "each NDJSON record ends with a newline");
    assert_eq!(text.lines().count(), 17, "an NDJSON export holds one line per pin");
    for line in text.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "each NDJSON line is one JSON object: {line}"
        );
    }
}

/// Prepares an NDJSON stream of `count` pins whose line `bad_line` (1-based) is `replace(line)`.
fn ndjson_with_bad_line(
    count: u64,
    bad_line: usize,
    replace: impl Fn(&str, &Pin) -> String,
) -> Vec<u8> {
    let pins: Vec<Pin> = (0..count).map(full_pin).collect();
    let mut out = String::new();
    for (i, pin) in pins.iter().enumerate() {
        let line = pinvault_core::codec::ndjson::encode_pin_json(pin);
        let line = if i + 1 == bad_line { replace(&line, pin) } else { line };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

async fn assert_import_stops_at(
    h: &dyn Harness,
    bytes: &[u8],
    format: TransferFormat,
    batch_size: usize,
    position: &str,
    bad_record: usize,
    promise: &str,
) {
    let target = fresh(h).await;
    let batch_size = batch_size_for(&target.pin_capabilities(), batch_size);
    let committed = (bad_record - 1) / batch_size * batch_size;
    let e = expect_err(
        import(&*target.state, bytes, format, batch_size).await,
        "InvalidInput",
        promise,
    );
    match &e {
        Error::InvalidInput { what, .. } => {
            assert!(what.contains(position), "{promise}: the error must name {position:?}, got {e}")
        }
        _ => unreachable!(),
    }
    let stored = collect(target.state.list(None), "list").await.len();
    assert_eq!(
        stored, committed,
        "{promise}: batches before the bad record's must be committed ({committed} pins) and nothing of its batch"
    );
}

/// A line that is not JSON stops the import naming the line; earlier batches stay, its batch
/// is not applied.
pub async fn ndjson_malformed_line_stops_import(h: &dyn Harness) {
    // 30 pins in batches of 10: line 15 is in the second batch, so only the first commits.
    let bytes = ndjson_with_bad_line(30, 15, |line, _| line[..line.len() / 2].to_owned());
    assert_import_stops_at(
        h,
        &bytes,
        TransferFormat::Ndjson,
        10,
        "line 15",
        15,
        "an NDJSON line cut in half",
    )
    .await;
    let bytes = ndjson_with_bad_line(30, 1, |_, _| "not json at all".to_owned());
    assert_import_stops_at(
        h,
        &bytes,
        TransferFormat::Ndjson,
        10,
        "line 1",
        1,
        "garbage on the first line",
    )
    .await;
}

/// A line whose CID does not parse stops the import naming the line.
pub async fn ndjson_bad_cid_stops_import(h: &dyn Harness) {
    let bytes = ndjson_with_bad_line(30, 27, |line, pin| {
        let cid = pin.cid.to_string();
        assert!(line.contains(&cid), "the NDJSON line must hold the pin's CID as text");
        line.replacen(&cid, "QmNotAValidCidAtAll0000", 1)
    });
    assert_import_stops_at(
        h,
        &bytes,
        TransferFormat::Ndjson,
        10,
        "line 27",
        27,
        "an NDJSON line with an invalid CID",
    )
    .await;
}

/// A protobuf stream cut inside a record stops the import naming the record's byte offset;
/// earlier batches stay, the cut record's batch is not applied.
pub async fn protobuf_truncated_record_stops_import(h: &dyn Harness) {
    let source = fresh(h).await;
    fill(&*source.state, 0, 25).await;
    let (bytes, _) = export(&*source.state, TransferFormat::Protobuf).await;
    let mut offsets = Vec::new();
    let mut rest: &[u8] = &bytes;
    loop {
        let start = bytes.len() - rest.len();
        match read_delimited(&mut rest) {
            Ok(Some(_)) => offsets.push(start),
            Ok(None) => break,
            Err(e) => panic!("the export itself does not parse: {e}"),
        }
    }
    assert_eq!(offsets.len(), 25, "the protobuf export holds one frame per pin");
    // Cut record 23 (1-based) in the middle: batches of 10 commit 20 pins, the third does not.
    let (start, end) = (offsets[22], offsets[23]);
    let cut = &bytes[..start + (end - start) / 2];
    assert_import_stops_at(
        h,
        cut,
        TransferFormat::Protobuf,
        10,
        &format!("byte offset {start}"),
        23,
        "a protobuf stream cut inside record 23",
    )
    .await;
}

/// An import with the `Absent` precondition refuses to overwrite: the batch holding an
/// existing pin conflicts and is not applied.
pub async fn import_absent_refuses_existing_pins(h: &dyn Harness) {
    let source = fresh(h).await;
    fill(&*source.state, 0, 20).await;
    let (bytes, _) = export(&*source.state, TransferFormat::Protobuf).await;
    let target = fresh(h).await;
    let caps = target.pin_capabilities();
    let existing = full_pin(1000);
    must(target.state.put(existing.clone(), Precondition::Any).await, "put");
    let clash = as_go_sees_it(&full_pin(5));
    let clash_version =
        must(target.state.put(pinvault_core::Pin::new(clash.cid), Precondition::Any).await, "put");
    let mut reader: &[u8] = &bytes;
    let options = ImportOptions {
        format: TransferFormat::Protobuf,
        batch_size: 20,
        precondition: Precondition::Absent,
    };
    let result = target.state.import(&mut reader, &options, &NoProgress).await;
    if !(caps.atomic_batch && caps.conditional_batch) {
        crate::harness::assert_refused(
            result,
            "transfer::import_absent_refuses_existing_pins",
            "conditional_batch",
        );
        return;
    }
    expect_err(result, "Conflict", "an Absent import over an existing pin");
    let got = must(target.state.get(&clash.cid).await, "get");
    assert_eq!(got.version, clash_version, "an Absent import must not overwrite an existing pin");
    assert_eq!(
        collect(target.state.list(None), "list").await.len(),
        2,
        "the conflicting batch must apply nothing"
    );
}
