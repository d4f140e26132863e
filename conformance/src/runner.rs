//! Running the suite outside `cargo test`: [`CHECKS_FN`] holds every check as a callable, and
//! [`run`] runs them one after another against a [`Harness`], catching each check's panic as
//! its failure. This is what `pinvault conformance URL` uses to check a backend a user points
//! it at.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::harness::Harness;

/// One check as a callable.
pub type CheckFn = for<'a> fn(&'a dyn Harness) -> BoxFuture<'a, ()>;

/// How one check went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// `family::check`.
    pub name: String,
    /// `None` if it passed; the panic message if it failed.
    pub failure: Option<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs every check whose `family::check` name contains `filter` (all when empty), in suite
/// order, calling `report` after each. A check fails by panicking (its assertions); the panic
/// is caught and its message becomes the failure, and the run goes on.
pub async fn run(
    harness: &dyn Harness,
    filter: &str,
    report: &mut (dyn FnMut(&CheckResult) + Send),
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for (family, check, f) in CHECKS_FN {
        let name = format!("{family}::{check}");
        if !name.contains(filter) {
            continue;
        }
        let started = Instant::now();
        let outcome = AssertUnwindSafe(f(harness)).catch_unwind().await;
        let failure = outcome.err().map(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the check panicked with a non-text payload".to_owned())
        });
        let result = CheckResult { name, failure, elapsed: started.elapsed() };
        report(&result);
        results.push(result);
    }
    results
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_check_fns {
    ( () $( $family:ident { $( $check:ident ),* $(,)? } )* ) => {
        /// One plain function per check, so each can be a [`CheckFn`].
        mod check_fns {
            $(
                pub mod $family {
                    use $crate::harness::Harness;
                    use futures::future::BoxFuture;
                    $(
                        pub fn $check(h: &dyn Harness) -> BoxFuture<'_, ()> {
                            Box::pin($crate::$family::$check(h))
                        }
                    )*
                }
            )*
        }

        /// Every check of the suite as `(family, check, function)`, in suite order.
        pub const CHECKS_FN: &[(&str, &str, CheckFn)] = &[
            $( $( (stringify!($family), stringify!($check), check_fns::$family::$check as CheckFn), )* )*
        ];
    };
}

crate::__conformance_checks!(__conformance_check_fns!());
