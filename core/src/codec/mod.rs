//! Wire formats shared with ipfs-cluster.
//!
//! * [`protobuf`]: `api.pb.Pin` exactly as ipfs-cluster's `ProtoMarshal` writes it, the
//!   length-delimited stream of exports, and pinvault's lossless storage record (Go's bytes plus
//!   extension fields that ipfs-cluster skips).
//! * [`ndjson`]: one JSON `api.Pin` per line, exactly as `ipfs-cluster-service state export`
//!   writes it.
//! * [`gojson`]: Go's `encoding/json` reading rules (value boundaries in a stream, unquoting,
//!   members in order), which [`ndjson`] decodes with, as `state import` does.
//! * [`msgpack`]: the full-state snapshot of ipfs-cluster's `state/dsstate` (`Marshal`):
//!   msgpack `{"k", "v"}` entries of datastore key and protobuf.
//!
//! All refuse malformed input with [`crate::Error::InvalidInput`] and never panic. The golden
//! fixtures in `core/testdata/golden/` (and their README) pin down every rule.

pub mod gojson;
pub mod msgpack;
pub mod ndjson;
pub mod protobuf;
