//! The frame of pinvault's small record files (a staged object's `meta`, a published set's
//! `manifest`): a magic that says which record it is, and a checksum, so a damaged or foreign
//! file is [`Error::Corrupt`] rather than a record misread.

use pinvault_core::{Error, Result};

/// Frames a small record file: 8 magic bytes, the CRC-32 of the body (LE), the body.
pub fn seal(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks and strips [`seal`]'s frame.
pub fn unseal<'a>(magic: &[u8; 8], bytes: &'a [u8], location: &str) -> Result<&'a [u8]> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(Error::corrupt(location, "not a pinvault record (bad magic)"));
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        return Err(Error::corrupt(location, "checksum mismatch"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_comes_back_and_damage_is_refused() {
        let sealed = seal(b"PVTEST01", b"body");
        assert_eq!(unseal(b"PVTEST01", &sealed, "f").unwrap(), b"body");
        assert!(unseal(b"PVTEST02", &sealed, "f").is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(unseal(b"PVTEST01", &flipped, "f").is_err());
        assert!(unseal(b"PVTEST01", &sealed[..11], "f").is_err());
    }
}
