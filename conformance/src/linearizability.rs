//! Linearizability of conditional single-key writes, checked on recorded histories.
//!
//! The [`races`](crate::races) checks look at final counts; this module looks at every
//! operation. A [recorder](record) runs N concurrent clients doing random `get`, conditional
//! `put` (`Absent`, `Version(last seen)`, `Any`) and conditional `remove` (`Version(last seen)`,
//! `Any`) on a few hot keys and records each operation's invoke and return instants and its
//! result. The [checker](check) then decides whether some total order of the operations,
//! consistent with real time (an operation that returned before another was invoked comes
//! first), explains every result under the memory backend's semantics.
//!
//! # The model
//!
//! One pin slot per CID (the memory backend, `core/src/memory/pins.rs`):
//!
//! * `get` returns the pin and its version, or `NotFound` when absent;
//! * `put(pin, pre)`: if `pre` holds (`Any`; `Absent` and the key is absent; `Version(v)` and
//!   the key is present at version `v`) it writes and returns a new version, else
//!   `Conflict { current }` carrying the key's version at that instant (`None` when absent);
//! * `remove(cid, pre)` likewise, with `Ok(())`; removing an absent key with `Any` is an `Ok`
//!   no-op, with `Version(v)` a `Conflict { current: None }` (`Absent` is invalid input, never
//!   recorded).
//!
//! Versions are opaque: the model takes the version a put returned as the new version of the
//! slot. Each put writes a pin whose name is unique in the history, so a `get` names the write
//! it observed. Versions must never repeat for a key across the whole history (a re-insert after
//! a remove gets a fresh one): two successful puts returning one version are reported before any
//! search. An operation whose outcome is unknown (`Unavailable` with `outcome_unknown`, or any
//! unexpected error of a write) returns at +∞ and may or may not have taken effect; the version
//! of such a put is learned from a `get` that observed its pin (until then it matches only
//! versions no known write returned).
//!
//! # The search
//!
//! Porcupine's (Wing & Gong's search with Lowe's memoization): the history is cut into one
//! partition per key (P-compositionality: a history is linearizable iff each key's is), each
//! partition's call and return events are put in one time-ordered list, and a depth-first search
//! linearizes a pending call (its model step must accept its recorded result), lifts it out of
//! the list and starts over, backtracking when it meets the return of an operation it has not
//! linearized. A cache of `(linearized set as a bitset, model state)` prunes every state reached
//! before. A violation is reported with its key, the longest linearizable prefix the search
//! found (its last operations and the model state after it) and each operation that could come
//! next with why the model refuses it.
//!
//! # Running it
//!
//! [`run`] records and checks one backend (asserting that a backend which does not declare
//! `linearizable_conditional_writes` refuses conditional writes instead) and prints
//! `history: N ops over K keys, checked in X ms`. [`dir_main`] is the whole test binary of an
//! embedded backend (`harness = false`): one run with 16 clients sharing one instance, and one
//! across processes, where each process opens the store with a lock wait for a burst of
//! operations and closes it again, so the history spans opens of several processes. [`main`]
//! runs a list of named trials (object stores, Scylla).
//!
//! Environment: `PINVAULT_LIN_CLIENTS` (default 16), `PINVAULT_LIN_OPS` (operations per
//! client, default 1000; backends may choose smaller defaults), `PINVAULT_LIN_KEYS` (default 4),
//! `PINVAULT_LIN_SEED`, `PINVAULT_LIN_PROCESSES` (default 4) and `PINVAULT_LIN_CHECK_SECS`
//! (the search budget per key, default 120).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::pin::Pin as StdPin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinvault_core::{Cid, Error, PinState, Precondition, Publisher, Version};

use crate::fixtures::{self, env_u64, Rng};
use crate::harness::TestStore;

// ---------------------------------------------------------------------------------------------
// Histories
// ---------------------------------------------------------------------------------------------

/// What a client asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `get(cid)`.
    Get,
    /// `put(pin, precondition)` of a pin whose name is `value` (unique in the history).
    Put {
        /// The precondition.
        precondition: Precondition,
        /// The written pin's name.
        value: String,
    },
    /// `remove(cid, precondition)`.
    Remove {
        /// The precondition (never `Absent`).
        precondition: Precondition,
    },
}

/// What it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// `get` found the pin named `value` at `version`.
    Found {
        /// The version read.
        version: Version,
        /// The pin's name.
        value: String,
    },
    /// `get` returned `NotFound`.
    Missing,
    /// `put` returned this version.
    Written(Version),
    /// `remove` returned `Ok`.
    Removed,
    /// `Conflict` carrying this current version.
    Conflict(Option<Version>),
    /// The outcome is unknown: the write may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it (clients are sequential).
    pub client: u32,
    /// The key (a CID's string form).
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// What came back.
    pub ret: Ret,
    /// When it was invoked, in nanoseconds of `CLOCK_MONOTONIC` (comparable across processes).
    pub invoke: u64,
    /// When it returned (ignored for [`Ret::Unknown`], which returns at +∞).
    pub complete: u64,
}

impl Op {
    fn end(&self) -> u64 {
        if self.ret == Ret::Unknown {
            u64::MAX
        } else {
            self.complete
        }
    }
}

/// A recorded history.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Its operations, in any order.
    pub ops: Vec<Op>,
}

/// Nanoseconds of `CLOCK_MONOTONIC`: one clock for every process of the machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn short(v: &Version) -> String {
    v.to_string()
}

fn pre_text(p: &Precondition) -> String {
    match p {
        Precondition::Any => "Any".into(),
        Precondition::Absent => "Absent".into(),
        Precondition::Version(v) => format!("Version({})", short(v)),
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Get => write!(f, "get"),
            Call::Put { precondition, value } => {
                write!(f, "put({value}, {})", pre_text(precondition))
            }
            Call::Remove { precondition } => write!(f, "remove({})", pre_text(precondition)),
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Found { version, value } => write!(f, "Found({value} @ {})", short(version)),
            Ret::Missing => write!(f, "NotFound"),
            Ret::Written(v) => write!(f, "Ok({})", short(v)),
            Ret::Removed => write!(f, "Ok"),
            Ret::Conflict(Some(v)) => write!(f, "Conflict(current {})", short(v)),
            Ret::Conflict(None) => write!(f, "Conflict(current absent)"),
            Ret::Unknown => write!(f, "outcome unknown"),
        }
    }
}

// Line format, to carry histories from child processes: tab-separated fields.
fn pre_token(p: &Precondition) -> String {
    match p {
        Precondition::Any => "any".into(),
        Precondition::Absent => "absent".into(),
        Precondition::Version(v) => format!("v:{v}"),
    }
}

fn parse_pre(s: &str) -> Option<Precondition> {
    Some(match s {
        "any" => Precondition::Any,
        "absent" => Precondition::Absent,
        _ => Precondition::Version(Version::parse_hex(s.strip_prefix("v:")?).ok()?),
    })
}

impl Op {
    /// One line (no newline) that [`Op::from_line`] reads back.
    pub fn to_line(&self) -> String {
        let call = match &self.call {
            Call::Get => "get".to_owned(),
            Call::Put { precondition, value } => format!("put {} {value}", pre_token(precondition)),
            Call::Remove { precondition } => format!("rm {}", pre_token(precondition)),
        };
        let ret = match &self.ret {
            Ret::Found { version, value } => format!("found {version} {value}"),
            Ret::Missing => "missing".into(),
            Ret::Written(v) => format!("written {v}"),
            Ret::Removed => "removed".into(),
            Ret::Conflict(Some(v)) => format!("conflict {v}"),
            Ret::Conflict(None) => "conflict -".into(),
            Ret::Unknown => "unknown".into(),
        };
        format!(
            "op\t{}\t{}\t{}\t{}\t{call}\t{ret}",
            self.client, self.key, self.invoke, self.complete
        )
    }

    /// Parses [`Op::to_line`].
    pub fn from_line(line: &str) -> Option<Op> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 7 || f[0] != "op" {
            return None;
        }
        let c: Vec<&str> = f[5].split(' ').collect();
        let call = match c.as_slice() {
            ["get"] => Call::Get,
            ["put", p, v] => Call::Put { precondition: parse_pre(p)?, value: (*v).to_owned() },
            ["rm", p] => Call::Remove { precondition: parse_pre(p)? },
            _ => return None,
        };
        let r: Vec<&str> = f[6].split(' ').collect();
        let ver = |s: &str| Version::parse_hex(s).ok();
        let ret = match r.as_slice() {
            ["found", v, val] => Ret::Found { version: ver(v)?, value: (*val).to_owned() },
            ["missing"] => Ret::Missing,
            ["written", v] => Ret::Written(ver(v)?),
            ["removed"] => Ret::Removed,
            ["conflict", "-"] => Ret::Conflict(None),
            ["conflict", v] => Ret::Conflict(Some(ver(v)?)),
            ["unknown"] => Ret::Unknown,
            _ => return None,
        };
        Some(Op {
            client: f[1].parse().ok()?,
            key: f[2].to_owned(),
            invoke: f[3].parse().ok()?,
            complete: f[4].parse().ok()?,
            call,
            ret,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

/// How strictly to check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// A conflict's `current` must be the key's version at the conflict's linearization point
    /// (the contract); when false only the failed precondition is checked.
    pub conflict_current: bool,
    /// The search budget per key; past it the key is reported undecided (a failure).
    pub budget: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            conflict_current: true,
            budget: Duration::from_secs(env_u64("PINVAULT_LIN_CHECK_SECS", 120)),
        }
    }
}

/// Why one key's history is not linearizable.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// What is wrong, with the operations involved.
    pub detail: String,
    /// The operations the report names (the refused frontier, or the duplicate writers).
    pub offending: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}: {}", self.key, self.detail)
    }
}

/// What [`check`] found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Operations checked.
    pub ops: usize,
    /// Keys (partitions).
    pub keys: usize,
    /// Operations whose outcome was unknown.
    pub unknown: usize,
    /// How long the check took.
    pub elapsed: Duration,
    /// Model states explored (cache entries), over all keys.
    pub states: usize,
    /// The keys whose history is not linearizable.
    pub violations: Vec<Violation>,
    /// Keys the search could not decide within the budget.
    pub undecided: Vec<String>,
}

impl CheckReport {
    /// Whether every key's history is linearizable.
    pub fn linearizable(&self) -> bool {
        self.violations.is_empty() && self.undecided.is_empty()
    }

    /// `history: N ops over K keys, checked in X ms`.
    pub fn summary(&self) -> String {
        format!(
            "history: {} ops over {} keys, checked in {} ms ({} model states, {} of unknown outcome): {}",
            self.ops,
            self.keys,
            self.elapsed.as_millis(),
            self.states,
            self.unknown,
            if self.linearizable() {
                "linearizable".to_owned()
            } else {
                format!(
                    "NOT linearizable ({} keys violate, {} undecided)",
                    self.violations.len(),
                    self.undecided.len()
                )
            }
        )
    }
}

/// Checks `history` key by key against the model (see the module doc).
pub fn check(history: &History, options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let origin = history.ops.iter().map(|o| o.invoke).min().unwrap_or(0);
    let mut report = CheckReport {
        ops: history.ops.len(),
        keys: by_key.len(),
        unknown: history.ops.iter().filter(|o| o.ret == Ret::Unknown).count(),
        elapsed: Duration::ZERO,
        states: 0,
        violations: Vec::new(),
        undecided: Vec::new(),
    };
    for (key, ops) in by_key {
        let partition = Partition::new(key, ops, origin, options);
        match partition.check(started + options.budget) {
            Outcome::Linearizable { states } => report.states += states,
            Outcome::Violation(v, states) => {
                report.states += states;
                report.violations.push(v);
            }
            Outcome::Undecided(states) => {
                report.states += states;
                report.undecided.push(key.to_owned());
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The model state: the op index (in the partition) of the write whose pin is in the slot, or
/// [`ABSENT`].
type State = u32;
const ABSENT: State = u32::MAX;
const NIL: u32 = u32::MAX;

enum Outcome {
    Linearizable { states: usize },
    Violation(Violation, usize),
    Undecided(usize),
}

struct Partition<'a> {
    key: &'a str,
    ops: Vec<&'a Op>,
    origin: u64,
    conflict_current: bool,
    /// The version of each write (index = op index); `None` for a put of unknown outcome
    /// whose pin nobody read.
    resolved: Vec<Option<Version>>,
    /// Every resolved version.
    owned: HashSet<Version>,
}

impl<'a> Partition<'a> {
    fn new(key: &'a str, ops: Vec<&'a Op>, origin: u64, options: &CheckOptions) -> Self {
        let mut writer = HashMap::new();
        let mut resolved = vec![None; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            if let Call::Put { value, .. } = &op.call {
                let before = writer.insert(value.as_str(), i as u32);
                assert!(
                    before.is_none(),
                    "malformed history: two puts of key {key} wrote pin {value:?}"
                );
                if let Ret::Written(v) = &op.ret {
                    resolved[i] = Some(v.clone());
                }
            }
        }
        for op in &ops {
            if let Ret::Found { version, value } = &op.ret {
                if let Some(&w) = writer.get(value.as_str()) {
                    if ops[w as usize].ret == Ret::Unknown && resolved[w as usize].is_none() {
                        resolved[w as usize] = Some(version.clone());
                    }
                }
            }
        }
        let owned = resolved.iter().flatten().cloned().collect();
        Partition { key, ops, origin, conflict_current: options.conflict_current, resolved, owned }
    }

    fn ms(&self, t: u64) -> String {
        if t == u64::MAX {
            "∞".into()
        } else {
            format!("{:.3}", t.saturating_sub(self.origin) as f64 / 1e6)
        }
    }

    fn describe(&self, i: u32) -> String {
        let op = self.ops[i as usize];
        format!(
            "[client {} {}..{} ms] {} -> {}",
            op.client,
            self.ms(op.invoke),
            self.ms(op.end()),
            op.call,
            op.ret
        )
    }

    fn state_text(&self, s: State) -> String {
        if s == ABSENT {
            return "absent".into();
        }
        let Call::Put { value, .. } = &self.ops[s as usize].call else { unreachable!() };
        match &self.resolved[s as usize] {
            Some(v) => format!("pin {value} @ {}", short(v)),
            None => format!("pin {value} @ (unknown version)"),
        }
    }

    fn version_is(&self, s: State, v: &Version) -> bool {
        s != ABSENT
            && match &self.resolved[s as usize] {
                Some(r) => r == v,
                None => !self.owned.contains(v),
            }
    }

    fn holds(&self, s: State, pre: &Precondition) -> bool {
        match pre {
            Precondition::Any => true,
            Precondition::Absent => s == ABSENT,
            Precondition::Version(v) => self.version_is(s, v),
        }
    }

    fn current_is(&self, s: State, current: &Option<Version>) -> bool {
        if !self.conflict_current {
            return true;
        }
        match current {
            None => s == ABSENT,
            Some(v) => self.version_is(s, v),
        }
    }

    /// The states op `i` may lead to from `s` given its recorded result (none: refused).
    fn step(&self, s: State, i: u32) -> [Option<State>; 2] {
        let op = self.ops[i as usize];
        match (&op.call, &op.ret) {
            (Call::Get, Ret::Found { version, value }) => {
                let ok = s != ABSENT
                    && matches!(&self.ops[s as usize].call, Call::Put { value: w, .. } if w == value)
                    && self.version_is(s, version);
                [ok.then_some(s), None]
            }
            (Call::Get, Ret::Missing) => [(s == ABSENT).then_some(s), None],
            (Call::Get, _) => [Some(s), None],
            (Call::Put { precondition, .. }, Ret::Written(_)) => {
                [self.holds(s, precondition).then_some(i), None]
            }
            (Call::Remove { precondition }, Ret::Removed) => {
                [self.holds(s, precondition).then_some(ABSENT), None]
            }
            (
                Call::Put { precondition, .. } | Call::Remove { precondition },
                Ret::Conflict(cur),
            ) => [(!self.holds(s, precondition) && self.current_is(s, cur)).then_some(s), None],
            (Call::Put { precondition, .. }, Ret::Unknown) => {
                [self.holds(s, precondition).then_some(i), Some(s)]
            }
            (Call::Remove { precondition }, Ret::Unknown) => {
                [self.holds(s, precondition).then_some(ABSENT), Some(s)]
            }
            // A result that does not fit the call (a put that returned Found...): never.
            _ => [None, None],
        }
    }

    /// Why op `i` cannot be applied in state `s`.
    fn refusal(&self, s: State, i: u32) -> String {
        let op = self.ops[i as usize];
        let state = self.state_text(s);
        match (&op.call, &op.ret) {
            (Call::Get, _) => format!("the slot holds {state}, but the get returned {}", op.ret),
            (
                Call::Put { precondition: p, .. } | Call::Remove { precondition: p },
                Ret::Conflict(c),
            ) => {
                if self.holds(s, p) {
                    format!("its precondition {} holds on {state}, but it conflicted", pre_text(p))
                } else {
                    format!(
                        "the conflict reports current {}, but the slot holds {state}",
                        c.as_ref().map_or("absent".to_owned(), short)
                    )
                }
            }
            (Call::Put { precondition: p, .. } | Call::Remove { precondition: p }, _) => {
                format!("its precondition {} fails on {state}, but it succeeded", pre_text(p))
            }
        }
    }

    fn repeated_version(&self) -> Option<Violation> {
        let mut seen: HashMap<&Version, u32> = HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            if let Ret::Written(v) = &op.ret {
                if let Some(&j) = seen.get(v) {
                    return Some(Violation {
                        key: self.key.to_owned(),
                        detail: format!(
                            "version {} was returned by two writes (versions must never repeat):\n  {}\n  {}",
                            short(v),
                            self.describe(j),
                            self.describe(i as u32)
                        ),
                        offending: vec![self.ops[j as usize].clone(), (*op).clone()],
                    });
                }
                seen.insert(v, i as u32);
            }
        }
        None
    }

    fn check(&self, deadline: Instant) -> Outcome {
        if let Some(v) = self.repeated_version() {
            return Outcome::Violation(v, 0);
        }
        let n = self.ops.len();
        // Events: (time, is_return, op). Calls sort before returns at equal times.
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        for (i, op) in self.ops.iter().enumerate() {
            events.push((op.invoke, false, i as u32));
            events.push((op.end(), true, i as u32));
        }
        events.sort_unstable();
        // Node 0 is the head; node k + 1 is event k.
        let len = events.len() + 1;
        let mut next: Vec<u32> = (1..=len as u32).collect();
        next[len - 1] = NIL;
        let mut prev: Vec<u32> = (0..len as u32).map(|k| k.wrapping_sub(1)).collect();
        let mut call_node = vec![0u32; n];
        let mut ret_node = vec![0u32; n];
        for (k, &(_, is_ret, op)) in events.iter().enumerate() {
            if is_ret {
                ret_node[op as usize] = k as u32 + 1;
            } else {
                call_node[op as usize] = k as u32 + 1;
            }
        }
        let unlink = |next: &mut Vec<u32>, prev: &mut Vec<u32>, x: u32| {
            let (p, nx) = (prev[x as usize], next[x as usize]);
            next[p as usize] = nx;
            if nx != NIL {
                prev[nx as usize] = p;
            }
        };
        let relink = |next: &mut Vec<u32>, prev: &mut Vec<u32>, x: u32| {
            let (p, nx) = (prev[x as usize], next[x as usize]);
            next[p as usize] = x;
            if nx != NIL {
                prev[nx as usize] = x;
            }
        };
        let words = n.div_ceil(64);
        let mut linearized = vec![0u64; words];
        let mut cache: HashSet<(Box<[u64]>, State)> = HashSet::new();
        // (op, state before it, index of the next candidate state to try).
        let mut stack: Vec<(u32, State, u8)> = Vec::new();
        let mut best: Vec<u32> = Vec::new();
        let mut best_state = ABSENT;
        let mut state = ABSENT;
        let mut entry = next[0];
        let mut steps: u64 = 0;

        // Tries op's candidate states from index `from`; lifts it on the first new one.
        macro_rules! try_lift {
            ($op:expr, $from:expr) => {{
                let op: u32 = $op;
                let cands = self.step(state, op);
                let mut lifted = false;
                for (ci, cand) in cands.iter().enumerate().skip($from as usize) {
                    let Some(c) = *cand else { continue };
                    linearized[op as usize / 64] |= 1 << (op % 64);
                    if cache.insert((linearized.clone().into_boxed_slice(), c)) {
                        stack.push((op, state, ci as u8 + 1));
                        state = c;
                        unlink(&mut next, &mut prev, call_node[op as usize]);
                        unlink(&mut next, &mut prev, ret_node[op as usize]);
                        lifted = true;
                        break;
                    }
                    linearized[op as usize / 64] &= !(1 << (op % 64));
                }
                lifted
            }};
        }

        while next[0] != NIL {
            steps += 1;
            if steps % 4096 == 0 && Instant::now() > deadline {
                return Outcome::Undecided(cache.len());
            }
            let (_, is_ret, op) = events[entry as usize - 1];
            if !is_ret {
                if try_lift!(op, 0) {
                    if stack.len() > best.len() {
                        best = stack.iter().map(|f| f.0).collect();
                        best_state = state;
                    }
                    entry = next[0];
                } else {
                    entry = next[entry as usize];
                }
                continue;
            }
            // The return of an op not linearized yet: undo the last choice.
            let Some((top, before, from)) = stack.pop() else {
                return Outcome::Violation(self.violation(&best, best_state), cache.len());
            };
            linearized[top as usize / 64] &= !(1 << (top % 64));
            state = before;
            relink(&mut next, &mut prev, ret_node[top as usize]);
            relink(&mut next, &mut prev, call_node[top as usize]);
            entry =
                if try_lift!(top, from) { next[0] } else { next[call_node[top as usize] as usize] };
        }
        Outcome::Linearizable { states: cache.len() }
    }

    /// The report of a key with no linearization: the longest linearizable prefix found, the
    /// model state after it, and the operations that could come next with why each is refused.
    fn violation(&self, best: &[u32], state: State) -> Violation {
        let mut done = vec![false; self.ops.len()];
        for &i in best {
            done[i as usize] = true;
        }
        let horizon = (0..self.ops.len())
            .filter(|&i| !done[i])
            .map(|i| self.ops[i].end())
            .min()
            .unwrap_or(u64::MAX);
        let frontier: Vec<u32> = (0..self.ops.len() as u32)
            .filter(|&i| !done[i as usize] && self.ops[i as usize].invoke <= horizon)
            .collect();
        let mut detail = format!(
            "no linearization of its {} ops; the longest linearizable prefix has {} ops",
            self.ops.len(),
            best.len()
        );
        let tail = best.len().saturating_sub(6);
        if tail > 0 {
            let _ = write!(detail, " (last {} shown)", best.len() - tail);
        }
        detail.push(':');
        for &i in &best[tail..] {
            let _ = write!(detail, "\n    {}", self.describe(i));
        }
        let _ = write!(
            detail,
            "\n  after it the slot holds {}, and no pending op can go next:",
            self.state_text(state)
        );
        for &i in &frontier {
            let _ = write!(
                detail,
                "\n    {}\n      refused: {}",
                self.describe(i),
                self.refusal(state, i)
            );
        }
        Violation {
            key: self.key.to_owned(),
            detail,
            offending: frontier.iter().map(|&i| self.ops[i as usize].clone()).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The recorder
// ---------------------------------------------------------------------------------------------

/// The size and seed of a recorded run.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations per client.
    pub ops_per_client: usize,
    /// Hot keys.
    pub keys: u64,
    /// Seed of every client's choices.
    pub seed: u64,
}

/// The fixture number of the first hot key.
const KEY_BASE: u64 = 7_000_000;

impl Workload {
    /// From `PINVAULT_LIN_CLIENTS`, `PINVAULT_LIN_OPS`, `PINVAULT_LIN_KEYS` and
    /// `PINVAULT_LIN_SEED`, with `ops_per_client` as the default operation count.
    pub fn from_env(ops_per_client: usize) -> Self {
        Workload {
            clients: env_u64("PINVAULT_LIN_CLIENTS", 16) as usize,
            ops_per_client: env_u64("PINVAULT_LIN_OPS", ops_per_client as u64) as usize,
            keys: env_u64("PINVAULT_LIN_KEYS", 4),
            seed: env_u64("PINVAULT_LIN_SEED", now_ns()),
        }
    }

    fn cids(&self) -> Vec<Cid> {
        (0..self.keys).map(|k| fixtures::cid(KEY_BASE + k)).collect()
    }
}

/// What a recording produced.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// The history.
    pub history: History,
    /// Errors other than the contract's results and `Unavailable`: each one a failure.
    pub unexpected: Vec<String>,
    /// `Unavailable` errors (a read's is dropped from the history, a write's recorded as of
    /// unknown outcome unless the error says it was not applied).
    pub unavailable: usize,
}

impl Recording {
    fn merge(&mut self, other: Recording) {
        self.history.ops.extend(other.history.ops);
        self.unexpected.extend(other.unexpected);
        self.unavailable += other.unavailable;
    }
}

/// One sequential client: its choices and the last version it saw of each key.
#[derive(Clone, Debug)]
pub struct Client {
    id: u32,
    rng: Rng,
    keys: Vec<Cid>,
    seen: Vec<Option<Version>>,
    older: Vec<Option<Version>>,
    seq: u64,
}

impl Client {
    /// Client `id` of `workload`.
    pub fn new(id: u32, workload: &Workload) -> Self {
        let keys = workload.cids();
        Client {
            id,
            rng: Rng(workload.seed ^ (u64::from(id) + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            seen: vec![None; keys.len()],
            older: vec![None; keys.len()],
            keys,
            seq: 0,
        }
    }

    fn saw(&mut self, k: usize, v: Option<Version>) {
        if v != self.seen[k] {
            self.older[k] = std::mem::replace(&mut self.seen[k], v);
        }
    }

    /// Runs `n` random operations against `state`, appending them to `out`.
    pub async fn run(&mut self, state: &dyn PinState, n: usize, out: &mut Recording) {
        for _ in 0..n {
            self.one(state, out).await;
        }
    }

    async fn one(&mut self, state: &dyn PinState, out: &mut Recording) {
        let k = self.rng.below(self.keys.len() as u64) as usize;
        let cid = self.keys[k];
        let key_n = KEY_BASE + k as u64;
        // One in 20 conditional ops uses the version seen before the last one: a stale token.
        let held =
            if self.rng.below(20) == 0 { self.older[k].clone() } else { self.seen[k].clone() };
        let roll = self.rng.below(100);
        let call = match (roll, held) {
            (0..=29, _) => Call::Get,
            (30..=44, _) | (45..=69, None) => {
                Call::Put { precondition: Precondition::Absent, value: String::new() }
            }
            (45..=69, Some(v)) => {
                Call::Put { precondition: Precondition::Version(v), value: String::new() }
            }
            (70..=77, _) => Call::Put { precondition: Precondition::Any, value: String::new() },
            (78..=91, Some(v)) => Call::Remove { precondition: Precondition::Version(v) },
            _ => Call::Remove { precondition: Precondition::Any },
        };
        let call = match call {
            Call::Put { precondition, .. } => {
                self.seq += 1;
                Call::Put { precondition, value: format!("c{}-{}", self.id, self.seq) }
            }
            other => other,
        };
        let invoke = now_ns();
        let result: Result<Ret, Error> = match &call {
            Call::Get => state
                .get(&cid)
                .await
                .map(|got| Ret::Found { version: got.version, value: got.pin.options.name }),
            Call::Put { precondition, value } => {
                let pin = fixtures::renamed(fixtures::plain_pin(key_n), value);
                state.put(pin, precondition.clone()).await.map(Ret::Written)
            }
            Call::Remove { precondition } => {
                state.remove(&cid, precondition.clone()).await.map(|()| Ret::Removed)
            }
        };
        let complete = now_ns();
        let is_read = call == Call::Get;
        let ret = match result {
            Ok(r) => r,
            Err(Error::NotFound { .. }) if is_read => Ret::Missing,
            Err(Error::Conflict { current, .. }) if !is_read => Ret::Conflict(current),
            Err(Error::Unavailable { outcome_unknown, .. }) => {
                out.unavailable += 1;
                if is_read || !outcome_unknown {
                    return;
                }
                Ret::Unknown
            }
            Err(e) => {
                out.unexpected.push(format!("client {} {call} on {cid}: {e}", self.id));
                if is_read {
                    return;
                }
                Ret::Unknown
            }
        };
        match &ret {
            Ret::Found { version, .. } | Ret::Written(version) => {
                self.saw(k, Some(version.clone()))
            }
            Ret::Conflict(current) => self.saw(k, current.clone()),
            Ret::Missing | Ret::Removed => self.saw(k, None),
            Ret::Unknown => {}
        }
        out.history.ops.push(Op {
            client: self.id,
            key: cid.to_string(),
            call,
            ret,
            invoke,
            complete,
        });
    }
}

/// Runs `workload.clients` concurrent clients, client `i` on `instances[i % len]`, and returns
/// their history.
pub async fn record(instances: &[Arc<dyn PinState>], workload: &Workload) -> Recording {
    assert!(!instances.is_empty(), "record needs at least one instance");
    let tasks: Vec<_> = (0..workload.clients)
        .map(|i| {
            let state = instances[i % instances.len()].clone();
            let mut client = Client::new(i as u32, workload);
            let n = workload.ops_per_client;
            tokio::spawn(async move {
                let mut out = Recording::default();
                client.run(&*state, n, &mut out).await;
                out
            })
        })
        .collect();
    let mut all = Recording::default();
    for t in tasks {
        all.merge(t.await.expect("a recording client panicked"));
    }
    all
}

/// Asserts that a backend which does not declare `linearizable_conditional_writes` refuses a
/// conditional put and a conditional remove with `Unsupported`; returns whether it declares it.
pub async fn conditional_writes_declared(state: &dyn PinState, label: &str) -> bool {
    if state.pin_capabilities().linearizable_conditional_writes {
        return true;
    }
    let pin = fixtures::plain_pin(KEY_BASE);
    let put = state.put(pin.clone(), Precondition::Absent).await;
    assert!(
        matches!(put, Err(Error::Unsupported { .. })),
        "{label}: linearizable_conditional_writes is false, so put(Absent) must be refused with Unsupported; got {put:?}"
    );
    let rm = state.remove(&pin.cid, Precondition::Version(Version::from_u64(1))).await;
    assert!(
        matches!(rm, Err(Error::Unsupported { .. })),
        "{label}: linearizable_conditional_writes is false, so remove(Version) must be refused with Unsupported; got {rm:?}"
    );
    println!("{label}: refused as declared: conditional put and remove (linearizable_conditional_writes is false)");
    crate::harness::record_refusal(label, "linearizability::conditional_writes");
    false
}

/// Conflicts that contradict themselves whenever they are placed: a `put(Absent)` whose
/// conflict says the key is absent, or a `Version(v)` write whose conflict says the current
/// version is `v`.
pub fn self_contradictory_conflicts(history: &History) -> Vec<&Op> {
    history
        .ops
        .iter()
        .filter(|op| match (&op.call, &op.ret) {
            (Call::Put { precondition: Precondition::Absent, .. }, Ret::Conflict(None)) => true,
            (
                Call::Put { precondition: Precondition::Version(v), .. }
                | Call::Remove { precondition: Precondition::Version(v) },
                Ret::Conflict(Some(c)),
            ) => v == c,
            _ => false,
        })
        .collect()
}

/// How exactly a backend's conflicts must report the current version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflicts {
    /// The contract: a conflict's `current` is the key's version at the instant the
    /// precondition failed (the checker places both at one linearization point).
    Exact,
    /// A known deviation, reported on every run and not failed: the backend reads `current`
    /// after the failed write, so it may be a later version (or absence). Every other result
    /// (the precondition failed at some instant of the call, and everything else) is still
    /// checked exactly, and the strict check's verdict and the self-contradictory conflicts
    /// ([`self_contradictory_conflicts`]) are printed.
    CurrentReadAfter,
}

/// Checks a recording, prints its summary line (prefixed by `label`), and fails with the
/// violations (or the unexpected errors) when there are any. Returns the report.
pub fn assert_linearizable(label: &str, recording: &Recording, setup: &str) -> CheckReport {
    assert_linearizable_with(label, recording, setup, Conflicts::Exact)
}

/// [`assert_linearizable`] with the backend's declared [`Conflicts`] exactness.
pub fn assert_linearizable_with(
    label: &str,
    recording: &Recording,
    setup: &str,
    conflicts: Conflicts,
) -> CheckReport {
    let options =
        CheckOptions { conflict_current: conflicts == Conflicts::Exact, ..CheckOptions::default() };
    let report = check(&recording.history, &options);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &recording.history.ops {
        let name = match (&op.call, &op.ret) {
            (Call::Get, Ret::Found { .. }) => "get found",
            (Call::Get, _) => "get missing",
            (_, Ret::Conflict(_)) => "conflicts",
            (Call::Put { .. }, Ret::Written(_)) => "puts ok",
            (Call::Remove { .. }, Ret::Removed) => "removes ok",
            _ => "unknown outcome",
        };
        *counts.entry(name).or_default() += 1;
    }
    println!("{label}: {setup}; {}", report.summary());
    println!(
        "{label}: results: {}; {} Unavailable",
        counts.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "),
        recording.unavailable
    );
    let mut failures = String::new();
    for v in &report.violations {
        let _ = writeln!(failures, "{v}");
    }
    for k in &report.undecided {
        let _ = writeln!(
            failures,
            "key {k}: undecided within the search budget (PINVAULT_LIN_CHECK_SECS)"
        );
    }
    if !failures.is_empty() {
        let path = std::env::temp_dir().join(format!(
            "pinvault-lin-{}-{}.history",
            label.split_whitespace().next().unwrap_or("run"),
            std::process::id()
        ));
        let lines: String = recording.history.ops.iter().map(|o| o.to_line() + "\n").collect();
        match std::fs::write(&path, lines) {
            Ok(()) => println!("{label}: the whole history is in {}", path.display()),
            Err(e) => println!("{label}: could not save the history to {}: {e}", path.display()),
        }
    }
    assert!(failures.is_empty(), "{label}: the history is not linearizable:\n{failures}");
    if conflicts == Conflicts::CurrentReadAfter {
        let strict = check(&recording.history, &CheckOptions::default());
        let contradictory = self_contradictory_conflicts(&recording.history);
        println!(
            "{label}: KNOWN DEVIATION (conflict's current version read after the failed write): \
             with exact conflicts the history is {}; {} of its conflicts contradict themselves{}",
            if strict.linearizable() {
                "linearizable".to_owned()
            } else {
                format!("NOT linearizable on {} of {} keys", strict.violations.len(), strict.keys)
            },
            contradictory.len(),
            contradictory.first().map_or(String::new(), |op| format!(
                ", e.g. client {}: {} -> {}",
                op.client, op.call, op.ret
            ))
        );
        if let Some(v) = strict.violations.first() {
            println!("{label}: first exact-conflict violation: {v}");
        }
    }
    assert!(
        recording.unexpected.is_empty(),
        "{label}: {} unexpected errors, e.g. {:?}",
        recording.unexpected.len(),
        &recording.unexpected[..recording.unexpected.len().min(5)]
    );
    report
}

/// Records `workload` over `instances` and checks it (see [`assert_linearizable`]); a backend
/// that does not declare conditional writes must refuse them instead.
pub async fn run(label: &str, instances: Vec<Arc<dyn PinState>>, workload: &Workload) {
    run_with(label, instances, workload, Conflicts::Exact).await
}

/// [`run`] with the backend's declared [`Conflicts`] exactness.
pub async fn run_with(
    label: &str,
    instances: Vec<Arc<dyn PinState>>,
    workload: &Workload,
    conflicts: Conflicts,
) {
    if !conditional_writes_declared(&*instances[0], label).await {
        return;
    }
    let started = Instant::now();
    let recording = record(&instances, workload).await;
    let setup = format!(
        "{} clients × {} ops on {} instance(s), seed {} (PINVAULT_LIN_SEED), recorded in {} ms",
        workload.clients,
        workload.ops_per_client,
        instances.len().min(workload.clients),
        workload.seed,
        started.elapsed().as_millis()
    );
    assert_linearizable_with(label, &recording, &setup, conflicts);
}

// ---------------------------------------------------------------------------------------------
// Test binaries
// ---------------------------------------------------------------------------------------------

/// A boxed future of a trial.
pub type TrialFuture = StdPin<Box<dyn Future<Output = ()> + Send>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

fn trial(
    name: String,
    body: impl FnOnce() -> TrialFuture + Send + 'static,
) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || {
        runtime().block_on(body());
        Ok(())
    })
}

/// The entry point of a `harness = false` test binary: runs each `(name, trial)` on its own
/// multi-thread runtime, reported by libtest-mimic (whose output is never captured, so each
/// trial's history line shows in CI logs).
pub fn main(trials: Vec<(String, Box<dyn FnOnce() -> TrialFuture + Send>)>) {
    let args = libtest_mimic::Arguments::from_args();
    let trials = trials.into_iter().map(|(name, body)| trial(name, body)).collect();
    libtest_mimic::run(&args, trials).exit();
}

const CHILD_ENV: &str = "PINVAULT_LIN_CHILD_DIR";

/// The whole linearizability test binary of an embedded backend (`harness = false`).
/// `open(path, lock_wait)` opens the store in `path`, waiting up to `lock_wait` for another
/// instance's writer lock.
///
/// * `<backend>::in_process`: [`Workload::from_env`] (16 clients × `ops` by default) sharing one
///   instance.
/// * `<backend>::across_processes`: `PINVAULT_LIN_PROCESSES` (4) child processes × 4 clients,
///   `ops / 4` each. Only one process can hold an embedded store open for writing, so each
///   process opens it (with a lock wait), runs a burst of 25 ops per client, and drops it, over
///   and over: the processes' bursts interleave through the lock, and each burst's first
///   operations read what another process wrote, with versions it handed out (the version
///   counter must survive every close and reopen).
pub fn dir_main<F, Fut, B>(backend: &'static str, ops: usize, open: F)
where
    F: Fn(PathBuf, Duration) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = pinvault_core::Result<B>> + Send + 'static,
    B: PinState + Publisher + 'static,
{
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        runtime().block_on(child(PathBuf::from(dir), open));
        return;
    }
    let open2 = open.clone();
    let in_process = move || -> TrialFuture {
        Box::pin(async move {
            let dir = tempfile::Builder::new()
                .prefix(&format!("pinvault-lin-{backend}-"))
                .tempdir()
                .expect("a temporary directory");
            let store = open2(dir.path().join("store"), Duration::ZERO).await.expect("open");
            let state = TestStore::new(Arc::new(store), ()).state;
            run(&format!("{backend} (one instance)"), vec![state], &Workload::from_env(ops)).await;
        })
    };
    let across = move || -> TrialFuture { Box::pin(across_processes(backend, ops)) };
    main(vec![
        (format!("{backend}::in_process"), Box::new(in_process)),
        (format!("{backend}::across_processes"), Box::new(across)),
    ]);
}

const CLIENTS_PER_PROCESS: usize = 4;
const BURST: usize = 25;

async fn across_processes(backend: &'static str, ops: usize) {
    let processes = env_u64("PINVAULT_LIN_PROCESSES", 4) as usize;
    let mut workload = Workload::from_env(ops);
    workload.ops_per_client = (workload.ops_per_client / 4).max(BURST);
    workload.clients = processes * CLIENTS_PER_PROCESS;
    let dir = tempfile::Builder::new()
        .prefix(&format!("pinvault-lin-{backend}-procs-"))
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().join("store");
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|p| {
            Command::new(&exe)
                .env(CHILD_ENV, &path)
                .env("PINVAULT_LIN_CHILD_INDEX", p.to_string())
                .env("PINVAULT_LIN_SEED", workload.seed.to_string())
                .env("PINVAULT_LIN_OPS", workload.ops_per_client.to_string())
                .env("PINVAULT_LIN_KEYS", workload.keys.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("a child process starts")
        })
        .collect();
    let mut recording = Recording::default();
    let mut opens = 0;
    for (p, c) in children.into_iter().enumerate() {
        let output = tokio::task::spawn_blocking(move || c.wait_with_output())
            .await
            .expect("join")
            .expect("the child's output");
        assert!(output.status.success(), "child process {p} failed: {}", output.status);
        for line in BufReader::new(&output.stdout[..]).lines() {
            let line = line.expect("utf-8 child output");
            if let Some(op) = Op::from_line(&line) {
                recording.history.ops.push(op);
            } else if let Some(e) = line.strip_prefix("unexpected\t") {
                recording.unexpected.push(e.to_owned());
            } else if let Some(n) = line.strip_prefix("unavailable\t") {
                recording.unavailable += n.parse::<usize>().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix("opens\t") {
                opens += n.parse::<usize>().unwrap_or(0);
            }
        }
    }
    let expected = workload.clients * workload.ops_per_client;
    assert!(
        recording.history.ops.len() + recording.unavailable >= expected,
        "the children recorded {} of {expected} ops",
        recording.history.ops.len()
    );
    // How often the store changed hands: consecutive operations (by invocation) of different
    // processes.
    let mut by_time: Vec<(u64, usize)> = recording
        .history
        .ops
        .iter()
        .map(|o| (o.invoke, o.client as usize / CLIENTS_PER_PROCESS))
        .collect();
    by_time.sort_unstable();
    let handoffs = by_time.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let setup = format!(
        "{processes} processes × {CLIENTS_PER_PROCESS} clients × {} ops, {opens} opens \
         (bursts of {BURST} ops per client), {handoffs} hand-overs between processes, seed {}, \
         recorded in {} ms",
        workload.ops_per_client,
        workload.seed,
        started.elapsed().as_millis()
    );
    assert_linearizable(&format!("{backend} (across processes)"), &recording, &setup);
}

async fn child<F, Fut, B>(path: PathBuf, open: F)
where
    F: Fn(PathBuf, Duration) -> Fut,
    Fut: Future<Output = pinvault_core::Result<B>>,
    B: PinState + Publisher + 'static,
{
    let index = env_u64("PINVAULT_LIN_CHILD_INDEX", 0) as usize;
    let workload = Workload::from_env(BURST);
    let mut clients: Vec<Client> = (0..CLIENTS_PER_PROCESS)
        .map(|t| Client::new((index * CLIENTS_PER_PROCESS + t) as u32, &workload))
        .collect();
    let mut recording = Recording::default();
    let mut left = workload.ops_per_client;
    let mut opens = 0;
    while left > 0 {
        let burst = left.min(BURST);
        left -= burst;
        let store = open(path.clone(), Duration::from_secs(300)).await.expect("child open");
        opens += 1;
        let state = TestStore::new(Arc::new(store), ()).state;
        let tasks: Vec<_> = clients
            .drain(..)
            .map(|mut client| {
                let state = state.clone();
                tokio::spawn(async move {
                    let mut out = Recording::default();
                    client.run(&*state, burst, &mut out).await;
                    (client, out)
                })
            })
            .collect();
        for t in tasks {
            let (client, out) = t.await.expect("a client task panicked");
            clients.push(client);
            recording.merge(out);
        }
        drop(state);
        // Longer than the lock wait's longest poll interval (50 ms), so a waiting process gets
        // the lock before this one takes it again: the bursts of the processes interleave.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let mut stdout = std::io::stdout().lock();
    for op in &recording.history.ops {
        writeln!(stdout, "{}", op.to_line()).expect("stdout");
    }
    for e in &recording.unexpected {
        writeln!(stdout, "unexpected\t{}", e.replace(['\n', '\t'], " ")).expect("stdout");
    }
    writeln!(stdout, "unavailable\t{}", recording.unavailable).expect("stdout");
    writeln!(stdout, "opens\t{opens}").expect("stdout");
}

// ---------------------------------------------------------------------------------------------
// Tests of the checker itself
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::from_u64(n)
    }

    struct H(Vec<Op>);

    impl H {
        fn op(mut self, client: u32, t: (u64, u64), call: Call, ret: Ret) -> Self {
            self.0.push(Op { client, key: "k".into(), call, ret, invoke: t.0, complete: t.1 });
            self
        }
        fn put(self, c: u32, t: (u64, u64), pre: Precondition, value: &str, ret: Ret) -> Self {
            self.op(c, t, Call::Put { precondition: pre, value: value.into() }, ret)
        }
        fn get(self, c: u32, t: (u64, u64), ret: Ret) -> Self {
            self.op(c, t, Call::Get, ret)
        }
        fn rm(self, c: u32, t: (u64, u64), pre: Precondition, ret: Ret) -> Self {
            self.op(c, t, Call::Remove { precondition: pre }, ret)
        }
        fn check(self) -> CheckReport {
            check(&History { ops: self.0 }, &CheckOptions::default())
        }
    }

    fn found(n: u64, value: &str) -> Ret {
        Ret::Found { version: v(n), value: value.into() }
    }

    #[track_caller]
    fn assert_violation(r: CheckReport, needle: &str) {
        assert!(!r.linearizable(), "must be refused: {r:?}");
        let text = r.violations[0].to_string();
        assert!(text.contains(needle), "the report must say {needle:?}:\n{text}");
        println!("{text}");
    }

    #[test]
    fn a_correct_concurrent_history_is_accepted() {
        let r = H(vec![])
            // Two racing inserts, one wins; the loser's conflict names the winner's version.
            .put(1, (0, 10), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(2, (1, 11), Precondition::Absent, "b", Ret::Conflict(Some(v(1))))
            // A read concurrent with an update may see either value.
            .get(3, (12, 30), found(1, "a"))
            .put(1, (13, 20), Precondition::Version(v(1)), "c", Ret::Written(v(2)))
            .get(2, (14, 31), found(2, "c"))
            // Remove, then a re-insert gets a fresh version; the stale token conflicts.
            .rm(1, (40, 50), Precondition::Version(v(2)), Ret::Removed)
            .get(3, (51, 52), Ret::Missing)
            .put(2, (53, 60), Precondition::Absent, "d", Ret::Written(v(3)))
            .put(3, (55, 70), Precondition::Version(v(2)), "e", Ret::Conflict(Some(v(3))))
            .rm(1, (61, 62), Precondition::Version(v(2)), Ret::Conflict(Some(v(3))))
            .rm(1, (63, 64), Precondition::Any, Ret::Removed)
            .rm(2, (65, 66), Precondition::Any, Ret::Removed)
            .rm(3, (71, 72), Precondition::Version(v(3)), Ret::Conflict(None))
            .put(3, (73, 74), Precondition::Any, "f", Ret::Written(v(4)))
            .check();
        assert!(r.linearizable(), "{r:?}");
        assert_eq!((r.ops, r.keys), (14, 1));
    }

    #[test]
    fn overlapping_ops_may_linearize_in_either_order() {
        // The get is invoked before the put returns and sees its write: fine.
        let r = H(vec![])
            .put(1, (0, 10), Precondition::Absent, "a", Ret::Written(v(1)))
            .get(2, (5, 6), found(1, "a"))
            .get(3, (7, 8), Ret::Missing)
            .check();
        // ...but a later read may not go back to before it.
        assert!(!r.linearizable(), "a read after a read that saw the write cannot miss it");
        let r = H(vec![])
            .put(1, (0, 10), Precondition::Absent, "a", Ret::Written(v(1)))
            .get(3, (7, 8), Ret::Missing)
            .get(2, (8, 9), found(1, "a"))
            .check();
        assert!(r.linearizable(), "{r:?}");
    }

    #[test]
    fn a_stale_read_is_caught() {
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(1, (2, 3), Precondition::Version(v(1)), "b", Ret::Written(v(2)))
            .get(2, (4, 5), found(1, "a"))
            .check();
        assert_violation(r, "the slot holds pin b");
    }

    #[test]
    fn a_lost_update_is_caught() {
        // Two concurrent CAS updates from version 1 both succeed.
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(1, (2, 10), Precondition::Version(v(1)), "b", Ret::Written(v(2)))
            .put(2, (3, 11), Precondition::Version(v(1)), "c", Ret::Written(v(3)))
            .check();
        assert_violation(r, "precondition Version(0000000000000001) fails");
    }

    #[test]
    fn two_winners_of_one_absent_put_are_caught() {
        let r = H(vec![])
            .put(1, (0, 10), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(2, (1, 11), Precondition::Absent, "b", Ret::Written(v(2)))
            .check();
        assert!(!r.linearizable());
        let offending = &r.violations[0].offending;
        assert!(
            !offending.is_empty() && offending.iter().all(|o| matches!(o.call, Call::Put { .. })),
            "the other winner is named: {offending:?}"
        );
        assert_violation(r, "precondition Absent fails");
    }

    #[test]
    fn a_repeated_version_is_caught() {
        // Remove then re-insert handing out the old version again.
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(7)))
            .rm(1, (2, 3), Precondition::Any, Ret::Removed)
            .put(2, (4, 5), Precondition::Absent, "b", Ret::Written(v(7)))
            .check();
        assert_violation(r, "returned by two writes");
    }

    #[test]
    fn a_conflict_must_report_the_current_version() {
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(2, (2, 3), Precondition::Absent, "b", Ret::Conflict(None))
            .check();
        assert_violation(r, "the conflict reports current absent");
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(1)))
            .put(2, (2, 3), Precondition::Version(v(1)), "b", Ret::Conflict(Some(v(1))))
            .check();
        assert_violation(r, "holds on pin a");
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened() {
        // It happened: a later read sees it.
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Unknown)
            .get(2, (5, 6), Ret::Missing)
            .get(2, (7, 8), found(9, "a"))
            .put(2, (9, 10), Precondition::Version(v(9)), "b", Ret::Written(v(10)))
            .check();
        assert!(r.linearizable(), "{r:?}");
        // It did not: the key stays absent.
        let r = H(vec![])
            .put(1, (0, 1), Precondition::Absent, "a", Ret::Unknown)
            .get(2, (5, 6), Ret::Missing)
            .put(2, (7, 8), Precondition::Absent, "b", Ret::Written(v(1)))
            .check();
        assert!(r.linearizable(), "{r:?}");
        // But it cannot take effect before its invocation.
        let r = H(vec![])
            .get(2, (0, 1), found(9, "a"))
            .put(1, (5, 6), Precondition::Absent, "a", Ret::Unknown)
            .check();
        assert!(!r.linearizable());
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut h = H(vec![]).put(1, (0, 1), Precondition::Absent, "a", Ret::Written(v(1))).put(
            1,
            (2, 3),
            Precondition::Absent,
            "b",
            Ret::Written(v(1)),
        );
        h.0[1].key = "other".into();
        let r = h.check();
        assert!(r.linearizable(), "{r:?}");
        assert_eq!(r.keys, 2);
    }

    #[test]
    fn lines_round_trip() {
        let op = Op {
            client: 3,
            key: fixtures::cid(1).to_string(),
            call: Call::Put { precondition: Precondition::Version(v(5)), value: "c3-1".into() },
            ret: Ret::Conflict(None),
            invoke: 10,
            complete: 20,
        };
        assert_eq!(Op::from_line(&op.to_line()), Some(op));
        let op = Op {
            client: 0,
            key: "k".into(),
            call: Call::Get,
            ret: Ret::Found { version: v(2), value: "c0-9".into() },
            invoke: 1,
            complete: 2,
        };
        assert_eq!(Op::from_line(&op.to_line()), Some(op));
    }

    #[test]
    fn a_long_sequential_history_checks_fast() {
        let mut h = H(vec![]);
        let mut t = 0;
        let mut ver = 0;
        for i in 0..20_000u64 {
            t += 10;
            h = if i % 2 == 0 {
                ver += 1;
                let pre =
                    if ver == 1 { Precondition::Absent } else { Precondition::Version(v(ver - 1)) };
                h.put((i % 16) as u32, (t, t + 15), pre, &format!("w{i}"), Ret::Written(v(ver)))
            } else {
                h.get((i % 16) as u32, (t, t + 15), found(ver, &format!("w{}", i - 1)))
            };
        }
        let r = h.check();
        assert!(r.linearizable(), "{r:?}");
        assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    }
}
