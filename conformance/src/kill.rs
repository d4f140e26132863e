//! The SIGKILL test for embedded backends: a child process runs batch imports and finalizes in a
//! loop over one directory; the parent kills it with SIGKILL at a random instant, reopens the
//! directory, and checks that every import batch and every set is there entirely or not at all,
//! and that everything the child was told had committed is there. Then it starts the next child
//! over the same directory, so recovery after recovery is exercised too.
//!
//! The parent asserts that each round it kills "during work" was killed after the child had
//! acknowledged at least one write, so no round passes by dying at open; one round in eight
//! (`EARLY_KILL_EVERY`) kills at a random early instant instead, to exercise crashes during
//! open and recovery. It prints acknowledged, surviving and torn counts as it found them.
//!
//! A backend uses it from a test target with `harness = false` (the test is reported by
//! libtest-mimic):
//!
//! ```text
//! fn main() {
//!     pinvault_conformance::kill::main("rocksdb", |path| pinvault_rocksdb::open(path, Default::default(), Default::default()));
//! }
//! ```
//!
//! `PINVAULT_KILLS` sets the number of kills (default 200), `PINVAULT_KILL_SEED` the seed of the
//! kill delays and the workload.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use pinvault_core::codec::ndjson;
use pinvault_core::transfer::{ImportOptions, NoProgress, TransferFormat};
use pinvault_core::{ObjectName, PinState, Publisher, Result, SetName};

use crate::fixtures::{self, env_u64, Rng};

/// Pins per import, and per committed batch of an import.
const IMPORT_PINS: u64 = 100;
const IMPORT_BATCH: usize = 25;
/// The metadata key that tags each pin with its import batch.
const BATCH_TAG: &str = "kill-batch";
const CHILD_ENV: &str = "PINVAULT_KILL_CHILD_DIR";
/// Kills over one directory before the test starts a fresh one: long enough chains of
/// crash-recover-crash, short enough that verifying the whole store stays cheap.
const ROUNDS_PER_DIR: u64 = 25;

/// The entry point of a kill-test binary: the parent when run by `cargo test`, the child when
/// the parent starts it. `open` opens the backend over a directory. The parent is one test,
/// `kill_<backend>`, run and reported by libtest-mimic (so `--list`, filters and the
/// `test result:` line behave as cargo's own harness).
pub fn main<F, Fut, B>(backend: &str, open: F)
where
    F: Fn(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = Result<B>>,
    B: PinState + Publisher + 'static,
{
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
    };
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let seed = env_u64("PINVAULT_KILL_CHILD_SEED", 1);
        runtime().block_on(child(PathBuf::from(dir), seed, open));
        return;
    }
    let args = libtest_mimic::Arguments::from_args();
    let name = backend.to_owned();
    let trial = libtest_mimic::Trial::test(format!("kill_{backend}"), move || {
        let kills = env_u64("PINVAULT_KILLS", 200);
        let seed = env_u64("PINVAULT_KILL_SEED", 0x5eed);
        println!(
            "kill test ({name}): {kills} kills, seed {seed} (PINVAULT_KILLS, PINVAULT_KILL_SEED)"
        );
        let started = Instant::now();
        let report = runtime().block_on(parent(&name, kills, seed, open));
        println!(
            "kill test ({name}): {} kills in {:.1}s ({} during work, {} at a random early instant): \
             {} acknowledged writes, {} found whole after the kills that followed them; \
             {} import batches and {} sets checked, {} torn",
            report.kills,
            started.elapsed().as_secs_f64(),
            report.work_rounds,
            report.kills - report.work_rounds,
            report.acknowledged,
            report.survived,
            report.batches,
            report.sets,
            report.torn,
        );
        if report.torn > 0 || report.survived < report.checked_acks {
            return Err(format!(
                "{} torn, {} of {} acknowledged writes lost",
                report.torn,
                report.checked_acks - report.survived,
                report.checked_acks
            )
            .into());
        }
        Ok(())
    });
    libtest_mimic::run(&args, vec![trial]).exit();
}

/// What the kills found, counted from the data.
#[derive(Default)]
struct Report {
    kills: u64,
    /// Rounds killed only after the child acknowledged at least one write.
    work_rounds: u64,
    /// Distinct imports and sets the children acknowledged.
    acknowledged: usize,
    /// Acknowledged writes looked for after each kill (each counts once per check).
    checked_acks: usize,
    /// Of those, found whole.
    survived: usize,
    batches: usize,
    sets: usize,
    /// Import batches or sets found partly applied.
    torn: usize,
}

/// Every round out of this many kills at a random instant from the child's start (during open
/// or recovery, often before any write); the others only after the child's first
/// acknowledgement.
const EARLY_KILL_EVERY: u64 = 8;

async fn parent<F, Fut, B>(backend: &str, kills: u64, seed: u64, open: F) -> Report
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<B>>,
    B: PinState + Publisher + 'static,
{
    let dir = tempfile::Builder::new()
        .prefix(&format!("pinvault-kill-{backend}-"))
        .tempdir()
        .expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut rng = Rng(seed);
    let mut acked_imports = BTreeSet::new();
    let mut acked_sets = BTreeSet::new();
    let mut report = Report::default();
    for round in 0..kills {
        let path = dir.path().join(format!("store-{}", round / ROUNDS_PER_DIR));
        if round % ROUNDS_PER_DIR == 0 {
            acked_imports.clear();
            acked_sets.clear();
        }
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &path)
            .env("PINVAULT_KILL_CHILD_SEED", rng.next().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the kill-test child starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(std::io::Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let early = round % EARLY_KILL_EVERY == EARLY_KILL_EVERY - 1;
        if early {
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        } else {
            let first = lines_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| {
                panic!("round {round}: the child acknowledged nothing within 60 s: {e}")
            });
            lines.push(first);
            std::thread::sleep(Duration::from_millis(rng.below(100)));
        }
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        reader.join().expect("the reader thread ends");
        lines.extend(lines_rx.try_iter());
        let mut acked_now = 0;
        for line in &lines {
            let new = match line.split_once(' ') {
                Some(("import", id)) => acked_imports.insert(id.to_owned()),
                Some(("set", name)) => acked_sets.insert(name.to_owned()),
                _ => false,
            };
            acked_now += usize::from(new);
        }
        if status.success() {
            panic!("round {round}: the child exited by itself; it must run until killed");
        }
        if !early {
            assert!(
                acked_now > 0,
                "round {round}: killed during work, but nothing was acknowledged"
            );
            report.work_rounds += 1;
        }
        report.acknowledged += acked_now;
        let store = open(path.clone())
            .await
            .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL failed: {e}"));
        let found = verify(&store, &acked_imports, &acked_sets, round).await;
        report.kills = round + 1;
        report.batches += found.batches;
        report.sets += found.sets;
        report.torn += found.torn;
        report.checked_acks += acked_imports.len() + acked_sets.len();
        report.survived += found.acked_present;
        drop(store);
        if found.torn > 0 || found.acked_present < acked_imports.len() + acked_sets.len() {
            break;
        }
    }
    report
}

/// What one check after a kill found.
struct Found {
    batches: usize,
    sets: usize,
    /// Import batches and sets found partly applied (each printed on stderr).
    torn: usize,
    /// Acknowledged imports and sets found whole.
    acked_present: usize,
}

/// Checks all-or-nothing and acknowledged durability, counting what it finds; every torn or
/// missing write is also described on stderr.
async fn verify<B: PinState + Publisher>(
    store: &B,
    acked_imports: &BTreeSet<String>,
    acked_sets: &BTreeSet<String>,
    round: u64,
) -> Found {
    let entries: Vec<_> = PinState::list(store, None)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("round {round}: listing pins failed: {e}"));
    let mut batches: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        let tag = e.pin.options.metadata.get(BATCH_TAG).cloned().unwrap_or_default();
        *batches.entry(tag).or_default() += 1;
    }
    let mut torn = 0;
    for (tag, count) in &batches {
        if *count != IMPORT_BATCH as u64 {
            eprintln!(
                "round {round}: import batch {tag:?} holds {count} pins, not {IMPORT_BATCH}: torn"
            );
            torn += 1;
        }
    }
    let mut acked_present = 0;
    for id in acked_imports {
        let missing: Vec<u64> = (0..IMPORT_PINS / IMPORT_BATCH as u64)
            .filter(|b| batches.get(&format!("{id}-{b}")) != Some(&(IMPORT_BATCH as u64)))
            .collect();
        if missing.is_empty() {
            acked_present += 1;
        } else {
            eprintln!(
                "round {round}: import {id} was acknowledged but batches {missing:?} are not whole"
            );
        }
    }
    let objects: Vec<_> = Publisher::list(store, "kill/")
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("round {round}: listing objects failed: {e}"));
    let mut sets: BTreeMap<SetName, usize> = BTreeMap::new();
    for meta in &objects {
        *sets.entry(meta.key.set.clone()).or_default() += 1;
        let bytes = Publisher::get(store, &meta.key).await.unwrap_or_else(|e| {
            panic!("round {round}: object {} is listed but unreadable: {e}", meta.key)
        });
        assert_eq!(
            pinvault_core::publish::sha256(&bytes),
            meta.sha256,
            "round {round}: {} bytes differ",
            meta.key
        );
    }
    for name in acked_sets {
        let set = SetName::new(name.as_str()).expect("the child names sets validly");
        match store.publication(&set).await {
            Ok(p) if p.objects.len() == expected_objects(name) => acked_present += 1,
            Ok(p) => {
                eprintln!("round {round}: set {name} has {} objects in its record", p.objects.len())
            }
            Err(e) => eprintln!("round {round}: set {name} was acknowledged but is missing: {e}"),
        }
    }
    for (set, count) in &sets {
        let expected = expected_objects(set.as_str());
        let recorded = store.publication(set).await.map(|p| p.objects.len());
        if recorded.as_ref().ok() != Some(&expected) || *count != expected {
            eprintln!(
                "round {round}: set {set} shows {count} of {expected} objects (its record: {recorded:?})"
            );
            torn += 1;
        }
    }
    Found { batches: batches.len(), sets: sets.len(), torn, acked_present }
}

/// Set names end in `-n<objects>`.
fn expected_objects(set: &str) -> usize {
    set.rsplit_once("-n").and_then(|(_, n)| n.parse().ok()).unwrap_or(usize::MAX)
}

/// The child: imports and publications until it is killed, acknowledging each on stdout.
async fn child<F, Fut, B>(dir: PathBuf, seed: u64, open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<B>>,
    B: PinState + Publisher + 'static,
{
    let store =
        open(dir.clone()).await.unwrap_or_else(|e| panic!("child: open {}: {e}", dir.display()));
    let mut rng = Rng(seed);
    let mut out = std::io::stdout().lock();
    loop {
        let id = format!("{:016x}", rng.next());
        if rng.below(3) == 0 {
            let n = 1 + rng.below(6) as usize;
            let set = SetName::new(format!("kill/{id}-n{n}")).expect("a valid set name");
            let mut staged = Vec::with_capacity(n);
            for i in 0..n {
                let name = ObjectName::new(format!("part-{i}.bin")).expect("a valid name");
                let len = 1024 * (8 + rng.below(56) as usize);
                let bytes: Bytes = fixtures::content(&format!("{id}-{i}"), len);
                staged.push(store.stage(&set, &name, bytes).await.expect("child: stage"));
            }
            let manifest = Bytes::from(format!("{{\"objects\":{n}}}"));
            store.finalize(&set, &staged, manifest).await.expect("child: finalize");
            let _ = writeln!(out, "set {set}").and_then(|()| out.flush());
        } else {
            let first = rng.next() >> 8;
            let mut input = String::new();
            for i in 0..IMPORT_PINS {
                let mut pin = fixtures::plain_pin(first + i);
                pin.options
                    .metadata
                    .insert(BATCH_TAG.into(), format!("{id}-{}", i / IMPORT_BATCH as u64));
                input.push_str(&ndjson::encode_pin_json(&pin));
                input.push('\n');
            }
            let options = ImportOptions {
                format: TransferFormat::Ndjson,
                batch_size: IMPORT_BATCH,
                ..ImportOptions::default()
            };
            let mut reader = input.as_bytes();
            store.import(&mut reader, &options, &NoProgress).await.expect("child: import");
            let _ = writeln!(out, "import {id}").and_then(|()| out.flush());
        }
    }
}
