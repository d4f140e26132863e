//! Contract 1: pin state — ipfs-cluster's `state.State`, made conditional and atomic.
//!
//! # Promises every backend keeps (checked by `pinvault-conformance`)
//!
//! * **Visibility.** When `put`, `remove` or `commit` returns `Ok`, every later call on any
//!   instance of the same store sees the write (read-your-writes, then monotonic reads). A reader
//!   never observes part of a batch: either all its ops are visible, or none.
//! * **Preconditions.** The precondition of each op is checked atomically with its write. On
//!   failure the call returns [`Error::Conflict`] carrying the key's current version (or `None`
//!   when absent) and the index of the failing op, and *nothing* of the call is written.
//! * **Versions.** Every write of a key gives it a new [`Version`], including a re-insert after a
//!   remove. Two successful conditional writes of one key can never observe the same version, so
//!   no update is lost.
//! * **Batches.** `commit` validates the whole batch, then applies all ops or none, then returns
//!   a [`Receipt`] whose `sequence` is strictly greater than that of every earlier commit of the
//!   store. Views change in the same atomic step when `pin_capabilities().atomic_views` is true.
//!   A backend that cannot make a conditional multi-op batch atomic says
//!   `conditional_batch: false` and refuses such batches with [`Error::Unsupported`].
//! * **Crashes.** If the process dies at any instant of a `commit`, a reopened store holds the
//!   batch entirely or not at all. When `durable_on_return` is true, a batch whose commit
//!   returned `Ok` survives the crash.
//! * **Listing.** `list` yields every pin once, in a stable order defined by the backend, paged
//!   internally so memory stays bounded. Each entry carries a [`Cursor`]; `list(Some(cursor))`
//!   resumes just after that entry. A pin present (and unchanged) for the whole listing is
//!   yielded exactly once, even while other keys are written.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cid::Cid;
use futures::stream::BoxStream;
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::batch::{Batch, Receipt};
use crate::capability::PinCapabilities;
use crate::pin::{PeerId, Pin};
use crate::transfer::{self, ImportOptions, Progress, TransferFormat, TransferSummary};
use crate::version::{Precondition, Version};
use crate::{Error, Result};

/// A pin together with the version of its stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The pin.
    pub pin: Pin,
    /// The version to pass back in [`Precondition::Version`].
    pub version: Version,
}

/// An opaque position in a backend's list order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(pub Vec<u8>);

impl Cursor {
    /// Hex form, for CLIs and logs.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses [`Cursor::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self> {
        hex::decode(s)
            .map(Cursor)
            .map_err(|e| Error::invalid("cursor", format!("{s:?} is not hex: {e}")).with_source(e))
    }
}

/// One entry of a pin listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The pin and its version.
    pub pin: Pin,
    /// Its version.
    pub version: Version,
    /// Resume a listing just after this entry.
    pub cursor: Cursor,
}

/// One entry of the expiry queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    /// When the pin expires.
    pub expire_at: DateTime<Utc>,
    /// The expiring pin.
    pub cid: Cid,
}

/// Length of one expiry-queue bucket: one hour, one partition of the Scylla backend's `pin_ttl_queue`.
pub const EXPIRY_BUCKET_SECONDS: i64 = 3600;

/// The bucket an expiry time falls in (whole hours since the Unix epoch, floored).
pub fn expiry_bucket(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(EXPIRY_BUCKET_SECONDS)
}

/// Desired versus actual placement of one pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The pin.
    pub cid: Cid,
    /// Where the pin should be: its allocations, kept in step with every put.
    pub desired: BTreeSet<PeerId>,
    /// Where peers last reported it pinned ([`PinState::record_placement`]).
    pub actual: BTreeSet<PeerId>,
}

impl Placement {
    /// Peers that should hold the pin but do not report it.
    pub fn missing(&self) -> BTreeSet<PeerId> {
        self.desired.difference(&self.actual).cloned().collect()
    }

    /// Peers that report the pin without being allocated it.
    pub fn extra(&self) -> BTreeSet<PeerId> {
        self.actual.difference(&self.desired).cloned().collect()
    }
}

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// Stored-format version found.
    pub from: u32,
    /// Stored-format version now.
    pub to: u32,
    /// Records rewritten.
    pub records_rewritten: u64,
}

/// The pin-state contract. Object safe: use it as `Arc<dyn PinState>`.
///
/// Required methods are the primitives; `put`, `remove`, `has` and the transfer methods have
/// provided bodies built on them, which a backend overrides when it has a cheaper native path.
#[async_trait]
pub trait PinState: Send + Sync + std::fmt::Debug {
    /// What this backend's pin state guarantees.
    fn pin_capabilities(&self) -> PinCapabilities;

    /// The pin of `cid` and its version, or [`Error::NotFound`].
    async fn get(&self, cid: &Cid) -> Result<Versioned>;

    /// Whether `cid` is pinned.
    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self.get(cid).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every pin in the backend's stable order, starting just after `after` when given.
    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>>;

    /// Validates the batch, checks every precondition, and applies all ops or none.
    async fn commit(&self, batch: Batch) -> Result<Receipt>;

    /// Writes one pin if `precondition` holds; returns its new version.
    async fn put(&self, pin: Pin, precondition: Precondition) -> Result<Version> {
        let receipt = self.commit(Batch::new().put(pin, precondition)).await?;
        receipt
            .versions
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| Error::corrupt("receipt", "a put's receipt carries no version"))
    }

    /// Removes one pin if `precondition` holds. Removing an absent pin with `Any` is a no-op.
    async fn remove(&self, cid: &Cid, precondition: Precondition) -> Result<()> {
        self.commit(Batch::new().remove(*cid, precondition)).await.map(|_| ())
    }

    /// CIDs allocated to `peer`, in CID byte order.
    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>>;

    /// Pins whose `expire_at` is strictly before `before`, in `(expire_at, cid)` order, reading
    /// only the hour buckets up to `before` (never the whole pinset).
    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>>;

    /// Desired versus actual placement of a pin, or [`Error::NotFound`] when it is not pinned.
    async fn placement(&self, cid: &Cid) -> Result<Placement>;

    /// Records where `cid` is actually pinned, replacing the previous report. Does not change the
    /// pin's version. [`Error::NotFound`] when it is not pinned.
    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()>;

    /// Brings the stored format up to the version this code writes. Idempotent.
    async fn migrate(&self) -> Result<MigrationReport>;

    /// Streams every pin to `writer` in `format`, reporting progress. Memory stays bounded.
    async fn export(
        &self,
        format: TransferFormat,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        transfer::export_from(self, format, writer, progress).await
    }

    /// Reads pins from `reader` and commits them in batches of `options.batch_size`. A malformed
    /// or truncated record stops the import with [`Error::InvalidInput`] naming its line or byte
    /// offset; nothing of the batch it belongs to is applied, earlier batches stay committed
    /// (their count is in the error).
    async fn import(
        &self,
        reader: &mut (dyn AsyncBufRead + Unpin + Send),
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<TransferSummary> {
        transfer::import_into(self, reader, options, progress).await
    }
}
