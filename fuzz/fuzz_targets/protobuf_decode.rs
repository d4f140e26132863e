//! ipfs-cluster's protobuf pin, pinvault's storage record, and the length-delimited export stream
//! (`pinvault_core::codec::protobuf`, `pinvault_core::transfer`).
//!
//! The input is tried as one `api.pb.Pin`, as one storage record, and as an export stream.
//! Properties (from the module docs of `codec::protobuf` and `transfer`):
//! * nothing panics; every failure is `Error::InvalidInput`;
//! * `decode_pin(encode_pin(p)) == p` for a decoded `p`, and since such a pin survives Go's
//!   round trip, `encode_record(p)` is exactly Go's bytes;
//! * the JSON line `state export` writes for a decoded pin (`encode_pin_json`) imports back to
//!   the same pin,
//!   so does the line written for a decoded storage record (except `Some` of Go's zero instant,
//!   documented to read back as `None`);
//! * `decode_record(encode_record(p)) == p` for every pin; a record read by Go's reader
//!   (`decode_pin`) gives what `decode_pin` of the Go bytes gives;
//! * `read_delimited` consumes input on every pin and stops; a stream it reads whole re-frames
//!   (`write_delimited`) to pins it reads back equal;
//! * `import_into` (protobuf format) into the memory backend commits exactly the batches before
//!   the first bad frame, as a model built on `read_delimited` predicts, and names that frame.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use pinvault_core::codec::ndjson::{decode_pin_json, encode_pin_json};
use pinvault_core::codec::protobuf::{
    decode_pin, decode_record, encode_pin, encode_record, read_delimited, write_delimited,
};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::{import_into, ImportOptions, NoProgress, TransferFormat};
use pinvault_core::{Error, Pin, PinType, Precondition};
use pinvault_fuzz::{block_on, ImportModel, ModelRecord};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

fn assert_invalid_input(e: &Error, what: &str) {
    assert!(
        matches!(e, Error::InvalidInput { .. }),
        "{what}: not InvalidInput: {e:?}"
    );
}

/// `decode_record(encode_record(p)) == p` "for every Pin", and Go's view of the record.
fn check_record_round_trip(pin: &Pin) {
    let record = encode_record(pin);
    let back = decode_record(&record).expect("decode_record(encode_record(p)) must succeed");
    assert_eq!(&back, pin, "decode_record(encode_record(p)) != p");
    let go_view = decode_pin(&record).expect("Go's reader must read a pinvault record");
    let go_bytes = decode_pin(&encode_pin(pin)).expect("decode_pin(encode_pin(p))");
    assert_eq!(
        go_view, go_bytes,
        "Go's view of the record != Go's view of encode_pin"
    );
}

/// The JSON line `state export` writes for a storable `pin` imports back to `pin`, except that
/// a pin type without a name (`Other`) exports as `"bad-type"` and comes back as the bad type,
/// as it does through ipfs-cluster.
fn check_json_round_trip(pin: &Pin) {
    if pin.validate().is_err() {
        return;
    }
    let line = encode_pin_json(pin);
    let from_json = decode_pin_json(&line)
        .unwrap_or_else(|e| panic!("export line of a decoded pin does not import: {e}\n{line}"));
    let mut expected = pin.clone();
    if let PinType::Other(_) = expected.pin_type {
        expected.pin_type = PinType::Bad;
    }
    assert_eq!(
        from_json, expected,
        "protobuf -> JSON -> pin changed the pin\n{line}"
    );
}

fuzz_target!(|data: &[u8]| {
    // One Go pin.
    match decode_pin(data) {
        Ok(pin) => {
            let bytes = encode_pin(&pin);
            let again = decode_pin(&bytes).expect("decode_pin(encode_pin(p)) must succeed");
            assert_eq!(again, pin, "decode_pin(encode_pin(p)) != p");
            // A pin that survives Go's round trip is stored as exactly Go's bytes.
            assert_eq!(
                encode_record(&pin),
                bytes,
                "record of a Go-exact pin is not Go's bytes"
            );
            assert_eq!(decode_record(&bytes).expect("Go bytes as a record"), pin);
            check_record_round_trip(&pin);
            // `state export` writes this pin as JSON; importing that line gives it back.
            {
                check_json_round_trip(&pin);
            }
        }
        Err(e) => assert_invalid_input(&e, "decode_pin"),
    }

    // One storage record.
    match decode_record(data) {
        Ok(pin) => {
            assert!(
                decode_pin(data).is_ok(),
                "a record decodes but its Go part does not"
            );
            check_record_round_trip(&pin);
            // `pinvault state export` writes stored records as JSON. The one documented loss:
            // `Some` of Go's zero instant reads back as `None`.
            let go_zero = |t: Option<DateTime<Utc>>| {
                t.is_some_and(|t| t.timestamp() == GO_ZERO_UNIX && t.timestamp_subsec_nanos() == 0)
            };
            if !go_zero(pin.timestamp)
                && !go_zero(pin.options.expire_at)
            {
                check_json_round_trip(&pin);
            }
        }
        Err(e) => assert_invalid_input(&e, "decode_record"),
    }

    // An export stream: read_delimited until the end or the first error.
    let mut input = data;
    let mut records = Vec::new();
    let mut pins = Vec::new();
    let mut clean_end = true;
    while !input.is_empty() {
        let offset = (data.len() - input.len()) as u64;
        let before = input.len();
        let number = records.len() as u64 + 1;
        match read_delimited(&mut input) {
            Ok(Some(pin)) => {
                assert!(
                    input.len() < before,
                    "read_delimited returned a pin without consuming"
                );
                pins.push(pin.clone());
                let pin = pin.validate().map(|()| pin).map_err(|e| e.to_string());
                let bad = pin.is_err();
                records.push(ModelRecord {
                    number,
                    offset,
                    pin,
                });
                if bad {
                    clean_end = false;
                    break;
                }
            }
            Ok(None) => unreachable!("read_delimited returned None with {before} bytes left"),
            Err(e) => {
                assert_invalid_input(&e, "read_delimited");
                records.push(ModelRecord {
                    number,
                    offset,
                    pin: Err(e.to_string()),
                });
                clean_end = false;
                break;
            }
        }
    }
    assert!(matches!(read_delimited(&mut &[][..]), Ok(None)));
    if clean_end {
        let mut framed = Vec::new();
        for pin in &pins {
            write_delimited(&mut framed, pin);
        }
        let mut rest = framed.as_slice();
        for pin in &pins {
            let back = read_delimited(&mut rest)
                .expect("re-framed stream")
                .expect("a pin");
            assert_eq!(&back, pin, "write_delimited/read_delimited round trip");
        }
        assert!(rest.is_empty());
    }

    // The same stream imported into the memory backend, against the model.
    let batch_size = 1 + data.len() % 4;
    let backend = MemoryBackend::new();
    let options = ImportOptions {
        format: TransferFormat::Protobuf,
        batch_size,
        precondition: Precondition::Any,
    };
    let mut reader = data;
    let result = block_on(import_into(&backend, &mut reader, &options, &NoProgress));
    ImportModel::run(&records, batch_size).check(&result, &backend, data.len(), |n, off| {
        format!("import record {n} at byte offset {off}")
    });
});
