//! The comparison workload of `pinvault bench`, kept beside its only user rather than in the
//! library's API (interop/ipfs-cluster/bench.go runs the same workload on ipfs-cluster's state
//! store: a change here must be made there too, and the bench's state digest shows if not):
//! on an empty store, import `pins` pins in batches, list them
//! all, then `ops` random gets, `ops` updates and `ops` removes, each phase timed. The same
//! pins, order and random choices for every backend (a fixed seed), so backends compare on the
//! same work.
//!
//! Pins are real: CIDv1 dag-pb sha2-256 CIDs, one to three allocations out of 16 peers, a name,
//! replication factors, and an expiry on every fourth.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use multihash::Multihash;
use pinvault::publish::sha256;
use pinvault::transfer::Progress;
use pinvault::{Batch, Cid, Error, PeerId, Pin, PinState, Precondition, Result};

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Pins imported (and listed).
    pub pins: u64,
    /// Gets, updates and removes (each).
    pub ops: u64,
    /// Pins per import batch (lowered to the backend's `max_batch_ops`).
    pub batch_size: usize,
}

impl WorkloadSpec {
    /// Refuses a workload that cannot run: no pins, no batch, or more removes than pins
    /// (removes take distinct pins).
    pub fn validate(&self) -> Result<()> {
        if self.pins == 0 || self.batch_size == 0 || self.ops > self.pins {
            return Err(Error::invalid(
                "workload",
                "needs pins > 0, batch size > 0 and ops <= pins (removes take distinct pins)",
            ));
        }
        Ok(())
    }
}

/// One timed phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// `import`, `list`, `get`, `update`, `remove`.
    pub name: &'static str,
    /// Operations (pins) done.
    pub ops: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The sha2-256 multihash of `bytes`.
fn sha2_256_multihash(bytes: &[u8]) -> Multihash<64> {
    Multihash::wrap(0x12, &sha256(bytes)).expect("a 32-byte digest fits a 64-byte multihash")
}

/// The `n`th workload pin (deterministic).
pub fn pin(n: u64) -> Pin {
    let mut pin = Pin::new(Cid::new_v1(0x70, sha2_256_multihash(&n.to_be_bytes())));
    for k in 0..=(n % 3) {
        let peer = sha2_256_multihash(&[b'p', ((n + k * 5) % 16) as u8]);
        if let Ok(peer) = PeerId::from_bytes(&peer.to_bytes()) {
            if !pin.allocations.contains(&peer) {
                pin.allocations.push(peer);
            }
        }
    }
    pin.options.name = format!("bench-{n}");
    pin.options.replication_factor_min = 1;
    pin.options.replication_factor_max = 3;
    if n % 4 == 0 {
        pin.options.expire_at = Utc.timestamp_opt(1_900_000_000 + n as i64, 0).single();
    }
    pin
}

/// A small deterministic generator (SplitMix64) for the random choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below.max(1)
    }
}

/// Runs the workload on `state`, which must be empty; `progress` hears of every pin done.
pub async fn run(
    state: &dyn PinState,
    spec: &WorkloadSpec,
    progress: &dyn Progress,
) -> Result<Vec<Phase>> {
    spec.validate()?;
    let batch_size =
        spec.batch_size.min(state.pin_capabilities().max_batch_ops.unwrap_or(usize::MAX));
    let mut phases = Vec::new();

    let started = Instant::now();
    let mut n = 0;
    while n < spec.pins {
        let end = (n + batch_size as u64).min(spec.pins);
        let batch = (n..end).fold(Batch::new(), |b, i| b.put(pin(i), Precondition::Any));
        state.commit(batch).await?;
        progress.advance(end - n, 0);
        n = end;
    }
    phases.push(Phase { name: "import", ops: spec.pins, elapsed: started.elapsed() });

    let started = Instant::now();
    let listed = state.list(None).try_fold(0u64, |c, _| async move { Ok(c + 1) }).await?;
    if listed != spec.pins {
        return Err(Error::corrupt(
            "workload",
            format!("listed {listed} pins, imported {}", spec.pins),
        ));
    }
    progress.advance(listed, 0);
    phases.push(Phase { name: "list", ops: listed, elapsed: started.elapsed() });

    let mut choose = Choices(0x5eed);
    let started = Instant::now();
    for _ in 0..spec.ops {
        state.get(&pin(choose.next(spec.pins)).cid).await?;
        progress.advance(1, 0);
    }
    phases.push(Phase { name: "get", ops: spec.ops, elapsed: started.elapsed() });

    let started = Instant::now();
    for _ in 0..spec.ops {
        let mut updated = pin(choose.next(spec.pins));
        updated.options.name.push_str("-updated");
        state.put(updated, Precondition::Any).await?;
        progress.advance(1, 0);
    }
    phases.push(Phase { name: "update", ops: spec.ops, elapsed: started.elapsed() });

    // Removes take distinct pins: a stride coprime with the count visits each at most once.
    let stride =
        (1..spec.pins).rev().find(|s| gcd(*s, spec.pins) == 1 && *s > spec.pins / 2).unwrap_or(1);
    let started = Instant::now();
    for i in 0..spec.ops {
        state.remove(&pin((i * stride) % spec.pins).cid, Precondition::Any).await?;
        progress.advance(1, 0);
    }
    phases.push(Phase { name: "remove", ops: spec.ops, elapsed: started.elapsed() });
    Ok(phases)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinvault::memory::MemoryBackend;
    use pinvault::transfer::NoProgress;

    #[tokio::test]
    async fn the_workload_runs_and_leaves_pins_minus_removes() {
        let state = MemoryBackend::new();
        let spec = WorkloadSpec { pins: 500, ops: 120, batch_size: 64 };
        let phases = run(&state, &spec, &NoProgress).await.unwrap();
        let names: Vec<_> = phases.iter().map(|p| p.name).collect();
        assert_eq!(names, ["import", "list", "get", "update", "remove"]);
        let left = state.list(None).try_fold(0u64, |c, _| async move { Ok(c + 1) }).await.unwrap();
        assert_eq!(left, 380, "removes hit distinct pins");
        assert!(pin(3).allocations.len() == 1 && pin(5).allocations.len() == 3);
        assert_eq!(pin(7), pin(7));
        // The pins the workload has always used (CID computed independently, in Python).
        assert_eq!(
            pin(0).cid.to_string(),
            "bafybeifpkvyplimbbn5ppdfpjpdquzqpbx2r4qv27eou3znsgkg6b2b57q"
        );
        let bad = WorkloadSpec { pins: 10, ops: 11, batch_size: 1 };
        assert!(run(&MemoryBackend::new(), &bad, &NoProgress).await.is_err());
    }
}
