//! Fault injection: named crash points on a backend's commit and finalize paths. This is the
//! crash-testing hook, not a production feature: every backend's `open` takes a
//! [`FaultInjector`] so that tests can crash that one instance, and everything else passes
//! [`FaultInjector::disabled()`].
//!
//! A backend calls [`FaultInjector::hit`] with a static name at each point where a crash would
//! leave a different state on disk (after the first staged write, before the commit record,
//! after it...). Disabled injectors cost one branch. An armed injector makes the chosen point
//! return [`Error::Crashed`]; the backend must propagate it at once with `?` and run no cleanup,
//! exactly as a power loss would, and the test then drops the instance without closing it,
//! opens a new one over the same data and checks that the operation is all there or not at all.
//!
//! The pattern follows redb's crash tests (a backend that fails I/O after k operations, checked
//! against a model), with names instead of counts so a failure says where it happened.

// std, not `crate::sync`, even under loom: `hit` holds its mutex across no loom operation, so
// a model runs it as one step and cannot deadlock on it, and crash tests can arm an injector
// outside a model (`tests/loom_kv.rs` arms one inside).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Error, Result};

#[derive(Debug)]
struct Armed {
    point: String,
    /// Fire on this hit of `point` (1 = the first time it is reached).
    nth: usize,
    hits: AtomicUsize,
    fired: Mutex<bool>,
}

/// The crash-testing hook a backend is opened with: pass [`FaultInjector::disabled()`] (the
/// `Default`) unless you are writing a crash test.
///
/// Crash tests arm one with [`crash_at`](Self::crash_at) or [`crash_at_nth`](Self::crash_at_nth);
/// backends call [`hit`](Self::hit) at their crash points. It is per instance (not a global
/// like fail-rs), so crash tests run in parallel. Cloning shares the same arming.
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    armed: Option<Arc<Armed>>,
}

impl FaultInjector {
    /// An injector that never fires: the argument every production open passes.
    pub fn disabled() -> Self {
        FaultInjector::default()
    }

    /// For crash tests: fires the first time `point` is reached.
    pub fn crash_at(point: &str) -> Self {
        FaultInjector::crash_at_nth(point, 1)
    }

    /// For crash tests: fires the `nth` time `point` is reached (1-based), e.g. the third batch
    /// of an import.
    pub fn crash_at_nth(point: &str, nth: usize) -> Self {
        FaultInjector {
            armed: Some(Arc::new(Armed {
                point: point.to_owned(),
                nth: nth.max(1),
                hits: AtomicUsize::new(0),
                fired: Mutex::new(false),
            })),
        }
    }

    /// Called by a backend at a crash point. Returns `Err(Error::Crashed)` when armed for this
    /// point and hit count; once fired, every later point also fails, since the "process" is dead.
    pub fn hit(&self, point: &'static str) -> Result<()> {
        let Some(armed) = &self.armed else { return Ok(()) };
        let mut fired = armed.fired.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *fired {
            return Err(Error::Crashed { point });
        }
        if armed.point == point && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 == armed.nth {
            *fired = true;
            tracing::debug!(point, "fault injection: crash point fired");
            return Err(Error::Crashed { point });
        }
        Ok(())
    }

    /// For crash tests: whether the armed point has fired.
    pub fn fired(&self) -> bool {
        self.armed
            .as_ref()
            .is_some_and(|a| *a.fired.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_never_fires() {
        let f = FaultInjector::disabled();
        for _ in 0..3 {
            f.hit("commit.before").unwrap();
        }
        assert!(!f.fired());
    }

    #[test]
    fn fires_on_nth_hit_then_stays_dead() {
        let f = FaultInjector::crash_at_nth("commit.before", 2);
        f.hit("commit.other").unwrap();
        f.hit("commit.before").unwrap();
        assert!(matches!(f.hit("commit.before"), Err(Error::Crashed { point: "commit.before" })));
        assert!(f.fired());
        assert!(matches!(f.hit("commit.other"), Err(Error::Crashed { .. })));
    }
}
