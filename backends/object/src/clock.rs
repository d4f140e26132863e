//! Commit sequences and write ids: a monotonic wall clock plus a per-instance nonce.
//!
//! An object store has no counter to hand out, and a shared counter object (read, increment,
//! conditional put) would add two round trips to every commit and serialise every writer of the
//! store on one hot key. So each instance numbers its commits with a
//! [`MonotonicClock`](pinvault_core::clock::MonotonicClock) in microseconds:
//!
//! * Within one instance sequences strictly increase, concurrent commits included.
//! * Across instances they follow the writers' wall clocks: an instance opened after another
//!   one's commits returned continues above them as long as the clocks agree to within the time
//!   between the two commits (NTP keeps servers within milliseconds; one commit is several
//!   network round trips). Two instances writing at the same time with skewed clocks can hand
//!   out sequences out of real-time order, and in theory the same sequence: versions never
//!   collide, because a write id adds 64 random bits to the sequence.
//!
//! Write ids (16 bytes: the sequence big-endian, then a nonce) name one write of one pin, one
//! publication, or one staging. The nonce comes from SHA-256 over a per-instance key (the
//! process's hash seed, the pid, the open time) and a counter: unique without a `rand`
//! dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use pinvault_core::clock::{MonotonicClock, Resolution};
use sha2::{Digest, Sha256};

/// A write id: the sequence (8 bytes BE) and a nonce (8 bytes).
pub type WriteId = [u8; 16];

/// The per-instance clock and nonce source.
#[derive(Debug)]
pub(crate) struct Clock {
    sequences: MonotonicClock,
    key: [u8; 32],
    counter: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(Resolution::Micros.now());
        let mut h = Sha256::new();
        h.update(hasher.finish().to_be_bytes());
        h.update(std::process::id().to_be_bytes());
        h.update(Utc::now().timestamp_nanos_opt().unwrap_or_default().to_be_bytes());
        let local = 0u8;
        h.update((std::ptr::addr_of!(local) as usize).to_be_bytes());
        Clock {
            sequences: MonotonicClock::new(Resolution::Micros),
            key: h.finalize().into(),
            counter: AtomicU64::new(0),
        }
    }

    /// The next sequence: greater than every earlier one of this instance, and at least now.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequences.next()
    }

    /// Eight bytes never handed out before by this instance (and, with overwhelming
    /// probability, by any other).
    pub(crate) fn nonce(&self) -> [u8; 8] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(n.to_be_bytes());
        let digest = h.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    /// A fresh write id with the next sequence.
    pub(crate) fn write_id(&self) -> (u64, WriteId) {
        let sequence = self.next_sequence();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&sequence.to_be_bytes());
        id[8..].copy_from_slice(&self.nonce());
        (sequence, id)
    }
}

/// The sequence of a write id.
pub(crate) fn sequence_of(id: &[u8]) -> Option<u64> {
    let head: [u8; 8] = id.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

/// The wall-clock time a sequence was taken at (sequences are microseconds since the epoch).
pub(crate) fn time_of_sequence(sequence: u64) -> Option<DateTime<Utc>> {
    let micros = i64::try_from(sequence).ok()?;
    Utc.timestamp_micros(micros).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_strictly_increase_and_track_the_clock() {
        let c = Clock::new();
        let mut last = 0;
        for _ in 0..10_000 {
            let s = c.next_sequence();
            assert!(s > last);
            last = s;
        }
        let t = time_of_sequence(last).unwrap();
        assert!((Utc::now() - t).num_seconds().abs() < 5);
    }

    #[test]
    fn write_ids_are_distinct_across_instances() {
        let (a, b) = (Clock::new(), Clock::new());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(a.write_id().1));
            assert!(seen.insert(b.write_id().1));
        }
    }
}
