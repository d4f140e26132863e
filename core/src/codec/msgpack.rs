//! ipfs-cluster's full-state snapshot, as `state/dsstate`'s `Marshal` writes it and `Unmarshal`
//! reads it: a stream of msgpack maps `{"k": <key>, "v": <value>}`, one per pin, with no
//! framing between them. `k` is the pin's datastore key without its namespace: the CID's bytes
//! in RFC 4648 base32 (upper case, no padding), as go-ipfs-ds-help's `NewKeyFromBinary`. `v`
//! is the pin's protobuf (`ProtoMarshal`, [`super::protobuf::encode_pin`]).
//!
//! Encoding is byte-for-byte what Go writes with `codec.MsgpackHandle{}` (ugorji/go): with
//! `WriteExt` off, strings and byte slices alike use msgpack's legacy "raw" family (fixraw,
//! raw16, raw32: there is no 8-bit length form), so a 55-character key gets a 16-bit length.
//! Decoding is lenient as Go's is: keys and values may be str or bin of any width, the map may
//! hold its two entries in either order.
//!
//! The reading of a stream (bounded lengths, positions in errors) is in [`crate::transfer`];
//! this module turns one entry into bytes and one entry's `k` and `v` into a pin.

use cid::multibase::{self, Base};
use rmp::Marker;

use super::protobuf::{decode_pin_for_key, encode_pin};
use crate::pin::{cid_from_bytes, Pin};
use crate::{Cid, Error, Result};

/// The datastore key ipfs-cluster stores `cid` under (without the namespace).
pub fn dsstate_key(cid: &Cid) -> String {
    let encoded = multibase::encode(Base::Base32Upper, cid.to_bytes());
    // multibase prefixes its base's code ('B'); the datastore key is the bare base32.
    encoded.get(1..).unwrap_or_default().to_owned()
}

/// The CID a datastore key names.
pub fn cid_from_dsstate_key(key: &str) -> Result<Cid> {
    let bad = |why: String| Error::invalid(format!("dsstate key {key:?}"), why);
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(bad("not upper-case base32 without padding".into()));
    }
    let (_, bytes) = multibase::decode(format!("B{key}")).map_err(|e| bad(e.to_string()))?;
    cid_from_bytes(&bytes).map_err(|e| bad(e.to_string()))
}

/// Appends one snapshot entry for `pin`, as Go's `Marshal` writes it.
pub fn write_entry(out: &mut Vec<u8>, pin: &Pin) {
    out.push(Marker::FixMap(2).to_u8());
    write_raw(out, b"k");
    write_raw(out, dsstate_key(&pin.cid).as_bytes());
    write_raw(out, b"v");
    write_raw(out, &encode_pin(pin));
}

/// A legacy msgpack raw (what ugorji's encoder writes for strings and `[]byte` without
/// `WriteExt`): fixraw below 32 bytes, then raw16, then raw32.
fn write_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        n if n < 32 => out.push(Marker::FixStr(n as u8).to_u8()),
        n if n <= usize::from(u16::MAX) => {
            out.push(Marker::Str16.to_u8());
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(Marker::Str32.to_u8());
            // Pins are capped far below 4 GiB (protobuf::MAX_FRAME_LEN).
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

/// How the next item's length is encoded, from its marker byte: a map of `n` entries, or a
/// string/binary whose length is inline (`Inline(n)`) or in the next 1, 2 or 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A map with this many entries inline.
    Map(u32),
    /// A map whose entry count is in the next 2 (map16) or 4 (map32) bytes.
    MapLen(u8),
    /// A str/bin of this length.
    Bytes(u32),
    /// A str/bin whose length is in the next 1, 2 or 4 bytes.
    BytesLen(u8),
    /// Anything else: not part of a snapshot.
    Other(u8),
}

/// Classifies a marker byte of a snapshot stream.
pub fn item(marker: u8) -> Item {
    match Marker::from_u8(marker) {
        Marker::FixMap(n) => Item::Map(u32::from(n)),
        Marker::Map16 => Item::MapLen(2),
        Marker::Map32 => Item::MapLen(4),
        Marker::FixStr(n) => Item::Bytes(u32::from(n)),
        Marker::Str8 | Marker::Bin8 => Item::BytesLen(1),
        Marker::Str16 | Marker::Bin16 => Item::BytesLen(2),
        Marker::Str32 | Marker::Bin32 => Item::BytesLen(4),
        _ => Item::Other(marker),
    }
}

/// The pin of one entry, from its `k` and `v` bytes, as ipfs-cluster lists it: the key names
/// the CID (dsstate's `deserializePin` overwrites the record's own `Cid` with the key's).
pub fn decode_entry(key: &[u8], value: &[u8]) -> Result<Pin> {
    let key = std::str::from_utf8(key)
        .map_err(|_| Error::invalid("dsstate entry", "its key is not text"))?;
    let cid = cid_from_dsstate_key(key)?;
    decode_pin_for_key(value, cid).map_err(|e| match e {
        Error::InvalidInput { what, reason, source } => {
            Error::InvalidInput { what: format!("dsstate entry {key}: {what}"), reason, source }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::parse_cid;

    #[test]
    fn keys_are_bare_upper_base32_of_the_cid_bytes() {
        let v0 = parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap();
        let key = dsstate_key(&v0);
        // 34 bytes of CIDv0 (0x12 0x20 + digest): 55 base32 characters, starting "CIQ".
        assert_eq!(key.len(), 55);
        assert!(key.starts_with("CIQ"), "{key}");
        assert_eq!(cid_from_dsstate_key(&key).unwrap(), v0);
        for bad in ["", "ciq", "CIQ=", "/CIQA", "CIQ1"] {
            assert!(cid_from_dsstate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_use_legacy_raw_lengths() {
        let pin = Pin::new(parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap());
        let mut out = Vec::new();
        write_entry(&mut out, &pin);
        assert_eq!(&out[..3], &[0x82, 0xa1, b'k']);
        // The 55-byte key is raw16 (0xda), never str8 (0xd9), as ugorji writes it.
        assert_eq!(&out[3..6], &[0xda, 0x00, 55]);
        let value_at = 6 + 55;
        assert_eq!(&out[value_at..value_at + 2], &[0xa1, b'v']);
        let record = encode_pin(&pin);
        assert_eq!(&out[out.len() - record.len()..], &record[..]);
        assert_eq!(decode_entry(&out[6..61], &record).unwrap(), pin);
    }

    #[test]
    fn the_key_names_the_cid_as_dsstate_reads_it() {
        let a = Pin::new(parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap());
        let b = parse_cid("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi").unwrap();
        let pin = decode_entry(dsstate_key(&b).as_bytes(), &encode_pin(&a)).unwrap();
        assert_eq!(pin.cid, b);
        assert_eq!(Pin { cid: a.cid, ..pin }, a);
    }
}
