//! Linearizability of the fs backend's conditional writes: 16 clients × 1,000 random
//! get / conditional put / conditional remove on 4 hot keys against one instance, and the same
//! across 4 processes that take turns holding the store (each opens it with a lock wait for a
//! burst of operations); every history is checked against the memory model
//! (`pinvault_conformance::linearizability`). `PINVAULT_LIN_OPS` sets ops per client.

use std::path::PathBuf;
use std::time::Duration;

fn main() {
    pinvault_conformance::linearizability::dir_main(
        "fs",
        1000,
        |path: PathBuf, lock_wait: Duration| {
            pinvault_fs::open(
                path,
                pinvault_fs::DirOptions { lock_wait, ..Default::default() },
                Default::default(),
            )
        },
    );
}
