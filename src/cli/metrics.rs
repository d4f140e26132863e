//! `--metrics-file PATH`: the run's metrics in the Prometheus text format, written when the
//! command ends. A CLI run is too short for a scrape, so this is made for node_exporter's
//! textfile collector (or any file shipper): the file is written beside PATH and renamed over
//! it, so a collector never reads half a file.
//!
//! What it holds: the backends' own metrics (e.g. the Scylla backend's
//! `pinvault_scylla_op_seconds{op}`, `pinvault_scylla_conflicts_total{op}`), and
//! `pinvault_cli_command_seconds{command, outcome}` for the command itself.

use std::path::{Path, PathBuf};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The installed recorder and where its rendering goes.
pub struct MetricsFile {
    handle: PrometheusHandle,
    path: PathBuf,
    started: Instant,
}

impl MetricsFile {
    /// Installs the Prometheus recorder as the process's global recorder.
    pub fn install(path: PathBuf) -> Result<Self, String> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        Ok(MetricsFile { handle, path, started: Instant::now() })
    }

    /// Records the command's duration and outcome, then writes the file.
    pub fn finish(self, command: &'static str, ok: bool) -> Result<(), String> {
        let outcome = if ok { "ok" } else { "error" };
        metrics::histogram!("pinvault_cli_command_seconds", "command" => command, "outcome" => outcome)
            .record(self.started.elapsed().as_secs_f64());
        write_atomically(&self.path, self.handle.render().as_bytes())
            .map_err(|e| format!("cannot write metrics file {}: {e}", self.path.display()))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
