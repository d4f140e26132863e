//! A monotonic wall clock: `next = max(now, last + 1)`.
//!
//! Backends whose engine hands out no counter (an object store, a Cassandra cluster, a
//! directory of published sets) number their writes by wall time: receipt sequences,
//! publication versions, client write timestamps. The wall clock alone can return the same
//! reading twice (two calls within one tick) or step back (an NTP correction), so a
//! [`MonotonicClock`] remembers the last value it handed out and never goes below `last + 1`.
//!
//! Guarantee: the values of one clock strictly increase, concurrent callers included (one
//! atomic read-modify-write per value). Each value is the wall clock's reading at the call,
//! unless that reading is not above the previous value; then it is `last + 1`, so the clock
//! stays close to wall time and catches up with it once calls slow down or the wall clock
//! passes the last value. A backend keeps one clock per store instance; nothing is promised
//! across instances or processes beyond what synchronised wall clocks give. A backend that
//! must stay above values it stored before a restart (the wall clock may have stepped back
//! since) seeds the clock with [`MonotonicClock::starting_after`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The unit of a [`MonotonicClock`]'s values, counted since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Microseconds since the epoch.
    Micros,
    /// Nanoseconds since the epoch.
    Nanos,
}

impl Resolution {
    /// The wall clock now in this unit (0 before the epoch, saturating far in the future).
    pub fn now(self) -> u64 {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let value = match self {
            Resolution::Micros => since_epoch.as_micros(),
            Resolution::Nanos => since_epoch.as_nanos(),
        };
        u64::try_from(value).unwrap_or(u64::MAX)
    }
}

/// A clock whose values strictly increase and follow the wall clock (see the module docs).
#[derive(Debug)]
pub struct MonotonicClock {
    last: AtomicU64,
    resolution: Resolution,
}

impl MonotonicClock {
    /// A clock whose first value is the wall clock's reading.
    pub const fn new(resolution: Resolution) -> Self {
        Self::starting_after(resolution, 0)
    }

    /// A clock whose values are all above `last` (a value stored before this clock existed),
    /// whatever the wall clock says.
    pub const fn starting_after(resolution: Resolution, last: u64) -> Self {
        MonotonicClock { last: AtomicU64::new(last), resolution }
    }

    /// The next value: above every earlier value of this clock, and at least the wall clock now.
    pub fn next(&self) -> u64 {
        self.next_at(self.resolution.now())
    }

    fn next_at(&self, now: u64) -> u64 {
        let step = |last: u64| now.max(last + 1);
        // The closure always returns `Some`, so both arms carry the previous value.
        let previous = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(step(last)))
            .unwrap_or_else(|last| last);
        step(previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn values_strictly_increase_and_track_the_wall_clock() {
        for resolution in [Resolution::Micros, Resolution::Nanos] {
            let clock = MonotonicClock::new(resolution);
            let before = resolution.now();
            let mut last = 0;
            for _ in 0..10_000 {
                let value = clock.next();
                assert!(value > last);
                last = value;
            }
            let after = resolution.now();
            assert!(last >= before);
            // 10,000 calls can run ahead of the wall clock by at most 10,000 units.
            assert!(last <= after + 10_000, "{last} runs too far ahead of {after}");
        }
    }

    #[test]
    fn a_clock_stepping_back_or_repeating_yields_last_plus_one() {
        let clock = MonotonicClock::new(Resolution::Micros);
        assert_eq!(clock.next_at(1_000), 1_000);
        assert_eq!(clock.next_at(1_000), 1_001);
        assert_eq!(clock.next_at(500), 1_002);
        assert_eq!(clock.next_at(2_000), 2_000);
    }

    #[test]
    fn a_seeded_clock_stays_above_its_seed() {
        let far_ahead = Resolution::Nanos.now() + 3_600_000_000_000;
        let clock = MonotonicClock::starting_after(Resolution::Nanos, far_ahead);
        assert_eq!(clock.next(), far_ahead + 1);
        assert_eq!(clock.next(), far_ahead + 2);
    }

    #[test]
    fn concurrent_callers_get_distinct_increasing_values() {
        const THREADS: usize = 8;
        const CALLS: usize = 20_000;
        let clock = Arc::new(MonotonicClock::new(Resolution::Micros));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || {
                    let values: Vec<u64> = (0..CALLS).map(|_| clock.next()).collect();
                    assert!(values.windows(2).all(|w| w[0] < w[1]), "one thread's values");
                    values
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for handle in handles {
            for value in handle.join().unwrap() {
                assert!(seen.insert(value), "{value} handed out twice");
            }
        }
        assert_eq!(seen.len(), THREADS * CALLS);
        assert!(clock.next() > seen.into_iter().max().unwrap());
    }
}
