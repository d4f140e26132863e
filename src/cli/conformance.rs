//! `pinvault conformance [URL] [--filter TEXT]`: the conformance suite against fresh stores
//! under a backend URL (`pinvault::conformance::UrlHarness`), one line per check, a summary,
//! and exit code 9 if any check failed.

use pinvault::conformance::UrlHarness;
use pinvault_conformance::runner::{self, CheckResult};
use serde_json::json;

use crate::cli::exit::CliError;
use crate::cli::output::Output;

/// Runs the suite and reports each check as it finishes.
pub async fn run(url: &str, filter: &str, out: Output) -> Result<(), CliError> {
    let run_id = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let harness = UrlHarness::new(url, &run_id)?;
    let mut write_error = None;
    let mut report = |r: &CheckResult| {
        let line = if out.json {
            json!({
                "check": r.name,
                "ok": r.failure.is_none(),
                "failure": r.failure,
                "ms": r.elapsed.as_millis() as u64,
            })
            .to_string()
        } else {
            match &r.failure {
                None => format!("ok      {} ({} ms)", r.name, r.elapsed.as_millis()),
                Some(why) => format!(
                    "FAILED  {} ({} ms): {}",
                    r.name,
                    r.elapsed.as_millis(),
                    first_line(why)
                ),
            }
        };
        if let Err(e) = out.line(&line) {
            write_error.get_or_insert(e);
        }
    };
    let results = runner::run(&harness, filter, &mut report).await;
    if let Some(e) = write_error {
        return Err(e);
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let summary = format!(
        "conformance: {} passed, {failed} failed against {url} (stores under {})",
        results.len() - failed,
        harness.describe()
    );
    if out.json {
        out.json_line(&json!({ "passed": results.len() - failed, "failed": failed, "url": url }))?;
    } else {
        out.line(&summary)?;
    }
    if results.is_empty() {
        return Err(CliError::Usage(format!("--filter {filter:?} matches no check")));
    }
    if failed > 0 {
        return Err(CliError::Mismatch(format!(
            "{failed} conformance checks failed against {url}"
        )));
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
