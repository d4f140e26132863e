//! Opening a backend from a URL.
//!
//! [`BACKENDS`] is the one table where a backend plugs into the facade: its URL form (scheme,
//! example, shape), the Cargo feature that compiles it in, and its opener. [`open`] finds the
//! URL's scheme in the table, parses the URL against the entry's shape
//! ([`pinvault_core::backend_url`]) and calls the opener, which hands the parsed URL to the
//! backend crate's own `open_url`: each crate owns its options and environment variables. A
//! known scheme whose opener is not compiled in is refused with [`Error::Unsupported`] naming
//! the feature to enable, never silently replaced.
//!
//! # Creating, or opening what exists
//!
//! [`open`] creates a store that does not exist ([`OpenMode::CreateIfMissing`]), as writers
//! and tests want. [`open_with_mode`] with [`OpenMode::MustExist`] refuses one that does not
//! ([`Error::NoStore`], nothing created): the CLI opens so for its read-only commands, so a
//! mistyped `fs:///no/such/dir` is an error, not a new empty store. The directory backends
//! (fs, RocksDB, sled) honour the mode and check the store's identity marker
//! ([`pinvault_core::store_dir`]); the memory backend is always a new store, and the object
//! store and Scylla backends have no directory to find (a bucket prefix or keyspace holding
//! no pins opens empty), so they take the mode and open as before.
//!
//! # Plugging in a backend
//!
//! 1. Declare the feature in the root `Cargo.toml`: `rocksdb = ["dep:pinvault-rocksdb"]`.
//! 2. In the backend crate, export its `URL_FORM` and an `open_url(&BackendUrl, …)` that reads
//!    the location and the options it takes (refusing others with
//!    [`BackendUrl::check_options`]). Below, write `#[cfg(feature = "rocksdb")] fn
//!    open_rocksdb(url: BackendUrl, mode: OpenMode, faults: FaultInjector) -> OpenFuture` that
//!    calls it and wraps the backend with [`Store::from_backend`], which puts it behind the
//!    checking layer.
//! 3. Give the entry its opener under the same feature:
//!    `#[cfg(feature = "rocksdb")] const ROCKSDB: Option<Opener> = Some(open_rocksdb);` and
//!    `#[cfg(not(feature = "rocksdb"))] const ROCKSDB: Option<Opener> = None;`, then
//!    `opener: ROCKSDB` in the table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
pub use pinvault_core::backend_url::{
    parse_seconds, scheme_of, BackendUrl, Location, Shape, UrlForm, LOCK_TIMEOUT,
};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::{Checked, Error, FaultInjector, OpenMode, PinState, Publisher, Result};

/// An opened backend: both contracts, usually served by one object.
#[derive(Clone, Debug)]
pub struct Store {
    /// Contract 1: the pin state.
    pub state: Arc<dyn PinState>,
    /// Contract 2: atomic object publication.
    pub publisher: Arc<dyn Publisher>,
}

impl Store {
    /// Puts one backend that implements both contracts behind the checking layer
    /// ([`Checked`]: the contract's input checks, capability refusals, receipts, tracing and
    /// metrics, once for every backend) and serves both contracts from it.
    pub fn from_backend<B: PinState + Publisher + 'static>(backend: B) -> Self {
        let backend = Arc::new(Checked::new(backend));
        Store { state: backend.clone(), publisher: backend }
    }

    /// A backend served by two parts ([`pinvault_core::Composed`]'s halves), each put behind
    /// the checking layer.
    pub fn from_parts<S: PinState + 'static, P: Publisher + 'static>(
        state: S,
        publisher: P,
    ) -> Self {
        Store { state: Arc::new(Checked::new(state)), publisher: Arc::new(Checked::new(publisher)) }
    }
}

/// The schemes whose openers take [`LOCK_TIMEOUT`]: the embedded stores, which one process
/// at a time may open for writing.
pub const LOCK_TIMEOUT_SCHEMES: &[&str] = &["fs", "rocksdb", "sled"];

/// The future an opener returns.
pub type OpenFuture = BoxFuture<'static, Result<Store>>;

/// Opens a backend from its parsed URL in an [`OpenMode`], with a fault injector (disabled
/// outside tests).
pub type Opener = fn(BackendUrl, OpenMode, FaultInjector) -> OpenFuture;

/// One backend the facade knows, compiled in or not.
#[derive(Clone, Copy)]
pub struct BackendEntry {
    /// Its scheme, the URL form for help and error messages, and the shape of its URLs.
    pub url: UrlForm,
    /// The Cargo feature of the `pinvault` package that compiles it in; `None` when always built.
    pub feature: Option<&'static str>,
    /// How to open it; `None` when its feature is not enabled in this build.
    pub opener: Option<Opener>,
}

impl BackendEntry {
    /// The URL scheme (`"rocksdb"`).
    pub fn scheme(&self) -> &'static str {
        self.url.scheme
    }

    /// Whether this build can open the backend.
    pub fn is_compiled_in(&self) -> bool {
        self.opener.is_some()
    }
}

impl fmt::Debug for BackendEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendEntry")
            .field("url", &self.url)
            .field("feature", &self.feature)
            .field("compiled_in", &self.is_compiled_in())
            .finish()
    }
}

const fn form(scheme: &'static str, form: &'static str, shape: Shape) -> UrlForm {
    UrlForm { scheme, form, shape }
}

/// Every backend pinvault knows.
pub const BACKENDS: &[BackendEntry] = &[
    BackendEntry {
        url: form("memory", "memory:", Shape::InProcess),
        feature: None,
        opener: Some(open_memory),
    },
    BackendEntry {
        url: form("rocksdb", "rocksdb:///path", Shape::Directory),
        feature: Some("rocksdb"),
        opener: ROCKSDB,
    },
    BackendEntry {
        url: form("sled", "sled:///path", Shape::Directory),
        feature: Some("sled"),
        opener: SLED,
    },
    BackendEntry {
        url: form("fs", "fs:///path", Shape::Directory),
        feature: Some("fs"),
        opener: FS,
    },
    BackendEntry {
        url: form("s3", "s3://bucket/prefix", Shape::Bucket),
        feature: Some("s3"),
        opener: S3,
    },
    BackendEntry {
        url: form("gs", "gs://bucket/prefix", Shape::Bucket),
        feature: Some("gcs"),
        opener: GCS,
    },
    BackendEntry {
        url: form("az", "az://container/prefix", Shape::Bucket),
        feature: Some("azure"),
        opener: AZURE,
    },
    BackendEntry {
        url: form("scylla", "scylla://host1,host2/keyspace", Shape::Cluster),
        feature: Some("scylla"),
        opener: SCYLLA,
    },
];

/// Every open of `memory:` is a new store, whatever the mode: there is none to find.
fn open_memory(_url: BackendUrl, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    let store = pinvault_core::memory::MemoryStore::new();
    Box::pin(async move { Ok(Store::from_backend(MemoryBackend::open(store, faults))) })
}

/// `rocksdb:///path[?sync=true|false&lock_timeout=SECONDS]` (`pinvault_rocksdb::open_url`).
#[cfg(feature = "rocksdb")]
fn open_rocksdb(url: BackendUrl, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        Ok(Store::from_backend(pinvault_rocksdb::open_url(&url, mode, faults).await?))
    })
}
#[cfg(feature = "rocksdb")]
const ROCKSDB: Option<Opener> = Some(open_rocksdb);
#[cfg(not(feature = "rocksdb"))]
const ROCKSDB: Option<Opener> = None;

/// `sled:///path[?sync=true|false&lock_timeout=SECONDS]` (`pinvault_sled::open_url`).
#[cfg(feature = "sled")]
fn open_sled(url: BackendUrl, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(
        async move { Ok(Store::from_backend(pinvault_sled::open_url(&url, mode, faults).await?)) },
    )
}
#[cfg(feature = "sled")]
const SLED: Option<Opener> = Some(open_sled);
#[cfg(not(feature = "sled"))]
const SLED: Option<Opener> = None;

/// `fs:///path[?sync=true|false&lock_timeout=SECONDS]` (`pinvault_fs::open_url`).
#[cfg(feature = "fs")]
fn open_fs(url: BackendUrl, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        let backend = pinvault_fs::open_url(&url, mode, faults).await?;
        Ok(Store::from_parts(backend.pins, backend.publisher))
    })
}
#[cfg(feature = "fs")]
const FS: Option<Opener> = Some(open_fs);
#[cfg(not(feature = "fs"))]
const FS: Option<Opener> = None;

/// `s3://`, `gs://`, `az://` (`pinvault_object::open_url`; credentials from the environment).
/// The mode does not apply: a prefix holding no pins is an empty store.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn open_object(url: BackendUrl, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move { Ok(Store::from_backend(pinvault_object::open_url(&url, faults)?)) })
}
#[cfg(feature = "s3")]
const S3: Option<Opener> = Some(open_object);
#[cfg(not(feature = "s3"))]
const S3: Option<Opener> = None;
#[cfg(feature = "gcs")]
const GCS: Option<Opener> = Some(open_object);
#[cfg(not(feature = "gcs"))]
const GCS: Option<Opener> = None;
#[cfg(feature = "azure")]
const AZURE: Option<Opener> = Some(open_object);
#[cfg(not(feature = "azure"))]
const AZURE: Option<Opener> = None;

/// `scylla://host1[:port],host2/keyspace[?tls=&local_dc=&replication=]`
/// (`pinvault_scylla::open_url`). Connecting applies the schema migrations, creating the
/// keyspace if needed, whatever the mode.
#[cfg(feature = "scylla")]
fn open_scylla(url: BackendUrl, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move { Ok(Store::from_backend(pinvault_scylla::open_url(&url, faults).await?)) })
}
#[cfg(feature = "scylla")]
const SCYLLA: Option<Opener> = Some(open_scylla);
#[cfg(not(feature = "scylla"))]
const SCYLLA: Option<Opener> = None;

/// Opens the backend `url` points at, creating the store if it does not exist.
///
/// Errors: [`Error::InvalidInput`] for a malformed URL or an unknown scheme (the message lists
/// the known forms); [`Error::Unsupported`] for a known scheme whose feature is not compiled in;
/// otherwise whatever the backend's opener returns (for a directory backend, e.g.
/// [`Error::ForeignStore`] for a directory holding another backend's store, or
/// [`Error::Path`]).
pub async fn open(url: &str) -> Result<Store> {
    open_with_faults(url, FaultInjector::disabled()).await
}

/// [`open`] in `mode`: with [`OpenMode::MustExist`] a directory backend refuses a store that
/// does not exist with [`Error::NoStore`] and creates nothing (see the module docs).
pub async fn open_with_mode(url: &str, mode: OpenMode) -> Result<Store> {
    open_with(url, mode, FaultInjector::disabled()).await
}

/// [`open`] with a fault injector armed by the caller (the conformance suite's crash checks).
pub async fn open_with_faults(url: &str, faults: FaultInjector) -> Result<Store> {
    open_with(url, OpenMode::CreateIfMissing, faults).await
}

/// [`open_with_mode`], waiting up to `lock_wait` for another process holding the store's lock
/// (a default for the URL: a `lock_timeout` in the URL's query wins). Applies to the schemes in
/// [`LOCK_TIMEOUT_SCHEMES`]; other backends have no such lock and ignore it.
pub async fn open_with_lock_wait(
    url: &str,
    mode: OpenMode,
    lock_wait: Option<Duration>,
) -> Result<Store> {
    let (entry, url) = resolve_with_lock_wait(url, lock_wait)?;
    match entry.opener {
        Some(opener) => opener(url, mode, FaultInjector::disabled()).await,
        None => Err(not_compiled_in(entry)),
    }
}

/// Repairs the damaged store `url` names (`pinvault state repair`): the backend's own repair
/// (fs: `pinvault_fs::repair`, RocksDB: `pinvault_rocksdb::repair`), which keeps every byte it
/// removes in a quarantine file and reports what it did. Waits up to `lock_wait` for a
/// process holding the store (a `lock_timeout` in the URL wins). Other backends:
/// [`Error::Unsupported`].
#[cfg_attr(not(any(feature = "fs", feature = "rocksdb")), allow(unused_variables))]
pub async fn repair(url: &str, lock_wait: Option<Duration>) -> Result<pinvault_core::RepairReport> {
    let (entry, url) = resolve_with_lock_wait(url, lock_wait)?;
    if entry.opener.is_none() {
        return Err(not_compiled_in(entry));
    }
    match entry.scheme() {
        #[cfg(feature = "fs")]
        "fs" => pinvault_fs::repair_url(&url).await,
        #[cfg(feature = "rocksdb")]
        "rocksdb" => pinvault_rocksdb::repair_url(&url).await,
        scheme => Err(Error::unsupported(
            scheme,
            format!("repair: the {scheme} backend has no repair (fs and rocksdb have)"),
        )),
    }
}

async fn open_with(url: &str, mode: OpenMode, faults: FaultInjector) -> Result<Store> {
    let (entry, url) = resolve(url)?;
    match entry.opener {
        Some(opener) => opener(url, mode, faults).await,
        None => Err(not_compiled_in(entry)),
    }
}

/// Finds `url`'s scheme in [`BACKENDS`] and parses it against the entry's form, opening
/// nothing. Options are left to the backend that owns them.
pub fn resolve(url: &str) -> Result<(&'static BackendEntry, BackendUrl)> {
    let scheme = scheme_of(url).ok_or_else(|| bad_url(url, "malformed URL: it has no scheme"))?;
    let entry = BACKENDS
        .iter()
        .find(|e| e.scheme().eq_ignore_ascii_case(scheme))
        .ok_or_else(|| bad_url(url, format!("unknown scheme {scheme:?}")))?;
    Ok((entry, BackendUrl::parse(url, entry.url)?))
}

fn resolve_with_lock_wait(
    url: &str,
    lock_wait: Option<Duration>,
) -> Result<(&'static BackendEntry, BackendUrl)> {
    let (entry, mut url) = resolve(url)?;
    if let Some(wait) = lock_wait.filter(|_| LOCK_TIMEOUT_SCHEMES.contains(&entry.scheme())) {
        url.default_option(LOCK_TIMEOUT, wait.as_secs_f64().to_string());
    }
    Ok((entry, url))
}

/// A URL for a new store *under* `url`, named after `name` (e.g. `conformance-<run>-3`), so a
/// tool can make scratch stores without touching what the user has: `dir/pinvault-<name>` for a
/// directory, `prefix/pinvault-<name>` in a bucket, keyspace `<keyspace>_<name>` (letters,
/// digits and `_` only, the base shortened to keep 48 characters), and `memory:` itself (every
/// open of it is a new store). Query options are kept.
pub fn sub_location(url: &str, name: &str) -> Result<String> {
    let (_, parsed) = resolve(url)?;
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    Ok(match parsed.location() {
        Location::InProcess => url.to_owned(),
        Location::Cluster { .. } => {
            let suffix: String = std::iter::once('_')
                .chain(name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect();
            let (hosts, keyspace) = head.rsplit_once('/').unwrap_or((head, ""));
            let keep = keyspace.len().min(48usize.saturating_sub(suffix.len()));
            format!("{hosts}/{}{suffix}{query}", &keyspace[..keep])
        }
        Location::Directory(_) | Location::Bucket { .. } => {
            format!("{}/pinvault-{name}{query}", head.trim_end_matches('/'))
        }
    })
}

/// The known URL forms, comma-separated, for messages.
pub fn known_forms() -> String {
    BACKENDS.iter().map(|e| e.url.form).collect::<Vec<_>>().join(", ")
}

fn not_compiled_in(entry: &BackendEntry) -> Error {
    let feature = entry.feature.unwrap_or(entry.scheme());
    Error::unsupported(
        entry.scheme(),
        format!("backend {} is not compiled in: enable feature `{feature}`", entry.scheme()),
    )
}

fn bad_url(url: &str, reason: impl fmt::Display) -> Error {
    Error::invalid(
        format!("backend URL {url:?}"),
        format!("{reason}; known forms: {}", known_forms()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match resolve(url) {
            Ok(resolved) => panic!("{url} resolved to {resolved:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn memory_opens_both_contracts() {
        for url in ["memory:", "memory://", "MEMORY:"] {
            let store = open(url).await.unwrap();
            assert_eq!(store.state.pin_capabilities().backend, "memory");
            assert_eq!(store.publisher.publish_capabilities().backend, "memory");
        }
    }

    #[tokio::test]
    async fn memory_is_a_new_store_in_any_mode() {
        let store = open_with_mode("memory:", OpenMode::MustExist).await.unwrap();
        assert_eq!(store.state.pin_capabilities().backend, "memory");
    }

    #[cfg(feature = "fs")]
    #[tokio::test]
    async fn must_exist_creates_nothing_and_open_creates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir");
        let url = format!("fs://{}", path.display());
        match open_with_mode(&url, OpenMode::MustExist).await {
            Err(Error::NoStore { path: missing }) => assert_eq!(missing, path),
            other => panic!("{other:?}"),
        }
        assert!(!dir.path().join("no").exists(), "nothing created");
        drop(open(&url).await.unwrap());
        assert!(path.join(pinvault_core::store_dir::MARKER).is_file());
        open_with_mode(&url, OpenMode::MustExist).await.unwrap();
    }

    #[tokio::test]
    async fn memory_takes_no_location() {
        for url in ["memory:foo", "memory://host", "memory:///tmp", "memory:?x=1"] {
            let err = open(url).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn every_known_scheme_without_its_feature_names_the_feature() {
        let cases = [
            ("rocksdb:///var/lib/pinvault", "rocksdb", "rocksdb"),
            ("sled:///var/lib/pinvault", "sled", "sled"),
            ("fs:///srv/objects", "fs", "fs"),
            ("s3://bucket/prefix", "s3", "s3"),
            ("gs://bucket/prefix", "gs", "gcs"),
            ("az://container/prefix", "az", "azure"),
            ("scylla://host1,host2/keyspace", "scylla", "scylla"),
        ];
        for (url, scheme, feature) in cases {
            let entry = BACKENDS.iter().find(|e| e.scheme() == scheme).unwrap();
            if entry.is_compiled_in() {
                continue;
            }
            match open(url).await.unwrap_err() {
                Error::Unsupported { operation, backend } => {
                    assert_eq!(backend, scheme);
                    assert_eq!(
                        operation,
                        format!("backend {scheme} is not compiled in: enable feature `{feature}`")
                    );
                }
                other => panic!("{url}: {other}"),
            }
        }
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    #[tokio::test]
    async fn object_urls_refuse_unknown_options_and_credentials() {
        for url in ["s3://b/p?fsync=false", "gs://b/p?endpoint=x", "az://c/p?secret=x"] {
            let entry = BACKENDS.iter().find(|e| url.starts_with(e.scheme())).unwrap();
            if !entry.is_compiled_in() {
                continue;
            }
            let err = open(url).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn unknown_or_schemeless_urls_list_the_known_forms() {
        for bad in ["redis://localhost/0", "", "memory", "/var/lib/pinvault", ":memory:"] {
            let err = resolve(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad}");
            let text = err.to_string();
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(text.contains("memory:, rocksdb:///path"), "{text}");
            assert!(text.contains("scylla://host1,host2/keyspace"), "{text}");
        }
        assert!(message("redis://localhost/0").contains("unknown scheme \"redis\""));
    }

    #[test]
    fn the_table_has_one_entry_per_scheme() {
        let mut schemes: Vec<_> = BACKENDS.iter().map(BackendEntry::scheme).collect();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), BACKENDS.len());
        assert!(BACKENDS.iter().all(|e| e.url.form.starts_with(e.url.scheme)));
        let compiled_in = 1
            + usize::from(cfg!(feature = "rocksdb"))
            + usize::from(cfg!(feature = "sled"))
            + usize::from(cfg!(feature = "fs"))
            + usize::from(cfg!(feature = "s3"))
            + usize::from(cfg!(feature = "gcs"))
            + usize::from(cfg!(feature = "azure"))
            + usize::from(cfg!(feature = "scylla"));
        assert_eq!(BACKENDS.iter().filter(|e| e.is_compiled_in()).count(), compiled_in);
    }

    #[test]
    fn each_scheme_parses_with_its_shape() {
        let cases = [
            ("MEMORY:", Location::InProcess),
            ("rocksdb:///var/lib/pins?sync=false", Location::Directory("/var/lib/pins".into())),
            ("az://c/p", Location::Bucket { bucket: "c".into(), prefix: "p".into() }),
            (
                "scylla://db1,db2:19042/pins",
                Location::Cluster {
                    hosts: vec!["db1".into(), "db2:19042".into()],
                    keyspace: "pins".into(),
                },
            ),
        ];
        for (url, location) in cases {
            let (entry, parsed) = resolve(url).unwrap();
            assert_eq!(parsed.location(), &location, "{url}");
            assert!(entry.scheme().eq_ignore_ascii_case(scheme_of(url).unwrap()));
        }
        assert!(message("rocksdb://host/path").contains("rocksdb:///path"));
        assert!(message("scylla://h1/bad-keyspace").contains("keyspace"));
    }

    #[test]
    fn a_lock_wait_is_a_default_the_url_overrides() {
        let wait = Some(Duration::from_secs(3));
        let (_, url) = resolve_with_lock_wait("fs:///x", wait).unwrap();
        assert_eq!(url.seconds_option(LOCK_TIMEOUT).unwrap(), wait);
        let (_, url) = resolve_with_lock_wait("fs:///x?lock_timeout=0.5", wait).unwrap();
        assert_eq!(url.seconds_option(LOCK_TIMEOUT).unwrap(), Some(Duration::from_millis(500)));
        let (_, url) = resolve_with_lock_wait("s3://b/p", wait).unwrap();
        assert_eq!(url.option(LOCK_TIMEOUT), None, "only the lock-holding schemes take it");
    }

    /// The table names each compiled-in backend crate's own form.
    #[test]
    fn the_table_agrees_with_the_backend_crates() {
        let entry = |scheme: &str| BACKENDS.iter().find(|e| e.scheme() == scheme).unwrap().url;
        let _ = entry;
        #[cfg(feature = "rocksdb")]
        assert_eq!(entry("rocksdb"), pinvault_rocksdb::URL_FORM);
        #[cfg(feature = "sled")]
        assert_eq!(entry("sled"), pinvault_sled::URL_FORM);
        #[cfg(feature = "fs")]
        assert_eq!(entry("fs"), pinvault_fs::URL_FORM);
        #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
        for form in pinvault_object::URL_FORMS {
            assert_eq!(entry(form.scheme), form);
        }
        #[cfg(feature = "scylla")]
        assert_eq!(entry("scylla"), pinvault_scylla::URL_FORM);
    }
}
