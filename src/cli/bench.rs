//! `pinvault bench [COLUMN...]`: runs the comparison workload (`cli::workload`: import, list,
//! random gets, updates, removes) once per column and prints a table of operations per second
//! with each column's ratio to the first, each column's peak RSS and a check that every column
//! ended in the same state; `--plot FILE.svg` draws the same numbers.
//!
//! A column is a backend URL (a fresh store is made under it) or `ipfs-cluster:STORE`,
//! ipfs-cluster's own state store run by `pvcluster bench` (interop/ipfs-cluster/bench.go):
//! `pebble` (dsstate over ipfs-cluster's default pebble datastore, unsynced writes as shipped),
//! `pebble-sync` (the same with synced writes) or `crdt` (the crdt consensus's state).
//!
//! Each column runs in its own child process, one after the other (a pinvault column is
//! `pinvault bench --one URL`), so each has its own peak RSS and no column inherits another's
//! warm caches or heap. Every child prints one JSON line: its phases, durability, peak RSS
//! during the workload, and a digest of its final state, the sum of SHA-256 over each pin's
//! protobuf bytes (Go's `ProtoMarshal`; `audit::PinsetDigest`). pinvault's digest comes
//! from its own encoder and ipfs-cluster's from Go's, so equal digests prove the same final
//! state record for record; a difference fails the run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures::TryStreamExt;
use pinvault::audit::PinsetDigest;
use pinvault::codec::protobuf;
use pinvault::PinState;
use serde_json::{json, Value};

use crate::cli::exit::CliError;
use crate::cli::output::Output;
use crate::cli::progress::TerminalProgress;
use crate::cli::workload::{self, WorkloadSpec};

/// The column prefix naming ipfs-cluster's state store.
const IPFS_CLUSTER: &str = "ipfs-cluster:";

/// Where `bench` finds what it runs besides pinvault.
#[derive(Clone, Debug, Default)]
pub struct BenchEnv {
    /// The `pvcluster` binary (interop/ipfs-cluster/build.sh prints its path).
    pub pvcluster: Option<PathBuf>,
    /// The directory under which ipfs-cluster columns make their stores.
    pub scratch: Option<PathBuf>,
}

/// One timed phase, as a child reported it.
#[derive(Clone, Debug, PartialEq)]
struct Phase {
    name: String,
    ops: u64,
    seconds: f64,
}

impl Phase {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }
}

/// One column's result.
struct Run {
    column: String,
    durable: bool,
    phases: Vec<Phase>,
    peak_rss_kib: u64,
    digest: String,
    pins_left: u64,
}

/// Runs the workload once per column, each in a child process, and reports.
pub async fn run(
    columns: &[String],
    spec: WorkloadSpec,
    env: &BenchEnv,
    plot: Option<&str>,
    out: Output,
) -> Result<(), CliError> {
    spec.validate()?;
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut runs = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let name = format!("bench-{stamp}-{i}");
        let run = match column.strip_prefix(IPFS_CLUSTER) {
            Some(store) => run_ipfs_cluster(column, store, &name, spec, env).await?,
            None => {
                let fresh = pinvault::open::sub_location(column, &name)?;
                let exe = std::env::current_exe().map_err(|source| CliError::File {
                    path: "current executable".into(),
                    source,
                })?;
                let mut child = tokio::process::Command::new(exe);
                child.args(["bench", "--one"]).arg(&fresh).args(spec_args(spec));
                run_child(column, child).await?
            }
        };
        runs.push(run);
    }
    if out.json {
        for r in &runs {
            out.json_line(&json!({
                "column": r.column,
                "durable_on_return": r.durable,
                "peak_rss_kib": r.peak_rss_kib,
                "digest": r.digest,
                "pins_left": r.pins_left,
                "phases": r.phases.iter().map(|p| json!({
                    "phase": p.name, "ops": p.ops, "seconds": p.seconds, "per_sec": p.per_sec(),
                })).collect::<Vec<_>>(),
            }))?;
        }
    } else {
        for line in table(&runs, &spec).lines() {
            out.line(line)?;
        }
    }
    if let Some(path) = plot {
        std::fs::write(path, svg(&runs, &spec))
            .map_err(|source| CliError::File { path: path.to_owned(), source })?;
        if !out.json {
            out.line(&format!("plot: {path}"))?;
        }
    }
    let Some(first) = runs.first() else { return Ok(()) };
    match runs.iter().find(|r| r.digest != first.digest) {
        Some(odd) => Err(CliError::Mismatch(format!(
            "{} ended with state digest {} ({} pins), {} with {} ({} pins)",
            first.column, first.digest, first.pins_left, odd.column, odd.digest, odd.pins_left
        ))),
        None => Ok(()),
    }
}

/// `--pins N --ops N --batch-size N` for a pinvault child.
fn spec_args(spec: WorkloadSpec) -> Vec<String> {
    vec![
        "--pins".into(),
        spec.pins.to_string(),
        "--ops".into(),
        spec.ops.to_string(),
        "--batch-size".into(),
        spec.batch_size.to_string(),
    ]
}

/// Runs `pvcluster bench STORE ...` in a fresh directory under the scratch directory.
async fn run_ipfs_cluster(
    column: &str,
    store: &str,
    name: &str,
    spec: WorkloadSpec,
    env: &BenchEnv,
) -> Result<Run, CliError> {
    let Some(pvcluster) = &env.pvcluster else {
        return Err(CliError::Usage(format!(
            "column {column} needs the pvcluster binary: build it with \
             interop/ipfs-cluster/build.sh and pass its path with --pvcluster or \
             PINVAULT_PVCLUSTER"
        )));
    };
    let scratch = env.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let dir = scratch.join(format!("pinvault-{name}"));
    let mut child = tokio::process::Command::new(pvcluster);
    child
        .args(["bench", store])
        .args([spec.pins.to_string(), spec.ops.to_string(), spec.batch_size.to_string()])
        .arg(&dir);
    let result = run_child(column, child).await;
    remove_dir(&dir).await;
    result
}

/// Removes a scratch store; a failure only leaves files behind, so it is a warning.
async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("pinvault bench: could not remove the scratch store {}: {e}", dir.display());
        }
    }
}

/// Runs one column's child (stderr shown as it comes, for its progress) and reads its JSON line.
async fn run_child(column: &str, mut child: tokio::process::Command) -> Result<Run, CliError> {
    let failed = |message: String| CliError::Column { column: column.to_owned(), message };
    let output =
        child.stdin(Stdio::null()).stderr(Stdio::inherit()).output().await.map_err(|e| {
            failed(format!("could not start {:?}: {e}", child.as_std().get_program()))
        })?;
    if !output.status.success() {
        return Err(failed(format!("exited with {}", output.status)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let value: Value = serde_json::from_str(line)
        .map_err(|e| failed(format!("answered {line:?}, not a JSON result: {e}")))?;
    parse_run(column, &value)
        .ok_or_else(|| failed(format!("answered an incomplete result: {line}")))
}

/// Reads a child's JSON result (the shape `run_one` and `pvcluster bench` print).
fn parse_run(column: &str, v: &Value) -> Option<Run> {
    let phases = v["phases"]
        .as_array()?
        .iter()
        .map(|p| {
            Some(Phase {
                name: p["phase"].as_str()?.to_owned(),
                ops: p["ops"].as_u64()?,
                seconds: p["seconds"].as_f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Run {
        column: column.to_owned(),
        durable: v["durable_on_return"].as_bool()?,
        phases,
        peak_rss_kib: v["peak_rss_kib"].as_u64()?,
        digest: v["digest"].as_str()?.to_owned(),
        pins_left: v["pins_left"].as_u64()?,
    })
}

/// `pinvault bench --one URL`: the workload on the store at `url` (which must be empty), in
/// this process, printed as one JSON line for the parent.
pub async fn run_one(url: &str, spec: WorkloadSpec, out: Output) -> Result<(), CliError> {
    let store = pinvault::open(url).await?;
    let durable = store.state.pin_capabilities().durable_on_return;
    let progress = TerminalProgress::on_terminal("bench");
    let result = workload::run(&*store.state, &spec, progress.as_progress()).await;
    progress.finish();
    let phases = result?;
    // The workload's peak, before the digest's listing.
    let peak_rss_kib = peak_rss_kib().unwrap_or(0);
    let (digest, pins_left) = state_digest(&*store.state).await?;
    out.json_line(&json!({
        "store": url,
        "durable_on_return": durable,
        "phases": phases.iter().map(|p| json!({
            "phase": p.name, "ops": p.ops, "seconds": p.elapsed.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "peak_rss_kib": peak_rss_kib,
        "digest": digest,
        "pins_left": pins_left,
    }))
}

/// The digest of a final state, as `pvcluster bench` computes it: [`PinsetDigest`] (the sum
/// modulo 2^256 of SHA-256 over each pin, independent of listing order, constant memory) over
/// each pin's ipfs-cluster protobuf bytes; and the number of pins.
async fn state_digest(state: &dyn PinState) -> Result<(String, u64), CliError> {
    let mut digest = PinsetDigest::default();
    let mut pins = state.list(None);
    while let Some(entry) = pins.try_next().await? {
        digest.add_record(&protobuf::encode_pin(&entry.pin));
    }
    Ok((digest.hex(), digest.pins))
}

fn table(runs: &[Run], spec: &WorkloadSpec) -> String {
    let mut t = format!(
        "workload: {} pins imported in batches of {}, then {} gets, {} updates, {} removes\n",
        spec.pins, spec.batch_size, spec.ops, spec.ops, spec.ops
    );
    t.push_str("| phase |");
    for r in runs {
        let _ =
            write!(t, " {} ({}) |", r.column, if r.durable { "durable" } else { "not durable" });
    }
    t.push_str("\n|---|");
    t.push_str(&"---|".repeat(runs.len()));
    t.push('\n');
    let phases = runs.first().map(|r| r.phases.len()).unwrap_or(0);
    for i in 0..phases {
        let name = &runs[0].phases[i].name;
        let base = runs[0].phases[i].per_sec();
        let _ = write!(t, "| {name} ops/s |");
        for (j, r) in runs.iter().enumerate() {
            let rate = r.phases.get(i).map_or(0.0, Phase::per_sec);
            if j == 0 {
                let _ = write!(t, " {rate:.0} |");
            } else {
                let _ = write!(t, " {rate:.0} ({:.2}×) |", rate / base);
            }
        }
        t.push('\n');
    }
    t.push_str("| peak RSS |");
    for r in runs {
        let _ = write!(t, " {} MiB |", r.peak_rss_kib / 1024);
    }
    t.push_str("\n| final state |");
    for r in runs {
        let _ = write!(
            t,
            " {} pins, digest {} |",
            r.pins_left,
            r.digest.get(..12).unwrap_or(&r.digest)
        );
    }
    t.push('\n');
    t
}

/// A grouped bar chart of ops/s per phase (log10 scale), one colour per backend.
fn svg(runs: &[Run], spec: &WorkloadSpec) -> String {
    const COLOURS: [&str; 6] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
    let phases: Vec<&str> = runs
        .first()
        .map(|r| r.phases.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
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
            let rate = r.phases.get(g).map_or(0.0, Phase::per_sec);
            let (x, yy) = (x0 + b as f64 * bar_w, y(rate));
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {rate:.0}/s</title></rect>",
                bar_w - 2.0,
                top + plot_h - yy,
                COLOURS[b % COLOURS.len()],
                xml_escape(&r.column)
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
            xml_escape(&r.column)
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
