//! A small runner for the test binaries that cannot use libtest (`harness = false`): ones that
//! re-run themselves as a child process, and ones that need `mount`, which may be refused.
//! A check that cannot run prints `SKIPPED: <reason>` and is counted as *ignored* in the
//! `test result:` line that `scripts/test.sh` sums, never as passed.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

/// How a check ended when it did not panic.
pub enum Outcome {
    Passed,
    Skipped(String),
}

/// A named check.
pub type Check = (&'static str, fn() -> Outcome);

/// Runs the checks whose name contains the first non-flag argument (all without one), prints
/// libtest's lines, and exits non-zero when one failed.
pub fn run(binary: &str, checks: &[Check]) {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let started = std::time::Instant::now();
    let (mut passed, mut failed, mut ignored, mut filtered) = (0, 0, 0, 0);
    for (name, check) in checks {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            filtered += 1;
            continue;
        }
        let t = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(check)) {
            Ok(Outcome::Passed) => {
                passed += 1;
                println!(
                    "test {binary}::{name} ... ok ({:.1} s)",
                    t.elapsed().as_secs_f64()
                );
            }
            Ok(Outcome::Skipped(reason)) => {
                ignored += 1;
                println!("test {binary}::{name} ... ignored");
                println!("SKIPPED: {binary}::{name}: {reason}");
            }
            Err(_) => {
                failed += 1;
                println!("test {binary}::{name} ... FAILED");
            }
        }
    }
    println!(
        "test result: {}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; \
         {filtered} filtered out; finished in {:.2}s",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// A tokio runtime for one check.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `mount` with `args`; `Err` carries what it printed when it failed.
pub fn mount(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Unmounts `dir` when dropped, so a failing check leaves no mount behind.
pub struct Mounted(pub std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The environment variable that makes a test binary a child holding a store open.
pub const CHILD_ENV: &str = "PINVAULT_ROCKS_CHILD";

/// In a child (see [`Child::spawn`]): opens the store for writing, writes its pins, says
/// `ready`, keeps writing more if asked, and exits when its stdin closes. Returns in a parent.
pub fn child_main() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let pins: u64 = std::env::var("PINVAULT_ROCKS_CHILD_PINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let keep_writing = std::env::var_os("PINVAULT_ROCKS_CHILD_KEEP_WRITING").is_some();
    let rt = runtime();
    rt.block_on(async move {
        use pinvault_core::{PinState, Precondition};
        let store = pinvault_rocksdb::open(&path, Default::default(), Default::default())
            .await
            .expect("child: open");
        for n in 1..=pins {
            store
                .put(
                    pinvault_conformance::fixtures::full_pin(n),
                    Precondition::Absent,
                )
                .await
                .expect("child: put");
        }
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
                store
                    .put(
                        pinvault_conformance::fixtures::full_pin(n),
                        Precondition::Absent,
                    )
                    .await
                    .expect("child: put");
                // Flushes now and then, so readers race MANIFEST changes and WAL deletions.
                if n % 100 == 0 {
                    let db = store.store().engine().db();
                    for table in pinvault_core::kv::Table::ALL {
                        let cf = db.cf_handle(table.name()).expect("child: cf");
                        db.flush_cf(cf).expect("child: flush");
                    }
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
    pub fn spawn(path: &std::path::Path, pins: u64, keep_writing: bool) -> Child {
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
pub fn warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};

    struct Text(String);
    impl Visit for Text {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
    }
    struct Capture(Arc<Mutex<Vec<String>>>);
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
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(text.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = tracing::subscriber::with_default(Capture(seen.clone()), f);
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (out, seen)
}
