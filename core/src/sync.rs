//! Synchronisation primitives, swapped for loom's under `cfg(loom)` so the memory backend's
//! commit and finalize coordination can be model-checked (`tests/loom_memory.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
