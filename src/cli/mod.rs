//! The command line: global options, the command tree, and the one place errors become exit
//! codes.

mod audit;
mod bench;
#[cfg(feature = "conformance")]
mod conformance;
mod exec;
mod exit;
mod input;
mod metrics;
mod output;
mod pin;
mod progress;
mod publish;
mod state;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pinvault::Store;

use exit::{CliError, EXIT_CODES_HELP};
use output::Output;
use state::Stdin;

/// Pin state and atomic publication on pluggable backends.
#[derive(Debug, Parser)]
#[command(name = "pinvault", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    /// Backend URL: memory:, rocksdb:///path, sled:///path, fs:///path, s3://bucket/prefix,
    /// gs://bucket/prefix, az://container/prefix, scylla://host1,host2/keyspace.
    #[arg(long, global = true, env = "PINVAULT_URL", default_value = "memory:")]
    url: String,
    /// Print results as one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    /// Create the store if --url names none, even for a command that only reads (adding pins,
    /// importing and publishing always create it; other commands exit 3 instead).
    #[arg(long, global = true)]
    create: bool,
    /// When the command ends, write its metrics (the backend's and the command's duration) to
    /// PATH in the Prometheus text format, e.g. for node_exporter's textfile collector.
    #[arg(long, global = true, value_name = "PATH")]
    metrics_file: Option<std::path::PathBuf>,
    /// How long to wait, in seconds (e.g. 10 or 0.5), for another process that has the store
    /// open (fs, rocksdb, sled; a URL's ?lock_timeout= wins). Default: fail at once with exit
    /// 7. On fs and RocksDB, commands that only read take no lock, so they never wait.
    #[arg(long, global = true, value_name = "SECONDS", value_parser = pinvault::open::parse_seconds)]
    lock_timeout: Option<std::time::Duration>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Run the conformance suite against fresh stores under URL (default: --url); exit 9 if a
    /// check fails. The stores are left in place for inspection.
    #[cfg(feature = "conformance")]
    Conformance {
        /// The backend to check; fresh stores are made under it.
        #[arg(value_name = "URL")]
        target: Option<String>,
        /// Only checks whose `family::check` name contains this.
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Run the comparison workload (import, list, random gets, updates, removes) once per
    /// column, each in its own process: a fresh store under each URL (default: --url), or
    /// ipfs-cluster's own state store (`ipfs-cluster:pebble`, `ipfs-cluster:pebble-sync`,
    /// `ipfs-cluster:crdt`, run by pvcluster). Prints ops/s with ratios to the first column,
    /// each column's peak RSS, and fails if the columns' final states differ.
    Bench {
        /// Columns to compare: backend URLs, each on a fresh store made under it, or
        /// `ipfs-cluster:STORE`.
        #[arg(value_name = "COLUMN")]
        targets: Vec<String>,
        /// Run the workload on this (empty) store in this process and print one JSON result:
        /// what each column's child process does.
        #[arg(long, value_name = "URL", hide = true)]
        one: Option<String>,
        /// The pvcluster binary, for `ipfs-cluster:` columns (interop/ipfs-cluster/build.sh
        /// builds it and prints its path).
        #[arg(long, value_name = "PATH", env = "PINVAULT_PVCLUSTER")]
        pvcluster: Option<std::path::PathBuf>,
        /// Where `ipfs-cluster:` columns make their stores (default: the system's temporary
        /// directory); put it on the filesystem of the URLs' stores for a fair comparison.
        #[arg(long, value_name = "DIR")]
        scratch: Option<std::path::PathBuf>,
        /// Pins imported and listed.
        #[arg(long, default_value_t = 100_000)]
        pins: u64,
        /// Gets, updates and removes (each).
        #[arg(long, default_value_t = 10_000)]
        ops: u64,
        /// Pins per import batch (lowered to each backend's limit).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Write an SVG bar chart of the results here.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<String>,
    },
    /// Run a script of command lines (FILE, or `-` for stdin) against one opened backend.
    ///
    /// One command per line as on the command line, without `pinvault` and `--url`; `#` starts a
    /// comment; quoting as in a shell. Stops at the first failing line with its exit code.
    Exec {
        /// The script; `-` reads it from stdin.
        #[arg(value_name = "FILE", default_value = "-")]
        script: String,
    },
}

impl Command {
    /// The command's name in metrics labels.
    fn name(&self) -> &'static str {
        match self {
            Command::Store(StoreCommand::Pin(_)) => "pin",
            Command::Store(StoreCommand::State(_)) => "state",
            Command::Store(StoreCommand::Publish { .. }) => "publish",
            Command::Store(StoreCommand::Sweep { .. }) => "sweep",
            Command::Store(StoreCommand::Object(_)) => "object",
            Command::Exec { .. } => "exec",
            Command::Bench { .. } => "bench",
            #[cfg(feature = "conformance")]
            Command::Conformance { .. } => "conformance",
        }
    }
}

/// The commands that act on a store, on the command line or in an `exec` script.
#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Add, remove, read and list pins.
    #[command(subcommand)]
    Pin(pin::PinCommand),
    /// The whole pinset: export, import, copy, verify, migrate, digest.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Stage FILEs and publish them as set SET, all or nothing (each object is named after its
    /// file name); prints the publication's version.
    Publish {
        /// The set to publish.
        set: String,
        /// The files; each becomes one object.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// A file whose bytes are stored as the set's manifest.
        #[arg(long, value_name = "FILE")]
        manifest: Option<String>,
    },
    /// Remove objects staged but never published (crashed publishers' leftovers).
    Sweep {
        /// Only objects staged at least this many seconds ago.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        older_than: u64,
    },
    /// Read published objects.
    #[command(subcommand)]
    Object(publish::ObjectCommand),
}

impl StoreCommand {
    /// Only adding pins, importing and publishing (or `--create`) may create the store: any
    /// other command on a store that does not exist is `NoStore` (exit 3), so a mistyped path
    /// never becomes a new, empty store. Commands that only read open the store read-only, so
    /// they never change it (no repair of a torn log tail: that is for the next writer).
    fn open_mode(&self, create: bool) -> pinvault::OpenMode {
        let creates = matches!(
            self,
            StoreCommand::Pin(pin::PinCommand::Add(_))
                | StoreCommand::State(state::StateCommand::Import { .. })
                | StoreCommand::Publish { .. }
        );
        let reads_only = matches!(
            self,
            StoreCommand::Pin(pin::PinCommand::Get { .. } | pin::PinCommand::Ls(_))
                | StoreCommand::State(
                    state::StateCommand::Export { .. }
                        | state::StateCommand::Verify
                        | state::StateCommand::Digest
                        | state::StateCommand::Check
                )
                | StoreCommand::Object(_)
        );
        if create || creates {
            pinvault::OpenMode::CreateIfMissing
        } else if reads_only {
            pinvault::OpenMode::ReadOnly
        } else {
            pinvault::OpenMode::MustExist
        }
    }
}

/// Parses the command line, runs it, and turns the outcome into an exit code.
/// Prints the library's events at `PINVAULT_LOG`'s level (`error`, `warn`, `info`, `debug`,
/// `trace`; default `warn`) on stderr: a store's warnings (a torn tail repaired and
/// quarantined, a compaction put off for lack of space) reach the user.
fn log_to_stderr() -> Result<(), String> {
    let level = match std::env::var("PINVAULT_LOG") {
        Ok(text) => text.parse::<tracing_subscriber::filter::LevelFilter>().map_err(|_| {
            format!("PINVAULT_LOG={text:?} is not one of error, warn, info, debug, trace")
        })?,
        Err(_) => tracing_subscriber::filter::LevelFilter::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init()
        .map_err(|e| format!("cannot install the log: {e}"))
}

pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Err(e) = log_to_stderr() {
        eprintln!("pinvault: {e}");
        return ExitCode::from(2);
    }
    let metrics = match cli.metrics_file.take().map(metrics::MetricsFile::install).transpose() {
        Ok(metrics) => metrics,
        Err(e) => {
            eprintln!("pinvault: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.name();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pinvault: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A reader that closed stdout early (`pinvault pin ls | head`) ends the command as a Unix
    // tool ends: quietly, with success.
    let result = match result {
        Err(e) if e.is_broken_pipe() => Ok(()),
        result => result,
    };
    if let Some(metrics) = metrics {
        if let Err(e) = metrics.finish(command, result.is_ok()) {
            eprintln!("pinvault: {e}");
            if result.is_ok() {
                return ExitCode::FAILURE;
            }
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinvault: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::Store(StoreCommand::State(state::StateCommand::Repair)) => {
            state::repair(&cli.url, cli.lock_timeout, out).await
        }
        Command::Store(command) => {
            let mode = command.open_mode(cli.create);
            let store =
                pinvault::open::open_with_lock_wait(&cli.url, mode, cli.lock_timeout).await?;
            run_store_command(&store, command, out, Stdin { available: true }).await
        }
        Command::Exec { script } => {
            let mode = pinvault::OpenMode::CreateIfMissing;
            let store =
                pinvault::open::open_with_lock_wait(&cli.url, mode, cli.lock_timeout).await?;
            exec::run(&store, &script, out).await
        }
        Command::Bench { targets, one, pvcluster, scratch, pins, ops, batch_size, plot } => {
            let spec = workload::WorkloadSpec { pins, ops, batch_size };
            if let Some(url) = one {
                return bench::run_one(&url, spec, out).await;
            }
            let columns = if targets.is_empty() { vec![cli.url] } else { targets };
            let env = bench::BenchEnv { pvcluster, scratch };
            bench::run(&columns, spec, &env, plot.as_deref(), out).await
        }
        #[cfg(feature = "conformance")]
        Command::Conformance { target, filter } => {
            conformance::run(target.as_deref().unwrap_or(&cli.url), &filter, out).await
        }
    }
}

async fn run_store_command(
    store: &Store,
    command: StoreCommand,
    out: Output,
    stdin: Stdin,
) -> Result<(), CliError> {
    match command {
        StoreCommand::Pin(command) => pin::run(store, command, out).await,
        StoreCommand::State(command) => state::run(store, command, out, stdin).await,
        StoreCommand::Publish { set, files, manifest } => {
            publish::publish(store, &set, &files, manifest.as_deref(), out).await
        }
        StoreCommand::Sweep { older_than } => publish::sweep(store, older_than, out).await,
        StoreCommand::Object(command) => publish::object(store, command, out).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("4  conflict or already exists"), "{help}");
    }
}
