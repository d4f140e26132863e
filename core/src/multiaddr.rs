//! [`Multiaddr`]: multiaddresses exactly as go-multiaddr v0.16.1 reads and writes them.
//!
//! ipfs-cluster v1.1.6 keeps a pin's origins as go-multiaddr v0.16.1 values: their bytes in its
//! protobuf, their `String()` in its JSON. The Rust `multiaddr` crate disagrees with that version
//! in many ways (protocols one side lacks, `/unix` paths, peer IDs given as CIDs, `+80` ports,
//! empty values, ...), so a pin passed through it could be refused, or come back different from
//! what ipfs-cluster wrote. This module follows Go's protocol table and transcoders instead
//! (`protocols.go`, `transcoders.go`, `codec.go`, `component.go`), down to the lenient decoders of
//! the Go libraries they call (`encoding/base32`, `encoding/base64`, go-multibase, go-cid,
//! go-multihash, `net.ParseIP`, `url.QueryUnescape`), and keeps the bytes it was given.
//!
//! `core/tests/multiaddr_go_golden.rs` checks it against Go's own verdict, text and bytes for
//! every row of `core/testdata/multiaddr/go_v0.16.1.tsv`.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::{Error, Result};

/// A multiaddress that go-multiaddr v0.16.1 accepts.
///
/// The binary form is the value: it is kept exactly as given, and equality, hashing and ordering
/// compare it. Text is parsed with Go's `NewMultiaddr` rules ([`FromStr`]) and printed as Go's
/// `String()` ([`Display`](fmt::Display)).
///
/// One difference is unavoidable: values read from bytes may hold bytes that are not UTF-8
/// (`/dns`, `/dns4`, `/dns6`, `/dnsaddr`, `/sni` and `/ip6zone` take any bytes but `/`, `/unix`
/// any path). Go prints those bytes raw; `Display` prints U+FFFD for them, so such text does not
/// parse back to the same address. The bytes stay exact; use them, not the text, to store or
/// compare such an address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Multiaddr {
    bytes: Vec<u8>,
}

impl Multiaddr {
    /// Reads the binary form with `NewMultiaddrBytes`'s rules: not empty; known protocol codes;
    /// minimal varints; each value of its protocol's size (a length-prefixed value is never
    /// empty) and valid for it; nothing after a `/unix` path.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        components(bytes).map_err(invalid)?;
        Ok(Multiaddr { bytes: bytes.to_vec() })
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A copy of the binary form.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

impl TryFrom<Vec<u8>> for Multiaddr {
    type Error = Error;

    /// [`Multiaddr::from_bytes`], keeping the vector.
    fn try_from(bytes: Vec<u8>) -> Result<Self> {
        components(&bytes).map_err(invalid)?;
        Ok(Multiaddr { bytes })
    }
}

impl TryFrom<&[u8]> for Multiaddr {
    type Error = Error;

    /// [`Multiaddr::from_bytes`].
    fn try_from(bytes: &[u8]) -> Result<Self> {
        Multiaddr::from_bytes(bytes)
    }
}

impl FromStr for Multiaddr {
    type Err = Error;

    /// Parses text with `NewMultiaddr`'s rules: trailing `/`s are dropped, the text must start
    /// with `/`, names are exact (`ipfs` is an alias of `p2p`), a protocol with a value takes the
    /// next segment, and `/unix` takes the whole rest of the address as its path.
    fn from_str(text: &str) -> Result<Self> {
        let bytes = text_to_bytes(text).map_err(invalid)?;
        Multiaddr::try_from(bytes)
    }
}

impl fmt::Display for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes were checked when this value was made, so this cannot fail.
        let components = components(&self.bytes).map_err(|_| fmt::Error)?;
        for Component { protocol, value } in components {
            f.write_char('/')?;
            f.write_str(protocol.name)?;
            let text = value_to_text(protocol.kind, value);
            if text.is_empty() {
                continue;
            }
            if !(protocol.kind == Kind::Unix && text.starts_with('/')) {
                f.write_char('/')?;
            }
            f.write_str(&text)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Multiaddr").field(&format_args!("{self}")).finish()
    }
}

fn invalid(reason: String) -> Error {
    Error::invalid("multiaddr", reason)
}

/// How a protocol's value is written, checked and printed: one of Go's transcoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No value.
    Flag,
    Ip4,
    Ip6,
    Ip6Zone,
    IpCidr,
    Port,
    Dns,
    Onion,
    Onion3,
    Garlic64,
    Garlic32,
    P2p,
    Unix,
    CertHash,
    HttpPath,
    Memory,
}

impl Kind {
    /// The value's size in bytes, or `None` when a varint length prefixes it.
    fn fixed_size(self) -> Option<usize> {
        match self {
            Kind::Flag => Some(0),
            Kind::Ip4 => Some(4),
            Kind::Ip6 => Some(16),
            Kind::IpCidr => Some(1),
            Kind::Port => Some(2),
            Kind::Onion => Some(12),
            Kind::Onion3 => Some(37),
            Kind::Memory => Some(8),
            Kind::Ip6Zone
            | Kind::Dns
            | Kind::Garlic64
            | Kind::Garlic32
            | Kind::P2p
            | Kind::Unix
            | Kind::CertHash
            | Kind::HttpPath => None,
        }
    }
}

struct Protocol {
    code: usize,
    name: &'static str,
    kind: Kind,
}

const fn protocol(code: usize, name: &'static str, kind: Kind) -> Protocol {
    Protocol { code, name, kind }
}

/// go-multiaddr v0.16.1's table (`protocols.go`), nothing more.
const PROTOCOLS: [Protocol; 38] = [
    protocol(4, "ip4", Kind::Ip4),
    protocol(6, "tcp", Kind::Port),
    protocol(53, "dns", Kind::Dns),
    protocol(54, "dns4", Kind::Dns),
    protocol(55, "dns6", Kind::Dns),
    protocol(56, "dnsaddr", Kind::Dns),
    protocol(273, "udp", Kind::Port),
    protocol(33, "dccp", Kind::Port),
    protocol(41, "ip6", Kind::Ip6),
    protocol(42, "ip6zone", Kind::Ip6Zone),
    protocol(43, "ipcidr", Kind::IpCidr),
    protocol(132, "sctp", Kind::Port),
    protocol(290, "p2p-circuit", Kind::Flag),
    protocol(444, "onion", Kind::Onion),
    protocol(445, "onion3", Kind::Onion3),
    protocol(446, "garlic64", Kind::Garlic64),
    protocol(447, "garlic32", Kind::Garlic32),
    protocol(302, "utp", Kind::Flag),
    protocol(301, "udt", Kind::Flag),
    protocol(460, "quic", Kind::Flag),
    protocol(461, "quic-v1", Kind::Flag),
    protocol(465, "webtransport", Kind::Flag),
    protocol(466, "certhash", Kind::CertHash),
    protocol(480, "http", Kind::Flag),
    protocol(481, "http-path", Kind::HttpPath),
    protocol(443, "https", Kind::Flag),
    protocol(421, "p2p", Kind::P2p),
    protocol(400, "unix", Kind::Unix),
    protocol(276, "p2p-webrtc-direct", Kind::Flag),
    protocol(448, "tls", Kind::Flag),
    protocol(449, "sni", Kind::Dns),
    protocol(454, "noise", Kind::Flag),
    protocol(477, "ws", Kind::Flag),
    protocol(478, "wss", Kind::Flag),
    protocol(7_367_777, "plaintextv2", Kind::Flag),
    protocol(280, "webrtc-direct", Kind::Flag),
    protocol(281, "webrtc", Kind::Flag),
    protocol(777, "memory", Kind::Memory),
];

fn protocol_named(name: &str) -> Option<&'static Protocol> {
    let name = if name == "ipfs" { "p2p" } else { name };
    PROTOCOLS.iter().find(|p| p.name == name)
}

fn protocol_with_code(code: usize) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.code == code)
}

struct Component<'a> {
    protocol: &'static Protocol,
    value: &'a [u8],
}

/// Go's `readMultiaddr` and `validateComponent`: splits and checks the binary form.
fn components(bytes: &[u8]) -> Result<Vec<Component<'_>>, String> {
    if bytes.is_empty() {
        return Err("empty multiaddr".into());
    }
    let mut rest = bytes;
    let mut out: Vec<Component<'_>> = Vec::new();
    while !rest.is_empty() {
        if out.last().is_some_and(|c| c.protocol.kind == Kind::Unix) {
            return Err("nothing may follow a /unix path".into());
        }
        let (code, n) = read_varint_int(rest)?;
        rest = &rest[n..];
        let protocol =
            protocol_with_code(code).ok_or_else(|| format!("unknown protocol code {code}"))?;
        let size = match protocol.kind.fixed_size() {
            Some(size) => size,
            None => {
                let (size, n) = read_varint_int(rest)?;
                rest = &rest[n..];
                if size == 0 {
                    return Err(format!("/{}: empty value", protocol.name));
                }
                size
            }
        };
        if size > rest.len() {
            return Err(format!(
                "/{}: value needs {size} bytes, {} left",
                protocol.name,
                rest.len()
            ));
        }
        let (value, tail) = rest.split_at(size);
        check_value(protocol.kind, value).map_err(|why| format!("/{}: {why}", protocol.name))?;
        out.push(Component { protocol, value });
        rest = tail;
    }
    Ok(out)
}

/// Go's `stringToBytes`. The result still goes through [`components`], as Go's `NewMultiaddr`
/// passes it to `NewMultiaddrBytes`.
fn text_to_bytes(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').collect();
    let Some((&"", mut rest)) = segments.split_first() else {
        return Err(format!("{text:?} does not start with /"));
    };
    if rest.is_empty() {
        return Err("empty multiaddr".into());
    }
    let mut bytes = Vec::new();
    while let Some((&name, after_name)) = rest.split_first() {
        let protocol = protocol_named(name).ok_or_else(|| format!("unknown protocol {name:?}"))?;
        write_uvarint(&mut bytes, protocol.code as u64);
        rest = after_name;
        if protocol.kind == Kind::Flag {
            continue;
        }
        let value_text = match rest.split_first() {
            None => return Err(format!("/{name} needs a value")),
            Some(_) if protocol.kind == Kind::Unix => {
                let path = format!("/{}", rest.join("/"));
                rest = &[];
                path
            }
            Some((&value, after_value)) => {
                rest = after_value;
                value.to_owned()
            }
        };
        let value = text_to_value(protocol.kind, &value_text)
            .and_then(|value| check_value(protocol.kind, &value).map(|()| value))
            .map_err(|why| format!("/{name} {value_text:?}: {why}"))?;
        if protocol.kind.fixed_size().is_none() {
            write_uvarint(&mut bytes, value.len() as u64);
        }
        bytes.extend_from_slice(&value);
    }
    Ok(bytes)
}

/// The transcoders' `StringToBytes`.
fn text_to_value(kind: Kind, text: &str) -> Result<Vec<u8>, String> {
    match kind {
        Kind::Flag => Err("takes no value".into()),
        Kind::Ip4 => go_parse_ip(text)
            .and_then(|ip| ipv4_of(&ip))
            .map(|ip| ip.to_vec())
            .ok_or_else(|| "not an IPv4 address".into()),
        Kind::Ip6 => {
            go_parse_ip(text).map(|ip| ip.to_vec()).ok_or_else(|| "not an IP address".into())
        }
        Kind::Port => parse_decimal(text, u16::MAX.into())
            .map(|port| (port as u16).to_be_bytes().to_vec())
            .ok_or_else(|| "not a port number (0 to 65535, digits only)".into()),
        Kind::IpCidr => parse_decimal(text, u8::MAX.into())
            .map(|bits| vec![bits as u8])
            .ok_or_else(|| "not a number from 0 to 255 (digits only)".into()),
        Kind::Memory => parse_decimal(text, u64::MAX)
            .map(|n| n.to_be_bytes().to_vec())
            .ok_or_else(|| "not a 64-bit unsigned number (digits only)".into()),
        Kind::Dns | Kind::Ip6Zone | Kind::Unix => Ok(text.as_bytes().to_vec()),
        Kind::HttpPath => query_unescape(text.as_bytes()).ok_or_else(|| "bad % escape".into()),
        Kind::P2p => peer_id_from_text(text),
        Kind::CertHash => {
            let bytes = decode_multibase(text)?;
            go_multihash(&bytes)?;
            Ok(bytes)
        }
        Kind::Onion => onion_from_text(text, false),
        Kind::Onion3 => onion_from_text(text, true),
        Kind::Garlic64 => {
            decode_base64(text.as_bytes(), BASE64_I2P, true).ok_or_else(|| "not i2p base64".into())
        }
        Kind::Garlic32 => {
            // Go pads the text with '=' to whole 8-character groups, then decodes it padded.
            let mut padded = text.as_bytes().to_vec();
            padded.resize(padded.len().next_multiple_of(8), b'=');
            decode_base32(&padded, GARLIC32).ok_or_else(|| "not lowercase base32".into())
        }
    }
}

/// The transcoders' `ValidateBytes`, and whatever makes their `BytesToString` fail.
fn check_value(kind: Kind, value: &[u8]) -> Result<(), String> {
    match kind {
        Kind::Flag | Kind::Ip4 | Kind::Ip6 | Kind::Port | Kind::IpCidr | Kind::Memory => Ok(()),
        Kind::Dns | Kind::Ip6Zone if value.is_empty() => Err("empty".into()),
        Kind::Dns | Kind::Ip6Zone if value.contains(&b'/') => Err("contains '/'".into()),
        Kind::Dns | Kind::Ip6Zone => Ok(()),
        Kind::HttpPath if value.is_empty() => Err("empty".into()),
        Kind::HttpPath => Ok(()),
        Kind::Unix => match value {
            [b'/', .., last] if *last != b'/' => Ok(()),
            [b'/', .., _] => Err("path ends in '/'".into()),
            [b'/'] | [] => Err("path too short".into()),
            _ => Err("path does not start with '/'".into()),
        },
        Kind::P2p => check_peer_id(value),
        Kind::CertHash => go_multihash(value).map(|_| ()),
        Kind::Onion | Kind::Onion3 if value.ends_with(&[0, 0]) => Err("port 0".into()),
        Kind::Onion | Kind::Onion3 => Ok(()),
        Kind::Garlic64 if value.len() < 386 => {
            Err(format!("{} bytes, not an i2p address", value.len()))
        }
        Kind::Garlic64 => Ok(()),
        Kind::Garlic32 if value.len() < 35 && value.len() != 32 => {
            Err(format!("{} bytes, not an i2p address", value.len()))
        }
        Kind::Garlic32 => Ok(()),
    }
}

/// The transcoders' `BytesToString`, for a value [`check_value`] accepted.
fn value_to_text(kind: Kind, value: &[u8]) -> String {
    match kind {
        Kind::Flag => String::new(),
        Kind::Ip4 => {
            let mut ip = [0; 4];
            copy_prefix(&mut ip, value);
            Ipv4Addr::from(ip).to_string()
        }
        Kind::Ip6 => {
            let mut ip = [0; 16];
            copy_prefix(&mut ip, value);
            go_ip6_text(&ip)
        }
        Kind::Port | Kind::IpCidr | Kind::Memory => big_endian(value).to_string(),
        Kind::Dns | Kind::Ip6Zone | Kind::Unix => String::from_utf8_lossy(value).into_owned(),
        Kind::HttpPath => query_escape(value),
        Kind::P2p => bs58::encode(value).into_string(),
        Kind::CertHash => format!("u{}", encode_base64(value, BASE64_URL, false)),
        Kind::Onion | Kind::Onion3 => {
            let (host, port) = value.split_at(value.len().saturating_sub(2));
            format!("{}:{}", encode_base32(host, BASE32_LOWER), big_endian(port))
        }
        Kind::Garlic64 => encode_base64(value, BASE64_I2P, true),
        Kind::Garlic32 => encode_base32(value, BASE32_LOWER),
    }
}

fn copy_prefix(to: &mut [u8], from: &[u8]) {
    to.iter_mut().zip(from).for_each(|(t, f)| *t = *f);
}

fn big_endian(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

/// go-varint's `FromUvarint`: at most 9 bytes (63 bits), minimally encoded.
fn read_uvarint(bytes: &[u8]) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate() {
        if i == 8 && byte >= 0x80 {
            return Err("varint longer than 63 bits".into());
        }
        if byte < 0x80 {
            if byte == 0 && i > 0 {
                return Err("varint not minimally encoded".into());
            }
            return Ok((value | u64::from(byte) << (7 * i), i + 1));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
    }
    Err("truncated varint".into())
}

/// go-multiaddr's `ReadVarintCode`: codes and lengths are at most 2^31 - 1.
fn read_varint_int(bytes: &[u8]) -> Result<(usize, usize), String> {
    let (value, n) = read_uvarint(bytes)?;
    if value > i32::MAX as u64 {
        return Err(format!("varint {value} larger than 2^31 - 1"));
    }
    Ok((value as usize, n))
}

fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `strconv.ParseUint(text, 10, _)`: ASCII digits only (no sign, no `_`), at most `max`.
fn parse_decimal(text: &str, max: u64) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes()
        .try_fold(0u64, |n, c| {
            let digit = char::from(c).to_digit(10)?;
            n.checked_mul(10)?.checked_add(digit.into())
        })
        .filter(|&n| n <= max)
}

/// `net.ParseIP` as 16 bytes: an IPv4 address comes back IPv4-mapped; zones are refused.
/// Rust's parsers accept the same texts as Go's `netip.ParseAddr` without a zone.
fn go_parse_ip(text: &str) -> Option<[u8; 16]> {
    match text.parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip.to_ipv6_mapped().octets()),
        Err(_) => text.parse::<Ipv6Addr>().ok().map(|ip| ip.octets()),
    }
}

/// `net.IP.To4`.
fn ipv4_of(ip: &[u8; 16]) -> Option<[u8; 4]> {
    let (prefix, v4) = ip.split_at(12);
    let mut out = [0; 4];
    copy_prefix(&mut out, v4);
    (prefix == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).then_some(out)
}

/// go-multiaddr's `ip6BtS`: `::ffff:` and a dotted quad for an IPv4-mapped address, otherwise
/// RFC 5952 (lowercase, the first longest run of two or more zero groups as `::`).
fn go_ip6_text(ip: &[u8; 16]) -> String {
    if let Some(v4) = ipv4_of(ip) {
        return format!("::ffff:{}", Ipv4Addr::from(v4));
    }
    let groups: Vec<u16> = ip.chunks(2).map(|g| u16::from(g[0]) << 8 | u16::from(g[1])).collect();
    let (mut zeros_at, mut zeros_len) = (groups.len(), 0);
    let mut i = 0;
    while i < groups.len() {
        let run = groups[i..].iter().take_while(|&&g| g == 0).count();
        if run >= 2 && run > zeros_len {
            (zeros_at, zeros_len) = (i, run);
        }
        i += run.max(1);
    }
    let mut text = String::new();
    let mut i = 0;
    while i < groups.len() {
        if i == zeros_at {
            text.push_str("::");
            i += zeros_len;
            if i >= groups.len() {
                break;
            }
        } else if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{:x}", groups[i]);
        i += 1;
    }
    text
}

/// `url.QueryUnescape`: `+` is a space, `%` must be followed by two hex digits.
fn query_unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match c {
            b'%' => {
                let high = char::from(*text.get(i + 1)?).to_digit(16)?;
                let low = char::from(*text.get(i + 2)?).to_digit(16)?;
                out.push((high << 4 | low) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `url.QueryEscape`: keeps `A-Za-z0-9-_.~`, writes a space as `+`, anything else as `%XX`.
fn query_escape(value: &[u8]) -> String {
    let mut text = String::with_capacity(value.len());
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                text.push(char::from(b));
            }
            b' ' => text.push('+'),
            _ => {
                let _ = write!(text, "%{b:02X}");
            }
        }
    }
    text
}

/// go-multiaddr's `onionStB` / `onion3StB`.
fn onion_from_text(text: &str, v3: bool) -> Result<Vec<u8>, String> {
    let mut parts = text.split(':');
    let (Some(host), Some(port), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("want host:port".into());
    };
    if v3 && host.len() != 56 {
        return Err("host is not 56 characters".into());
    }
    let upper = go_to_upper(host).into_bytes();
    let decoded = decode_base32(&upper, BASE32_STD_PADDED).ok_or("host is not base32")?;
    let mut value = if v3 {
        // Go takes host[0:35] of its decode buffer without checking the decoded length. When
        // padding inside the 56 characters makes the result shorter, the rest comes from that
        // buffer, which Go decoded in place over the (newline-stripped) uppercase text; past the
        // text's end (`ı` and `ſ` shorten it) the buffer is zeros up to Go's allocation size,
        // and below 33 bytes that allocation is too small, so Go fails.
        let mut buffer = upper.clone();
        let stripped: Vec<u8> = upper.iter().copied().filter(|&c| !is_newline(c)).collect();
        buffer[..stripped.len()].copy_from_slice(&stripped);
        buffer[..decoded.len()].copy_from_slice(&decoded);
        if buffer.len() <= 32 {
            return Err("host too short once uppercased".into());
        }
        buffer.resize(35, 0);
        buffer
    } else if decoded.len() == 10 {
        decoded
    } else {
        return Err("host is not 16 base32 characters".into());
    };
    match parse_decimal(port, u16::MAX.into()) {
        Some(port @ 1..) => value.extend_from_slice(&(port as u16).to_be_bytes()),
        _ => return Err("port is not a number from 1 to 65535".into()),
    }
    Ok(value)
}

/// Go's `strings.ToUpper`, which maps each character to one character: Rust's uppercase where
/// that is one character, else the character itself. Only ASCII can decode as base32, and the
/// only non-ASCII letters whose uppercase is ASCII are `ı` and `ſ`; other characters matter
/// only where Go's onion3 parser reads its buffer past the decoded bytes (see above).
fn go_to_upper(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// The peer ID rules of `p2pStB`: a base58btc multihash when the text starts with `Qm` or
/// `1`, otherwise a CID (any multibase) with the libp2p-key codec, whose multihash is used.
fn peer_id_from_text(text: &str) -> Result<Vec<u8>, String> {
    if text.starts_with("Qm") || text.starts_with('1') {
        return bs58::decode(text).into_vec().map_err(|_| "not base58btc".into());
    }
    // go-cid's Decode.
    if text.len() < 2 {
        return Err("CID too short".into());
    }
    let cid = decode_multibase(text)?;
    if cid.len() > 2 && cid[0] == 0x12 && cid[1] == 0x20 {
        return Err("a CIDv0, whose codec is dag-pb, not libp2p-key".into());
    }
    let (version, n) = read_uvarint(&cid)?;
    if version != 1 {
        return Err(format!("CID version {version}"));
    }
    let (codec, m) = read_uvarint(&cid[n..])?;
    let multihash = &cid[n + m..];
    go_multihash(multihash)?;
    if codec != 0x72 {
        return Err(format!("CID codec {codec:#x}, not libp2p-key (0x72)"));
    }
    Ok(multihash.to_vec())
}

/// `p2pVal`: an identity multihash, or sha2-256 with a 32-byte digest.
fn check_peer_id(value: &[u8]) -> Result<(), String> {
    match go_multihash(value)? {
        (0x00, _) | (0x12, 32) => Ok(()),
        (0x12, len) => Err(format!("sha2-256 digest of {len} bytes")),
        (code, _) => Err(format!("multihash code {code:#x} is neither identity nor sha2-256")),
    }
}

/// go-multihash's `Decode`: any code, minimal varints, a length that matches the rest exactly.
/// Returns the code and the digest length.
fn go_multihash(bytes: &[u8]) -> Result<(u64, usize), String> {
    if bytes.len() < 2 {
        return Err("multihash too short".into());
    }
    let (code, n) = read_uvarint(bytes)?;
    let (len, m) = read_uvarint(&bytes[n..])?;
    let digest = bytes.len() - n - m;
    if len > i32::MAX as u64 || len as usize != digest {
        return Err(format!("multihash says {len} digest bytes, has {digest}"));
    }
    Ok((code, digest))
}

/// go-multibase v0.3.0's `Decode`, base by base as lenient as Go's decoders.
fn decode_multibase(text: &str) -> Result<Vec<u8>, String> {
    let mut chars = text.chars();
    let prefix = chars.next().ok_or("empty multibase text")?;
    let body = chars.as_str().as_bytes();
    let decoded = match prefix {
        '\0' => Some(body.to_vec()),
        '0' => decode_base2(body),
        'f' | 'F' => decode_hex(body),
        'b' | 'B' => decode_base32(body, BASE32_ANY_CASE),
        'c' | 'C' => decode_base32(body, BASE32_ANY_CASE_PADDED),
        'v' | 'V' => decode_base32(body, BASE32_HEX_ANY_CASE),
        't' | 'T' => decode_base32(body, BASE32_HEX_ANY_CASE_PADDED),
        'k' | 'K' if body.is_empty() => None,
        'k' | 'K' => decode_radix(body, 36, b'0', |c| char::from(c).to_digit(36)),
        'z' | 'Z' if body.is_empty() => None,
        'z' => bs58::decode(body).into_vec().ok(),
        'Z' => bs58::decode(body).with_alphabet(bs58::Alphabet::FLICKR).into_vec().ok(),
        'm' => decode_base64(body, BASE64_STD, false),
        'M' => decode_base64(body, BASE64_STD, true),
        'u' => decode_base64(body, BASE64_URL, false),
        'U' => decode_base64(body, BASE64_URL, true),
        '🚀' => decode_emoji(chars.as_str()),
        _ => return Err(format!("unsupported multibase prefix {prefix:?}")),
    };
    decoded.ok_or_else(|| format!("not valid multibase {prefix:?}"))
}

fn is_newline(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

fn digit_in(alphabet: &[u8], c: u8, any_case: bool) -> Option<u8> {
    let at = alphabet.iter().position(|&a| a == c || (any_case && a.eq_ignore_ascii_case(&c)))?;
    u8::try_from(at).ok()
}

#[derive(Clone, Copy)]
struct Base32 {
    alphabet: &'static [u8; 32],
    any_case: bool,
    padded: bool,
}

const BASE32_STD: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const BASE32_HEX: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
/// `base32.StdEncoding` (onion hosts, after uppercasing).
const BASE32_STD_PADDED: Base32 = Base32 { alphabet: BASE32_STD, any_case: false, padded: true };
/// go-multiaddr's i2p base32 encoding: lowercase only.
const GARLIC32: Base32 = Base32 { alphabet: BASE32_LOWER, any_case: false, padded: true };
/// go-base32's encodings that go-multibase uses: either case is accepted.
const BASE32_ANY_CASE: Base32 = Base32 { alphabet: BASE32_STD, any_case: true, padded: false };
const BASE32_ANY_CASE_PADDED: Base32 = Base32 { padded: true, ..BASE32_ANY_CASE };
const BASE32_HEX_ANY_CASE: Base32 = Base32 { alphabet: BASE32_HEX, any_case: true, padded: false };
const BASE32_HEX_ANY_CASE_PADDED: Base32 = Base32 { padded: true, ..BASE32_HEX_ANY_CASE };

/// The base32 decoding of Go's `encoding/base32` and go-base32 (the same loop): newlines are
/// skipped; trailing bits need not be zero; unpadded, a last group of 1, 3 or 6 characters is
/// dropped without error; padded, the `=`s must complete their group, and whatever follows them
/// is ignored as long as the first `=` is among the last 8 characters.
fn decode_base32(input: &[u8], base: Base32) -> Option<Vec<u8>> {
    let src: Vec<u8> = input.iter().copied().filter(|&c| !is_newline(c)).collect();
    let mut out = Vec::with_capacity(src.len() / 8 * 5 + 5);
    let mut rest = &src[..];
    while !rest.is_empty() {
        let mut group = [0u8; 8];
        let mut len = 0;
        let mut end = false;
        while len < 8 {
            let Some((&c, tail)) = rest.split_first() else {
                if base.padded {
                    return None;
                }
                end = true;
                break;
            };
            rest = tail;
            if base.padded && c == b'=' && len >= 2 && rest.len() < 8 {
                let pads = 7 - len;
                if rest.len() < pads
                    || rest[..pads].iter().any(|&p| p != b'=')
                    || matches!(len, 3 | 6)
                {
                    return None;
                }
                end = true;
                break;
            }
            group[len] = digit_in(base.alphabet, c, base.any_case)?;
            len += 1;
        }
        let bits = group.iter().fold(0u64, |acc, &d| acc << 5 | u64::from(d));
        let bytes = match len {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bits.to_be_bytes()[3..3 + bytes]);
        if end {
            break;
        }
    }
    Some(out)
}

fn encode_base32(data: &[u8], alphabet: &[u8; 32]) -> String {
    let mut text = String::with_capacity((data.len() * 8).div_ceil(5));
    let (mut bits, mut count) = (0u32, 0);
    for &b in data {
        bits = (bits << 8 | u32::from(b)) & 0xfff;
        count += 8;
        while count >= 5 {
            count -= 5;
            text.push(char::from(alphabet[(bits >> count) as usize & 31]));
        }
    }
    if count > 0 {
        text.push(char::from(alphabet[(bits << (5 - count)) as usize & 31]));
    }
    text
}

const BASE64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// go-multiaddr's i2p alphabet for garlic64.
const BASE64_I2P: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~";

/// Go's `encoding/base64` decoding (not strict): newlines are skipped anywhere; trailing bits
/// need not be zero; padded, the last group must be completed with `=`; unpadded, `=` is refused.
fn decode_base64(input: &[u8], alphabet: &[u8; 64], padded: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut i = 0;
    let skip_newlines = |mut i: usize| {
        while input.get(i).copied().is_some_and(is_newline) {
            i += 1;
        }
        i
    };
    loop {
        let mut group = [0u8; 4];
        let mut len = 0;
        let mut end = false;
        while len < 4 {
            let Some(&c) = input.get(i) else {
                match len {
                    0 => return Some(out),
                    1 => return None,
                    _ if padded => return None,
                    _ => {}
                }
                end = true;
                break;
            };
            i += 1;
            if let Some(d) = digit_in(alphabet, c, false) {
                group[len] = d;
                len += 1;
                continue;
            }
            if is_newline(c) {
                continue;
            }
            if !padded || c != b'=' || len < 2 {
                return None;
            }
            if len == 2 {
                i = skip_newlines(i);
                if input.get(i) != Some(&b'=') {
                    return None;
                }
                i += 1;
            }
            if skip_newlines(i) < input.len() {
                return None;
            }
            end = true;
            break;
        }
        let bits = group.iter().fold(0u32, |acc, &d| acc << 6 | u32::from(d));
        out.extend_from_slice(&bits.to_be_bytes()[1..len]);
        if end {
            return Some(out);
        }
    }
}

fn encode_base64(data: &[u8], alphabet: &[u8; 64], padded: bool) -> String {
    let mut text = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let mut group = [0u8; 3];
        copy_prefix(&mut group, chunk);
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for k in 0..=chunk.len() {
            text.push(char::from(alphabet[(bits >> (18 - 6 * k)) as usize & 63]));
        }
        if padded {
            for _ in chunk.len()..3 {
                text.push('=');
            }
        }
    }
    text
}

/// Go's `hex.DecodeString`: even length, either case.
fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            Some((high << 4 | low) as u8)
        })
        .collect()
}

/// go-multibase's base2: zeros are added in front up to whole bytes, then each 8 characters are
/// `strconv.ParseInt(_, 2, 0)` truncated to a byte, so a leading `+` or `-` is accepted.
fn decode_base2(text: &[u8]) -> Option<Vec<u8>> {
    let mut padded = vec![b'0'; text.len().next_multiple_of(8) - text.len()];
    padded.extend_from_slice(text);
    padded
        .chunks(8)
        .map(|chunk| {
            let (negative, digits) = match chunk.split_first() {
                Some((b'-', digits)) => (true, digits),
                Some((b'+', digits)) => (false, digits),
                _ => (false, chunk),
            };
            let mut n = 0i64;
            for &d in digits {
                n = n << 1 | i64::from(char::from(d).to_digit(2)?);
            }
            let n = if negative { -n } else { n };
            Some(n.to_le_bytes()[0])
        })
        .collect()
}

/// A number's digits, most significant first, as go-base36 reads them: each leading `zero`
/// digit is a zero byte, the rest is the number in big-endian bytes.
fn decode_radix(
    text: &[u8],
    radix: u32,
    zero: u8,
    digit: impl Fn(u8) -> Option<u32>,
) -> Option<Vec<u8>> {
    let mut number: Vec<u8> = Vec::new();
    for &c in text {
        let mut carry = digit(c)?;
        for byte in number.iter_mut().rev() {
            let n = u32::from(*byte) * radix + carry;
            *byte = n.to_le_bytes()[0];
            carry = n >> 8;
        }
        while carry > 0 {
            number.insert(0, carry.to_le_bytes()[0]);
            carry >>= 8;
        }
    }
    let mut bytes = vec![0; text.iter().take_while(|&&c| c == zero).count()];
    bytes.append(&mut number);
    Some(bytes)
}

/// The base256emoji alphabet, byte 0 first.
const EMOJI: &str = "🚀🪐☄🛰🌌🌑🌒🌓🌔🌕🌖🌗🌘🌍🌏🌎🐉☀💻🖥💾💿😂❤😍🤣😊🙏💕😭😘👍😅👏😁🔥🥰💔💖💙😢🤔😆🙄💪😉☺👌🤗💜😔😎😇🌹🤦🎉💞✌✨🤷😱😌🌸🙌😋💗💚😏💛🙂💓🤩😄😀🖤😃💯🙈👇🎶😒🤭❣😜💋👀😪😑💥🙋😞😩😡🤪👊🥳😥🤤👉💃😳✋😚😝😴🌟😬🙃🍀🌷😻😓⭐✅🥺🌈😈🤘💦✔😣🏃💐☹🎊💘😠☝😕🌺🎂🌻😐🖕💝🙊😹🗣💫💀👑🎵🤞😛🔴😤🌼😫⚽🤙☕🏆🤫👈😮🙆🍻🍃🐶💁😲🌿🧡🎁⚡🌞🎈❌✊👋😰🤨😶🤝🚶💰🍓💢🤟🙁🚨💨🤬✈🎀🍺🤓😙💟🌱😖👶🥴▶➡❓💎💸⬇😨🌚🦋😷🕺⚠🙅😟😵👎🤲🤠🤧📌🔵💅🧐🐾🍒😗🤑🌊🤯🐷☎💧😯💆👆🎤🙇🍑❄🌴💣🐸💌📍🥀🤢👅💡💩👐📸👻🤐🤮🎼🥵🚩🍎🍊👼💍📣🥂";

fn decode_emoji(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| EMOJI.chars().position(|e| e == c).and_then(|at| u8::try_from(at).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Multiaddr {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn refused(text: &str) -> bool {
        matches!(text.parse::<Multiaddr>(), Err(Error::InvalidInput { what, .. }) if what == "multiaddr")
    }

    #[test]
    fn cluster_addresses_round_trip() {
        for text in [
            "/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
            "/ip6/::1/udp/4001/quic-v1/webtransport",
            "/dns4/cluster.example/tcp/443/tls/sni/cluster.example/http/http-path/api%2Fv0",
            "/unix/tmp/ipfs-cluster/api.sock",
            "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit",
        ] {
            let addr = parse(text);
            assert_eq!(addr.to_string(), text);
            assert_eq!(Multiaddr::from_bytes(addr.as_bytes()).unwrap(), addr);
            assert_eq!(Multiaddr::try_from(addr.to_vec()).unwrap(), addr);
        }
    }

    #[test]
    fn text_is_normalized_like_go() {
        for (text, canonical) in [
            ("/ip4/1.2.3.4/tcp/0080/", "/ip4/1.2.3.4/tcp/80"),
            (
                "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
                "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
            ),
            ("/ip6/1.2.3.4", "/ip6/::ffff:1.2.3.4"),
            ("/ip4/::ffff:1.2.3.4", "/ip4/1.2.3.4"),
            ("/ip6/2001:DB8:0:0:1:0:0:1", "/ip6/2001:db8::1:0:0:1"),
            ("/ip6/::1.2.3.4", "/ip6/::102:304"),
            ("/unix//tmp/x.sock/", "/unix//tmp/x.sock"),
            ("/http-path/a%20b%2fc", "/http-path/a+b%2Fc"),
            (
                "/certhash/zQmbWTwYGcmdyK9CYfNBcfs9nhZs17a6FQ4Y8oea278xx41",
                "/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
            ),
            (
                "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
                "/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
            ),
            ("/onion/TIMAQ4YGG2IEGCI7:01234", "/onion/timaq4ygg2iegci7:1234"),
        ] {
            assert_eq!(parse(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "",
            "/",
            "ip4/1.2.3.4",
            "/ip4/1.2.3.4/tcp/+80",
            "/ip4/01.2.3.4",
            "/ip6/fe80::1%eth0",
            "/dns4//tcp/1",
            "/ip6zone/",
            "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK",
            "/p2p/bafybeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
            "/ip4/1.2.3.4/tcp/80/p2p-webrtc-star",
            "/ip4/1.2.3.4/tcp/80/x-parity-ws/%2Fpath",
            "/http-path/a%zz",
            "/http-path/",
            "/onion/timaq4ygg2iegci7:0",
            "/garlic32/566NIXIMLXDZPANMN4QOUUCVUA3K7NENIWSS47LI5R6UGOERTZUQ",
            "/memory/18446744073709551616",
            "/IP4/1.2.3.4",
        ] {
            assert!(refused(text), "{text:?} should be refused");
        }
    }

    #[test]
    fn binary_rules() {
        let ok = |hex: &str| Multiaddr::from_bytes(&hex::decode(hex).unwrap()).is_ok();
        assert!(ok("0401020304"));
        assert!(!ok(""), "empty");
        assert!(!ok("840001020304"), "non-minimal code varint");
        assert!(!ok("35810061"), "non-minimal length varint");
        assert!(!ok("3500"), "empty dns value");
        assert!(!ok("3503612f62"), "dns value with '/'");
        assert!(!ok("040102030405"), "trailing byte");
        assert!(!ok("900306782e736f636b"), "unix path without leading '/'");
        assert!(!ok("90030b2f746d702f782e736f636b060050"), "component after unix");
        assert!(!ok("9302"), "p2p-webrtc-star is not in Go's table");
        assert!(!ok("ffffffff07"), "unknown code 2^31 - 1");
        assert!(!ok("8080808008"), "code over 2^31 - 1");
        assert!(ok("a503020000"), "identity peer ID of length 0");
        assert!(ok("e1d8c103"), "plaintextv2");
    }

    #[test]
    fn display_of_non_utf8_values_is_lossy_but_bytes_stay_exact() {
        let addr = Multiaddr::from_bytes(&[0x35, 0x01, 0xff]).unwrap();
        assert_eq!(addr.to_string(), "/dns/\u{fffd}");
        assert_eq!(addr.as_bytes(), [0x35, 0x01, 0xff]);
        assert_ne!(parse(&addr.to_string()), addr);
    }

    #[test]
    fn order_and_equality_are_by_bytes() {
        let mut addrs = [parse("/tcp/2"), parse("/ip4/9.9.9.9"), parse("/tcp/10")];
        addrs.sort();
        let texts: Vec<String> = addrs.iter().map(Multiaddr::to_string).collect();
        assert_eq!(texts, ["/ip4/9.9.9.9", "/tcp/2", "/tcp/10"]);
        assert_eq!(parse("/tcp/080"), parse("/tcp/80"));
        assert_eq!(format!("{:?}", parse("/tcp/80")), "Multiaddr(/tcp/80)");
    }

    #[test]
    fn go_base32_quirks() {
        let raw = BASE32_ANY_CASE;
        let padded = BASE32_ANY_CASE_PADDED;
        assert_eq!(decode_base32(b"MZXW6", raw).unwrap(), b"foo");
        assert_eq!(decode_base32(b"mzxw6", raw).unwrap(), b"foo");
        assert_eq!(decode_base32(b"MZ\nXW6\r", raw).unwrap(), b"foo");
        // A last group of 1, 3 or 6 characters is dropped; trailing bits are ignored.
        assert_eq!(decode_base32(b"MZXW6YTBA", raw).unwrap(), b"fooba");
        assert_eq!(decode_base32(b"MZXW7", raw).unwrap(), b"foo");
        assert_eq!(decode_base32(b"MZXW6===", padded).unwrap(), b"foo");
        assert_eq!(decode_base32(b"MZXW6===ab", padded).unwrap(), b"foo");
        assert_eq!(decode_base32(b"MZXW6==", padded), None);
        assert_eq!(decode_base32(b"MZXW6", padded), None);
        assert_eq!(decode_base32(b"MZX=====", padded), None);
        assert_eq!(decode_base32(b"MZXW6===", raw), None);
        assert_eq!(decode_base32(b"mzxw6===", GARLIC32).unwrap(), b"foo");
        assert_eq!(decode_base32(b"MZXW6===", GARLIC32), None);
        assert_eq!(encode_base32(b"foob", BASE32_LOWER), "mzxw6yq");
    }

    #[test]
    fn go_base64_quirks() {
        assert_eq!(decode_base64(b"Zm9v", BASE64_STD, false).unwrap(), b"foo");
        assert_eq!(decode_base64(b"Zm9vYg", BASE64_STD, false).unwrap(), b"foob");
        assert_eq!(decode_base64(b"Zm9vYh", BASE64_STD, false).unwrap(), b"foob");
        assert_eq!(decode_base64(b"Zm\n9v\r\nYg==\n", BASE64_STD, true).unwrap(), b"foob");
        assert_eq!(decode_base64(b"Zm9vYg=\n=", BASE64_STD, true).unwrap(), b"foob");
        assert_eq!(decode_base64(b"Zm9vYg", BASE64_STD, true), None);
        assert_eq!(decode_base64(b"Zm9vYg=", BASE64_STD, true), None);
        assert_eq!(decode_base64(b"Zm9vYg==x", BASE64_STD, true), None);
        assert_eq!(decode_base64(b"Zm9vYg==", BASE64_STD, false), None);
        assert_eq!(decode_base64(b"Zm9vY", BASE64_STD, false), None);
        assert_eq!(encode_base64(b"foob", BASE64_URL, false), "Zm9vYg");
        assert_eq!(encode_base64(b"foob", BASE64_I2P, true), "Zm9vYg==");
    }

    #[test]
    fn go_multibase_quirks() {
        let hello = [0x00, 0x05, b'h', b'e', b'l', b'l', b'o'];
        for text in [
            "\0\0\x05hello",
            "000000000000001010110100001100101011011000110110001101111",
            "00000000000000101+110100001100101011011000110110001101111",
            "F000568656c6C6F",
            "baacwqzlmnrxq",
            "BAACWQZLMNRXQ",
            "CAACWQZLMNRXQ====",
            "V002MGPBCDHNG",
            "T002mgpbcdhng====",
            "K023viwz88f",
            "Z13Gc12XcM",
            "MAAVoZWxsbw==",
            "UAAVoZWxsbw==",
            "mAAVoZWxsbw",
            "uAAVoZWxsbw",
            "🚀🚀🌑😴✋🍀🍀😓",
        ] {
            assert_eq!(decode_multibase(text).unwrap(), hello, "{text:?}");
        }
        assert_eq!(decode_base2(b"-0000001").unwrap(), [0xff]);
        for text in ["", "z", "k", "7000", "9000", "R000", "h000", "f0", "🚀x"] {
            assert!(decode_multibase(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn emoji_alphabet_is_the_multibase_one() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded = cid::multibase::encode(cid::multibase::Base::Base256Emoji, &all);
        assert_eq!(encoded.strip_prefix('🚀'), Some(EMOJI));
        assert_eq!(EMOJI.chars().count(), 256);
    }

    #[test]
    fn ip6_text_is_go_rfc5952() {
        let text = |s: &str| go_ip6_text(&s.parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(text("::"), "::");
        assert_eq!(text("1:0:0:1:0:0:0:1"), "1:0:0:1::1");
        assert_eq!(text("1:0:0:0:1:0:0:1"), "1::1:0:0:1");
        assert_eq!(text("1:0:1:0:1:0:1:0"), "1:0:1:0:1:0:1:0");
        assert_eq!(text("::ffff:0:0"), "::ffff:0.0.0.0");
        assert_eq!(text("::fffe:1.2.3.4"), "::fffe:102:304");
    }
}
