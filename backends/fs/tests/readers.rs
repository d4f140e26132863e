//! Lock-free readers against a live writer (crate docs, "One instance per root"): while one
//! writer appends and compacts (renames a new log over `pins.log`) as fast as it can, readers
//! open the store read-only again and again. Every open must succeed and see a prefix of the
//! writer's history: never half a record, never damage, never a write without the ones before
//! it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use pinvault_core::kv::{KvEngine, KvWrite, Table};
use pinvault_core::FaultInjector;
use pinvault_fs::{DirOptions, FsLogEngine};

const KEYS: u64 = 8;
const VALUE_BYTES: usize = 32 << 10;
const WRITES: u64 = 1500;

fn value(write: u64) -> Vec<u8> {
    let mut v = write.to_le_bytes().to_vec();
    v.resize(VALUE_BYTES, (write % 251) as u8);
    v
}

/// Reads every key once from a fresh read-only open and checks the snapshot is a prefix of the
/// history: write `g` put key `g % KEYS`, so with `m` the newest write seen, key `k` must hold
/// the newest `g <= m` with `g % KEYS == k`. Returns `m`.
fn check_snapshot(root: &Path) -> Option<u64> {
    let backend = pinvault_fs::open_blocking_read_only(
        root.to_path_buf(),
        DirOptions::default(),
        FaultInjector::disabled(),
    )
    .unwrap_or_else(|e| panic!("a read-only open beside a live writer failed: {e}"));
    let engine = backend.pins.store().engine();
    let mut seen = Vec::new();
    for k in 0..KEYS {
        let Some(v) = engine.get(Table::Pins, &k.to_be_bytes()).unwrap() else {
            seen.push(None);
            continue;
        };
        let g = u64::from_le_bytes(v[..8].try_into().unwrap());
        assert_eq!(v, value(g), "key {k}: the value of write {g} is intact");
        assert_eq!(g % KEYS, k);
        seen.push(Some(g));
    }
    let newest = seen.iter().flatten().copied().max()?;
    for (k, g) in seen.iter().enumerate() {
        let k = k as u64;
        let expected = (k <= newest).then(|| newest - (newest - k) % KEYS);
        assert_eq!(*g, expected, "key {k} in a snapshot whose newest write is {newest}");
    }
    Some(newest)
}

#[test]
fn readers_see_a_prefix_of_a_live_writers_history_across_compactions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let options = DirOptions { sync: false, ..DirOptions::default() };
    // The whole backend once, so the store has the KV layer's format record; then the engine
    // alone writes raw values (the readers open the whole backend, which checks that record).
    drop(
        pinvault_fs::open_blocking(root.clone(), options.clone(), FaultInjector::disabled())
            .unwrap(),
    );
    let writer = FsLogEngine::open(&root, &options).unwrap();
    let done = AtomicBool::new(false);
    let (opens, compactions) = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let (mut opens, mut last) = (0u64, 0u64);
                    while !done.load(Ordering::Relaxed) {
                        if let Some(newest) = check_snapshot(&root) {
                            assert!(newest >= last, "a later open never goes back in time");
                            last = newest;
                        }
                        opens += 1;
                    }
                    opens
                })
            })
            .collect();
        let mut compactions = 0;
        let mut len = writer.log_len();
        for g in 0..WRITES {
            let key = (g % KEYS).to_be_bytes().to_vec();
            writer.write(vec![KvWrite::Put { table: Table::Pins, key, value: value(g) }]).unwrap();
            let now = writer.log_len();
            compactions += u64::from(now < len);
            len = now;
        }
        done.store(true, Ordering::Relaxed);
        let opens: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        (opens, compactions)
    });
    assert!(compactions >= 10, "the writer compacted while readers read ({compactions})");
    assert!(opens >= 20, "readers opened the store while it changed ({opens})");
    assert_eq!(check_snapshot(&root), Some(WRITES - 1));
    eprintln!("{WRITES} writes, {compactions} compactions, {opens} read-only opens");
}
