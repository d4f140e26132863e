//! Backend URLs: `pinvault::open::resolve`, which finds the scheme in the facade's table and
//! parses the URL against its shape (`pinvault_core::backend_url`) without opening anything.
//!
//! Properties, for any UTF-8 input (invalid UTF-8 is replaced, lossily):
//! * nothing panics, and the answer is deterministic;
//! * a refusal is `Error::InvalidInput` naming the URL (`backend URL "<url>"`);
//! * on success: the target's `url` is the input, the entry is the one whose scheme is the
//!   input's scheme (ASCII case-insensitive), and the location has the entry's shape:
//!   `memory:` takes no location and no options; a directory is an absolute path that is not
//!   the filesystem root; a bucket is non-empty and its prefix has no leading or trailing `/`;
//!   a cluster has non-empty `host[:port]` contact points and a 1–48 character
//!   `[A-Za-z0-9_]` keyspace starting with a letter, and its URL holds no `#` or `@`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault::open::{resolve, Location, Shape, BACKENDS};
use pinvault::Error;

fuzz_target!(|data: &[u8]| {
    let url = String::from_utf8_lossy(data);
    let url = url.as_ref();
    let result = resolve(url);
    match &result {
        Err(Error::InvalidInput { what, .. }) => {
            assert_eq!(
                *what,
                format!("backend URL {url:?}"),
                "the refusal does not name the URL"
            );
        }
        Err(other) => panic!("resolve({url:?}) failed with a non-InvalidInput error: {other:?}"),
        Ok((entry, target)) => {
            assert_eq!(target.as_str(), url, "the parsed URL is not the input");
            let scheme = url
                .split_once(':')
                .map(|(s, _)| s)
                .expect("a resolved URL has a scheme");
            assert!(
                entry.scheme().eq_ignore_ascii_case(scheme),
                "{scheme:?} resolved to {entry:?}"
            );
            assert!(BACKENDS.iter().any(|e| e.scheme() == entry.scheme()));
            match (&entry.url.shape, target.location()) {
                (Shape::InProcess, Location::InProcess) => {
                    assert!(
                        target.options().is_empty(),
                        "memory: took options {:?}",
                        target.options()
                    );
                }
                (Shape::Directory, Location::Directory(path)) => {
                    assert!(path.is_absolute(), "relative directory {path:?}");
                    assert!(path.parent().is_some(), "the filesystem root was accepted");
                }
                (Shape::Bucket, Location::Bucket { bucket, prefix }) => {
                    assert!(!bucket.is_empty());
                    assert!(
                        !prefix.starts_with('/') && !prefix.ends_with('/'),
                        "prefix {prefix:?}"
                    );
                }
                (Shape::Cluster, Location::Cluster { hosts, keyspace }) => {
                    assert!(!url.contains(['#', '@']));
                    assert!(
                        !hosts.is_empty() && hosts.iter().all(|h| !h.is_empty()),
                        "{hosts:?}"
                    );
                    assert!((1..=48).contains(&keyspace.len()), "keyspace {keyspace:?}");
                    assert!(keyspace
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(keyspace.starts_with(|c: char| c.is_ascii_alphabetic()));
                }
                (shape, location) => panic!("a {shape:?} scheme resolved to {location:?}"),
            }
            let (entry2, target2) = resolve(url).expect("resolve is deterministic");
            assert_eq!(entry2.scheme(), entry.scheme());
            assert_eq!(&target2, target);
        }
    }
});
