//! ipfs-cluster's NDJSON export (`pinvault_core::codec::ndjson`) and its import
//! (`pinvault_core::transfer::import_into`).
//!
//! Properties (from the module docs of `codec::ndjson`, `codec::protobuf` and `transfer`):
//! * nothing panics; a line that does not decode is `Error::InvalidInput`;
//! * for every line that decodes to `p`: `decode_pin_json(encode_pin_json(p)) == p`, the encoding
//!   is stable (`encode(decode(encode(p))) == encode(p)`), and the storage record round-trips
//!   (`decode_record(encode_record(p)) == p`);
//! * the whole input imported into the memory backend commits exactly the batches before the
//!   first bad line (as a model of the documented batching predicts), names that line, reports
//!   how many pins earlier batches committed, and leaves nothing of the failing batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault_core::codec::ndjson::{decode_pin_json, encode_pin_json};
use pinvault_core::codec::protobuf::{decode_record, encode_record};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::{import_into, ImportOptions, NoProgress, TransferFormat};
use pinvault_core::{Error, Precondition};
use pinvault_fuzz::{block_on, ImportModel, ModelRecord};

fuzz_target!(|data: &[u8]| {
    // The lines as the importer reads them: split at '\n', one '\r' before it dropped, a BOM
    // allowed on the first line, blank lines skipped (but counted), non-UTF-8 refused.
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut records = Vec::new();
    let mut stopped = false; // the import stops at the first bad record; round trips go on
    let mut offset = 0u64;
    for (i, raw) in lines.iter().enumerate() {
        let number = i as u64 + 1;
        let start = offset;
        offset += raw.len() as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            if !stopped {
                records.push(ModelRecord {
                    number,
                    offset: start,
                    pin: Err("not UTF-8".into()),
                });
                stopped = true;
            }
            continue;
        };
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        let pin = match decode_pin_json(text) {
            Ok(pin) => {
                let line = encode_pin_json(&pin);
                assert!(!line.contains('\n'), "an encoded pin spans lines: {line:?}");
                {
                    let back = decode_pin_json(&line).unwrap_or_else(|e| {
                        panic!(
                            "encode_pin_json output does not decode: {e}\n in: {text}\nout: {line}"
                        )
                    });
                    assert_eq!(
                        back, pin,
                        "decode(encode(p)) != p\n in: {text}\nout: {line}"
                    );
                    assert_eq!(
                        encode_pin_json(&back),
                        line,
                        "encode_pin_json is not stable"
                    );
                }
                let record = decode_record(&encode_record(&pin)).expect("record of a JSON pin");
                assert_eq!(record, pin, "decode_record(encode_record(p)) != p");
                pin.validate().map(|()| pin).map_err(|e| e.to_string())
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::InvalidInput { .. }),
                    "not InvalidInput: {e:?}"
                );
                Err(e.to_string())
            }
        };
        if !stopped {
            stopped = pin.is_err();
            records.push(ModelRecord {
                number,
                offset: start,
                pin,
            });
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
    ImportModel::run(&records, batch_size).check(&result, &backend, data.len(), |n, _| {
        format!("import line {n}")
    });
});
