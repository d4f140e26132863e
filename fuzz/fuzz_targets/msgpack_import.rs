//! ipfs-cluster's `state/dsstate` snapshot (`pinvault_core::codec::msgpack`, read by
//! `transfer::import_into` with `TransferFormat::Msgpack`).
//!
//! Properties:
//! * nothing panics; a malformed stream fails with `Error::InvalidInput` naming the entry;
//! * whatever the import committed exports as a snapshot that imports back into an empty store
//!   as the same pinset (same count and digest), and that export is stable (exporting the
//!   re-imported store gives the same bytes, the listing order being the CID order of both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinvault_core::audit;
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::{ImportOptions, NoProgress, TransferFormat};
use pinvault_core::{Error, PinState};
use pinvault_fuzz::block_on;

fn import(state: &MemoryBackend, bytes: &[u8]) -> Result<u64, Error> {
    let options = ImportOptions { format: TransferFormat::Msgpack, batch_size: 1, ..ImportOptions::default() };
    let mut reader: &[u8] = bytes;
    block_on(state.import(&mut reader, &options, &NoProgress)).map(|s| s.pins)
}

fn export(state: &MemoryBackend) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(state.export(TransferFormat::Msgpack, &mut out, &NoProgress)).expect("export of a memory store");
    out
}

fuzz_target!(|data: &[u8]| {
    let state = MemoryBackend::new();
    if let Err(e) = import(&state, data) {
        match &e {
            Error::InvalidInput { what, .. } => {
                assert!(what.starts_with("import entry "), "error names no entry: {e}")
            }
            other => panic!("a malformed snapshot must be InvalidInput, got {other:?}"),
        }
    }
    let snapshot = export(&state);
    let again = MemoryBackend::new();
    import(&again, &snapshot).unwrap_or_else(|e| panic!("our own snapshot does not import: {e}"));
    let (a, b) = (block_on(audit::digest(&state)).expect("digest"), block_on(audit::digest(&again)).expect("digest"));
    assert_eq!(a, b, "the re-imported pinset differs");
    assert_eq!(export(&again), snapshot, "the snapshot of the same pinset differs");
});
