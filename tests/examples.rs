//! The shipped examples stay real: `examples/pinset.ndjson` is exactly what the codec writes for
//! the pins it holds (so it reads like an `ipfs-cluster-service state export`), and it covers
//! what the README says it covers.

use std::path::Path;

use pinvault::codec::ndjson::{decode_pin_json, encode_pin_json};
use pinvault::PinType;

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name))
        .unwrap()
}

#[test]
fn example_pinset_is_canonical_codec_output() {
    let text = example("pinset.ndjson");
    let pins: Vec<_> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let pin = decode_pin_json(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            assert_eq!(encode_pin_json(&pin), line, "line {} is not what the codec writes", i + 1);
            pin.validate().unwrap();
            pin
        })
        .collect();
    assert_eq!(pins.len(), 20);
    assert!(pins.iter().any(|p| p.cid.to_string().starts_with("Qm")), "a CIDv0 is in the example");
    assert!(pins.iter().any(|p| p.cid.to_string().starts_with("baf")), "a CIDv1 is in the example");
    assert!(pins.iter().filter(|p| !p.allocations.is_empty()).count() >= 10);
    assert!(pins.iter().filter(|p| p.options.expire_at.is_some()).count() >= 5);
    assert!(pins.iter().filter(|p| !p.options.metadata.is_empty()).count() >= 5);
    for t in PinType::ALL {
        assert!(pins.iter().any(|p| p.pin_type == t), "a {t} is in the example");
    }
}

#[test]
fn demo_script_imports_the_example_pinset() {
    let demo = example("demo.pinvault");
    assert!(demo.contains("state import examples/pinset.ndjson"));
    assert!(demo.contains("--if-absent"));
    assert!(demo.contains("pin ls --peer"));
    assert!(demo.contains("pin ls --expiring-before"));
    assert!(demo.lines().any(|l| l.trim() == "state export"));
}
