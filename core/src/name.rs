//! Names of published sets and objects, checked so that no name can escape its store.
//!
//! Every backend maps names onto paths, object keys or rows; a name that is absolute, contains
//! `..`, a NUL or a control character, or is too long is refused here, once, before any backend
//! sees it.
//!
//! # Names that look alike
//!
//! A name is a byte string to every backend, so two spellings that render identically would be
//! two different sets (`café` as `e` + U+0301 and as U+00E9). pinvault does not normalise
//! silently, which would hand back bytes the caller never wrote; it refuses:
//!
//! - names not in Unicode Normalization Form C (the error names the NFC spelling to use), so
//!   each visible name has exactly one accepted spelling;
//! - bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069: the "Trojan Source" set), which make a name display in an order other
//!   than its bytes;
//! - invisible characters that no script needs inside a name: soft hyphen U+00AD, zero width
//!   space U+200B, word joiner and invisible operators U+2060–U+2064, and U+FEFF.
//!
//! Zero width (non-)joiners (U+200C, U+200D) stay allowed: Persian, Indic scripts and emoji
//! sequences need them. Confusables across scripts (Latin `a` and Cyrillic `а`) are distinct
//! characters and stay distinct names.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::{Error, Result};

/// Longest accepted set name or object name, in bytes.
pub const MAX_NAME_BYTES: usize = 512;

/// Names starting with this are reserved for pinvault's own records (manifests, staging).
pub const RESERVED_PREFIX: &str = "_pinvault";

fn check(kind: &str, s: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid(format!("{kind} {s:?}"), reason.to_owned()));
    if s.is_empty() {
        return bad("must not be empty");
    }
    if s.len() > MAX_NAME_BYTES {
        return bad(&format!("is {} bytes, more than {MAX_NAME_BYTES}", s.len()));
    }
    if s.starts_with('/') {
        return bad("must be relative, not start with '/'");
    }
    if s.ends_with('/') {
        return bad("must not end with '/'");
    }
    if s.chars().any(|c| c == '\0' || c.is_control()) {
        return bad("must not contain NUL or control characters");
    }
    if s.contains('\\') {
        return bad("must not contain '\\'");
    }
    if let Some(c) = s.chars().find(|&c| is_bidi_control(c) || is_invisible(c)) {
        return bad(&format!(
            "must not contain the invisible or bidirectional formatting character U+{:04X}",
            c as u32
        ));
    }
    if !unicode_normalization::is_nfc(s) {
        let nfc: String = s.nfc().collect();
        return bad(&format!("must be in Unicode NFC; the NFC spelling is {nfc:?}"));
    }
    for segment in s.split('/') {
        match segment {
            "" => return bad("must not contain an empty segment ('//')"),
            "." | ".." => return bad("must not contain '.' or '..' segments"),
            seg if seg.starts_with(RESERVED_PREFIX) => {
                return bad(&format!("segments starting with {RESERVED_PREFIX:?} are reserved"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Characters that reorder how text around them is displayed (Unicode `Bidi_Control`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing and that no script needs inside a name.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// Validates and wraps a name.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check($kind, &s)?;
                Ok($ty(s))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $ty::new(s)
            }
        }
    };
}

name_type!(
    /// The name of a publication set, e.g. `sales/date=2026-11-22`: slash-separated segments.
    SetName,
    "set name"
);
name_type!(
    /// The name of an object inside a set, e.g. `part-0001.parquet` or `data/part-1.parquet`.
    ObjectName,
    "object name"
);

/// The key of a published object: `set/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The set the object was published in.
    pub set: SetName,
    /// The object's name inside the set.
    pub name: ObjectName,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(set: SetName, name: ObjectName) -> Self {
        ObjectKey { set, name }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.set, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "sales/date=2026-11-22",
            "part-0001.parquet",
            "a.b/c..d",
            "ünïcode",
            "caf\u{E9}",
            "\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}",
            "\u{1F469}\u{200D}\u{1F52C}",
            "\u{430}pple",
        ] {
            SetName::new(ok).unwrap();
            ObjectName::new(ok).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_names() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "..",
            ".",
            "a//b",
            "a/",
            "nul\0byte",
            "tab\there",
            "back\\slash",
            "_pinvault/manifest",
            "a/_pinvault_staging",
            long.as_str(),
            "cafe\u{301}",
            "a/\u{202E}gpj.exe",
            "in\u{2066}visible",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "soft\u{AD}hyphen",
            "mark\u{200F}",
            "\u{FC}\u{31B}nca",
        ] {
            assert!(
                matches!(ObjectName::new(bad), Err(Error::InvalidInput { .. })),
                "accepted {bad:?}"
            );
            assert!(SetName::new(bad).is_err(), "accepted set {bad:?}");
        }
    }

    #[test]
    fn non_nfc_name_error_names_the_nfc_spelling() {
        let e = SetName::new("cafe\u{301}").unwrap_err().to_string();
        assert!(e.contains("NFC") && e.contains("caf\u{E9}"), "{e}");
    }
}
