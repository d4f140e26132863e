//! Helpers shared by the fuzz targets: oracles written from the documented rules (not from the
//! code under test), a model of the import's batching, and a `BTreeMap` [`KvEngine`].

use std::collections::HashMap;

use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::TransferSummary;
use pinvault_core::{Cid, Error, Pin, Result};

pub use futures::executor::block_on;

/// Why `s` breaks the documented name rules of `pinvault_core::name` (module doc and
/// `MAX_NAME_BYTES`, `RESERVED_PREFIX`), or `None` when it is a valid set/object name.
pub fn name_rule_violation(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("empty");
    }
    if s.len() > pinvault_core::name::MAX_NAME_BYTES {
        return Some("too long");
    }
    if s.starts_with('/') {
        return Some("absolute");
    }
    if s.ends_with('/') {
        return Some("trailing slash");
    }
    if s.contains('\0') || s.chars().any(char::is_control) {
        return Some("NUL or control character");
    }
    if s.contains('\\') {
        return Some("backslash");
    }
    // Bidi_Control (UAX #9), and the invisible characters the name rules list.
    let bidi = |c: char| matches!(c as u32, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069);
    let invisible = |c: char| matches!(c as u32, 0x00AD | 0x200B | 0x2060..=0x2064 | 0xFEFF);
    if s.chars().any(|c| bidi(c) || invisible(c)) {
        return Some("bidirectional or invisible formatting character");
    }
    if !unicode_normalization::is_nfc(s) {
        return Some("not NFC");
    }
    for segment in s.split('/') {
        if segment.is_empty() {
            return Some("empty segment");
        }
        if segment == "." || segment == ".." {
            return Some("dot segment");
        }
        if segment.starts_with(pinvault_core::name::RESERVED_PREFIX) {
            return Some("reserved segment");
        }
    }
    None
}

/// One record of an import stream as the model sees it: its 1-based record number, the byte
/// offset where it starts, and the pin (or `Err` when the import must stop on it).
pub struct ModelRecord {
    pub number: u64,
    pub offset: u64,
    pub pin: std::result::Result<Pin, String>,
}

/// What `transfer::import_into` must leave behind, computed from its module doc: records are
/// batched `batch_size` at a time, a CID already in the current batch flushes it first, the
/// batch holding a bad record is not committed, earlier batches are.
pub struct ImportModel {
    pub state: HashMap<Cid, Pin>,
    pub puts: u64,
    pub batches: u64,
    /// The record the import must stop on.
    pub failure: Option<(u64, u64)>,
}

impl ImportModel {
    pub fn run(records: &[ModelRecord], batch_size: usize) -> ImportModel {
        let mut model = ImportModel {
            state: HashMap::new(),
            puts: 0,
            batches: 0,
            failure: None,
        };
        let mut pending: Vec<Pin> = Vec::new();
        for record in records {
            match &record.pin {
                Err(_) => {
                    model.failure = Some((record.number, record.offset));
                    return model;
                }
                Ok(pin) => {
                    if pending.iter().any(|p| p.cid == pin.cid) {
                        model.flush(&mut pending);
                    }
                    pending.push(pin.clone());
                    if pending.len() >= batch_size {
                        model.flush(&mut pending);
                    }
                }
            }
        }
        model.flush(&mut pending);
        model
    }

    fn flush(&mut self, pending: &mut Vec<Pin>) {
        if pending.is_empty() {
            return;
        }
        self.puts += pending.len() as u64;
        self.batches += 1;
        for pin in pending.drain(..) {
            self.state.insert(pin.cid, pin);
        }
    }

    /// Checks an import's result and the backend's contents against the model.
    /// `position` names the failing record as the import's error must (`import line 3`).
    pub fn check(
        &self,
        result: &Result<TransferSummary>,
        backend: &MemoryBackend,
        input_len: usize,
        position: impl Fn(u64, u64) -> String,
    ) {
        let stored: HashMap<Cid, Pin> = backend
            .store()
            .list_page(None, usize::MAX)
            .into_iter()
            .map(|e| (e.pin.cid, e.pin))
            .collect();
        assert_eq!(
            stored.len(),
            self.state.len(),
            "pins in the store after the import"
        );
        for (cid, pin) in &self.state {
            assert_eq!(stored.get(cid), Some(pin), "stored pin {cid}");
        }
        match (result, self.failure) {
            (Ok(summary), None) => {
                assert_eq!(summary.pins, self.puts, "summary.pins");
                assert_eq!(summary.batches, self.batches, "summary.batches");
                assert_eq!(summary.bytes, input_len as u64, "summary.bytes");
            }
            (Err(Error::InvalidInput { what, reason, .. }), Some((number, offset))) => {
                assert_eq!(*what, position(number, offset), "failing record ({reason})");
                let committed = format!("; {} pins were committed by earlier batches", self.puts);
                assert!(
                    reason.contains(&committed),
                    "{reason:?} lacks {committed:?}"
                );
            }
            (Ok(summary), Some(failure)) => {
                panic!("import succeeded ({summary:?}) but must stop at record {failure:?}")
            }
            (Err(e), failure) => panic!("import failed with {e:?}; the model expects {failure:?}"),
        }
    }
}

/// The in-memory engine the KV-layer targets run over (core's, shared with the conformance
/// suite's `kv_btree` run).
pub use pinvault_core::kv::BTreeEngine;
