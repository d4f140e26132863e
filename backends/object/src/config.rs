//! How a backend is configured: [`ObjectOptions`] over any `Arc<dyn ObjectStore>` and a prefix,
//! built directly or from a store-specific config ([`S3Config`], [`GcsConfig`],
//! [`AzureConfig`], [`LocalConfig`]) or a URL ([`ObjectConfig::from_url`], [`URL_FORMS`]).
//!
//! Secrets are held in [`Secret`], whose `Debug` prints `***`, and are never put in a URL:
//! [`ObjectConfig::from_url`] refuses a URL carrying a password or a key, and reads credentials
//! from the environment instead (`PINVAULT_S3_ACCESS_KEY_ID`, `PINVAULT_S3_SECRET_ACCESS_KEY`,
//! `PINVAULT_AZURE_ACCESS_KEY`, `PINVAULT_GCS_SERVICE_ACCOUNT`). No credential is ever logged:
//! the backend's `Debug` and its tracing spans show the store kind and the prefix only.
//!
//! What depends on the store kind ([`StoreKind`]):
//!
//! | kind     | conditional update (`PutMode::Update`) | ordered listing | persistent / durable on return |
//! |----------|----------------------------------------|-----------------|--------------------------------|
//! | S3, GCS, Azure | yes (ETag `If-Match` / generation) | yes (lexicographic) | yes / yes          |
//! | local    | `LocalFileSystem` refuses it; [`crate::LocalCasStore`] adds it under a per-path lock (one process per directory) | no (directory walk) | yes / yes when `fsync` (the default) |
//! | memory   | yes                                    | yes             | no / no                        |

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use pinvault_core::backend_url::{process_env, Location, UrlForm};
use pinvault_core::{BackendUrl, Error, FaultInjector, Result, Secret};

/// The kind of store behind a backend: decides the capability flags that depend on the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server (MinIO).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (or Azurite).
    Azure,
    /// `object_store::local::LocalFileSystem`.
    Local,
    /// `object_store::memory::InMemory`.
    Memory,
    /// Any other store: the flags are whatever the options say.
    Other,
}

impl StoreKind {
    /// The backend name in capabilities and errors.
    pub fn backend_name(self) -> &'static str {
        match self {
            StoreKind::S3 => "object-s3",
            StoreKind::Gcs => "object-gcs",
            StoreKind::Azure => "object-azure",
            StoreKind::Local => "object-local",
            StoreKind::Memory => "object-memory",
            StoreKind::Other => "object",
        }
    }
}

/// Everything a backend instance needs. Build with [`ObjectOptions::new`] and the `with_*`
/// methods, or from a store config.
#[derive(Clone)]
pub struct ObjectOptions {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: Path,
    pub(crate) kind: StoreKind,
    pub(crate) conditional_update: bool,
    pub(crate) ordered_listing: bool,
    pub(crate) persistent: bool,
    pub(crate) durable: bool,
    pub(crate) concurrency: usize,
    pub(crate) view_grace: Duration,
    pub(crate) faults: FaultInjector,
}

impl fmt::Debug for ObjectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store's own Debug may show its configuration: leave it out.
        f.debug_struct("ObjectOptions")
            .field("kind", &self.kind)
            .field("prefix", &self.prefix.as_ref())
            .field("conditional_update", &self.conditional_update)
            .field("ordered_listing", &self.ordered_listing)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Requests one backend call keeps in flight at most (HEADs of a finalize, GETs of a listing).
pub const DEFAULT_CONCURRENCY: usize = 16;

/// How old an unmatched view row must be before a reader deletes it (see `views`).
pub const DEFAULT_VIEW_GRACE: Duration = Duration::from_secs(15 * 60);

impl ObjectOptions {
    /// Options over `store`, with every key under `prefix` (`""` for the store's root), for a
    /// store of unknown kind: conditional updates on, ordered listing off, persistent and
    /// durable. Say what the store is with [`ObjectOptions::with_kind`].
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = Path::parse(prefix)
            .map_err(|e| Error::invalid(format!("store prefix {prefix:?}"), e.to_string()))?;
        Ok(ObjectOptions::at(store, prefix))
    }

    fn at(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        ObjectOptions {
            store,
            prefix,
            kind: StoreKind::Other,
            conditional_update: true,
            ordered_listing: false,
            persistent: true,
            durable: true,
            concurrency: DEFAULT_CONCURRENCY,
            view_grace: DEFAULT_VIEW_GRACE,
            faults: FaultInjector::disabled(),
        }
    }

    /// Sets the store kind and the flags that follow from it (see the module doc).
    pub fn with_kind(mut self, kind: StoreKind) -> Self {
        self.kind = kind;
        let (update, ordered, persistent) = match kind {
            StoreKind::S3 | StoreKind::Gcs | StoreKind::Azure => (true, true, true),
            StoreKind::Local => (true, false, true),
            StoreKind::Memory => (true, true, false),
            StoreKind::Other => (self.conditional_update, self.ordered_listing, self.persistent),
        };
        self.conditional_update = update;
        self.ordered_listing = ordered;
        self.persistent = persistent;
        self.durable = persistent;
        self
    }

    /// Whether the store implements `PutMode::Update` (compare-and-swap on the ETag). Without
    /// it, conditional pin writes are refused with `Unsupported`.
    pub fn with_conditional_update(mut self, supported: bool) -> Self {
        self.conditional_update = supported;
        self
    }

    /// Whether `list` returns keys in lexicographic order (S3, GCS, Azure, memory do); with it
    /// a listing page stops reading at its last key.
    pub fn with_ordered_listing(mut self, ordered: bool) -> Self {
        self.ordered_listing = ordered;
        self
    }

    /// Whether data survives the process and a returned write is on stable storage.
    pub fn with_durability(mut self, persistent: bool, durable_on_return: bool) -> Self {
        self.persistent = persistent;
        self.durable = durable_on_return;
        self
    }

    /// Requests in flight per call (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How old an unmatched view row must be before a reader deletes it.
    pub fn with_view_grace(mut self, grace: Duration) -> Self {
        self.view_grace = grace;
        self
    }

    /// The fault injector (tests); production instances keep it disabled.
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.faults = faults;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix every key lives under.
    pub fn prefix(&self) -> &str {
        self.prefix.as_ref()
    }

    /// The store kind.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Options over a fresh `InMemory` store.
    pub fn in_memory() -> Self {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        ObjectOptions::at(store, Path::default()).with_kind(StoreKind::Memory)
    }
}

fn build_error(what: &str, e: object_store::Error) -> Error {
    Error::invalid(format!("{what} configuration"), e.to_string())
}

fn is_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_owned)).is_some_and(
        |host| {
            host == "localhost"
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        },
    )
}

fn check_http(what: &str, endpoint: Option<&str>, allow_http: bool) {
    if let (true, Some(endpoint)) = (allow_http, endpoint) {
        if !is_loopback(endpoint) {
            tracing::warn!(
                store = what,
                "allow_http is set for a non-loopback endpoint: requests travel unencrypted"
            );
        }
    }
}

/// An S3 (or S3-compatible) bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` for MinIO).
    pub region: String,
    /// A custom endpoint (`http://127.0.0.1:9000` for MinIO); `None` for AWS.
    pub endpoint: Option<String>,
    /// Access key id; `None` takes the AWS default chain (instance profile, ...).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Allow plain http (meant for a loopback endpoint such as a local MinIO).
    pub allow_http: bool,
}

impl S3Config {
    /// The store. Conditional puts use `If-None-Match: *` / `If-Match` (`S3ConditionalPut::ETagMatch`),
    /// which AWS S3 and MinIO both honour; copy-if-not-exists is never used (MinIO ignores its
    /// header mode, see `testenv/services/minio/NOTES.md`).
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        check_http("s3", self.endpoint.as_deref(), self.allow_http);
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_allow_http(self.allow_http)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(id) = &self.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &self.secret_access_key {
            b = b.with_secret_access_key(secret.expose());
        }
        Ok(Arc::new(b.build().map_err(|e| build_error("s3", e))?))
    }

    /// Options for a backend under `prefix` in this bucket.
    pub fn options(&self, prefix: &str) -> Result<ObjectOptions> {
        Ok(ObjectOptions::new(self.build()?, prefix)?.with_kind(StoreKind::S3))
    }
}

/// A Google Cloud Storage bucket.
#[derive(Clone, Debug)]
pub struct GcsConfig {
    /// The bucket.
    pub bucket: String,
    /// A service account JSON file; `None` takes the application default credentials.
    pub service_account_path: Option<String>,
}

impl GcsConfig {
    /// The store.
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        let mut b = GoogleCloudStorageBuilder::new().with_bucket_name(&self.bucket);
        if let Some(path) = &self.service_account_path {
            b = b.with_service_account_path(path);
        }
        Ok(Arc::new(b.build().map_err(|e| build_error("gcs", e))?))
    }

    /// Options for a backend under `prefix` in this bucket.
    pub fn options(&self, prefix: &str) -> Result<ObjectOptions> {
        Ok(ObjectOptions::new(self.build()?, prefix)?.with_kind(StoreKind::Gcs))
    }
}

/// An Azure Blob Storage container.
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// The storage account.
    pub account: String,
    /// The container.
    pub container: String,
    /// The account's shared key; `None` takes the default credential chain.
    pub access_key: Option<Secret>,
    /// A custom endpoint (`http://127.0.0.1:10000/devstoreaccount1` for Azurite).
    pub endpoint: Option<String>,
    /// Allow plain http (meant for a loopback endpoint such as Azurite).
    pub allow_http: bool,
}

impl AzureConfig {
    /// The store.
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        check_http("azure", self.endpoint.as_deref(), self.allow_http);
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_container_name(&self.container)
            .with_allow_http(self.allow_http);
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint.clone());
        }
        if let Some(key) = &self.access_key {
            b = b.with_access_key(key.expose());
        }
        Ok(Arc::new(b.build().map_err(|e| build_error("azure", e))?))
    }

    /// Options for a backend under `prefix` in this container.
    pub fn options(&self, prefix: &str) -> Result<ObjectOptions> {
        Ok(ObjectOptions::new(self.build()?, prefix)?.with_kind(StoreKind::Azure))
    }
}

/// A directory of the local filesystem.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// The directory (created if missing).
    pub root: PathBuf,
    /// fsync files and directories after each write (default true): `durable_on_return`.
    pub fsync: bool,
}

impl LocalConfig {
    /// The store: `LocalFileSystem` wrapped in [`crate::LocalCasStore`] for compare-and-swap.
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| Error::backend(StoreKind::Local.backend_name(), e))?;
        let fs = LocalFileSystem::new_with_prefix(&self.root)
            .map_err(|e| build_error("local", e))?
            .with_automatic_cleanup(true)
            .with_fsync(self.fsync);
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        Ok(Arc::new(crate::local_cas::LocalCasStore::new(Arc::new(fs), root.display().to_string())))
    }

    /// Options for a backend under `prefix` in this directory.
    pub fn options(&self, prefix: &str) -> Result<ObjectOptions> {
        Ok(ObjectOptions::new(self.build()?, prefix)?
            .with_kind(StoreKind::Local)
            .with_durability(true, self.fsync))
    }
}

/// Which store a [`ObjectConfig`] names.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// `s3://bucket/prefix`.
    S3(S3Config),
    /// `gs://bucket/prefix`.
    Gcs(GcsConfig),
    /// `az://container/prefix`.
    Azure(AzureConfig),
    /// A local directory (no URL form: the facade does not offer it).
    Local(LocalConfig),
    /// In process memory (no URL form).
    Memory,
}

/// A store and a prefix, as named by a URL.
#[derive(Clone, Debug)]
pub struct ObjectConfig {
    /// The store.
    pub store: StoreConfig,
    /// The prefix under it.
    pub prefix: String,
}

/// The URL forms of the object-store backend.
pub const URL_FORMS: [UrlForm; 3] = [
    UrlForm::bucket("s3", "s3://bucket/prefix"),
    UrlForm::bucket("gs", "gs://bucket/prefix"),
    UrlForm::bucket("az", "az://container/prefix"),
];

impl ObjectConfig {
    /// The store a URL of [`URL_FORMS`] names: `s3://bucket/prefix[?endpoint=&region=&allow_http=]`,
    /// `gs://bucket/prefix`, `az://container/prefix[?account=&endpoint=&allow_http=]`, taking
    /// credentials from the process environment only (see the module doc).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an option the scheme does not take (credentials included:
    /// URLs get logged) or an `az://` URL with no account.
    pub fn from_url(url: &BackendUrl) -> Result<Self> {
        Self::from_url_with_env(url, process_env)
    }

    /// [`ObjectConfig::from_url`] with an explicit environment lookup.
    pub fn from_url_with_env(
        url: &BackendUrl,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let Location::Bucket { bucket, prefix } = url.location() else {
            return Err(url.invalid("the object-store backend takes a bucket URL"));
        };
        let param = |name: &str| url.option(name).map(str::to_owned);
        let store = match url.form().scheme {
            "s3" => {
                url.check_options(&["endpoint", "region", "allow_http"])?;
                StoreConfig::S3(S3Config {
                    bucket: bucket.clone(),
                    region: param("region")
                        .or_else(|| env("PINVAULT_S3_REGION"))
                        .unwrap_or_else(|| "us-east-1".to_owned()),
                    endpoint: param("endpoint").or_else(|| env("PINVAULT_S3_ENDPOINT")),
                    access_key_id: env("PINVAULT_S3_ACCESS_KEY_ID"),
                    secret_access_key: env("PINVAULT_S3_SECRET_ACCESS_KEY").map(Secret::new),
                    allow_http: url.bool_option("allow_http", false)?,
                })
            }
            "gs" => {
                url.check_options(&[])?;
                StoreConfig::Gcs(GcsConfig {
                    bucket: bucket.clone(),
                    service_account_path: env("PINVAULT_GCS_SERVICE_ACCOUNT"),
                })
            }
            "az" => {
                url.check_options(&["account", "endpoint", "allow_http"])?;
                StoreConfig::Azure(AzureConfig {
                    container: bucket.clone(),
                    account: param("account")
                        .or_else(|| env("PINVAULT_AZURE_ACCOUNT"))
                        .ok_or_else(|| {
                            url.invalid("az:// needs ?account= or PINVAULT_AZURE_ACCOUNT")
                        })?,
                    access_key: env("PINVAULT_AZURE_ACCESS_KEY").map(Secret::new),
                    endpoint: param("endpoint").or_else(|| env("PINVAULT_AZURE_ENDPOINT")),
                    allow_http: url.bool_option("allow_http", false)?,
                })
            }
            other => return Err(url.invalid(format!("{other}: not an object-store scheme"))),
        };
        Ok(ObjectConfig { store, prefix: prefix.clone() })
    }

    /// Builds the store and the options.
    pub fn options(&self) -> Result<ObjectOptions> {
        match &self.store {
            StoreConfig::S3(c) => c.options(&self.prefix),
            StoreConfig::Gcs(c) => c.options(&self.prefix),
            StoreConfig::Azure(c) => c.options(&self.prefix),
            StoreConfig::Local(c) => c.options(&self.prefix),
            StoreConfig::Memory => Ok(ObjectOptions::in_memory()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(url: &str) -> BackendUrl {
        BackendUrl::parse(url, URL_FORMS[0]).unwrap()
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "PINVAULT_S3_SECRET_ACCESS_KEY" => Some("hunter2-very-secret".into()),
            "PINVAULT_S3_ACCESS_KEY_ID" => Some("id".into()),
            _ => None,
        }
    }

    #[test]
    fn urls_parse_and_secrets_never_print() {
        let c = ObjectConfig::from_url_with_env(
            &s3("s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&allow_http=true"),
            env,
        )
        .unwrap();
        assert_eq!(c.prefix, "some/prefix");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        match &c.store {
            StoreConfig::S3(s) => {
                assert_eq!(s.bucket, "bucket");
                assert!(s.allow_http);
                assert_eq!(
                    s.secret_access_key.as_ref().map(Secret::expose),
                    Some("hunter2-very-secret")
                );
            }
            other => panic!("{other:?}"),
        }
        let options = c.options().unwrap();
        assert!(!format!("{options:?}").contains("hunter2"));
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        assert!(BackendUrl::parse("s3://user:pw@bucket/p", URL_FORMS[0]).is_err());
        for (url, form) in [("s3://bucket/p?secret=x", 0), ("az://c/p?access_key=x", 2)] {
            let url = BackendUrl::parse(url, URL_FORMS[form]).unwrap();
            let refused = ObjectConfig::from_url_with_env(&url, env);
            assert!(matches!(refused, Err(Error::InvalidInput { .. })), "{url:?}");
        }
    }

    #[test]
    fn each_scheme_takes_its_own_options() {
        let gs = BackendUrl::parse("gs://b/p?endpoint=x", URL_FORMS[1]).unwrap();
        assert!(ObjectConfig::from_url_with_env(&gs, env).is_err());
        let s3_fsync = s3("s3://b/p?fsync=false");
        assert!(ObjectConfig::from_url_with_env(&s3_fsync, env).is_err());
        let one = s3("s3://b/p?allow_http=1");
        let err = ObjectConfig::from_url_with_env(&one, env).unwrap_err().to_string();
        assert!(err.contains("must be true or false"), "{err}");
        let az = BackendUrl::parse("az://c/p", URL_FORMS[2]).unwrap();
        let err = ObjectConfig::from_url_with_env(&az, env).unwrap_err().to_string();
        assert!(err.contains("account"), "{err}");
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost:10000/devstoreaccount1"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://minio.example:9000"));
    }
}
