//! Set and object names (`pinvault_core::name`), which every backend maps onto paths, keys or
//! rows, and the KV layer's `objects` key built from them (`kv::layout::object_key`).
//!
//! Properties, checked against an oracle written from the module doc (not from `check`):
//! * `SetName::new` and `ObjectName::new` accept exactly the names that are non-empty, at most
//!   `MAX_NAME_BYTES`, relative (no leading `/`), without a trailing `/`, NUL, control
//!   character or `\`, in Unicode NFC, without bidirectional or invisible formatting
//!   characters, and whose `/`-separated segments are neither empty, `.`, `..` nor start with
//!   `_pinvault`; refusals are `Error::InvalidInput`;
//! * an accepted name is the input, unchanged: `as_str`, `Display` and `FromStr` round-trip;
//! * `ObjectKey` displays as `set/name`, which is itself a valid set name when short enough,
//!   and the `objects` key of `(set, name)` parses back to exactly `(set, name)`.
//!
//! The input is split at its first `0xFF` byte (never part of UTF-8) into a set candidate and
//! an object-name candidate; the whole input is also tried as one name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault_core::kv::layout::{object_key, parse_object_key};
use pinvault_core::name::MAX_NAME_BYTES;
use pinvault_core::{Error, ObjectKey, ObjectName, SetName};
use pinvault_fuzz::name_rule_violation;

/// Checks both name types against the oracle; returns them when `s` is valid.
fn check_name(s: &str) -> Option<(SetName, ObjectName)> {
    let violation = name_rule_violation(s);
    let set = SetName::new(s);
    let name = ObjectName::new(s);
    let set_parsed: Result<SetName, _> = s.parse();
    let name_parsed: Result<ObjectName, _> = s.parse();
    match (violation, set, name) {
        (None, Ok(set), Ok(name)) => {
            assert_eq!(set.as_str(), s);
            assert_eq!(name.as_str(), s);
            assert_eq!(set.to_string(), s);
            assert_eq!(name.to_string(), s);
            assert_eq!(set_parsed.expect("FromStr agrees with new"), set);
            assert_eq!(name_parsed.expect("FromStr agrees with new"), name);
            // The rules the backends rely on, restated.
            assert!(!s.starts_with('/') && !s.contains('\0'));
            assert!(s.split('/').all(|seg| seg != ".." && seg != "." && !seg.is_empty()));
            Some((set, name))
        }
        (Some(why), Err(set_err), Err(name_err)) => {
            for e in [&set_err, &name_err] {
                assert!(matches!(e, Error::InvalidInput { .. }), "{s:?}: not InvalidInput: {e:?}");
            }
            assert!(set_parsed.is_err() && name_parsed.is_err(), "FromStr accepted {s:?} ({why})");
            None
        }
        (violation, set, name) => panic!(
            "{s:?}: oracle says {violation:?}, SetName::new gives {set:?}, ObjectName::new gives {name:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(whole) = std::str::from_utf8(data) {
        check_name(whole);
    }
    let (left, right) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => return,
    };
    let (Ok(left), Ok(right)) = (std::str::from_utf8(left), std::str::from_utf8(right)) else {
        return;
    };
    let (Some((set, _)), Some((_, name))) = (check_name(left), check_name(right)) else {
        return;
    };
    let key = ObjectKey::new(set.clone(), name.clone());
    let joined = key.to_string();
    assert_eq!(joined, format!("{left}/{right}"));
    if joined.len() <= MAX_NAME_BYTES {
        assert!(
            SetName::new(joined.as_str()).is_ok(),
            "{joined:?}: two valid names joined by /"
        );
    }
    let table_key = object_key(&set, &name);
    let (set2, name2) = parse_object_key(&table_key).expect("an objects key parses");
    assert_eq!((set2, name2), (set, name), "objects key round trip");
});
