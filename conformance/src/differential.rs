//! The differential property test: random operation sequences run on the backend under test
//! and on a fresh [`MemoryBackend`] (the reference model), comparing every result and the
//! final state.
//!
//! Versions are backend-specific, so each side resolves "the current version" and "a stale
//! version" from its own history, and a conflict is compared by whether its version is the
//! side's latest, not by its bytes. Operations the backend declares it cannot do must be
//! refused with `Unsupported` (and are then not run on the model).
//!
//! `PINVAULT_PROPTEST_CASES` sets the case count (default 32), `PINVAULT_PROPTEST_SEED` a
//! fixed seed (the seed of every run is printed, so a failure can be replayed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use pinvault_core::memory::MemoryBackend;
use pinvault_core::{
    Batch, Error, ObjectKey, PeerId, Pin, PinCapabilities, PinState, Precondition, Publisher,
    StagedObject, Version,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use crate::fixtures::{at, full_pin, object, peer, set};
use crate::harness::{kind, Harness};
use crate::preconditions::never_issued_version;

const KEYS: u8 = 6;
const PEERS: u64 = 4;
const SETS: [&str; 2] = ["d/one", "d/two"];
const NAMES: [&str; 3] = ["a.bin", "b.bin", "dir/c.bin"];

/// How an op's precondition is chosen, resolved per side against its own versions.
#[derive(Clone, Copy, Debug)]
pub enum Pre {
    /// `Precondition::Any`.
    Any,
    /// `Precondition::Absent`.
    Absent,
    /// The latest version this side has seen for the key (or one never issued).
    Current,
    /// An older version of the key (or one never issued).
    Stale,
}

/// One pin write.
#[derive(Clone, Debug)]
pub enum PinOp {
    /// Put the `variant` of pin `key`.
    Put {
        /// Which CID.
        key: u8,
        /// Which allocations, expiry and metadata.
        variant: u8,
        /// Its precondition.
        pre: Pre,
    },
    /// Remove pin `key`.
    Remove {
        /// Which CID.
        key: u8,
        /// Its precondition.
        pre: Pre,
    },
}

/// One step of a random sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// A single put or remove.
    Single(PinOp),
    /// A batch (may name a key twice, which must be refused).
    Batch(Vec<PinOp>),
    /// A read.
    Get(u8),
    /// Report actual peers (a bit mask over the peer pool).
    RecordPlacement(u8, u8),
    /// Stage object `name` of set `set` with content `content`.
    Stage(u8, u8, u8),
    /// Finalize set `set` with the staged objects picked by the mask (over the last 8 staged).
    Finalize(u8, u8),
    /// Abort the staged objects picked by the mask.
    Abort(u8),
}

fn pre_strategy() -> impl Strategy<Value = Pre> {
    prop_oneof![Just(Pre::Any), Just(Pre::Absent), Just(Pre::Current), Just(Pre::Stale)]
}

fn pin_op_strategy() -> impl Strategy<Value = PinOp> {
    prop_oneof![
        3 => (0..KEYS, any::<u8>(), pre_strategy()).prop_map(|(key, variant, pre)| PinOp::Put { key, variant, pre }),
        1 => (0..KEYS, pre_strategy()).prop_map(|(key, pre)| PinOp::Remove { key, pre }),
    ]
}

/// Random operation sequences.
pub fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => pin_op_strategy().prop_map(Op::Single),
        3 => proptest::collection::vec(pin_op_strategy(), 1..5).prop_map(Op::Batch),
        1 => (0..KEYS).prop_map(Op::Get),
        1 => (0..KEYS, 0..16u8).prop_map(|(k, m)| Op::RecordPlacement(k, m)),
        2 => (0..SETS.len() as u8, 0..NAMES.len() as u8, 0..3u8).prop_map(|(s, n, c)| Op::Stage(s, n, c)),
        2 => (0..SETS.len() as u8, any::<u8>()).prop_map(|(s, m)| Op::Finalize(s, m)),
        1 => any::<u8>().prop_map(Op::Abort),
    ];
    proptest::collection::vec(op, 1..30)
}

fn peers_of(mask: u8) -> Vec<PeerId> {
    (0..PEERS).filter(|i| mask & (1 << i) != 0).map(|i| peer(500 + i)).collect()
}

fn key_cid(key: u8) -> pinvault_core::Cid {
    full_pin(u64::from(key)).cid
}

/// The pin `key` in `variant`: allocations, expiry and metadata vary with the variant.
pub fn pin_variant(key: u8, variant: u8) -> Pin {
    let mut pin = full_pin(u64::from(key));
    pin.allocations = peers_of(variant & 0x0f);
    let hours = i64::from((variant >> 4) & 0x03);
    pin.options.expire_at = (hours > 0).then(|| at(3600 * hours + 60 * i64::from(key)));
    pin.options.metadata.insert("variant".into(), variant.to_string());
    pin
}

/// One side of the comparison: a store and what it handed out.
struct Side {
    label: &'static str,
    state: Arc<dyn PinState>,
    publisher: Arc<dyn Publisher>,
    history: HashMap<u8, Vec<Version>>,
    staged: Vec<StagedObject>,
}

impl Side {
    fn resolve(&self, key: u8, pre: Pre) -> Precondition {
        let history = self.history.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        match pre {
            Pre::Any => Precondition::Any,
            Pre::Absent => Precondition::Absent,
            Pre::Current => {
                Precondition::Version(history.last().cloned().unwrap_or_else(never_issued_version))
            }
            Pre::Stale if history.len() >= 2 => Precondition::Version(history[0].clone()),
            Pre::Stale => Precondition::Version(never_issued_version()),
        }
    }

    fn batch(&self, ops: &[PinOp]) -> Batch {
        ops.iter().fold(Batch::new(), |b, op| match *op {
            PinOp::Put { key, variant, pre } => {
                b.put(pin_variant(key, variant), self.resolve(key, pre))
            }
            PinOp::Remove { key, pre } => b.remove(key_cid(key), self.resolve(key, pre)),
        })
    }

    fn key_of(cid: &pinvault_core::Cid) -> Option<u8> {
        (0..KEYS).find(|k| key_cid(*k) == *cid)
    }

    /// An error in words both sides can agree on.
    fn describe_error(&self, e: &Error, ops: &[PinOp]) -> String {
        match e {
            Error::Conflict { key, current, op_index, .. } => {
                let k = ops.get(*op_index).map(|op| match op {
                    PinOp::Put { key, .. } | PinOp::Remove { key, .. } => *key,
                });
                let latest = k.and_then(|k| self.history.get(&k)).and_then(|h| h.last());
                let current = match current {
                    None => "absent",
                    Some(v) if Some(v) == latest => "the latest version",
                    Some(_) => "a version this side never received",
                };
                format!("Conflict on {key} at op {op_index}, current {current}")
            }
            other => kind(other).to_owned(),
        }
    }

    /// Runs one op; `Ok` carries the comparable outcome, `Err` a broken promise of this side.
    async fn apply(&mut self, op: &Op) -> Result<String, String> {
        match op {
            Op::Single(pin_op) => self.commit(std::slice::from_ref(pin_op), true).await,
            Op::Batch(ops) => self.commit(ops, false).await,
            Op::Get(key) => Ok(match self.state.get(&key_cid(*key)).await {
                Ok(v) => {
                    if self.history.get(key).and_then(|h| h.last()) != Some(&v.version) {
                        return Err(format!(
                            "get of key {key} returned a version that is not its latest write"
                        ));
                    }
                    format!("Ok {:?}", v.pin)
                }
                Err(e) => kind(&e).to_owned(),
            }),
            Op::RecordPlacement(key, mask) => {
                let before = self.state.get(&key_cid(*key)).await.ok().map(|v| v.version);
                let r = self
                    .state
                    .record_placement(&key_cid(*key), peers_of(*mask).into_iter().collect())
                    .await;
                let after = self.state.get(&key_cid(*key)).await.ok().map(|v| v.version);
                if before != after {
                    return Err(format!("record_placement changed the version of key {key}"));
                }
                Ok(r.map_or_else(|e| kind(&e).to_owned(), |()| "Ok".to_owned()))
            }
            Op::Stage(s, n, c) => {
                let bytes = Bytes::from(format!("content {c} of {}", NAMES[*n as usize]));
                match self
                    .publisher
                    .stage(&set(SETS[*s as usize]), &object(NAMES[*n as usize]), bytes)
                    .await
                {
                    Ok(staged) => {
                        let described =
                            format!("Ok {} {} {}", staged.name, staged.size, hex(&staged.sha256));
                        self.staged.push(staged);
                        Ok(described)
                    }
                    Err(e) => Ok(kind(&e).to_owned()),
                }
            }
            Op::Finalize(s, mask) => {
                let picked = self.pick(*mask);
                let manifest = Bytes::from(format!("manifest {mask}"));
                Ok(
                    match self.publisher.finalize(&set(SETS[*s as usize]), &picked, manifest).await
                    {
                        Ok(p) => format!("Ok {}", describe_objects(&p.objects)),
                        Err(e) => kind(&e).to_owned(),
                    },
                )
            }
            Op::Abort(mask) => {
                let picked = self.pick(*mask);
                Ok(self
                    .publisher
                    .abort(&picked)
                    .await
                    .map_or_else(|e| kind(&e).to_owned(), |()| "Ok".to_owned()))
            }
        }
    }

    fn pick(&self, mask: u8) -> Vec<StagedObject> {
        let start = self.staged.len().saturating_sub(8);
        self.staged[start..]
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| s.clone())
            .collect()
    }

    async fn commit(&mut self, ops: &[PinOp], single: bool) -> Result<String, String> {
        let batch = self.batch(ops);
        let digest = batch.digest();
        let result = if single {
            match &batch.ops[0] {
                pinvault_core::BatchOp::Put { pin, precondition } => {
                    self.state.put(pin.clone(), precondition.clone()).await.map(|v| vec![Some(v)])
                }
                pinvault_core::BatchOp::Remove { cid, precondition } => {
                    self.state.remove(cid, precondition.clone()).await.map(|()| vec![None])
                }
            }
        } else {
            match self.state.commit(batch.clone()).await {
                Ok(r) => {
                    if r.digest != digest {
                        return Err("a receipt's digest is not Batch::digest() of its batch".into());
                    }
                    if r.ops != ops.len() {
                        return Err(format!(
                            "a receipt counts {} ops for a batch of {}",
                            r.ops,
                            ops.len()
                        ));
                    }
                    Ok(r.versions)
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(versions) => {
                let mut shape = Vec::new();
                for (op, v) in batch.ops.iter().zip(&versions) {
                    let key = Side::key_of(op.cid()).expect("ops only touch pool keys");
                    match (op, v) {
                        (pinvault_core::BatchOp::Put { .. }, Some(v)) => {
                            let history = self.history.entry(key).or_default();
                            if history.contains(v) {
                                return Err(format!("key {key} received version {v} a second time (ABA)"));
                            }
                            history.push(v.clone());
                            shape.push("put");
                        }
                        (pinvault_core::BatchOp::Remove { .. }, None) => shape.push("remove"),
                        _ => return Err("a receipt's versions do not match its ops (Some for puts, None for removes)".into()),
                    }
                }
                Ok(format!("Ok {shape:?}"))
            }
            Err(e) => Ok(self.describe_error(&e, ops)),
        }
    }

    /// Everything readable, in a form both sides must agree on.
    async fn snapshot(&self) -> Result<String, String> {
        let mut out = String::new();
        let entries = collect_all(self.state.list(None)).await?;
        let mut pins = BTreeMap::new();
        for e in entries {
            let key = Side::key_of(&e.pin.cid)
                .ok_or_else(|| format!("list yielded unknown pin {}", e.pin.cid))?;
            if self.history.get(&key).and_then(|h| h.last()) != Some(&e.version) {
                return Err(format!(
                    "list shows key {key} with a version that is not its latest write"
                ));
            }
            if pins.insert(e.pin.cid.to_bytes(), e.pin).is_some() {
                return Err("list yielded a pin twice".into());
            }
        }
        out.push_str(&format!("pins {pins:?}\n"));
        for i in 0..PEERS {
            let by_peer = collect_all(self.state.pins_by_peer(&peer(500 + i))).await?;
            out.push_str(&format!("peer {i}: {by_peer:?}\n"));
        }
        let mut due = collect_all(self.state.expiring_before(at(10 * 3600))).await?;
        due.sort_by_key(|e| (e.expire_at, e.cid.to_bytes()));
        out.push_str(&format!("expiring {due:?}\n"));
        for k in 0..KEYS {
            let placement = match self.state.placement(&key_cid(k)).await {
                Ok(p) => format!("{:?} / {:?}", p.desired, p.actual),
                Err(e) => kind(&e).to_owned(),
            };
            out.push_str(&format!("placement {k}: {placement}\n"));
        }
        for s in SETS {
            let publication = match self.publisher.publication(&set(s)).await {
                Ok(p) => format!("{:?} {}", p.manifest, describe_objects(&p.objects)),
                Err(e) => kind(&e).to_owned(),
            };
            out.push_str(&format!("set {s}: {publication}\n"));
            for n in NAMES {
                let bytes = self.publisher.get(&ObjectKey::new(set(s), object(n))).await;
                out.push_str(&format!(
                    "object {s}/{n}: {}\n",
                    bytes.map_or_else(|e| kind(&e).to_owned(), |b| format!("{b:?}"))
                ));
            }
        }
        let listed = collect_all(self.publisher.list("")).await?;
        out.push_str(&format!("listed {}\n", describe_objects(&listed)));
        Ok(out)
    }
}

fn describe_objects(objects: &[pinvault_core::ObjectMeta]) -> String {
    let parts: Vec<String> =
        objects.iter().map(|o| format!("{} {} {}", o.key, o.size, hex(&o.sha256))).collect();
    format!("[{}]", parts.join(", "))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn collect_all<T>(
    stream: futures::stream::BoxStream<'_, pinvault_core::Result<T>>,
) -> Result<Vec<T>, String> {
    use futures::TryStreamExt;
    stream.try_collect().await.map_err(|e| format!("a stream failed: {e}"))
}

/// Whether the backend under test must refuse `op` given what it declares.
fn must_refuse(op: &Op, caps: &PinCapabilities, publishes: bool) -> Option<&'static str> {
    let conditional = |ops: &[PinOp]| {
        ops.iter().any(|op| match op {
            PinOp::Put { pre, .. } | PinOp::Remove { pre, .. } => !matches!(pre, Pre::Any),
        })
    };
    match op {
        Op::Single(pin_op)
            if conditional(std::slice::from_ref(pin_op))
                && !caps.linearizable_conditional_writes =>
        {
            Some("linearizable_conditional_writes")
        }
        Op::Batch(ops) if ops.len() > 1 && !caps.atomic_batch => Some("atomic_batch"),
        Op::Batch(ops) if ops.len() > 1 && conditional(ops) && !caps.conditional_batch => {
            Some("conditional_batch")
        }
        Op::Stage(..) | Op::Finalize(..) | Op::Abort(..) if !publishes => {
            Some("atomic_publication")
        }
        _ => None,
    }
}

/// Whether the batch `ops` breaks the batch rules themselves ([`Batch::validate`]), which the
/// contract checks before any capability.
fn invalid_batch(side: &Side, ops: &[PinOp]) -> bool {
    side.batch(ops).validate(None).is_err()
}

/// The shapes of a refused `op` that do not need `flag`: a batch's ops one at a time
/// (`atomic_batch`), the ops without preconditions (`conditional_batch`,
/// `linearizable_conditional_writes`); nothing for publication.
fn accepted_shapes(op: &Op, flag: &str) -> Vec<Op> {
    let unconditional = |op: &PinOp| match *op {
        PinOp::Put { key, variant, .. } => PinOp::Put { key, variant, pre: Pre::Any },
        PinOp::Remove { key, .. } => PinOp::Remove { key, pre: Pre::Any },
    };
    match (op, flag) {
        (Op::Batch(ops), "atomic_batch") => ops.iter().cloned().map(Op::Single).collect(),
        (Op::Batch(ops), _) => vec![Op::Batch(ops.iter().map(unconditional).collect())],
        (Op::Single(pin_op), _) => vec![Op::Single(unconditional(pin_op))],
        _ => Vec::new(),
    }
}

async fn run_case(h: &dyn Harness, ops: &[Op]) -> Result<(), String> {
    let store = h
        .create(pinvault_core::FaultInjector::disabled())
        .await
        .map_err(|e| format!("harness.create: {e}"))?;
    let caps = store.pin_capabilities();
    let publishes = store.publisher.publish_capabilities().atomic_publication;
    let model = Arc::new(MemoryBackend::new());
    let mut tested = Side {
        label: caps.backend,
        state: store.state.clone(),
        publisher: store.publisher.clone(),
        history: HashMap::new(),
        staged: Vec::new(),
    };
    let mut reference = Side {
        label: "memory (model)",
        state: model.clone(),
        publisher: model,
        history: HashMap::new(),
        staged: Vec::new(),
    };
    // A refused op is followed by the shapes of it the backend accepts (its ops one at a time,
    // or without preconditions), so those paths are compared with the model too.
    let mut queue: std::collections::VecDeque<(usize, Op)> =
        ops.iter().cloned().enumerate().collect();
    while let Some((i, op)) = queue.pop_front() {
        let op = &op;
        if let Some(flag) = must_refuse(op, &caps, publishes) {
            let got = tested
                .apply(op)
                .await
                .map_err(|e| format!("op {i} {op:?}: {}: {e}", tested.label))?;
            // The contract's order: the batch's own rules first (InvalidInput), then what the
            // capabilities exclude (Unsupported).
            let expected = match op {
                Op::Single(pin_op) => invalid_batch(&tested, std::slice::from_ref(pin_op)),
                Op::Batch(pin_ops) => invalid_batch(&tested, pin_ops),
                _ => false,
            };
            let expected = if expected { "InvalidInput" } else { "Unsupported" };
            if got != expected {
                return Err(format!(
                    "op {i} {op:?}: {flag} is false, so the contract answers {expected}; got {got}"
                ));
            }
            for accepted in accepted_shapes(op, flag).into_iter().rev() {
                queue.push_front((i, accepted));
            }
            continue;
        }
        let got =
            tested.apply(op).await.map_err(|e| format!("op {i} {op:?}: {}: {e}", tested.label))?;
        let want = reference
            .apply(op)
            .await
            .map_err(|e| format!("op {i} {op:?}: {}: {e}", reference.label))?;
        if got != want {
            return Err(format!(
                "op {i} {op:?}: {} returned {got}, the memory model {want}",
                tested.label
            ));
        }
    }
    let got = tested.snapshot().await?;
    let want = reference.snapshot().await?;
    if got != want {
        let diff: Vec<String> = got
            .lines()
            .zip(want.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("  {}: {a}\n  model: {b}", tested.label))
            .collect();
        return Err(format!("final state differs from the model:\n{}", diff.join("\n")));
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// Random sequences of puts, removes, batches (with every kind of precondition), placements,
/// stages, finalizes and aborts give the same results and final state as the memory model.
pub async fn random_sequences_match_memory_model(h: &dyn Harness) {
    let cases = env_u64("PINVAULT_PROPTEST_CASES").unwrap_or(32) as u32;
    let seed = env_u64("PINVAULT_PROPTEST_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!("differential: {cases} cases, PINVAULT_PROPTEST_SEED={seed}");
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    };
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(config);
        runner.run(&ops_strategy(), |ops| {
            handle.block_on(run_case(h, &ops)).map_err(TestCaseError::fail)
        })
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!(
            "the backend diverged from the memory model (replay with PINVAULT_PROPTEST_SEED={seed}): {reason}\nminimal sequence: {ops:#?}"
        ),
        Err(TestError::Abort(reason)) => panic!("the differential test aborted: {reason}"),
    }
}
