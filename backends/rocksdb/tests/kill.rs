//! SIGKILL test: a child process imports and publishes over one RocksDB directory and is killed
//! at random instants; each reopen must find every batch and set whole (see
//! `pinvault_conformance::kill`). `PINVAULT_KILLS` sets the count (default 200).

fn main() {
    pinvault_conformance::kill::main("rocksdb", |path| {
        pinvault_rocksdb::open(path, pinvault_rocksdb::DirOptions::default(), Default::default())
    });
}
