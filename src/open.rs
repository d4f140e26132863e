//! Opening a backend from a URL.
//!
//! [`BACKENDS`] is the one table where a backend plugs into the facade: its scheme, the URL form
//! it takes, the Cargo feature that compiles it in, and its opener. [`open`] parses the URL,
//! finds the scheme in the table, checks the URL's shape (a path, a bucket and prefix, or hosts
//! and a keyspace), and calls the opener. A known scheme whose opener is not compiled in is
//! refused with [`Error::Unsupported`] naming the feature to enable, never silently replaced.
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
//! 2. Below, write `#[cfg(feature = "rocksdb")] fn open_rocksdb(target: Target, mode: OpenMode,
//!    faults: FaultInjector) -> OpenFuture`
//!    that builds the backend from `target.location` (in `mode`, if it has a directory) and
//!    wraps it with [`Store::from_backend`], which puts it behind the checking layer.
//! 3. Give the entry its opener under the same feature:
//!    `#[cfg(feature = "rocksdb")] const ROCKSDB: Option<Opener> = Some(open_rocksdb);` and
//!    `#[cfg(not(feature = "rocksdb"))] const ROCKSDB: Option<Opener> = None;`, then
//!    `opener: ROCKSDB` in the table.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pinvault_core::memory::MemoryBackend;
use pinvault_core::{Checked, Error, FaultInjector, OpenMode, PinState, Publisher, Result};
use url::Url;

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
}

/// Where a backend URL points, checked against the shape its scheme takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Nothing: the backend lives in this process (`memory:`).
    InProcess,
    /// A local directory (`rocksdb:///path`, `sled:///path`, `fs:///path`).
    Directory(PathBuf),
    /// A bucket or container and a key prefix inside it (`s3://bucket/prefix`).
    Bucket {
        /// The bucket (S3, GCS) or container (Azure).
        bucket: String,
        /// The key prefix, without leading or trailing `/`; empty for the whole bucket.
        prefix: String,
    },
    /// Contact points and a keyspace (`scylla://host1:9042,host2/keyspace`).
    Cluster {
        /// `host` or `host:port`, in the order given.
        hosts: Vec<String>,
        /// The keyspace holding pinvault's tables.
        keyspace: String,
    },
}

/// The URL shape a scheme takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `scheme:` and nothing else.
    InProcess,
    /// `scheme:///absolute/path`.
    Directory,
    /// `scheme://bucket/prefix`.
    Bucket,
    /// `scheme://host1,host2/keyspace`.
    Cluster,
}

/// A parsed, shape-checked backend URL, as handed to an opener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as the caller wrote it.
    pub url: String,
    /// What it points at.
    pub location: Location,
    /// Query parameters (`rocksdb:///path?sync=false`), each key at most once. Only directory
    /// URLs take them today; each opener refuses keys it does not know.
    pub options: BTreeMap<String, String>,
}

impl Target {
    /// The directory of a [`Location::Directory`] target.
    pub fn directory(&self) -> Result<PathBuf> {
        match &self.location {
            Location::Directory(path) => Ok(path.clone()),
            other => Err(Error::invalid(
                format!("backend URL {:?}", self.url),
                format!("{other:?} is not a directory"),
            )),
        }
    }

    /// Refuses any option not in `known`.
    pub fn check_options(&self, known: &[&str]) -> Result<()> {
        match self.options.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(Error::invalid(
                format!("backend URL {:?}", self.url),
                format!("unknown option {key:?}; this backend takes: {}", known.join(", ")),
            )),
        }
    }

    /// A duration option in decimal seconds (`lock_timeout=2.5`), zero when absent.
    pub fn seconds_option(&self, key: &str) -> Result<Duration> {
        match self.options.get(key) {
            None => Ok(Duration::ZERO),
            Some(text) => parse_seconds(text).map_err(|why| {
                Error::invalid(
                    format!("backend URL {:?}", self.url),
                    format!("option {key}={text:?} {why}"),
                )
            }),
        }
    }

    /// A `true`/`false` option, `default` when absent.
    pub fn bool_option(&self, key: &str, default: bool) -> Result<bool> {
        match self.options.get(key).map(String::as_str) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(Error::invalid(
                format!("backend URL {:?}", self.url),
                format!("option {key}={other:?} must be true or false"),
            )),
        }
    }
}

/// Decimal seconds (`10`, `0.5`) as a [`Duration`]; the error says what is wrong.
pub fn parse_seconds(text: &str) -> std::result::Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| "must be a number of seconds, 0 or more (e.g. 10 or 0.5)".to_owned())
}

/// The URL option that bounds how long a writable open waits for another process holding the
/// store's lock (decimal seconds).
pub const LOCK_TIMEOUT: &str = "lock_timeout";

/// The schemes whose openers take [`LOCK_TIMEOUT`]: the embedded stores, which one process
/// at a time may open for writing.
pub const LOCK_TIMEOUT_SCHEMES: &[&str] = &["fs", "rocksdb", "sled"];

/// The future an opener returns.
pub type OpenFuture = BoxFuture<'static, Result<Store>>;

/// Opens a backend from a checked [`Target`] in an [`OpenMode`], with a fault injector
/// (disabled outside tests).
pub type Opener = fn(Target, OpenMode, FaultInjector) -> OpenFuture;

/// One backend the facade knows, compiled in or not.
#[derive(Clone, Copy)]
pub struct BackendEntry {
    /// The URL scheme (`"rocksdb"`).
    pub scheme: &'static str,
    /// The URL form, for help and error messages (`"rocksdb:///path"`).
    pub form: &'static str,
    /// The shape its URLs must have.
    pub shape: Shape,
    /// The Cargo feature of the `pinvault` package that compiles it in; `None` when always built.
    pub feature: Option<&'static str>,
    /// How to open it; `None` when its feature is not enabled in this build.
    pub opener: Option<Opener>,
}

impl BackendEntry {
    /// Whether this build can open the backend.
    pub fn is_compiled_in(&self) -> bool {
        self.opener.is_some()
    }
}

impl fmt::Debug for BackendEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendEntry")
            .field("scheme", &self.scheme)
            .field("form", &self.form)
            .field("shape", &self.shape)
            .field("feature", &self.feature)
            .field("compiled_in", &self.is_compiled_in())
            .finish()
    }
}

/// Every backend pinvault knows, in the order of the design document.
pub const BACKENDS: &[BackendEntry] = &[
    BackendEntry {
        scheme: "memory",
        form: "memory:",
        shape: Shape::InProcess,
        feature: None,
        opener: Some(open_memory),
    },
    BackendEntry {
        scheme: "rocksdb",
        form: "rocksdb:///path",
        shape: Shape::Directory,
        feature: Some("rocksdb"),
        opener: ROCKSDB,
    },
    BackendEntry {
        scheme: "sled",
        form: "sled:///path",
        shape: Shape::Directory,
        feature: Some("sled"),
        opener: SLED,
    },
    BackendEntry {
        scheme: "fs",
        form: "fs:///path",
        shape: Shape::Directory,
        feature: Some("fs"),
        opener: FS,
    },
    BackendEntry {
        scheme: "s3",
        form: "s3://bucket/prefix",
        shape: Shape::Bucket,
        feature: Some("s3"),
        opener: S3,
    },
    BackendEntry {
        scheme: "gs",
        form: "gs://bucket/prefix",
        shape: Shape::Bucket,
        feature: Some("gcs"),
        opener: GCS,
    },
    BackendEntry {
        scheme: "az",
        form: "az://container/prefix",
        shape: Shape::Bucket,
        feature: Some("azure"),
        opener: AZURE,
    },
    BackendEntry {
        scheme: "scylla",
        form: "scylla://host1,host2/keyspace",
        shape: Shape::Cluster,
        feature: Some("scylla"),
        opener: SCYLLA,
    },
];

/// Every open of `memory:` is a new store, whatever the mode: there is none to find.
fn open_memory(_target: Target, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    let store = pinvault_core::memory::MemoryStore::new();
    Box::pin(async move { Ok(Store::from_backend(MemoryBackend::open(store, faults))) })
}

/// `rocksdb:///path[?sync=true|false&lock_timeout=SECONDS]`: `sync` (default true) fsyncs
/// every commit; `lock_timeout` (default 0) is how long a writable open waits for another
/// process holding the store.
#[cfg(feature = "rocksdb")]
fn open_rocksdb(target: Target, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        target.check_options(&["sync", LOCK_TIMEOUT])?;
        let options = pinvault_rocksdb::RocksOptions {
            sync: target.bool_option("sync", true)?,
            lock_wait: target.seconds_option(LOCK_TIMEOUT)?,
        };
        let backend =
            pinvault_rocksdb::open_with_mode(target.directory()?, options, mode, faults).await?;
        Ok(Store::from_backend(backend))
    })
}
#[cfg(feature = "rocksdb")]
const ROCKSDB: Option<Opener> = Some(open_rocksdb);
#[cfg(not(feature = "rocksdb"))]
const ROCKSDB: Option<Opener> = None;

/// `sled:///path[?sync=true|false&lock_timeout=SECONDS]`: `sync` (default true) flushes after
/// every write; `lock_timeout` (default 0) is how long an open waits for another process
/// holding the store.
#[cfg(feature = "sled")]
fn open_sled(target: Target, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        target.check_options(&["sync", LOCK_TIMEOUT])?;
        let options = pinvault_sled::SledOptions {
            durable: target.bool_option("sync", true)?,
            lock_wait: target.seconds_option(LOCK_TIMEOUT)?,
        };
        let backend =
            pinvault_sled::open_with_mode(target.directory()?, options, mode, faults).await?;
        Ok(Store::from_backend(backend))
    })
}
#[cfg(feature = "sled")]
const SLED: Option<Opener> = Some(open_sled);

/// `fs:///path[?sync=true|false&lock_timeout=SECONDS]`: `sync` (default true) fsyncs every
/// commit and publication; `lock_timeout` (default 0) is how long a writable open waits for
/// another process holding the store (read-only opens take no lock).
#[cfg(feature = "fs")]
fn open_fs(target: Target, mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        target.check_options(&["sync", LOCK_TIMEOUT])?;
        let options = pinvault_fs::FsOptions {
            durable: target.bool_option("sync", true)?,
            lock_wait: target.seconds_option(LOCK_TIMEOUT)?,
        };
        let backend =
            pinvault_fs::open_with_mode(target.directory()?, options, mode, faults).await?;
        Ok(Store::from_backend(backend))
    })
}
#[cfg(feature = "fs")]
const FS: Option<Opener> = Some(open_fs);
#[cfg(not(feature = "fs"))]
const FS: Option<Opener> = None;
#[cfg(not(feature = "sled"))]
const SLED: Option<Opener> = None;

/// `s3://bucket/prefix[?endpoint=&region=&allow_http=]`, `gs://bucket/prefix`,
/// `az://container/prefix[?account=&endpoint=&allow_http=]`: the object-store backend.
/// Credentials come from the environment only (`PINVAULT_S3_ACCESS_KEY_ID`,
/// `PINVAULT_S3_SECRET_ACCESS_KEY`, `PINVAULT_GCS_SERVICE_ACCOUNT`, `PINVAULT_AZURE_ACCESS_KEY`;
/// `pinvault_object::config`), never from the URL. Opening sends no request.
/// The mode does not apply: a prefix holding no pins is an empty store.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn open_object(target: Target, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        let known: &[&str] = match target.url.split_once(':').map(|(s, _)| s.to_ascii_lowercase()) {
            Some(scheme) if scheme == "s3" => &["endpoint", "region", "allow_http"],
            Some(scheme) if scheme == "az" => &["account", "endpoint", "allow_http"],
            _ => &[],
        };
        target.check_options(known)?;
        let config = pinvault_object::ObjectConfig::from_url(&target.url)?;
        Ok(Store::from_backend(pinvault_object::open(config.options()?.with_faults(faults))))
    })
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

/// `scylla://host1[:port],host2/keyspace[?tls=&local_dc=&replication=]`: the ScyllaDB/Cassandra
/// backend; the port defaults to 9042. Credentials come from `PINVAULT_CASSANDRA_USER` and
/// `PINVAULT_CASSANDRA_PASSWORD` (both or neither); `tls=true` verifies the server against
/// `PINVAULT_CASSANDRA_CA_CERT` when set, else the system roots. `replication` is the
/// SimpleStrategy factor used when the keyspace is created (default 1). Connecting applies the
/// schema migrations (`schema/`), creating the keyspace if needed, whatever the mode.
#[cfg(feature = "scylla")]
fn open_scylla(target: Target, _mode: OpenMode, faults: FaultInjector) -> OpenFuture {
    Box::pin(async move {
        use pinvault_scylla::{Replication, ScyllaConfig, Secret, TlsTrust};
        target.check_options(&["tls", "local_dc", "replication"])?;
        let Location::Cluster { hosts, keyspace } = &target.location else {
            return Err(Error::invalid(
                format!("backend URL {:?}", target.url),
                "not a cluster URL",
            ));
        };
        let mut config =
            ScyllaConfig::new(hosts.iter().map(|h| with_default_port(h, 9042)).collect(), keyspace);
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (env("PINVAULT_CASSANDRA_USER"), env("PINVAULT_CASSANDRA_PASSWORD")) {
            (Some(user), Some(password)) => {
                config.username = Some(user);
                config.password = Some(Secret::new(password));
            }
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "environment",
                    "set both PINVAULT_CASSANDRA_USER and PINVAULT_CASSANDRA_PASSWORD, or neither",
                ))
            }
        }
        if target.bool_option("tls", false)? {
            config.tls = Some(match env("PINVAULT_CASSANDRA_CA_CERT") {
                Some(ca) => TlsTrust::CaFile(ca.into()),
                None => TlsTrust::SystemRootsOnly,
            });
        }
        config.local_dc = target.options.get("local_dc").cloned();
        if let Some(rf) = target.options.get("replication") {
            let rf = rf.parse::<u32>().ok().filter(|rf| *rf > 0).ok_or_else(|| {
                Error::invalid(
                    format!("backend URL {:?}", target.url),
                    format!("option replication={rf:?} must be a positive replication factor"),
                )
            })?;
            config.replication = Replication::Simple(rf);
        }
        let backend = pinvault_scylla::open(config, faults).await?;
        Ok(Store::from_backend(backend))
    })
}
#[cfg(feature = "scylla")]
const SCYLLA: Option<Opener> = Some(open_scylla);
#[cfg(not(feature = "scylla"))]
const SCYLLA: Option<Opener> = None;

/// `host` → `host:port`; a contact point that names its port is kept as it is.
#[cfg_attr(not(feature = "scylla"), allow(dead_code))]
fn with_default_port(contact: &str, port: u16) -> String {
    let has_port = match contact.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').is_some_and(|(_, rest)| rest.starts_with(':')),
        None => contact.contains(':'),
    };
    if has_port {
        contact.to_owned()
    } else {
        format!("{contact}:{port}")
    }
}

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
    let (entry, mut target) = resolve(url)?;
    if let Some(wait) = lock_wait {
        if LOCK_TIMEOUT_SCHEMES.contains(&entry.scheme) {
            target
                .options
                .entry(LOCK_TIMEOUT.to_owned())
                .or_insert_with(|| wait.as_secs_f64().to_string());
        }
    }
    match entry.opener {
        Some(opener) => opener(target, mode, FaultInjector::disabled()).await,
        None => Err(not_compiled_in(entry)),
    }
}

/// Repairs the damaged store `url` names (`pinvault state repair`): the backend's own repair
/// (fs: `pinvault_fs::repair`, RocksDB: `pinvault_rocksdb::repair`), which keeps every byte it
/// removes in a quarantine file and reports what it did. Waits up to `lock_wait` for a
/// process holding the store. Other backends: [`Error::Unsupported`].
pub async fn repair(url: &str, lock_wait: Option<Duration>) -> Result<pinvault_core::RepairReport> {
    let (entry, target) = resolve(url)?;
    let lock_wait = match target.options.contains_key(LOCK_TIMEOUT) {
        true => target.seconds_option(LOCK_TIMEOUT)?,
        false => lock_wait.unwrap_or_default(),
    };
    if entry.opener.is_none() {
        return Err(not_compiled_in(entry));
    }
    // Unused in a build with neither backend below.
    let _ = (&target, lock_wait);
    match entry.scheme {
        #[cfg(feature = "fs")]
        "fs" => {
            let options = pinvault_fs::FsOptions { lock_wait, ..Default::default() };
            pinvault_fs::repair(target.directory()?, options).await
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => {
            let options = pinvault_rocksdb::RocksOptions { lock_wait, ..Default::default() };
            pinvault_rocksdb::repair(target.directory()?, options).await
        }
        scheme => Err(Error::unsupported(
            entry.scheme,
            format!("repair: the {scheme} backend has no repair (fs and rocksdb have)"),
        )),
    }
}

async fn open_with(url: &str, mode: OpenMode, faults: FaultInjector) -> Result<Store> {
    let (entry, target) = resolve(url)?;
    match entry.opener {
        Some(opener) => opener(target, mode, faults).await,
        None => Err(not_compiled_in(entry)),
    }
}

/// Parses and shape-checks `url` without opening anything.
pub fn resolve(url: &str) -> Result<(&'static BackendEntry, Target)> {
    let scheme = match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() => scheme,
        _ => return Err(malformed(url, "it has no scheme")),
    };
    let entry = BACKENDS
        .iter()
        .find(|e| e.scheme.eq_ignore_ascii_case(scheme))
        .ok_or_else(|| bad_url(url, format!("unknown scheme {scheme:?}")))?;
    let mut options = BTreeMap::new();
    let location = match entry.shape {
        Shape::InProcess => parse_in_process(url, entry)?,
        Shape::Directory => parse_directory(url, entry, &mut options)?,
        Shape::Bucket => parse_bucket(url, entry, &mut options)?,
        Shape::Cluster => parse_cluster(url, entry, &mut options)?,
    };
    Ok((entry, Target { url: url.to_owned(), location, options }))
}

/// A URL for a new store *under* `url`, named after `name` (e.g. `conformance-<run>-3`), so a
/// tool can make scratch stores without touching what the user has: `dir/pinvault-<name>` for a
/// directory, `prefix/pinvault-<name>` in a bucket, keyspace `<keyspace>_<name>` (letters,
/// digits and `_` only, the base shortened to keep 48 characters), and `memory:` itself (every
/// open of it is a new store). Query options are kept.
pub fn sub_location(url: &str, name: &str) -> Result<String> {
    let (_, target) = resolve(url)?;
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    Ok(match target.location {
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
    BACKENDS.iter().map(|e| e.form).collect::<Vec<_>>().join(", ")
}

fn not_compiled_in(entry: &BackendEntry) -> Error {
    let feature = entry.feature.unwrap_or(entry.scheme);
    Error::unsupported(
        entry.scheme,
        format!("backend {} is not compiled in: enable feature `{feature}`", entry.scheme),
    )
}

fn bad_url(url: &str, reason: impl fmt::Display) -> Error {
    Error::invalid(
        format!("backend URL {url:?}"),
        format!("{reason}; known forms: {}", known_forms()),
    )
}

fn malformed(url: &str, reason: impl fmt::Display) -> Error {
    bad_url(url, format!("malformed URL: {reason}"))
}

fn wrong_shape(url: &str, entry: &BackendEntry, reason: impl fmt::Display) -> Error {
    Error::invalid(
        format!("backend URL {url:?}"),
        format!("{reason}; a {} URL looks like {}", entry.scheme, entry.form),
    )
}

fn parse_url(url: &str) -> Result<Url> {
    let parsed = parse_url_with_query(url)?;
    if parsed.query().is_some() {
        return Err(malformed(url, "query parameters are not supported by this scheme"));
    }
    Ok(parsed)
}

fn parse_url_with_query(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| malformed(url, e))?;
    if parsed.fragment().is_some() {
        return Err(malformed(url, "fragments are not supported"));
    }
    Ok(parsed)
}

fn parse_in_process(url: &str, entry: &BackendEntry) -> Result<Location> {
    let parsed = parse_url(url)?;
    let empty = parsed.path().is_empty() && parsed.host_str().unwrap_or("").is_empty();
    if !empty || parsed.port().is_some() || !parsed.username().is_empty() {
        return Err(wrong_shape(url, entry, "it takes no location"));
    }
    Ok(Location::InProcess)
}

fn parse_directory(
    url: &str,
    entry: &BackendEntry,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let parsed = parse_url_with_query(url)?;
    collect_options(url, parsed.query_pairs(), options)?;
    if parsed.cannot_be_a_base() || parsed.has_host() && parsed.host_str() != Some("") {
        return Err(wrong_shape(url, entry, "it needs an absolute path after three slashes"));
    }
    let path = parsed
        .to_file_path()
        .map_err(|()| wrong_shape(url, entry, "its path is not a valid local path"))?;
    if path.parent().is_none() {
        return Err(wrong_shape(url, entry, "it needs a directory, not the filesystem root"));
    }
    Ok(Location::Directory(path))
}

/// Query parameters into `options`, each key at most once.
fn collect_options<'a>(
    url: &str,
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    options: &mut BTreeMap<String, String>,
) -> Result<()> {
    for (key, value) in pairs {
        if options.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(malformed(url, format!("option {key:?} is given twice")));
        }
    }
    Ok(())
}

fn parse_bucket(
    url: &str,
    entry: &BackendEntry,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let parsed = parse_url_with_query(url)?;
    collect_options(url, parsed.query_pairs(), options)?;
    let bucket = parsed.host_str().unwrap_or("");
    if bucket.is_empty() {
        return Err(wrong_shape(url, entry, "it names no bucket"));
    }
    if parsed.port().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(wrong_shape(url, entry, "a bucket takes no port or credentials"));
    }
    let prefix = parsed.path().trim_matches('/');
    Ok(Location::Bucket { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
}

/// Parsed by hand: `url` cannot hold a comma-separated list of `host:port` contact points.
fn parse_cluster(
    url: &str,
    entry: &BackendEntry,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let rest = url
        .get(entry.scheme.len()..)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| wrong_shape(url, entry, "it needs '//' before the hosts"))?;
    if rest.contains(['#', '@']) {
        return Err(malformed(url, "fragments and credentials are not supported"));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    collect_options(url, url::form_urlencoded::parse(query.as_bytes()), options)?;
    let (hosts, keyspace) =
        rest.split_once('/').ok_or_else(|| wrong_shape(url, entry, "it names no keyspace"))?;
    let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
    if let Some(bad) = hosts.iter().find(|h| !valid_contact_point(h)) {
        return Err(wrong_shape(url, entry, format!("{bad:?} is not a host or host:port")));
    }
    let valid_keyspace = !keyspace.is_empty()
        && keyspace.len() <= 48
        && keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_keyspace {
        return Err(wrong_shape(
            url,
            entry,
            format!("keyspace {keyspace:?} must be 1 to 48 letters, digits or '_'"),
        ));
    }
    Ok(Location::Cluster { hosts, keyspace: keyspace.to_owned() })
}

fn valid_contact_point(contact: &str) -> bool {
    let (host, port) = match contact.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((v6, "")) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            Some((v6, port)) => match port.strip_prefix(':') {
                Some(port) if v6.parse::<std::net::Ipv6Addr>().is_ok() => ("localhost", Some(port)),
                _ => return false,
            },
            None => return false,
        },
        None => match contact.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (contact, None),
        },
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    port_ok && !host.is_empty() && url::Host::parse(host).is_ok()
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
            assert_eq!(store.state.capabilities().backend, "memory");
            assert_eq!(store.publisher.publication_capabilities().backend, "memory");
        }
    }

    #[tokio::test]
    async fn memory_is_a_new_store_in_any_mode() {
        let store = open_with_mode("memory:", OpenMode::MustExist).await.unwrap();
        assert_eq!(store.state.capabilities().backend, "memory");
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

    #[test]
    fn lock_timeout_is_decimal_seconds() {
        let (_, target) = resolve("fs:///x?lock_timeout=2.5").unwrap();
        assert_eq!(target.seconds_option(LOCK_TIMEOUT).unwrap(), Duration::from_millis(2500));
        assert_eq!(target.seconds_option("absent").unwrap(), Duration::ZERO);
        for bad in ["-1", "soon", "NaN", "1e400"] {
            let (_, target) = resolve(&format!("fs:///x?lock_timeout={bad}")).unwrap();
            let err = target.seconds_option(LOCK_TIMEOUT).unwrap_err().to_string();
            assert!(err.contains("lock_timeout") && err.contains("seconds"), "{bad}: {err}");
        }
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
            let entry = BACKENDS.iter().find(|e| e.scheme == scheme).unwrap();
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

    #[test]
    fn directory_urls_give_absolute_paths() {
        let (entry, target) = resolve("rocksdb:///var/lib/pin%20vault").unwrap();
        assert_eq!(entry.scheme, "rocksdb");
        assert_eq!(target.location, Location::Directory(PathBuf::from("/var/lib/pin vault")));
        for bad in ["rocksdb:relative", "rocksdb://host/path", "sled:///", "fs:", "fs:///x#frag"] {
            assert!(message(bad).contains(bad), "{bad}");
        }
        assert!(message("rocksdb://host/path").contains("rocksdb:///path"));
        let (_, target) = resolve("sled:///x?sync=false").unwrap();
        assert_eq!(target.options.get("sync").map(String::as_str), Some("false"));
        assert!(!target.bool_option("sync", true).unwrap());
        assert!(target.check_options(&["sync"]).is_ok());
        assert!(target.check_options(&["cache"]).unwrap_err().to_string().contains("\"sync\""));
        assert!(message("sled:///x?sync=1&sync=0").contains("twice"));
        let (_, target) = resolve("sled:///x?sync=maybe").unwrap();
        assert!(target.bool_option("sync", true).is_err());
    }

    #[test]
    fn bucket_urls_split_bucket_and_prefix() {
        let (_, target) = resolve("s3://data/partitions/2026/").unwrap();
        let expected = Location::Bucket { bucket: "data".into(), prefix: "partitions/2026".into() };
        assert_eq!(target.location, expected);
        let (_, target) = resolve("az://container").unwrap();
        assert_eq!(
            target.location,
            Location::Bucket { bucket: "container".into(), prefix: String::new() }
        );
        for bad in ["s3:///prefix", "gs:bucket", "s3://user@bucket/p", "s3://b:9000/p"] {
            assert!(message(bad).contains("bucket"), "{bad}: {}", message(bad));
        }
        let (_, target) =
            resolve("s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=x").unwrap();
        assert_eq!(
            target.options.get("endpoint").map(String::as_str),
            Some("http://127.0.0.1:9000")
        );
        assert!(target.check_options(&["endpoint", "region"]).is_ok());
        assert!(message("s3://b/p?region=a&region=b").contains("twice"));
    }

    #[test]
    fn cluster_urls_take_options_and_a_default_port() {
        let (_, target) = resolve("scylla://db1,db2:19042/pins?tls=true&local_dc=dc1").unwrap();
        assert!(target.bool_option("tls", false).unwrap());
        assert_eq!(target.options.get("local_dc").map(String::as_str), Some("dc1"));
        let ported: Vec<String> = ["db1", "db2:19042", "[::1]", "[::1]:19042", "10.0.0.1"]
            .iter()
            .map(|h| with_default_port(h, 9042))
            .collect();
        assert_eq!(ported, ["db1:9042", "db2:19042", "[::1]:9042", "[::1]:19042", "10.0.0.1:9042"]);
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    #[tokio::test]
    async fn object_urls_refuse_unknown_options_and_credentials() {
        for url in ["s3://b/p?fsync=false", "gs://b/p?endpoint=x", "az://c/p?secret=x"] {
            let entry = BACKENDS.iter().find(|e| url.starts_with(e.scheme)).unwrap();
            if !entry.is_compiled_in() {
                continue;
            }
            let err = open(url).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn cluster_urls_list_contact_points() {
        let (_, target) = resolve("scylla://10.0.0.1:9042,db2,[::1]:19042/pins").unwrap();
        let hosts = vec!["10.0.0.1:9042".to_owned(), "db2".to_owned(), "[::1]:19042".to_owned()];
        assert_eq!(target.location, Location::Cluster { hosts, keyspace: "pins".into() });
        for bad in [
            "scylla:host/ks",
            "scylla://host",
            "scylla://host/",
            "scylla:///ks",
            "scylla://h1,,h2/ks",
            "scylla://h1:99999/ks",
            "scylla://h1/bad-keyspace",
            "scylla://h1/ks?tls=true&tls=false",
            "scylla://h1/ks#frag",
        ] {
            assert!(message(bad).contains(bad), "{bad}");
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
        let mut schemes: Vec<_> = BACKENDS.iter().map(|e| e.scheme).collect();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), BACKENDS.len());
        assert!(BACKENDS.iter().all(|e| e.form.starts_with(e.scheme)));
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
}
