//! Mutation testing of the conformance suite: each mutant of `pinvault_conformance_adopter::mutants`
//! breaks one promise, and the suite, run programmatically (`pinvault_conformance::runner::run`),
//! must fail on it with the check that guards that promise among its failures. Each test
//! prints (on stderr, uncaptured) which checks caught its mutant, from the run's results.
//!
//! The piecemeal-finalize mutant is also run through the SIGKILL test by `tests/kill_mutant.rs`.
//!
//! The pin-state mutants run over the toy engine without fsyncs (`open_without_fsync`): they
//! test the suite, not durability (the suite does not read `durable_on_return`), and a torn
//! batch is one snapshot rewrite per op. The piecemeal-finalize engine keeps its fsyncs (see
//! `PiecemealEngine::open`).

use std::io::Write;

use pinvault_conformance::runner::{run, CheckResult};
use pinvault_conformance::{DirHarness, Harness};
use pinvault_conformance_adopter::mutants::{mutate, open_piecemeal, Mutation, PIECEMEAL_MUTANT};
use pinvault_conformance_adopter::open_without_fsync;

/// Runs the whole suite on `harness`; returns the names of the failed checks.
async fn caught_by(mutant: &str, harness: &dyn Harness) -> Vec<String> {
    let results: Vec<CheckResult> = run(harness, "", &mut |_| {}).await;
    assert!(!results.is_empty(), "the suite ran no check on mutant {mutant}");
    let failed: Vec<String> =
        results.iter().filter(|r| r.failure.is_some()).map(|r| r.name.clone()).collect();
    // Straight to stderr, not through `println!`, so that the line shows without `--nocapture`.
    let line = format!(
        "mutant {mutant} caught by {} of {} checks: {}\n",
        failed.len(),
        results.len(),
        failed.join(", ")
    );
    std::io::stderr().write_all(line.as_bytes()).expect("stderr is writable");
    failed
}

#[track_caller]
fn assert_caught(mutant: &str, failed: &[String], expected: &[&str]) {
    assert!(!failed.is_empty(), "mutant {mutant} passed the whole suite: no check caught it");
    for name in expected {
        assert!(
            failed.iter().any(|f| f == name),
            "mutant {mutant}: expected {name} among the failed checks, got {failed:?}"
        );
    }
}

fn pin_mutant(mutation: Mutation) -> impl Harness {
    DirHarness::new("toy", move |path, faults| async move {
        Ok(mutate(open_without_fsync(path, faults).await?, mutation))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_precondition_is_caught() {
    let mutation = Mutation::DropPreconditions;
    let failed = caught_by(mutation.name(), &pin_mutant(mutation)).await;
    assert_caught(
        mutation.name(),
        &failed,
        &["preconditions::put_absent_refuses_existing", "preconditions::put_version_refuses_stale"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tear_batch_is_caught() {
    let mutation = Mutation::TearBatch;
    let failed = caught_by(mutation.name(), &pin_mutant(mutation)).await;
    assert_caught(mutation.name(), &failed, &["batch::failing_op_in_middle_applies_nothing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piecemeal_finalize_is_caught() {
    let harness = DirHarness::new("toy-piecemeal", open_piecemeal);
    let failed = caught_by(PIECEMEAL_MUTANT, &harness).await;
    assert_caught(
        PIECEMEAL_MUTANT,
        &failed,
        &["publication::finalize_is_atomic_to_concurrent_readers"],
    );
}
