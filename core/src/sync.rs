//! Synchronisation primitives, swapped for loom's under `cfg(loom)` so the memory backend's
//! commit and finalize coordination and the KV layer's lock table can be model-checked
//! (`tests/loom_memory.rs`, `tests/loom_locks.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::AtomicU64, Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::AtomicU64, Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
