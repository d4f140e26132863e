//! What RocksDB's integration tests share: opening and filling stores, reading them back, the
//! files of a store directory, a child process holding a store open (for the binaries that
//! re-run themselves, `harness = false`), and the warnings an open logs. Each test binary uses
//! part of it. The binaries that mount run their checks with `pinvault_conformance::mounts`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pinvault_conformance::fixtures::full_pin;
use pinvault_core::kv::{KvEngine, Table};
use pinvault_core::{FaultInjector, OpenMode, PinState, Precondition};
use pinvault_rocksdb::{DirOptions, RocksBackend};

/// The pins a test store is filled with, one commit each.
pub const PINS: u64 = 300;

/// A tokio runtime for one check.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Creates a store at `path` (or opens the one there).
pub async fn create(path: &Path) -> RocksBackend {
    pinvault_rocksdb::open(path, DirOptions::default(), FaultInjector::disabled())
        .await
        .expect("create")
}

/// Opens the store at `path` for writing, which must exist.
pub async fn open_existing(path: &Path) -> pinvault_core::Result<RocksBackend> {
    pinvault_rocksdb::open_with_mode(
        path,
        DirOptions::default(),
        OpenMode::MustExist,
        FaultInjector::disabled(),
    )
    .await
}

/// Opens the store at `path` in `mode` with `options`, outside a runtime.
pub fn open_blocking(
    path: &Path,
    options: DirOptions,
    mode: OpenMode,
) -> pinvault_core::Result<RocksBackend> {
    runtime().block_on(pinvault_rocksdb::open_with_mode(
        path,
        options,
        mode,
        FaultInjector::disabled(),
    ))
}

/// Puts the pins numbered `numbers`, one commit each.
pub async fn put_pins(store: &RocksBackend, numbers: std::ops::RangeInclusive<u64>) {
    for n in numbers {
        store.put(full_pin(n), Precondition::Absent).await.expect("put");
    }
}

/// Creates a store at `path` holding pins 1..=`pins`, outside a runtime.
pub fn create_with_pins(path: &Path, pins: u64) -> RocksBackend {
    runtime().block_on(async {
        let store = create(path).await;
        put_pins(&store, 1..=pins).await;
        store
    })
}

/// The pins, read through the engine (a full scan of the pins column family).
pub fn pin_count(store: &RocksBackend) -> usize {
    store.store().engine().scan(Table::Pins, b"", None, usize::MAX).expect("scan").len()
}

/// Pins 1..=n are all there (so a view of n pins written in order is exactly that prefix).
pub fn has_prefix(store: &RocksBackend, n: usize) -> bool {
    let rt = runtime();
    (1..=n as u64).all(|i| rt.block_on(store.has(&full_pin(i).cid)).expect("has"))
}

/// Flushes every column family to SST files.
pub fn flush(store: &RocksBackend) {
    let db = store.store().engine().db();
    for table in Table::ALL {
        db.flush_cf(db.cf_handle(table.name()).expect("cf")).expect("flush");
    }
}

/// The files in `dir` whose name ends with `suffix`.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .collect()
}

/// The largest of `paths`.
pub fn largest<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> PathBuf {
    paths
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("a file")
        .clone()
}

/// Flips the byte at `at` in `file`; returns the damaged bytes.
pub fn flip_byte(file: &Path, at: u64) -> Vec<u8> {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[at as usize] ^= 0x5a;
    std::fs::write(file, &bytes).expect("write");
    bytes
}

/// A store whose newest WAL holds `PINS` commits, one synced record each: the store is
/// created and reopened first (recovery flushes the first WAL to an SST), so the records land
/// in a fresh WAL that nothing flushes before the instance is dropped. Returns the WAL.
pub async fn store_with_commits_in_the_wal(path: &Path) -> PathBuf {
    drop(create(path).await);
    let store = open_existing(path).await.expect("reopen");
    let crash = CrashAfter::open(path);
    put_pins(&store, 1..=PINS).await;
    drop(store);
    crash.leave();
    largest(&files(path, ".log"))
}

/// Makes a store closed cleanly look like one whose process died after its last commit: a
/// writable open records the sequence it reached (`REACHED_FILE`) and a clean close records
/// it again; a crash leaves the open's record, so a torn last record is a crash's tear, not
/// the loss of a commit the store had recorded.
pub struct CrashAfter {
    path: PathBuf,
    recorded_at_open: Vec<u8>,
}

impl CrashAfter {
    /// Remembers what the open of the store at `path` recorded.
    pub fn open(path: &Path) -> CrashAfter {
        let file = path.join(pinvault_rocksdb::REACHED_FILE);
        let recorded_at_open = std::fs::read(&file).expect("a writable open records the sequence");
        CrashAfter { path: path.to_path_buf(), recorded_at_open }
    }

    /// Puts the open's record back, as a crash would have left it.
    pub fn leave(self) {
        std::fs::write(self.path.join(pinvault_rocksdb::REACHED_FILE), self.recorded_at_open)
            .expect("rewrite the record");
    }
}

/// A store whose `PINS` pins are flushed to SST files; returns the SST files.
pub async fn store_with_an_sst(path: &Path) -> Vec<PathBuf> {
    let store = create(path).await;
    put_pins(&store, 1..=PINS).await;
    flush(&store);
    drop(store);
    let ssts = files(path, ".sst");
    assert!(!ssts.is_empty(), "the flush wrote SST files");
    ssts
}

/// The environment variable that makes a test binary a child holding a store open.
pub const CHILD_ENV: &str = "PINVAULT_ROCKS_CHILD";

/// In a child (see [`Child::spawn`]): opens the store for writing, writes its pins, says
/// `ready`, keeps writing more if asked, and exits when its stdin closes. Returns in a parent.
pub fn child_main() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let pins: u64 =
        std::env::var("PINVAULT_ROCKS_CHILD_PINS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let keep_writing = std::env::var_os("PINVAULT_ROCKS_CHILD_KEEP_WRITING").is_some();
    let rt = runtime();
    rt.block_on(async move {
        let store = pinvault_rocksdb::open(&path, Default::default(), Default::default())
            .await
            .expect("child: open");
        put_pins(&store, 1..=pins).await;
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = closed.clone();
        std::thread::spawn(move || {
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        println!("ready");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut n = pins;
        while !closed.load(std::sync::atomic::Ordering::SeqCst) {
            if keep_writing {
                n += 1;
                put_pins(&store, n..=n).await;
                // Flushes now and then, so readers race MANIFEST changes and WAL deletions.
                if n % 100 == 0 {
                    flush(&store);
                }
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        drop(store);
    });
    std::process::exit(0);
}

/// A child process holding a store open for writing (see [`child_main`]).
pub struct Child(std::process::Child);

impl Child {
    /// Starts a child over `path` that writes `pins` pins (and goes on writing when
    /// `keep_writing`), and returns once it holds the store.
    pub fn spawn(path: &Path, pins: u64, keep_writing: bool) -> Child {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("own path"));
        cmd.env(CHILD_ENV, path)
            .env("PINVAULT_ROCKS_CHILD_PINS", pins.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        if keep_writing {
            cmd.env("PINVAULT_ROCKS_CHILD_KEEP_WRITING", "1");
        }
        let mut child = cmd.spawn().expect("spawn child");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("child stdout"))
            .read_line(&mut line)
            .expect("child says ready");
        assert_eq!(line.trim(), "ready", "the child did not open the store");
        Child(child)
    }

    /// Closes the child's stdin, so it closes the store and exits; waits for it.
    pub fn finish(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().expect("wait for child");
        assert!(status.success(), "child failed: {status}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The warnings `f` logs through `tracing` on this thread, each as its message and fields.
///
/// One global subscriber records every warning with the thread that logged it: scoped
/// subscribers (`with_default`) of tests running in parallel race on tracing's shared callsite
/// interest and can miss an event.
pub fn warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    use std::sync::{Mutex, OnceLock};
    use std::thread::ThreadId;
    use tracing::field::{Field, Visit};

    struct Text(String);
    impl Visit for Text {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
    }
    type Log = Mutex<Vec<(ThreadId, String)>>;
    struct Capture(&'static Log);
    impl tracing::Subscriber for Capture {
        fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
            *meta.level() <= tracing::Level::WARN
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut text = Text(String::new());
            event.record(&mut text);
            let this = std::thread::current().id();
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push((this, text.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    static LOG: OnceLock<&'static Log> = OnceLock::new();
    let log = *LOG.get_or_init(|| {
        let log: &'static Log = Box::leak(Box::new(Mutex::new(Vec::new())));
        tracing::subscriber::set_global_default(Capture(log)).expect("the only global subscriber");
        log
    });
    let this = std::thread::current().id();
    let take = || {
        let mut all = log.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, others): (Vec<_>, Vec<_>) = all.drain(..).partition(|(t, _)| *t == this);
        *all = others;
        mine.into_iter().map(|(_, text)| text).collect::<Vec<_>>()
    };
    drop(take());
    let out = f();
    (out, take())
}
