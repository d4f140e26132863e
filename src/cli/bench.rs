//! `pinvault bench [URL...]`: runs the comparison workload (`cli::workload`: import, list,
//! random gets, updates, removes) on a fresh store under each URL, in one process, one after
//! the other, prints a table of operations per second with each backend's ratio to the first,
//! and can write the same numbers as an SVG bar chart (`--plot FILE.svg`).
//!
//! Each backend runs with the durability its URL asks for (`?sync=` for the embedded ones;
//! their default is synced), which the table header repeats. Peak RSS is the process's, after
//! all runs (`VmHWM`), so it is reported once, not per backend.

use std::fmt::Write as _;

use crate::cli::workload::{self, Phase, WorkloadSpec};
use serde_json::json;

use crate::cli::exit::CliError;
use crate::cli::output::Output;
use crate::cli::progress::TerminalProgress;

/// One backend's phases.
struct Run {
    url: String,
    durable: bool,
    phases: Vec<Phase>,
}

/// Runs the workload on each URL and reports.
pub async fn run(
    urls: &[String],
    spec: WorkloadSpec,
    plot: Option<&str>,
    out: Output,
) -> Result<(), CliError> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut runs = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let fresh = pinvault::open::sub_location(url, &format!("bench-{stamp}-{i}"))?;
        let store = pinvault::open(&fresh).await?;
        let durable = store.state.pin_capabilities().durable_on_return;
        let progress = TerminalProgress::on_terminal("bench");
        let result = workload::run(&*store.state, &spec, progress.as_progress()).await;
        progress.finish();
        runs.push(Run { url: fresh, durable, phases: result? });
    }
    let peak_rss = peak_rss_kib();
    if out.json {
        for r in &runs {
            out.json_line(&json!({
                "url": r.url,
                "durable_on_return": r.durable,
                "phases": r.phases.iter().map(|p| json!({
                    "phase": p.name, "ops": p.ops, "seconds": p.elapsed.as_secs_f64(),
                    "per_sec": p.per_sec(),
                })).collect::<Vec<_>>(),
            }))?;
        }
        out.json_line(&json!({ "peak_rss_kib": peak_rss }))?;
    } else {
        for line in table(&runs, &spec).lines() {
            out.line(line)?;
        }
        if let Some(kib) = peak_rss {
            out.line(&format!("peak RSS of this process: {} MiB", kib / 1024))?;
        }
    }
    if let Some(path) = plot {
        std::fs::write(path, svg(&runs, &spec))
            .map_err(|source| CliError::File { path: path.to_owned(), source })?;
        if !out.json {
            out.line(&format!("plot: {path}"))?;
        }
    }
    Ok(())
}

fn table(runs: &[Run], spec: &WorkloadSpec) -> String {
    let mut t = format!(
        "workload: {} pins imported in batches of {}, then {} gets, {} updates, {} removes\n",
        spec.pins, spec.batch_size, spec.ops, spec.ops, spec.ops
    );
    t.push_str("| phase |");
    for r in runs {
        let _ = write!(t, " {} ({}) |", r.url, if r.durable { "durable" } else { "not durable" });
    }
    t.push_str("\n|---|");
    t.push_str(&"---|".repeat(runs.len()));
    t.push('\n');
    let phases = runs.first().map(|r| r.phases.len()).unwrap_or(0);
    for i in 0..phases {
        let name = runs[0].phases[i].name;
        let base = runs[0].phases[i].per_sec();
        let _ = write!(t, "| {name} ops/s |");
        for r in runs {
            let rate = r.phases[i].per_sec();
            if std::ptr::eq(r, &runs[0]) {
                let _ = write!(t, " {rate:.0} |");
            } else {
                let _ = write!(t, " {rate:.0} ({:.2}×) |", rate / base);
            }
        }
        t.push('\n');
    }
    t
}

/// A grouped bar chart of ops/s per phase (log10 scale), one colour per backend.
fn svg(runs: &[Run], spec: &WorkloadSpec) -> String {
    const COLOURS: [&str; 6] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
    let phases: Vec<&str> =
        runs.first().map(|r| r.phases.iter().map(|p| p.name).collect()).unwrap_or_default();
    let (width, height, left, top, plot_h) = (900.0, 480.0, 70.0, 40.0, 340.0);
    let group_w = (width - left - 20.0) / phases.len().max(1) as f64;
    let bar_w = (group_w - 20.0) / runs.len().max(1) as f64;
    let max = runs.iter().flat_map(|r| r.phases.iter().map(Phase::per_sec)).fold(1.0, f64::max);
    let top_decade = max.log10().ceil().max(1.0);
    let y = |rate: f64| top + plot_h - plot_h * (rate.max(1.0).log10() / top_decade);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"14\">pinvault bench: {} pins, {} ops per phase (operations per second, log scale)</text>\n",
        spec.pins, spec.ops
    );
    for decade in 0..=top_decade as i32 {
        let yy = y(10f64.powi(decade));
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">1e{decade}</text>",
            width - 20.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (g, phase) in phases.iter().enumerate() {
        let x0 = left + g as f64 * group_w + 10.0;
        for (b, r) in runs.iter().enumerate() {
            let rate = r.phases[g].per_sec();
            let (x, yy) = (x0 + b as f64 * bar_w, y(rate));
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {rate:.0}/s</title></rect>",
                bar_w - 2.0,
                top + plot_h - yy,
                COLOURS[b % COLOURS.len()],
                xml_escape(&r.url)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{phase}</text>",
            x0 + (group_w - 20.0) / 2.0,
            top + plot_h + 18.0
        );
    }
    for (b, r) in runs.iter().enumerate() {
        let ly = top + plot_h + 40.0 + b as f64 * 16.0;
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ly - 9.0,
            COLOURS[b % COLOURS.len()],
            left + 16.0,
            ly,
            xml_escape(&r.url)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The process's peak resident set (`VmHWM` of /proc/self/status), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
