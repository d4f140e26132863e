//! # pinvault
//!
//! Pluggable storage backends for two kinds of state that must never half-commit: the pinset of
//! an IPFS cluster ([`PinState`]) and sets of objects published all at once or not at all
//! ([`Publisher`]).
//!
//! This facade re-exports [`pinvault_core`] (also reachable as [`core`]) and opens
//! a backend from a URL:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pinvault::Result<()> {
//! let store = pinvault::open("memory:").await?;
//! let cid = pinvault::pin::parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")?;
//! let version = store.state.put(pinvault::Pin::new(cid), pinvault::Precondition::Absent).await?;
//! assert_eq!(store.state.get(&cid).await?.version, version);
//! # Ok(())
//! # }
//! ```
//!
//! Every scheme pinvault knows is listed in [`BACKENDS`]; one whose Cargo feature is not
//! enabled in this build is refused with [`Error::Unsupported`] naming the feature to enable.

#![deny(missing_docs)]

#[doc(no_inline)]
pub use pinvault_core as core;
pub use pinvault_core::*;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod open;

pub use open::{open, open_with_faults, BackendEntry, Store, BACKENDS};
