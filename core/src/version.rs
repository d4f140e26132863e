//! Versions and preconditions: the vocabulary of conditional writes.
//!
//! A [`Version`] is an opaque token a backend hands out on every write of a key (a commit
//! sequence, a Scylla write timestamp, an object ETag...). Callers only compare it for equality
//! by passing it back in [`Precondition::Version`].

use std::fmt;

/// An opaque version token. It changes on every write of its key, including a re-insert after a
/// remove, so two successful conditional writes of one key can never observe the same version.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(Box<[u8]>);

impl Version {
    /// A version from a backend's own bytes.
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Self {
        Version(bytes.into())
    }

    /// A version from a counter (big-endian, so byte order is numeric order).
    pub fn from_u64(n: u64) -> Self {
        Version(Box::new(n.to_be_bytes()))
    }

    /// The counter this version was made from, if it was made by [`Version::from_u64`].
    pub fn to_u64(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.0.as_ref().try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    /// The token's bytes, e.g. to carry it through a CLI or an HTTP header.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses the hexadecimal form printed by `Display`.
    pub fn parse_hex(s: &str) -> crate::Result<Self> {
        let bytes = hex::decode(s).map_err(|e| {
            crate::Error::invalid("version", format!("{s:?} is not hex: {e}")).with_source(e)
        })?;
        if bytes.is_empty() {
            return Err(crate::Error::invalid("version", "empty version token"));
        }
        Ok(Version(bytes.into()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({self})")
    }
}

/// The condition under which a write may happen, checked atomically with the write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precondition {
    /// Write whatever is there (an unconditional upsert or delete).
    #[default]
    Any,
    /// Write only if the key does not exist (insert-if-absent). Meaningless for a remove, which
    /// is refused as invalid input.
    Absent,
    /// Write only if the key exists with exactly this version (update/delete-if-unchanged).
    Version(Version),
}

impl Precondition {
    /// Whether a key whose current version is `current` (`None` = absent) satisfies this.
    pub fn holds(&self, current: Option<&Version>) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Absent => current.is_none(),
            Precondition::Version(v) => current == Some(v),
        }
    }

    /// The precondition in words, for conflict errors.
    pub fn describe(&self) -> String {
        match self {
            Precondition::Any => "any".to_owned(),
            Precondition::Absent => "absent".to_owned(),
            Precondition::Version(v) => format!("version {v}"),
        }
    }

    /// True unless this is [`Precondition::Any`].
    pub fn is_conditional(&self) -> bool {
        !matches!(self, Precondition::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_matches_each_variant() {
        let v1 = Version::from_u64(1);
        let v2 = Version::from_u64(2);
        assert!(Precondition::Any.holds(None));
        assert!(Precondition::Any.holds(Some(&v1)));
        assert!(Precondition::Absent.holds(None));
        assert!(!Precondition::Absent.holds(Some(&v1)));
        assert!(Precondition::Version(v1.clone()).holds(Some(&v1)));
        assert!(!Precondition::Version(v1.clone()).holds(Some(&v2)));
        assert!(!Precondition::Version(v1).holds(None));
    }

    #[test]
    fn hex_round_trip() {
        let v = Version::from_u64(0xdead_beef);
        assert_eq!(Version::parse_hex(&v.to_string()).unwrap(), v);
        assert_eq!(v.to_u64(), Some(0xdead_beef));
        assert!(Version::parse_hex("zz").is_err());
        assert!(Version::parse_hex("").is_err());
    }
}
