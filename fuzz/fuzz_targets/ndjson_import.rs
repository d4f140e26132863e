//! ipfs-cluster's NDJSON export (`pinvault_core::codec::ndjson`) and its import
//! (`pinvault_core::transfer::import_into`).
//!
//! Properties (from the module docs of `codec::ndjson`, `codec::protobuf` and `transfer`):
//! * nothing panics; a value that does not decode is `Error::InvalidInput`;
//! * for every value that decodes to `p`: `decode_pin_json(encode_pin_json(p)) == p`, the encoding
//!   is stable (`encode(decode(encode(p))) == encode(p)`), and the storage record round-trips
//!   (`decode_record(encode_record(p)) == p`);
//! * the whole input imported into the memory backend commits exactly the batches before the
//!   first bad value (as a model of the documented batching predicts), names its line, reports
//!   how many pins earlier batches committed, and leaves nothing of the failing batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault_core::codec::ndjson::{decode_pin_json, encode_pin_json};
use pinvault_core::codec::protobuf::{decode_record, encode_record};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::{import_into, ImportOptions, NoProgress, TransferFormat};
use pinvault_core::codec::gojson;
use pinvault_core::{Error, Pin, Precondition};
use pinvault_fuzz::{block_on, ImportModel, ModelRecord};

/// `decode_pin_json(encode_pin_json(p)) == p`, and the encoding is stable.
fn check_round_trip(text: &[u8], pin: &Pin) {
    let line = encode_pin_json(pin);
    assert!(!line.contains('\n'), "an encoded pin spans lines: {line:?}");
    let back = decode_pin_json(&line).unwrap_or_else(|e| {
        panic!(
            "encode_pin_json output does not decode: {e}\n in: {}\nout: {line}",
            String::from_utf8_lossy(text)
        )
    });
    assert_eq!(&back, pin, "decode(encode(p)) != p\n in: {}\nout: {line}", String::from_utf8_lossy(text));
    assert_eq!(encode_pin_json(&back), line, "encode_pin_json is not stable");
    let record = decode_record(&encode_record(pin)).expect("record of a JSON pin");
    assert_eq!(&record, pin, "decode_record(encode_record(p)) != p");
}

fuzz_target!(|data: &[u8]| {
    // The values as the importer reads them: Go's json.Decoder over the whole stream (values
    // separated by any whitespace or none, spanning lines), numbered from 1, each placed at the
    // line it starts on. The import stops at the first bad value.
    let newlines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
    let mut records = Vec::new();
    let (mut at, mut lines, mut number) = (0usize, 0u64, 0u64);
    loop {
        let rest = &data[at..];
        let skip = rest.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')).unwrap_or(rest.len());
        let line = lines + newlines(&rest[..skip]) + 1;
        number += 1;
        let pin = match gojson::next_value(rest, true) {
            gojson::Scan::End => break,
            gojson::Scan::Value { start, end } => {
                let text = &rest[start..end];
                lines += newlines(&rest[..end]);
                at += end;
                match decode_pin_json(text) {
                    Ok(pin) => {
                        check_round_trip(text, &pin);
                        pin.validate().map(|()| pin).map_err(|e| e.to_string())
                    }
                    Err(e) => {
                        assert!(matches!(e, Error::InvalidInput { .. }), "not InvalidInput: {e:?}");
                        Err(e.to_string())
                    }
                }
            }
            gojson::Scan::Invalid(why) => Err(why),
            gojson::Scan::Incomplete => Err("incomplete".into()),
        };
        let bad = pin.is_err();
        records.push(ModelRecord { number, offset: line, pin });
        if bad {
            break;
        }
    }

    let batch_size = 1 + data.len() % 4;
    let backend = MemoryBackend::new();
    let options = ImportOptions {
        format: TransferFormat::Ndjson,
        batch_size,
        precondition: Precondition::Any,
    };
    let mut reader = data;
    let result = block_on(import_into(&backend, &mut reader, &options, &NoProgress));
    ImportModel::run(&records, batch_size).check(&result, &backend, data.len(), |n, line| {
        format!("import line {line} (value {n})")
    });
});
