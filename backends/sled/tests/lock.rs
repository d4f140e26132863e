//! sled's directory lock: a second instance over a directory in use is refused as
//! `Unavailable` after `LOCK_WAIT` (not forever), and an instance opened right after the
//! previous one is dropped gets the lock even though sled releases it in the background.

use std::time::Instant;

use pinvault_core::{Error, FaultInjector, Pin, PinState, Precondition};
use pinvault_sled::{open, DirOptions, LOCK_WAIT};

const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_database_is_refused_after_the_wait_and_a_dropped_one_reopens_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let first = open(&path, DirOptions::default(), FaultInjector::disabled()).await.unwrap();
    let cid = pinvault_core::pin::parse_cid(CID).unwrap();
    first.put(Pin::new(cid), Precondition::Absent).await.unwrap();

    let started = Instant::now();
    let second = open(&path, DirOptions::default(), FaultInjector::disabled()).await;
    assert!(matches!(second, Err(Error::Unavailable { .. })), "{second:?}");
    assert!(started.elapsed() >= LOCK_WAIT, "gave up after {:?}", started.elapsed());

    // Dropped without closing, as a crash: 20 immediate reopens, each after a drop.
    drop(first);
    for _ in 0..20 {
        let again = open(&path, DirOptions::default(), FaultInjector::disabled()).await.unwrap();
        assert!(again.get(&cid).await.is_ok());
    }
}

/// `lock_wait` longer than `LOCK_WAIT` makes the open wait that long, then name the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_wait_extends_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let _first = open(&path, DirOptions::default(), FaultInjector::disabled()).await.unwrap();
    let lock_wait = LOCK_WAIT + std::time::Duration::from_millis(800);
    let started = Instant::now();
    let options = DirOptions { lock_wait, ..DirOptions::default() };
    let second = open(&path, options, FaultInjector::disabled()).await;
    assert!(matches!(second, Err(Error::Unavailable { .. })), "{second:?}");
    assert!(started.elapsed() >= lock_wait, "gave up after {:?}", started.elapsed());
}
