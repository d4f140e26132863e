//! Synchronisation primitives, swapped for loom's under `cfg(loom)` so the memory backend's
//! commit and finalize coordination, the KV layer's lock table, and the real `KvStore` over
//! `BTreeEngine` (its stripes, publication mutex, sequence counter and the engine's own mutex)
//! can be model-checked (`tests/loom_memory.rs`, `tests/loom_locks.rs`, `tests/loom_kv.rs`).
//!
//! Everything two loom threads contend on must come from here: a std mutex held across a loom
//! yield deadlocks the model, and loom cannot explore orderings it does not see. `FaultInjector`
//! (`fault.rs`) keeps std primitives on purpose: its critical section holds no loom operation,
//! so loom runs it as one step (which is what it is), and an armed injector can be built
//! outside a model.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::AtomicU64, Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::AtomicU64, Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
