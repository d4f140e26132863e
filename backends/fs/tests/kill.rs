//! SIGKILL test: a child process imports and publishes over one fs store directory and is
//! killed at random instants; each reopen must find every batch and set whole (see
//! `pinvault_conformance::kill`). `PINVAULT_KILLS` sets the count (default 200).

fn main() {
    pinvault_conformance::kill::main("fs", |path| {
        pinvault_fs::open(path, pinvault_fs::DirOptions::default(), Default::default())
    });
}
