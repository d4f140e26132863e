//! The conformance harness shared by the per-store test files: each store gets a fresh random
//! prefix (and, for local, a fresh temporary directory); a reopen is a new `ObjectBackend`
//! instance over the same store and prefix, the old one dropped without any close.
//!
//! The emulator targets read their endpoints from the environment that `testenv/pvenv`
//! writes; when a variable is missing the test fails (never skips) and says how to start them.
//! On a shared bucket or container, a passing check deletes the prefixes it created when its
//! harness drops (a failing one leaves them for inspection): Azurite slows down as a container
//! fills, and a full suite writes tens of thousands of objects.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::{Error, FaultInjector, Result};
use pinvault_object::{
    AzureConfig, GcsConfig, LocalConfig, ObjectBackend, ObjectOptions, S3Config, Secret, StoreKind,
};
use tempfile::TempDir;

/// Reads a test-environment variable, or fails the test with how to provide it.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run testenv/pvenv up and source its env file \
             (testenv/pvenv up minio gcs azurite && source \"$(testenv/pvenv env)\"), \
             then run the tests again"
        ),
    }
}

/// MinIO, from `PINVAULT_S3_*`.
pub fn s3_config() -> S3Config {
    S3Config {
        bucket: env("PINVAULT_S3_BUCKET"),
        region: env("PINVAULT_S3_REGION"),
        endpoint: Some(env("PINVAULT_S3_ENDPOINT")),
        access_key_id: Some(env("PINVAULT_S3_ACCESS_KEY_ID")),
        secret_access_key: Some(Secret::new(env("PINVAULT_S3_SECRET_ACCESS_KEY"))),
        allow_http: true,
    }
}

/// Azurite, from `PINVAULT_AZURE_*`.
pub fn azure_config() -> AzureConfig {
    azure_config_at(env("PINVAULT_AZURE_ENDPOINT"))
}

/// Azurite at `endpoint`, with the account, key and container of `PINVAULT_AZURE_*`.
pub fn azure_config_at(endpoint: String) -> AzureConfig {
    AzureConfig {
        account: env("PINVAULT_AZURE_ACCOUNT"),
        container: env("PINVAULT_AZURE_CONTAINER"),
        access_key: Some(Secret::new(env("PINVAULT_AZURE_ACCESS_KEY"))),
        endpoint: Some(endpoint),
        allow_http: true,
    }
}

/// The next Azurite instance in turn: testenv runs two (`PINVAULT_AZURE_ENDPOINTS`), because
/// one single-threaded Azurite whose every lookup scans the account's blobs is the slowest part
/// of the run (testenv/services/azurite2.sh); without that variable, `PINVAULT_AZURE_ENDPOINT`.
pub fn next_azurite_endpoint() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let endpoints: Vec<String> = std::env::var("PINVAULT_AZURE_ENDPOINTS")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if endpoints.is_empty() {
        return env("PINVAULT_AZURE_ENDPOINT");
    }
    endpoints[NEXT.fetch_add(1, Ordering::Relaxed) % endpoints.len()].clone()
}

/// fake-gcs-server, from `PINVAULT_GCS_*`.
pub fn gcs_config() -> GcsConfig {
    GcsConfig {
        bucket: env("PINVAULT_GCS_BUCKET"),
        service_account_path: Some(env("PINVAULT_GCS_SERVICE_ACCOUNT")),
    }
}

/// A unique prefix per store: the process, the time and a counter.
pub fn fresh_prefix(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("pinvault-tests/{kind}/{}-{nanos:x}-{n}", std::process::id())
}

/// Where a store lives: enough to open another instance over it.
#[derive(Clone)]
struct Place {
    store: Arc<dyn ObjectStore>,
    kind: StoreKind,
    prefix: String,
    durable: bool,
    _dir: Option<Arc<TempDir>>,
}

/// Which store a harness opens.
pub enum Target {
    /// A fresh `InMemory` per store.
    Memory,
    /// A fresh temporary directory per store.
    Local,
    /// One bucket or container, a fresh prefix per store.
    Shared(Arc<dyn ObjectStore>, StoreKind),
}

/// The harness of one target.
pub struct ObjectHarness {
    target: Target,
    /// Prefixes created on a shared store, deleted when the harness drops.
    created: Mutex<Vec<String>>,
}

impl ObjectHarness {
    /// A harness over `target`.
    pub fn new(target: Target) -> Self {
        ObjectHarness { target, created: Mutex::new(Vec::new()) }
    }

    /// MinIO.
    pub fn minio() -> Self {
        let store = s3_config().build().expect("the MinIO store builds");
        ObjectHarness::new(Target::Shared(store, StoreKind::S3))
    }

    /// Azurite.
    pub fn azurite() -> Self {
        let store =
            azure_config_at(next_azurite_endpoint()).build().expect("the Azurite store builds");
        ObjectHarness::new(Target::Shared(store, StoreKind::Azure))
    }

    fn open(place: &Place, faults: FaultInjector) -> Result<TestStore> {
        let options = ObjectOptions::new(place.store.clone(), &place.prefix)?
            .with_kind(place.kind)
            .with_durability(place.kind != StoreKind::Memory, place.durable)
            .with_faults(faults);
        Ok(TestStore::new(Arc::new(ObjectBackend::open(options)), place.clone()))
    }
}

#[async_trait]
impl Harness for ObjectHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let place = match &self.target {
            Target::Memory => Place {
                store: Arc::new(InMemory::new()),
                kind: StoreKind::Memory,
                prefix: fresh_prefix("memory"),
                durable: false,
                _dir: None,
            },
            Target::Local => {
                let dir = tempfile::Builder::new()
                    .prefix("pinvault-object-local-")
                    .tempdir()
                    .map_err(|e| Error::backend("object-local", e))?;
                // fsync off keeps the suite fast; the default (on) only adds power-loss safety.
                let config = LocalConfig { root: dir.path().to_path_buf(), fsync: false };
                Place {
                    store: config.build()?,
                    kind: StoreKind::Local,
                    prefix: "store".to_owned(),
                    durable: false,
                    _dir: Some(Arc::new(dir)),
                }
            }
            Target::Shared(store, kind) => {
                let prefix = fresh_prefix(kind.backend_name());
                self.created.lock().unwrap_or_else(|e| e.into_inner()).push(prefix.clone());
                Place { store: store.clone(), kind: *kind, prefix, durable: true, _dir: None }
            }
        };
        Self::open(&place, faults)
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let place = location
            .downcast_ref::<Place>()
            .ok_or_else(|| Error::invalid("location", "not made by ObjectHarness"))?;
        Self::open(place, faults)
    }
}

impl Drop for ObjectHarness {
    fn drop(&mut self) {
        let Target::Shared(store, _) = &self.target else { return };
        let prefixes = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        if prefixes.is_empty() || std::thread::panicking() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let store = store.clone();
        // The conformance tests run on a multi-thread runtime, where block_in_place is allowed.
        tokio::task::block_in_place(|| {
            handle.block_on(async move {
                for prefix in prefixes {
                    // One bulk request at a time, small ones: Azurite works through blob batches
                    // slowly, and a client that times out and retries only adds to its backlog.
                    let listed = store.list(Some(&Path::from(prefix.as_str())));
                    let mut chunks = listed.map_ok(|m| m.location).try_chunks(64);
                    while let Some(chunk) = chunks.next().await {
                        let result = match chunk {
                            Ok(paths) => {
                                let paths =
                                    futures::stream::iter(paths.into_iter().map(Ok)).boxed();
                                store.delete_stream(paths).try_collect::<Vec<_>>().await.map(|_| ())
                            }
                            Err(e) => Err(e.1),
                        };
                        if let Err(e) = result {
                            eprintln!("cleanup of {prefix} failed (left in place): {e}");
                            break;
                        }
                    }
                }
            })
        });
    }
}
