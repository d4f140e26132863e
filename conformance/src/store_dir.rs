//! Checks of the store directory rule ([`pinvault_core::store_dir`]) on a backend whose store
//! is a local directory (fs, RocksDB, sled): the identity marker, refusal of other backends'
//! stores and of unknown files, adoption of stores made before markers, `MustExist`, and the
//! typed error for a path under a file.
//!
//! These are not in the main suite (`conformance_tests!`): they need a backend opened on a
//! path of the check's choosing, in an [`OpenMode`]. A directory backend's tests run them with
//!
//! ```text
//! mod rocksdb {
//!     pinvault_conformance::store_dir_tests!(pinvault_conformance::store_dir::DirOpenerFn::new(
//!         "rocksdb",
//!         |path, mode| pinvault_rocksdb::open_with_mode(path, Default::default(), mode, Default::default()),
//!     ));
//! }
//! ```
//!
//! Every check runs in a fresh temporary directory, and every refusal also checks that the
//! directory was left exactly as it was (names and bytes).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use pinvault_core::store_dir::{self, Marker, Origin, LEGACY_LAYOUTS, MARKER};
use pinvault_core::{Error, OpenMode, PathProblem, PinState, Precondition, Result};

use crate::fixtures::full_pin;

/// Opens a directory backend's store at a path in a mode.
#[async_trait]
pub trait DirOpener: Send + Sync {
    /// The backend's name, as its marker records it.
    fn backend(&self) -> &'static str;
    /// Opens the store at `path` in `mode`.
    async fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn PinState>>;
}

/// A [`DirOpener`] from an async function `(path, mode) -> Result<backend>`.
pub struct DirOpenerFn<F> {
    backend: &'static str,
    open: F,
}

impl<F> DirOpenerFn<F> {
    /// The opener of `backend`'s stores.
    pub fn new(backend: &'static str, open: F) -> Self {
        DirOpenerFn { backend, open }
    }
}

#[async_trait]
impl<F, Fut, B> DirOpener for DirOpenerFn<F>
where
    F: Fn(PathBuf, OpenMode) -> Fut + Send + Sync,
    Fut: Future<Output = Result<B>> + Send,
    B: PinState + 'static,
{
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn PinState>> {
        Ok(Arc::new((self.open)(path.to_path_buf(), mode).await?))
    }
}

/// Every file and directory under `dir` with its bytes (directories: empty), by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            if path.is_dir() {
                out.insert(rel, Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn tempdir(backend: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pinvault-store-dir-{backend}-"))
        .tempdir()
        .expect("tempdir")
}

fn marker_json(marker: &Marker) -> String {
    format!(
        "{{\"pinvault_store\": {}, \"backend\": \"{}\", \"format\": {}, \"store_id\": \"{}\", \"created\": \"{}\", \"origin\": \"{}\"}}\n",
        marker.pinvault_store,
        marker.backend,
        marker.format,
        marker.store_id,
        marker.created,
        match marker.origin {
            Origin::Created => "created",
            Origin::Adopted => "adopted",
        }
    )
}

fn read_marker(dir: &Path) -> Marker {
    store_dir::read_marker(dir).expect("read the marker").expect("the store has a marker")
}

async fn open_ok(o: &dyn DirOpener, path: &Path, mode: OpenMode) -> Arc<dyn PinState> {
    o.open(path, mode)
        .await
        .unwrap_or_else(|e| panic!("{}: opening {} in {mode:?}: {e}", o.backend(), path.display()))
}

/// Makes a store with one pin at `path`, and closes it.
async fn store_with_a_pin(o: &dyn DirOpener, path: &Path) {
    let store = open_ok(o, path, OpenMode::CreateIfMissing).await;
    store.put(full_pin(1), Precondition::Absent).await.expect("put");
}

/// Asserts that both modes refuse `dir` with `ForeignStore` whose message contains `expected`,
/// and that `dir` is unchanged.
async fn assert_foreign(o: &dyn DirOpener, dir: &Path, expected: &str) {
    let before = snapshot(dir);
    for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
        match o.open(dir, mode).await {
            Err(e @ Error::ForeignStore { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(expected),
                    "{}: {text:?} should name {expected:?}",
                    o.backend()
                );
                assert!(
                    text.contains(&format!("is not {}", store_dir::a_store(o.backend()))),
                    "{}: {text}",
                    o.backend()
                );
            }
            Err(other) => {
                panic!("{}: {mode:?} must be ForeignStore ({expected}), got {other}", o.backend())
            }
            Ok(_) => panic!("{}: {mode:?} opened a directory holding {expected}", o.backend()),
        }
        assert_eq!(snapshot(dir), before, "{}: a refused open must write nothing", o.backend());
    }
}

/// Creating a store writes a marker naming the backend, with a random id; it survives reopen
/// unchanged, and the data is there.
pub async fn create_writes_the_marker(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("a/b/store");
    store_with_a_pin(o, &path).await;
    let marker = read_marker(&path);
    assert_eq!(marker.backend, o.backend());
    assert_eq!(marker.origin, Origin::Created);
    assert_eq!(marker.pinvault_store, store_dir::MARKER_SCHEMA);
    assert!(marker.store_id.len() == 32 && marker.store_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let store = open_ok(o, &path, OpenMode::MustExist).await;
    assert!(store.has(&full_pin(1).cid).await.expect("has"), "the pin survives reopen");
    drop(store);
    assert_eq!(read_marker(&path), marker, "the marker is written once");
    let other = tmp.path().join("other");
    store_with_a_pin(o, &other).await;
    assert_ne!(read_marker(&other).store_id, marker.store_id, "store ids are random");
}

/// `MustExist` refuses a missing or empty directory with `NoStore` and creates nothing.
pub async fn must_exist_refuses_a_missing_store(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let missing = tmp.path().join("no/such/dir");
    match o.open(&missing, OpenMode::MustExist).await {
        Err(Error::NoStore { path }) => assert_eq!(path, missing),
        Err(other) => panic!("{}: a missing store must be NoStore, got {other}", o.backend()),
        Ok(_) => panic!("{}: MustExist opened a missing store", o.backend()),
    }
    assert!(!tmp.path().join("no").exists(), "{}: MustExist created a directory", o.backend());
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    match o.open(&empty, OpenMode::MustExist).await {
        Err(Error::NoStore { .. }) => {}
        Err(other) => panic!("{}: an empty directory must be NoStore, got {other}", o.backend()),
        Ok(_) => panic!("{}: MustExist opened an empty directory", o.backend()),
    }
    assert!(
        snapshot(&empty).is_empty(),
        "{}: MustExist wrote into an empty directory",
        o.backend()
    );
    drop(open_ok(o, &empty, OpenMode::CreateIfMissing).await);
    drop(open_ok(o, &empty, OpenMode::MustExist).await);
}

/// A directory whose marker names another backend is refused, in both modes, untouched.
pub async fn other_backends_markers_are_refused(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    for other in ["fs", "rocksdb", "sled", "some-future-backend"] {
        if other == o.backend() {
            continue;
        }
        let dir = tmp.path().join(other);
        std::fs::create_dir(&dir).expect("mkdir");
        let marker = Marker {
            pinvault_store: 1,
            backend: other.into(),
            format: 1,
            store_id: "00112233445566778899aabbccddeeff".into(),
            created: "2026-01-01T00:00:00.000Z".into(),
            origin: Origin::Created,
        };
        std::fs::write(dir.join(MARKER), marker_json(&marker)).expect("write marker");
        assert_foreign(o, &dir, &format!("{} (PINVAULT-STORE", store_dir::a_store(other))).await;
    }
}

/// A directory holding another backend's store made before markers (its defining files, no
/// marker) is refused naming that backend, in both modes, untouched.
pub async fn other_backends_legacy_stores_are_refused(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    for layout in LEGACY_LAYOUTS.iter().filter(|l| l.backend != o.backend()) {
        let dir = tmp.path().join(layout.backend);
        std::fs::create_dir(&dir).expect("mkdir");
        for name in layout.defining {
            std::fs::write(dir.join(name), b"data").expect("write");
        }
        assert_foreign(
            o,
            &dir,
            &format!("{} made before store markers", store_dir::a_store(layout.backend)),
        )
        .await;
    }
}

/// A directory holding files pinvault did not write, and no marker, is refused listing them,
/// in both modes, untouched.
pub async fn unknown_files_are_refused(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let dir = tmp.path().join("home");
    std::fs::create_dir_all(dir.join("photos")).expect("mkdir");
    std::fs::write(dir.join("notes.txt"), b"my notes").expect("write");
    assert_foreign(
        o,
        &dir,
        "files pinvault did not write and no PINVAULT-STORE marker (notes.txt, photos)",
    )
    .await;
}

/// A store of this backend without a marker (made before markers) is adopted by the first
/// open, read-only ones too: the data is there, and the marker is written once, `adopted`.
pub async fn legacy_store_is_adopted(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_with_a_pin(o, &path).await;
    std::fs::remove_file(path.join(MARKER)).expect("remove the marker");
    let store = open_ok(o, &path, OpenMode::MustExist).await;
    assert!(store.has(&full_pin(1).cid).await.expect("has"), "the adopted store keeps its pins");
    drop(store);
    let marker = read_marker(&path);
    assert_eq!((marker.backend.as_str(), marker.origin), (o.backend(), Origin::Adopted));
    drop(open_ok(o, &path, OpenMode::MustExist).await);
    assert_eq!(read_marker(&path), marker, "adoption writes the marker once");
}

/// A marked store whose engine files are gone (`pins.log`, `CURRENT`, `conf`/`db`) is
/// `Corrupt`, in both modes, and is not re-created empty.
pub async fn marked_store_without_its_data_is_corrupt(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_with_a_pin(o, &path).await;
    let layout = store_dir::layout(o.backend()).expect("a directory backend has a layout");
    for name in layout.defining {
        let file = path.join(name);
        if file.is_dir() {
            std::fs::remove_dir_all(&file).expect("remove");
        } else if file.exists() {
            std::fs::remove_file(&file).expect("remove");
        }
    }
    let before = snapshot(&path);
    for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
        match o.open(&path, mode).await {
            Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
            Err(other) => panic!("{}: {mode:?} must be Corrupt, got {other}", o.backend()),
            Ok(_) => panic!("{}: {mode:?} opened a store whose data is gone", o.backend()),
        }
        assert_eq!(snapshot(&path), before, "{}: nothing re-created", o.backend());
    }
}

/// A store format newer than the backend's is `Unsupported`.
pub async fn newer_store_format_is_refused(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    store_with_a_pin(o, &path).await;
    let mut marker = read_marker(&path);
    marker.format += 1;
    std::fs::write(path.join(MARKER), marker_json(&marker)).expect("rewrite marker");
    match o.open(&path, OpenMode::MustExist).await {
        Err(Error::Unsupported { operation, .. }) => {
            assert!(operation.contains("newer"), "{operation}")
        }
        Err(other) => panic!("{}: must be Unsupported, got {other}", o.backend()),
        Ok(_) => panic!("{}: opened a store of a newer format", o.backend()),
    }
}

/// A store path that is a regular file, or lies under one, is `Error::Path` with
/// `NotADirectory` in both modes, and nothing is written.
pub async fn path_under_a_file_is_not_a_directory(o: &dyn DirOpener) {
    let tmp = tempdir(o.backend());
    let file = tmp.path().join("file");
    std::fs::write(&file, b"a regular file").expect("write");
    for path in [file.clone(), file.join("store"), file.join("a/store")] {
        for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
            match o.open(&path, mode).await {
                Err(Error::Path { problem: PathProblem::NotADirectory, path: at, .. }) => {
                    assert_eq!(at, path)
                }
                Err(other) => panic!(
                    "{}: {}: must be NotADirectory, got {other}",
                    o.backend(),
                    path.display()
                ),
                Ok(_) => panic!("{}: opened a store under a file", o.backend()),
            }
        }
    }
    assert_eq!(std::fs::read(&file).expect("read"), b"a regular file");
    assert_eq!(snapshot(tmp.path()).len(), 1, "nothing written beside the file");
}

/// Several openers racing to create one store at a fresh path all end up in the same store:
/// an opener that meets another's creation in progress (its files there, its marker not yet)
/// waits for it instead of calling the directory foreign. Each opener retries while the store
/// is `Unavailable` (held by another), writes one pin and lets go.
pub async fn racing_creators_share_one_store(o: &dyn DirOpener) {
    const OPENERS: u64 = 4;
    let tmp = tempdir(o.backend());
    let path = tmp.path().join("store");
    let opens = (1..=OPENERS).map(|n| {
        let path = path.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                match o.open(&path, OpenMode::CreateIfMissing).await {
                    Ok(store) => {
                        store.put(full_pin(n), Precondition::Absent).await.expect("put");
                        return;
                    }
                    Err(Error::Unavailable { .. }) if std::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await
                    }
                    Err(e) => panic!("{}: opener {n} of a store being created: {e}", o.backend()),
                }
            }
        }
    });
    futures::future::join_all(opens).await;
    let store = open_ok(o, &path, OpenMode::MustExist).await;
    for n in 1..=OPENERS {
        assert!(store.has(&full_pin(n).cid).await.expect("has"), "{}: pin {n}", o.backend());
    }
    drop(store);
    let marker = read_marker(&path);
    assert_eq!(marker.origin, Origin::Created, "{}: one creator, no adoption", o.backend());
}

/// Defines one `#[tokio::test]` per store directory check for the [`DirOpener`] built by
/// `$opener` (evaluated once per test), in a module `store_dir`.
#[macro_export]
macro_rules! store_dir_tests {
    ($opener:expr) => {
        $crate::__store_dir_tests_for! { ($opener)
            create_writes_the_marker, must_exist_refuses_a_missing_store,
            other_backends_markers_are_refused, other_backends_legacy_stores_are_refused,
            unknown_files_are_refused, legacy_store_is_adopted,
            marked_store_without_its_data_is_corrupt, newer_store_format_is_refused,
            path_under_a_file_is_not_a_directory, racing_creators_share_one_store,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_dir_tests_for {
    ( ($opener:expr) $( $check:ident ),* $(,)? ) => {
        #[allow(unused_imports)]
        mod store_dir {
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let opener = $opener;
                    $crate::store_dir::$check(&opener).await;
                }
            )*
        }
    };
}
