//! The on-disk layout of a root directory, and how set and object names become path
//! components: names only, no I/O (that is module `root`).
//!
//! ```text
//! <root>/LOCK                          flock'ed by the one writable instance (readers take none)
//! <root>/pins.log                      the pin log (see `log`)
//! <root>/staging/<stage id>/data       a staged object's bytes
//! <root>/staging/<stage id>/meta       its set, name, size, SHA-256 and staging time
//! <root>/staging/.tmp-<stage id>/      a staging being written, or one being removed
//! <root>/txn/t-<version>/              a publication being assembled
//! <root>/sets/<E(set)>/manifest        a published set: manifest bytes and object records
//! <root>/sets/<E(set)>/<E(name)>       its objects' bytes (hard links of the staged files)
//! ```
//!
//! # Names as path components
//!
//! [`encode`] maps a set or object name to **one** path component, so a name's `/` never
//! becomes a directory level and no name can reach outside its directory: `n-` followed by the
//! name with every byte outside `[a-z0-9._-]` written `%XX` (upper-case hex). The map is
//! injective (`%` itself is escaped), and stays injective on a case-insensitive filesystem
//! (every letter that passes through is lower-case, every escape upper-case). A component
//! longer than [`MAX_COMPONENT`] bytes (names may be 512 bytes; most filesystems allow 255 per
//! component) becomes `h-` and the SHA-256 of the name in hex instead; the set's real name is in
//! its manifest, and readers check that the manifest's name encodes to the directory's name.
//! Set `a/b` + object `c` is `sets/n-a%2Fb/n-c`; set `a` + object `b/c` is `sets/n-a/n-b%2Fc`.

use std::fmt::Write as _;

use pinvault_core::publish;

/// Name of the lock file.
pub const LOCK: &str = "LOCK";
/// Name of the pin log.
pub const PINS_LOG: &str = "pins.log";
/// Name of a pin log being written by compaction (or creation).
pub const PINS_LOG_TMP: &str = "pins.log.tmp";
/// Directory of staged objects.
pub const STAGING: &str = "staging";
/// Directory of publications being assembled.
pub const TXN: &str = "txn";
/// Directory of published sets.
pub const SETS: &str = "sets";
/// A staged object's bytes, inside its staging directory.
pub const DATA: &str = "data";
/// A staged object's record, inside its staging directory.
pub const META: &str = "meta";
/// A published set's record, inside its set directory.
pub const MANIFEST: &str = "manifest";
/// Prefix of staging directories that are not (or no longer) staged objects.
pub const TMP_PREFIX: &str = ".tmp-";
/// Prefix of transaction directories.
pub const TXN_PREFIX: &str = "t-";

/// The longest `n-` component; a longer encoding becomes `h-<sha256>`.
pub const MAX_COMPONENT: usize = 200;

/// The one path component of a set or object name (see the module docs).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(2 + name.len());
    out.push_str("n-");
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.len() <= MAX_COMPONENT {
        out
    } else {
        format!("h-{}", hex::encode(publish::sha256(name.as_bytes())))
    }
}

/// What a component found on disk says about its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An `n-` component: the name itself.
    Name(String),
    /// An `h-` component: only the record inside knows the name.
    Hashed,
}

/// Decodes a component [`encode`] could have written; `None` for anything else (including a
/// non-canonical spelling such as `%61` for `a`).
pub fn decode(component: &[u8]) -> Option<Decoded> {
    let text = std::str::from_utf8(component).ok()?;
    if let Some(hash) = text.strip_prefix("h-") {
        let ok = hash.len() == 64
            && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return ok.then_some(Decoded::Hashed);
    }
    let body = text.strip_prefix("n-")?;
    let mut bytes = Vec::with_capacity(body.len());
    let mut iter = body.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hi = iter.next()?;
            let lo = iter.next()?;
            let pair = [hi, lo];
            let hex = std::str::from_utf8(&pair).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (encode(&name) == text).then_some(Decoded::Name(name))
}

/// Stage ids this backend hands out: `fs-<16 hex>-<8 hex>`.
pub fn stage_id(nanos: u64, counter: u64) -> String {
    format!("fs-{nanos:016x}-{:08x}", counter & 0xffff_ffff)
}

/// Whether `id` is a stage id this backend could have handed out, and so a safe component.
pub fn valid_stage_id(id: &str) -> bool {
    id.len() == 3 + 16 + 1 + 8
        && id.starts_with("fs-")
        && id.as_bytes()[19] == b'-'
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| i < 3 || i == 19 || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_one_component_and_round_trips() {
        for name in ["a", "a/b", "sales/date=2026-11-22", "ünïcode", "A%2F", "x.parquet", "..a"] {
            let c = encode(name);
            assert!(!c.contains('/') && c != "." && c != "..", "{c}");
            assert_eq!(decode(c.as_bytes()), Some(Decoded::Name(name.to_owned())), "{name}");
        }
    }

    #[test]
    fn look_alike_pairs_and_cases_stay_apart() {
        assert_ne!(encode("a/b"), encode("a"));
        assert_ne!(
            format!("{}/{}", encode("a/b"), encode("c")),
            format!("{}/{}", encode("a"), encode("b/c"))
        );
        assert_ne!(encode("A").to_lowercase(), encode("a").to_lowercase());
        assert_ne!(encode("%41").to_lowercase(), encode("A").to_lowercase());
    }

    #[test]
    fn long_names_are_hashed_and_non_canonical_spellings_refused() {
        let long = "x/".repeat(200) + "y";
        let c = encode(&long);
        assert!(c.starts_with("h-") && c.len() == 66);
        assert_eq!(decode(c.as_bytes()), Some(Decoded::Hashed));
        assert_ne!(encode(&(long.clone() + "z")), c);
        for bad in ["n-%61", "n-A", "n-%2f", "n-%2", "x-a", "h-abc", "manifest", ".tmp-x"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn stage_ids_are_checked() {
        let id = stage_id(0x1234, 7);
        assert!(valid_stage_id(&id), "{id}");
        for bad in
            ["../sets", "fs-", "fs-0000000000001234-0000000/", "fs-000000000000123X-00000007"]
        {
            assert!(!valid_stage_id(bad), "{bad}");
        }
    }
}
