//! Waiting for a store's writer lock, once for every embedded backend.
//!
//! An embedded store admits one writing instance; a second open either fails at once or, with
//! a lock wait (`?lock_timeout=` / `--lock-timeout`), tries again until the holder lets go or
//! the wait runs out. The backends differ only in how one attempt is made (an `flock` on fs,
//! RocksDB's `fcntl` lock, sled's own open); the polling, the backoff and the error that names
//! the lock file and the time waited are here.
//!
//! Polling rather than a blocking lock call: no thread is ever stuck past the deadline. The
//! caller is on a blocking thread (it sleeps between tries).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Pauses between two tries: the first, doubling up to the longest.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The pause after the first failed try.
    pub first: Duration,
    /// The longest pause.
    pub longest: Duration,
}

/// Who holds a lock an attempt could not take, for the error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The store, as messages name it (`"fs store /srv/pins"`).
    pub store: String,
    /// The lock file.
    pub lock_file: std::path::PathBuf,
    /// Who holds it, when the backend knows (`"another process"`), and what it said.
    pub holder: String,
}

impl Held {
    /// A lock on `lock_file` of `store`, held by `holder`.
    pub fn new(store: impl Into<String>, lock_file: &Path, holder: impl Into<String>) -> Self {
        Held { store: store.into(), lock_file: lock_file.to_path_buf(), holder: holder.into() }
    }
}

/// Calls `attempt` until it takes the lock (`Ok(Ok(value))`), fails (`Err`), or reports the
/// lock held (`Ok(Err(held))`) after `wait` has passed: then [`Error::Unavailable`] naming the
/// lock file, its holder and the time waited (or how to wait, when `wait` is zero).
pub fn retry_while_held<T>(
    wait: Duration,
    backoff: Backoff,
    mut attempt: impl FnMut() -> Result<std::result::Result<T, Held>>,
) -> Result<T> {
    let started = Instant::now();
    let mut pause = backoff.first;
    loop {
        let held = match attempt()? {
            Ok(value) => return Ok(value),
            Err(held) => held,
        };
        let waited = started.elapsed();
        if waited >= wait {
            return Err(unavailable(&held, wait, waited));
        }
        std::thread::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(backoff.longest);
    }
}

fn unavailable(held: &Held, wait: Duration, waited: Duration) -> Error {
    let how_long = if wait.is_zero() {
        "did not wait: set a lock timeout (--lock-timeout SECONDS, or ?lock_timeout=SECONDS in \
         the URL) to wait for it"
            .to_owned()
    } else {
        format!("still held after waiting {:.1} s", waited.as_secs_f64())
    };
    Error::unavailable(
        format!(
            "{} is open for writing elsewhere: its lock {} is held by {} ({how_long})",
            held.store,
            held.lock_file.display(),
            held.holder
        ),
        false,
    )
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const FAST: Backoff =
        Backoff { first: Duration::from_millis(1), longest: Duration::from_millis(4) };

    fn held() -> Held {
        Held::new("fs store /s", Path::new("/s/LOCK"), "another process")
    }

    #[test]
    fn takes_the_lock_once_the_holder_lets_go() {
        let mut tries = 0;
        let got = retry_while_held(Duration::from_secs(5), FAST, || {
            tries += 1;
            Ok(if tries < 4 { Err(held()) } else { Ok(tries) })
        });
        assert_eq!(got.unwrap(), 4);
    }

    #[test]
    fn gives_up_naming_the_lock_and_the_wait() {
        let e = retry_while_held::<()>(Duration::from_millis(20), FAST, || Ok(Err(held())))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/s/LOCK") && e.contains("another process") && e.contains("waiting"),
            "{e}"
        );
        let e = retry_while_held::<()>(Duration::ZERO, FAST, || Ok(Err(held()))).unwrap_err();
        assert!(e.to_string().contains("--lock-timeout"), "{e}");
    }

    #[test]
    fn an_error_stops_the_wait() {
        let e =
            retry_while_held::<()>(Duration::from_secs(5), FAST, || Err(Error::invalid("x", "y")));
        assert!(matches!(e, Err(Error::InvalidInput { .. })));
    }
}
