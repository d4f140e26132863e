//! `pinvault_core::Multiaddr` against go-multiaddr v0.16.1, the version ipfs-cluster v1.1.6 uses.
//!
//! Every row of `testdata/multiaddr/go_v0.16.1.tsv` (how it is made: the README beside it) is a
//! text or a byte string and Go's verdict on it. For each one pinvault must accept or refuse as
//! Go does, and when both accept: the same bytes, the same text (where Go's text has bytes that
//! are not UTF-8, their U+FFFD replacement), the text parsing back to the same bytes, and the bytes
//! reading back to the same address.

use pinvault_core::Multiaddr;

const GOLDEN: &str = include_str!("../testdata/multiaddr/go_v0.16.1.tsv");

/// Go's text as the generator wrote it: verbatim, or `hex:` and its bytes.
fn go_text(column: &str) -> Vec<u8> {
    match column.strip_prefix("hex:") {
        Some(hex) => hex::decode(hex).expect("hex text column"),
        None => column.as_bytes().to_vec(),
    }
}

fn differences(kind: &str, input: &str, verdict: &str, text: &str, hex: &str) -> Vec<String> {
    let parsed = match kind {
        "T" => input.parse::<Multiaddr>(),
        "B" => Multiaddr::from_bytes(&hex::decode(input).expect("hex input")),
        _ => panic!("unknown input kind {kind:?}"),
    };
    let addr = match (verdict, parsed) {
        ("ERR", Err(_)) => return Vec::new(),
        ("ERR", Ok(addr)) => return vec![format!("Go refuses it ({text}), pinvault reads {addr}")],
        ("OK", Err(e)) => return vec![format!("Go reads {text}, pinvault refuses it: {e}")],
        ("OK", Ok(addr)) => addr,
        _ => panic!("unknown verdict {verdict:?}"),
    };
    let mut out = Vec::new();
    let bytes = hex::encode(addr.as_bytes());
    if bytes != hex {
        out.push(format!("bytes {bytes}, Go's {hex}"));
    }
    let go_text = go_text(text);
    let expected_text = String::from_utf8_lossy(&go_text);
    if addr.to_string() != expected_text {
        out.push(format!("text {addr}, Go's {expected_text}"));
    }
    if let Ok(go_text) = std::str::from_utf8(&go_text) {
        match go_text.parse::<Multiaddr>() {
            Ok(again) if again.as_bytes() == addr.as_bytes() => {}
            Ok(again) => out.push(format!("Go's text reads as {}", hex::encode(again.as_bytes()))),
            Err(e) => out.push(format!("Go's text is refused: {e}")),
        }
    }
    match Multiaddr::from_bytes(addr.as_bytes()) {
        Ok(again) if again == addr => {}
        Ok(again) => out.push(format!("its bytes read back as {again}")),
        Err(e) => out.push(format!("its bytes are refused: {e}")),
    }
    out
}

#[test]
fn every_row_matches_go_multiaddr_v0_16_1() {
    let mut rows = 0;
    let mut failures = Vec::new();
    for (index, line) in GOLDEN.lines().enumerate() {
        let columns: Vec<&str> = line.split('\t').collect();
        let [kind, input, verdict, text, hex] = columns[..] else {
            panic!("line {}: want 5 tab-separated columns: {line:?}", index + 1);
        };
        rows += 1;
        for difference in differences(kind, input, verdict, text, hex) {
            failures.push(format!("line {} ({kind} {input:?}): {difference}", index + 1));
        }
    }
    assert!(rows > 900, "only {rows} rows");
    assert!(
        failures.is_empty(),
        "{} differences from Go in {rows} rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The corpus must exercise every protocol of Go's table, on the accepting side.
#[test]
fn golden_rows_cover_every_go_protocol() {
    let accepted: Vec<&str> = GOLDEN
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            (columns.get(2) == Some(&"OK")).then(|| columns[3])
        })
        .collect();
    let names = [
        "ip4",
        "tcp",
        "dns",
        "dns4",
        "dns6",
        "dnsaddr",
        "udp",
        "dccp",
        "ip6",
        "ip6zone",
        "ipcidr",
        "sctp",
        "p2p-circuit",
        "onion",
        "onion3",
        "garlic64",
        "garlic32",
        "utp",
        "udt",
        "quic",
        "quic-v1",
        "webtransport",
        "certhash",
        "http",
        "http-path",
        "https",
        "p2p",
        "unix",
        "p2p-webrtc-direct",
        "tls",
        "sni",
        "noise",
        "ws",
        "wss",
        "plaintextv2",
        "webrtc-direct",
        "webrtc",
        "memory",
    ];
    for name in names {
        let component = format!("/{name}");
        assert!(
            accepted
                .iter()
                .any(|text| text.contains(&format!("{component}/")) || text.ends_with(&component)),
            "no accepted row has {component}"
        );
    }
}
