//! The runner behind `pinvault conformance URL`: every check runs, a failing check is caught
//! and reported with its message, and the filter selects by `family::check`.

use pinvault_conformance::runner::{run, CHECKS_FN};
use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::{Error, FaultInjector, Result};

/// A backend that cannot be opened: every check must fail, none may pass or be skipped.
struct Unopenable;

#[async_trait]
impl Harness for Unopenable {
    async fn create(&self, _faults: FaultInjector) -> Result<TestStore> {
        Err(Error::unavailable("no such server", false))
    }
    async fn reopen(&self, _location: &Location, _faults: FaultInjector) -> Result<TestStore> {
        Err(Error::unavailable("no such server", false))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_runs_and_failures_are_caught_with_their_message() {
    let total: usize = pinvault_conformance::CHECKS.iter().map(|(_, checks)| checks.len()).sum();
    assert_eq!(CHECKS_FN.len(), total);
    let mut reported = 0;
    let results = run(&Unopenable, "", &mut |_| reported += 1).await;
    assert_eq!((results.len(), reported), (total, total));
    for r in &results {
        let failure = r.failure.as_deref().unwrap_or_else(|| panic!("{} passed", r.name));
        assert!(failure.contains("no such server"), "{}: {failure}", r.name);
    }
    let crud = run(&Unopenable, "crud::", &mut |_| {}).await;
    assert_eq!(crud.len(), pinvault_conformance::CHECKS[0].1.len());
    assert!(crud.iter().all(|r| r.name.starts_with("crud::")));
}
