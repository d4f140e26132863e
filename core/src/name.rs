//! Names of published sets and objects, checked so that no name can escape its store.
//!
//! Every backend maps names onto paths, object keys or rows; a name that is absolute, contains
//! `..`, a NUL or a control character, or is too long is refused here, once, before any backend
//! sees it.

use std::fmt;

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
        for ok in ["a", "sales/date=2026-11-22", "part-0001.parquet", "a.b/c..d", "ünïcode"] {
            SetName::new(ok).unwrap();
            ObjectName::new(ok).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_names() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "", "/etc/passwd", "../x", "a/../../x", "a/./b", "..", ".", "a//b", "a/", "nul\0byte",
            "tab\there", "back\\slash", "_pinvault/manifest", "a/_pinvault_staging", long.as_str(),
        ] {
            assert!(
                matches!(ObjectName::new(bad), Err(Error::InvalidInput { .. })),
                "accepted {bad:?}"
            );
            assert!(SetName::new(bad).is_err(), "accepted set {bad:?}");
        }
    }
}
