//! Shared fixtures of pinvault's criterion benches (`benches/benches/*.rs`).
//!
//! The benches compare the KV layer of `pinvault-core` (`KvBackend`) on RocksDB and sled with
//! the raw engine writing the same bytes with the same durability. This crate holds what both
//! sides need so that they stay identical:
//!
//! * [`fixtures`]: realistic pins (CIDv1, three sha2-256 peer allocations, a name, an expiry,
//!   two metadata entries), publication objects, the tokio runtime and scratch directories;
//! * [`raw_rocks`] and [`raw_sled`]: the raw engines, opened with the options the backends use,
//!   and the exact rows (`pinvault_core::kv::layout` keys and values) that the KV layer's
//!   `commit`, `stage` and `finalize` write, written straight into a `WriteBatch` or a sled
//!   transaction.

pub mod fixtures;
pub mod raw_rocks;
pub mod raw_sled;
