//! The store's writer lock: another process (a child running this binary) or another handle
//! in this process holding the store makes a writable open `Unavailable` at once without
//! `lock_wait`, naming the `LOCK` file; with `lock_wait` the open waits out a holder that lets
//! go, and gives up after the wait, saying how long it waited.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use pinvault_core::{Error, OpenMode};
use pinvault_rocksdb::{DirOptions, RocksBackend};
use support::Child;

fn open(path: &Path, lock_wait: Duration) -> pinvault_core::Result<RocksBackend> {
    support::open_blocking(
        path,
        DirOptions { lock_wait, ..DirOptions::default() },
        OpenMode::MustExist,
    )
}

fn unavailable(result: pinvault_core::Result<RocksBackend>) -> String {
    match result {
        Err(e @ Error::Unavailable { .. }) => e.to_string(),
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("opened a store another holder has locked"),
    }
}

fn another_process_holds_it_no_wait() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 3, false);
    let started = Instant::now();
    let text = unavailable(open(&path, Duration::ZERO));
    assert!(started.elapsed() < Duration::from_secs(1), "no wait asked: {:?}", started.elapsed());
    assert!(text.contains(&path.join("LOCK").display().to_string()), "{text}");
    assert!(text.contains("another process"), "{text}");
    child.finish();
}

fn lock_wait_outlasts_a_holder_that_lets_go() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 3, false);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        child.finish();
    });
    let started = Instant::now();
    let store = open(&path, Duration::from_secs(20)).expect("the wait outlasts the holder");
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    release.join().expect("release thread");
    drop(store);
}

fn lock_wait_gives_up_naming_the_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let child = Child::spawn(&path, 0, false);
    let started = Instant::now();
    let text = unavailable(open(&path, Duration::from_millis(700)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(text.contains("waiting 0.7 s"), "{text}");
    child.finish();
}

fn another_handle_in_this_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let first = support::create_with_pins(&path, 0);
    let text = unavailable(open(&path, Duration::ZERO));
    assert!(text.contains("another open handle in this process"), "{text}");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    let second = open(&path, Duration::from_secs(20)).expect("the wait outlasts the first handle");
    release.join().expect("release thread");
    drop(second);
}

fn main() {
    support::child_main();
    pinvault_conformance::mounts::run(&[
        ("another_process_holds_it_no_wait", false, another_process_holds_it_no_wait),
        (
            "lock_wait_outlasts_a_holder_that_lets_go",
            false,
            lock_wait_outlasts_a_holder_that_lets_go,
        ),
        ("lock_wait_gives_up_naming_the_time", false, lock_wait_gives_up_naming_the_time),
        ("another_handle_in_this_process", false, another_handle_in_this_process),
    ]);
}
