//! SIGKILL test: a child process imports and publishes over one sled directory and is killed
//! at random instants; each reopen must find every batch and set whole (see
//! `pinvault_conformance::kill`). `PINVAULT_KILLS` sets the count (default 200).

fn main() {
    pinvault_conformance::kill::main("sled", |path| {
        pinvault_sled::open(path, pinvault_sled::DirOptions::default(), Default::default())
    });
}
