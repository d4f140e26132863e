//! The SIGKILL test against the piecemeal-finalize mutant, whose engine persists each row of a
//! finalize separately: it must FAIL, finding torn sets. The SIGKILL test is a binary
//! entry (`kill::main`: the parent re-runs its own executable as the child), so this binary
//! runs it in a second process of itself and reports, as one libtest-mimic trial, whether that
//! run failed for the right reason.
//!
//! `PINVAULT_KILLS` sets the inner run's number of kills (the suite's default, 200, when unset);
//! it stops at the first round that finds a tear, usually within a few dozen.

use std::process::Command;

/// Set in the inner run (and so in its children): run the kill test itself on the mutant.
const INNER_ENV: &str = "PINVAULT_ADOPTER_KILL_MUTANT_INNER";

fn main() {
    if std::env::var_os(INNER_ENV).is_some() {
        pinvault_conformance::kill::main(
            pinvault_conformance_adopter::mutants::PIECEMEAL_BACKEND,
            |path| pinvault_conformance_adopter::mutants::open_piecemeal(path, Default::default()),
        );
        return;
    }
    let args = libtest_mimic::Arguments::from_args();
    let trial = libtest_mimic::Trial::test("kill_test_catches_piecemeal_finalize", || {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let output = Command::new(exe)
            .env(INNER_ENV, "1")
            .output()
            .map_err(|e| format!("running the inner kill test: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return Err(format!(
                "the kill test passed on the piecemeal-finalize mutant: it cannot see a \
                 non-atomic engine write\n{stdout}"
            )
            .into());
        }
        // The parent describes every torn batch or set it finds on stderr, one line each.
        let torn: Vec<&str> = stderr
            .lines()
            .filter(|l| l.ends_with(": torn") || l.contains(" objects (its record: "))
            .collect();
        let Some(first) = torn.first() else {
            return Err(format!(
                "the kill test failed on the piecemeal-finalize mutant, but not by finding a tear \
                 ({}):\n{stdout}\n{stderr}",
                output.status
            )
            .into());
        };
        println!(
            "mutant {} caught by: the SIGKILL test ({} torn sets or batches, e.g. {first:?})",
            pinvault_conformance_adopter::mutants::PIECEMEAL_MUTANT,
            torn.len()
        );
        Ok(())
    });
    libtest_mimic::run(&args, vec![trial]).exit();
}
