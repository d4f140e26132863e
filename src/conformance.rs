//! The conformance suite against any backend URL (`pinvault conformance URL`): a
//! [`Harness`] that gives every check a fresh store *under* the URL the user named, and reopens
//! a store by opening its URL again.
//!
//! Where the fresh stores go, so nothing the user already has is touched:
//!
//! | URL | a fresh store |
//! |---|---|
//! | `rocksdb:///dir`, `sled:///dir`, `fs:///dir` | `dir/pinvault-conformance-<run>-<n>` |
//! | `s3://bucket/prefix` (and `gs`, `az`) | `prefix/pinvault-conformance-<run>-<n>` |
//! | `scylla://hosts/keyspace` | keyspace `<keyspace>_conformance<run><n>` (at most 48 characters) |
//! | `memory:` | a new in-process store (a reopen shares it) |
//!
//! The stores are left in place after the run (a failing check's data is what one inspects);
//! the CLI prints where they are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pinvault_conformance::{Harness, Location, TestStore};
use pinvault_core::memory::{MemoryBackend, MemoryStore};
use pinvault_core::{Error, FaultInjector, Result};

use crate::open::{open_with_faults, resolve, sub_location, Location as UrlLocation};

/// Opens fresh stores under one backend URL.
#[derive(Debug)]
pub struct UrlHarness {
    base: String,
    run: String,
    next: AtomicU64,
}

impl UrlHarness {
    /// A harness under `url`, checked (and refused) before any check runs; `run` tells this
    /// run's stores apart from other runs' (e.g. a timestamp).
    pub fn new(url: &str, run: &str) -> Result<Self> {
        resolve(url)?;
        let run: String = run.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        Ok(UrlHarness { base: url.to_owned(), run, next: AtomicU64::new(0) })
    }

    /// Where this run's stores go, for people: `dir/pinvault-conformance-<run>-*` and so on.
    pub fn describe(&self) -> String {
        self.fresh_url("*")
    }

    /// The URL of fresh store `n`.
    fn fresh_url(&self, n: &str) -> String {
        sub_location(&self.base, &format!("conformance-{}-{n}", self.run))
            .unwrap_or_else(|_| self.base.clone())
    }
}

#[async_trait]
impl Harness for UrlHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        if matches!(resolve(&self.base)?.1.location(), UrlLocation::InProcess) {
            let store = MemoryStore::new();
            let backend = Arc::new(MemoryBackend::open(store.clone(), faults));
            return Ok(TestStore::new(backend, store));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let url = self.fresh_url(&n);
        let opened = open_with_faults(&url, faults).await?;
        Ok(TestStore { state: opened.state, publisher: opened.publisher, location: Arc::new(url) })
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        if let Some(store) = location.downcast_ref::<MemoryStore>() {
            let backend = Arc::new(MemoryBackend::open(store.clone(), faults));
            return Ok(TestStore::new(backend, store.clone()));
        }
        let url = location
            .downcast_ref::<String>()
            .ok_or_else(|| Error::invalid("location", "not a store made by UrlHarness"))?
            .clone();
        let opened = open_with_faults(&url, faults).await?;
        Ok(TestStore { state: opened.state, publisher: opened.publisher, location: Arc::new(url) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stores_go_under_the_named_location() {
        let h = UrlHarness::new("fs:///tmp/pv?sync=false", "20261123T1800").unwrap();
        assert_eq!(h.fresh_url("3"), "fs:///tmp/pv/pinvault-conformance-20261123T180-3?sync=false");
        let h = UrlHarness::new("s3://bucket/some/prefix/", "r1").unwrap();
        assert_eq!(h.fresh_url("0"), "s3://bucket/some/prefix/pinvault-conformance-r1-0");
        let h = UrlHarness::new("scylla://h1,h2:9042/pins?tls=true", "abc").unwrap();
        assert_eq!(h.fresh_url("12"), "scylla://h1,h2:9042/pins_conformanceabc12?tls=true");
        let long = format!("scylla://h/{}", "k".repeat(46));
        let h = UrlHarness::new(&long, "abcdef").unwrap();
        let (seven, eight) = (h.fresh_url("7"), h.fresh_url("8"));
        assert!(resolve(&seven).is_ok(), "{seven}");
        assert_ne!(seven, eight);
        assert_eq!(seven, format!("scylla://h/{}_conformanceabcdef7", "k".repeat(29)));
        assert!(UrlHarness::new("nope://x", "r").is_err());
    }
}
