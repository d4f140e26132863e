//! The SIGKILL test for embedded backends: a child process runs batch imports and finalizes in a
//! loop over one directory; the parent kills it with SIGKILL at a random instant, reopens the
//! directory, and checks that every import batch and every set is there entirely or not at all,
//! and that everything the child was told had committed is there. Then it starts the next child
//! over the same directory, so recovery after recovery is exercised too.
//!
//! A backend uses it from a test target with `harness = false`:
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

use crate::fixtures;

/// Pins per import, and per committed batch of an import.
const IMPORT_PINS: u64 = 100;
const IMPORT_BATCH: usize = 25;
/// The metadata key that tags each pin with its import batch.
const BATCH_TAG: &str = "kill-batch";
const CHILD_ENV: &str = "PINVAULT_KILL_CHILD_DIR";
/// Kills over one directory before the test starts a fresh one: long enough chains of
/// crash-recover-crash, short enough that verifying the whole store stays cheap.
const ROUNDS_PER_DIR: u64 = 25;

/// A small deterministic generator (splitmix64), so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The entry point of a kill-test binary: the parent when run by `cargo test`, the child when
/// the parent starts it. `open` opens the backend over a directory.
pub fn main<F, Fut, B>(backend: &str, open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<B>>,
    B: PinState + Publisher + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let seed = env_u64("PINVAULT_KILL_CHILD_SEED", 1);
        runtime.block_on(child(PathBuf::from(dir), seed, open));
        return;
    }
    let kills = env_u64("PINVAULT_KILLS", 200);
    let seed = env_u64("PINVAULT_KILL_SEED", 0x5eed);
    println!("kill test ({backend}): {kills} kills, seed {seed} (PINVAULT_KILLS, PINVAULT_KILL_SEED)");
    let started = Instant::now();
    let report = runtime.block_on(parent(backend, kills, seed, open));
    println!(
        "kill test ({backend}): {} kills in {:.1}s: {} import batches and {} sets checked whole, \
         {} acknowledged writes checked present, 0 torn",
        report.kills,
        started.elapsed().as_secs_f64(),
        report.batches,
        report.sets,
        report.acked,
    );
    // One line in cargo's format, so the project's test summary counts this binary.
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

#[derive(Default)]
struct Report {
    kills: u64,
    batches: usize,
    sets: usize,
    acked: usize,
}

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
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(std::io::Result::ok).collect::<Vec<_>>()
        });
        // Kill at a random instant: mostly mid-workload, sometimes during open or recovery.
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        let lines = reader.join().expect("the reader thread ends");
        for line in &lines {
            match line.split_once(' ') {
                Some(("import", id)) => acked_imports.insert(id.to_owned()),
                Some(("set", name)) => acked_sets.insert(name.to_owned()),
                _ => false,
            };
        }
        if status.success() {
            panic!("round {round}: the child exited by itself; it must run until killed");
        }
        let store = open(path.clone()).await.unwrap_or_else(|e| {
            panic!("round {round}: reopening after SIGKILL failed: {e}")
        });
        let (batches, sets) = verify(&store, &acked_imports, &acked_sets, round).await;
        report.kills = round + 1;
        report.batches += batches;
        report.sets += sets;
        report.acked += acked_imports.len() + acked_sets.len();
        drop(store);
    }
    report
}

/// Checks all-or-nothing and acknowledged durability; returns (import batches, sets) found.
async fn verify<B: PinState + Publisher>(
    store: &B,
    acked_imports: &BTreeSet<String>,
    acked_sets: &BTreeSet<String>,
    round: u64,
) -> (usize, usize) {
    let entries: Vec<_> = PinState::list(store, None)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("round {round}: listing pins failed: {e}"));
    let mut batches: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        let tag = e.pin.options.metadata.get(BATCH_TAG).cloned().unwrap_or_default();
        *batches.entry(tag).or_default() += 1;
    }
    for (tag, count) in &batches {
        assert_eq!(
            *count, IMPORT_BATCH as u64,
            "round {round}: import batch {tag:?} holds {count} pins, not {IMPORT_BATCH}: a torn batch"
        );
    }
    for id in acked_imports {
        for b in 0..IMPORT_PINS / IMPORT_BATCH as u64 {
            assert!(
                batches.contains_key(&format!("{id}-{b}")),
                "round {round}: import {id} was acknowledged but its batch {b} is missing"
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
        let bytes = Publisher::get(store, &meta.key)
            .await
            .unwrap_or_else(|e| panic!("round {round}: object {} is listed but unreadable: {e}", meta.key));
        assert_eq!(pinvault_core::publish::sha256(&bytes), meta.sha256, "round {round}: {} bytes differ", meta.key);
    }
    for name in acked_sets {
        let set = SetName::new(name.as_str()).expect("the child names sets validly");
        let publication = store
            .publication(&set)
            .await
            .unwrap_or_else(|e| panic!("round {round}: set {name} was acknowledged but is missing: {e}"));
        assert_eq!(publication.objects.len(), expected_objects(name), "round {round}: set {name}");
    }
    for (set, count) in &sets {
        let publication = store
            .publication(set)
            .await
            .unwrap_or_else(|e| panic!("round {round}: objects of {set} are visible without its set record: {e}"));
        let expected = expected_objects(set.as_str());
        assert_eq!(publication.objects.len(), expected, "round {round}: set {set} record");
        assert_eq!(*count, expected, "round {round}: set {set} shows {count} of {expected} objects");
    }
    (batches.len(), sets.len())
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
    let store = open(dir.clone()).await.unwrap_or_else(|e| panic!("child: open {}: {e}", dir.display()));
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
                pin.options.metadata.insert(BATCH_TAG.into(), format!("{id}-{}", i / IMPORT_BATCH as u64));
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

