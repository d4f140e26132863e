//! Linearizability of the RocksDB backend's conditional writes: 16 clients × 1,000 random
//! get / conditional put / conditional remove on 4 hot keys against one instance, and the same
//! across 4 processes that take turns holding the store (each opens it with a lock wait for a
//! burst of operations); every history is checked against the memory model
//! (`pinvault_conformance::linearizability`). `PINVAULT_LIN_OPS` sets ops per client.

use std::path::PathBuf;
use std::time::Duration;

fn main() {
    pinvault_conformance::linearizability::dir_main(
        "rocksdb",
        1000,
        |path: PathBuf, lock_wait: Duration| {
            let options = pinvault_rocksdb::DirOptions { lock_wait, ..Default::default() };
            pinvault_rocksdb::open(path, options, Default::default())
        },
    );
}
