//! What a backend's tests provide to run the suite: a [`Harness`] that opens fresh stores and
//! reopens one over the same data after a simulated crash, plus the small helpers every check
//! shares (error kinds, refusal assertions, collecting streams).

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, TryStreamExt};
use pinvault_core::{
    Checked, Error, FaultInjector, PinCapabilities, PinState, PublishCapabilities, Publisher,
    Result,
};

/// Where a store's data lives (a directory, a bucket prefix, a keyspace, a memory handle).
///
/// The harness puts whatever it needs to reopen the store in here; the suite only carries it.
/// Holding it must keep the data alive (e.g. an `Arc<TempDir>`), so that a store can be
/// dropped and reopened over the same data.
pub type Location = Arc<dyn Any + Send + Sync>;

/// One open instance of a backend, seen through both contracts.
#[derive(Clone)]
pub struct TestStore {
    /// The instance as pin state.
    pub state: Arc<dyn PinState>,
    /// The same instance as publisher.
    pub publisher: Arc<dyn Publisher>,
    /// Where its data lives; pass it to [`Harness::reopen`].
    pub location: Location,
}

impl TestStore {
    /// Puts one backend instance implementing both contracts behind the checking layer
    /// ([`Checked`], as `pinvault::Store::from_backend` does), so every check sees the backend
    /// as users reach it.
    pub fn new<B>(backend: Arc<B>, location: impl Any + Send + Sync) -> Self
    where
        B: PinState + Publisher + 'static,
    {
        let checked = Arc::new(Checked::from_arc(backend));
        TestStore { state: checked.clone(), publisher: checked, location: Arc::new(location) }
    }

    /// A backend served by two parts (pins, publication), each put behind the checking layer.
    pub fn from_parts<S, P>(
        state: Arc<S>,
        publisher: Arc<P>,
        location: impl Any + Send + Sync,
    ) -> Self
    where
        S: PinState + 'static,
        P: Publisher + 'static,
    {
        TestStore {
            state: Arc::new(Checked::from_arc(state)),
            publisher: Arc::new(Checked::from_arc(publisher)),
            location: Arc::new(location),
        }
    }

    /// The pin-state capabilities of the instance.
    pub fn pin_capabilities(&self) -> PinCapabilities {
        self.state.pin_capabilities()
    }

    /// The publication capabilities of the instance.
    pub fn publish_capabilities(&self) -> PublishCapabilities {
        self.publisher.publish_capabilities()
    }

    /// Drops the instance without closing it, as a crash would, and keeps only its location.
    ///
    /// The caller must not hold other clones of `state` or `publisher` (e.g. in spawned tasks).
    pub fn crash(self) -> Location {
        let TestStore { state, publisher, location } = self;
        drop(state);
        drop(publisher);
        location
    }
}

impl Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore").field("state", &self.state).finish_non_exhaustive()
    }
}

/// What a backend's test suite implements to run the conformance checks.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A new, empty store (a fresh random root/prefix/keyspace, so checks never see each
    /// other's data), opened with `faults`.
    async fn create(&self, faults: FaultInjector) -> Result<TestStore>;

    /// A new instance over the data at `location` (same directory, bucket prefix, keyspace),
    /// opened with `faults`. The caller has dropped the old instance without closing it (see
    /// [`TestStore::crash`]). A backend that cannot reopen its data (`persistent: false` and no
    /// way to share it) returns [`Error::Unsupported`].
    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore>;
}

/// Opens a fresh store with fault injection off, or fails the check.
pub async fn fresh(h: &dyn Harness) -> TestStore {
    must(h.create(FaultInjector::disabled()).await, "harness.create")
}

/// Unwraps `result` or fails the check, naming the call that failed.
#[track_caller]
pub fn must<T>(result: Result<T>, call: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{call} failed unexpectedly: {e} ({e:?})"),
    }
}

/// A short stable name of an error's kind, for messages and comparisons.
pub fn kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::Conflict { .. } => "Conflict",
        Error::Unsupported { .. } => "Unsupported",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::Corrupt { .. } => "Corrupt",
        Error::Unavailable { .. } => "Unavailable",
        Error::Crashed { .. } => "Crashed",
        Error::Backend { .. } => "Backend",
        _ => "Other",
    }
}

/// The kind of a result: `"Ok"` or the error's [`kind`].
pub fn outcome<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(e) => kind(e),
    }
}

/// Asserts `result` failed with an error of kind `expected` and returns the error.
#[track_caller]
pub fn expect_err<T: Debug>(result: Result<T>, expected: &str, promise: &str) -> Error {
    match result {
        Err(e) if kind(&e) == expected => e,
        Err(e) => panic!("{promise}: expected {expected}, got {}: {e}", kind(&e)),
        Ok(v) => panic!("{promise}: expected {expected}, got Ok({v:?})"),
    }
}

/// The environment variable naming the file where the suite appends one line
/// (`<pid> <backend> <check>`) for each check that ended in a declared refusal, so that a run's
/// summary counts those checks apart from the ones that kept a promise (`scripts/test.sh` sets
/// it). Unset: nothing is recorded.
pub const REFUSALS_ENV: &str = "PINVAULT_REFUSALS";

/// Appends `check`'s refusal by `backend` to the [`REFUSALS_ENV`] file, if one is named.
///
/// # Panics
/// When the file is named but cannot be written: the run's count would be wrong.
pub fn record_refusal(backend: &str, check: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os(REFUSALS_ENV) else { return };
    let line = format!("{} {backend} {check}\n", std::process::id());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("recording the refusal of {check} in {path:?} ({REFUSALS_ENV}): {e}");
    }
}

/// For a check whose promise the backend does not declare: asserts the operation was refused
/// with [`Error::Unsupported`], says so on stderr and records it ([`record_refusal`]); the
/// check then ends, having proved the refusal, not the promise. Nothing is skipped silently.
#[track_caller]
pub fn assert_refused<T: Debug>(result: Result<T>, check: &str, flag: &str) {
    match result {
        Err(Error::Unsupported { backend, .. }) => {
            eprintln!("refused as declared: {check} ({flag} is false)");
            record_refusal(backend, check);
        }
        Err(e) => panic!(
            "{check}: the backend declares {flag}: false, so it must refuse with Unsupported; got {}: {e}",
            kind(&e)
        ),
        Ok(v) => panic!(
            "{check}: the backend declares {flag}: false but accepted the operation (Ok({v:?})): a silent downgrade"
        ),
    }
}

/// Collects a stream of results, failing the check on the first error.
pub async fn collect<T>(stream: impl Stream<Item = Result<T>>, call: &str) -> Vec<T> {
    must(stream.try_collect::<Vec<T>>().await, call)
}

/// Runs `probe` until it returns true. With `atomic` (the backend changes views in the same
/// step as pins) it must hold at once; otherwise it must converge within 10 seconds.
pub async fn eventually<F, Fut>(atomic: bool, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if probe().await {
        return;
    }
    assert!(
        !atomic,
        "{what}: not true right after the write, though the backend declares atomic_views"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if probe().await {
            return;
        }
    }
    panic!("{what}: did not converge within 10s (atomic_views is false, but views must converge)");
}

/// Drops `store` without closing it (a crash) and opens its data again with `faults`. `None`
/// when the harness cannot reopen and the backend does not declare `persistent`; the refusal
/// is then reported as declared.
pub async fn reopen_with(
    h: &dyn Harness,
    store: TestStore,
    faults: FaultInjector,
    check: &str,
) -> Option<TestStore> {
    let persistent = store.pin_capabilities().persistent;
    let location = store.crash();
    match h.reopen(&location, faults).await {
        Ok(s) => Some(s),
        Err(e) if !persistent => {
            assert_refused::<()>(Err(e), check, "persistent");
            None
        }
        Err(e) => panic!("{check}: the backend is persistent but reopening its data failed: {e}"),
    }
}

/// [`reopen_with`] with fault injection off.
pub async fn crash_and_reopen(h: &dyn Harness, store: TestStore, check: &str) -> Option<TestStore> {
    reopen_with(h, store, FaultInjector::disabled(), check).await
}
