//! Whole-pinset checks that work over any [`PinState`], whatever the backend:
//!
//! * [`digest`]: the pin count and an order-independent hash of the pinset, so two backends
//!   that list in different orders (or a source and its copy) can be compared;
//! * [`verify_views`]: the secondary views (pins by peer, the expiry queue, placements) agree
//!   with the pins;
//! * [`copy`]: a resumable copy of every pin from one backend to another, in the destination's
//!   largest batches, reporting a cursor after each committed batch so an interrupted copy can
//!   resume where it stopped.
//!
//! The digest hashes each pin's lossless record (`codec::protobuf::encode_record`: ipfs-cluster's
//! protobuf plus the fields Go's protobuf drops, such as the pin mode), not its version:
//! versions are backend-specific, the pin is what a copy must preserve. The per-pin
//! SHA-256 values are added modulo 2^256, so the result does not depend on listing order and
//! memory stays constant.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

use crate::codec::protobuf::encode_record;
use crate::transfer::Progress;
use crate::{Batch, Cid, Cursor, Error, PeerId, PinState, Precondition, Result};

/// The pin count and an order-independent hash of a pinset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinsetDigest {
    /// Pins listed.
    pub pins: u64,
    /// Sum modulo 2^256 of the SHA-256 of each pin's record, big-endian.
    pub digest: [u8; 32],
}

impl PinsetDigest {
    /// Adds one pin, by its lossless record.
    pub fn add(&mut self, pin: &crate::Pin) {
        self.add_record(&encode_record(pin));
    }

    /// Adds one pin by the bytes of some encoding of it, for a comparison whose other side
    /// cannot produce pinvault's lossless record: `pinvault bench` hashes ipfs-cluster's
    /// `ProtoMarshal` bytes (`codec::protobuf::encode_pin`) on both sides.
    pub fn add_record(&mut self, record: &[u8]) {
        let h: [u8; 32] = Sha256::digest(record).into();
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let sum = u16::from(self.digest[i]) + u16::from(h[i]) + carry;
            self.digest[i] = sum as u8;
            carry = sum >> 8;
        }
        self.pins += 1;
    }

    /// Hex form of the hash.
    pub fn hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// Lists every pin of `state` into a [`PinsetDigest`].
pub async fn digest(state: &dyn PinState) -> Result<PinsetDigest> {
    let mut out = PinsetDigest::default();
    let mut entries = state.list(None);
    while let Some(entry) = entries.try_next().await? {
        out.add(&entry.pin);
    }
    Ok(out)
}

/// What [`verify_views`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewReport {
    /// Pins listed.
    pub pins: u64,
    /// Distinct peers among the pins' allocations (each one's view was read).
    pub peers: u64,
    /// Pins with an expiry.
    pub expiring: u64,
    /// Inconsistencies found.
    pub problem_count: u64,
    /// The first [`ViewReport::MAX_LISTED`] inconsistencies, described.
    pub problems: Vec<String>,
}

impl ViewReport {
    /// How many problems are described in [`ViewReport::problems`].
    pub const MAX_LISTED: usize = 100;

    /// True when the views agree with the pins.
    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < Self::MAX_LISTED {
            self.problems.push(text);
        }
    }
}

/// Checks that every view agrees with the pins:
///
/// * for each peer any pin is allocated to, `pins_by_peer` yields exactly the pins allocated to
///   it, each once;
/// * `expiring_before` (up to just after the latest expiry) yields exactly the pins with an
///   expiry, at their `expire_at`, in order;
/// * each pin's `placement` desires exactly its allocations.
///
/// Reads every pin once and every view once; holds the pins' CIDs per peer in memory. A view
/// row for a peer that no pin is allocated to cannot be found this way (no API lists peers).
/// A pin expiring in chrono's last representable second leaves no time to bound the expiry
/// queue after it: [`Error::Corrupt`] (`Pin::validate` refuses such times; an older store may
/// hold them).
pub async fn verify_views(state: &dyn PinState) -> Result<ViewReport> {
    let mut report = ViewReport::default();
    let mut by_peer: BTreeMap<PeerId, BTreeSet<Cid>> = BTreeMap::new();
    let mut expiring: BTreeSet<(DateTime<Utc>, Cid)> = BTreeSet::new();
    let mut entries = state.list(None);
    while let Some(entry) = entries.try_next().await? {
        report.pins += 1;
        let pin = entry.pin;
        for peer in &pin.allocations {
            by_peer.entry(peer.clone()).or_default().insert(pin.cid);
        }
        if let Some(at) = pin.options.expire_at {
            expiring.insert((at, pin.cid));
        }
        let placement = state.placement(&pin.cid).await?;
        let allocations: BTreeSet<PeerId> = pin.allocations.iter().cloned().collect();
        if placement.desired != allocations {
            report.problem(format!(
                "placement of {}: desires {} peers, the pin allocates {}",
                pin.cid,
                placement.desired.len(),
                allocations.len()
            ));
        }
    }
    drop(entries);
    report.peers = by_peer.len() as u64;
    report.expiring = expiring.len() as u64;

    for (peer, expected) in &by_peer {
        let mut seen = BTreeSet::new();
        let mut cids = state.pins_by_peer(peer);
        while let Some(cid) = cids.try_next().await? {
            if !seen.insert(cid) {
                report.problem(format!("pins_by_peer({peer}) yields {cid} twice"));
            }
        }
        for cid in expected.difference(&seen) {
            report.problem(format!("pins_by_peer({peer}) misses {cid}, which is allocated to it"));
        }
        for cid in seen.difference(expected) {
            report.problem(format!(
                "pins_by_peer({peer}) yields {cid}, which is not allocated to it"
            ));
        }
    }

    let bound = match expiring.last() {
        Some((latest, cid)) => {
            latest.checked_add_signed(TimeDelta::seconds(1)).ok_or_else(|| {
                Error::corrupt(
                    format!("pin {cid}"),
                    format!(
                    "expire_at {latest} is too close to the latest representable time to bound \
                     the expiry queue after it"
                ),
                )
            })?
        }
        None => Utc::now() + TimeDelta::days(1),
    };
    let mut listed = Vec::new();
    let mut queue = state.expiring_before(bound);
    while let Some(e) = queue.try_next().await? {
        listed.push((e.expire_at, e.cid));
    }
    if listed.windows(2).any(|w| w[0].0 > w[1].0) {
        report.problem("expiring_before is not in expiry order".to_owned());
    }
    let listed_set: BTreeSet<(DateTime<Utc>, Cid)> = listed.iter().cloned().collect();
    if listed_set.len() != listed.len() {
        report.problem("expiring_before yields an entry twice".to_owned());
    }
    for (at, cid) in expiring.difference(&listed_set) {
        report.problem(format!("expiring_before misses {cid} (expires {at})"));
    }
    for (at, cid) in listed_set.difference(&expiring) {
        report
            .problem(format!("expiring_before yields {cid} at {at}, which the pin does not have"));
    }
    Ok(report)
}

/// What [`copy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Pins copied by this call (not counting those before the resume cursor).
    pub pins: u64,
    /// Batches committed to the destination.
    pub batches: u64,
}

/// Copies every pin of `from` listed after `after` into `to` with `Precondition::Any`, in
/// batches of `batch_size` lowered to the destination's `max_batch_ops`. After each committed
/// batch, `checkpoint` gets the cursor of its last pin and the pins copied so far: passing that
/// cursor back as `after` resumes the copy just after it. A pin listed before the failure but
/// not yet committed is copied again on resume (`Any` makes that harmless).
pub async fn copy(
    from: &dyn PinState,
    to: &dyn PinState,
    after: Option<Cursor>,
    batch_size: usize,
    checkpoint: &mut (dyn FnMut(&Cursor, u64) -> Result<()> + Send),
    progress: &dyn Progress,
) -> Result<CopySummary> {
    if batch_size == 0 {
        return Err(Error::invalid("batch size", "must be at least 1"));
    }
    let limit = to.pin_capabilities().max_batch_ops.unwrap_or(usize::MAX).max(1);
    let batch_size = batch_size.min(limit);
    let mut summary = CopySummary::default();
    let mut entries = from.list(after);
    let mut batch = Batch::new();
    let mut last: Option<Cursor> = None;
    loop {
        let next = entries.try_next().await?;
        let done = next.is_none();
        if let Some(entry) = next {
            batch = batch.put(entry.pin, Precondition::Any);
            last = Some(entry.cursor);
        }
        if batch.ops.len() >= batch_size || (done && !batch.ops.is_empty()) {
            let n = batch.ops.len() as u64;
            to.commit(std::mem::take(&mut batch)).await?;
            summary.pins += n;
            summary.batches += 1;
            progress.advance(n, 0);
            if let Some(cursor) = &last {
                checkpoint(cursor, summary.pins)?;
            }
        }
        if done {
            return Ok(summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use async_trait::async_trait;
    use futures::stream::{self, BoxStream, StreamExt};

    use super::*;
    use crate::state::{Expiry, ListEntry, MigrationReport, Placement, Versioned};
    use crate::{Batch, Pin, PinCapabilities, Receipt, Version};

    /// A store holding one pin whatever its times: the backends refuse to store the times
    /// these tests need (`Pin::validate`), but a store written by an older version may hold them.
    #[derive(Debug)]
    struct OnePin(Pin);

    #[async_trait]
    impl PinState for OnePin {
        fn pin_capabilities(&self) -> PinCapabilities {
            PinCapabilities::none("one-pin")
        }

        async fn get(&self, _: &Cid) -> Result<Versioned> {
            Ok(Versioned { pin: self.0.clone(), version: Version::from_u64(1) })
        }

        fn list(&self, _: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
            let entry = ListEntry {
                pin: self.0.clone(),
                version: Version::from_u64(1),
                cursor: Cursor(vec![1]),
            };
            stream::iter([Ok(entry)]).boxed()
        }

        async fn commit(&self, _: Batch) -> Result<Receipt> {
            Err(Error::unsupported("one-pin", "commit"))
        }

        fn pins_by_peer(&self, _: &PeerId) -> BoxStream<'_, Result<Cid>> {
            stream::empty().boxed()
        }

        fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
            let expiry = self.0.options.expire_at.filter(|at| *at < before);
            let expiry = expiry.map(|expire_at| Ok(Expiry { expire_at, cid: self.0.cid }));
            stream::iter(expiry).boxed()
        }

        async fn placement(&self, cid: &Cid) -> Result<Placement> {
            let desired = self.0.allocations.iter().cloned().collect();
            Ok(Placement { cid: *cid, desired, actual: BTreeSet::new() })
        }

        async fn record_placement(&self, _: &Cid, _: BTreeSet<PeerId>) -> Result<()> {
            Ok(())
        }

        async fn migrate(&self) -> Result<MigrationReport> {
            Err(Error::unsupported("one-pin", "migrate"))
        }
    }

    fn expiring_at(at: DateTime<Utc>) -> OnePin {
        let cid = crate::pin::parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap();
        let mut pin = Pin::new(cid);
        pin.options.expire_at = Some(at);
        OnePin(pin)
    }

    #[tokio::test]
    async fn verify_views_at_the_ends_of_time_reports_instead_of_panicking() {
        let latest = verify_views(&expiring_at(DateTime::<Utc>::MAX_UTC)).await.unwrap_err();
        assert!(matches!(latest, Error::Corrupt { .. }), "{latest}");
        assert!(latest.to_string().contains("expire_at"), "{latest}");

        let second_before_latest = DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1);
        for at in [second_before_latest, DateTime::<Utc>::MIN_UTC] {
            let report = verify_views(&expiring_at(at)).await.unwrap();
            assert!(report.is_consistent(), "{at}: {:?}", report.problems);
            assert_eq!(report.expiring, 1);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]
        /// Any representable `expire_at`, stored as any backend could hand it back, is either
        /// verified or reported as `Corrupt`: never a panic in the bound arithmetic.
        #[test]
        fn verify_views_never_panics_on_any_representable_time(
            secs in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            nanos in 0u32..1_000_000_000,
        ) {
            let Some(at) = DateTime::<Utc>::from_timestamp(secs, nanos) else { return Ok(()) };
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            match runtime.block_on(verify_views(&expiring_at(at))) {
                Ok(report) => {
                    proptest::prop_assert!(report.is_consistent(), "{at}: {:?}", report.problems)
                }
                Err(e) => proptest::prop_assert!(
                    matches!(e, Error::Corrupt { .. })
                        && at > DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1),
                    "{at}: {e}"
                ),
            }
        }
    }
}
