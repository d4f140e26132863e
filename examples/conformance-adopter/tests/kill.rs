//! The SIGKILL test on the toy backend: a child process imports and publishes over one store
//! directory and is killed at random instants; each reopen must find every import batch and
//! every set whole, and every acknowledged write present (see `pinvault_conformance::kill`).
//! `PINVAULT_KILLS` sets the number of kills: 60 here unless set (the suite's default is 200;
//! every write rewrites the whole snapshot, so 200 kills take ~26 s on this toy engine).

fn main() {
    if std::env::var_os("PINVAULT_KILLS").is_none() {
        // Before any thread starts; the children inherit it.
        std::env::set_var("PINVAULT_KILLS", "60");
    }
    pinvault_conformance::kill::main("toy", |path| {
        pinvault_conformance_adopter::open_async(path, Default::default())
    });
}
