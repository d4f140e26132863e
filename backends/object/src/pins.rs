//! Pin state: one object per pin, written with compare-and-swap on its ETag.
//!
//! A write reads the pin's object first (its content says the current version, its ETag is
//! what the conditional PUT is checked against), checks the precondition, writes the view rows
//! of the new write (see [`crate::views`]), then makes exactly one conditional PUT. (An `Any`
//! write has nothing to check: its read and its rows go out together, one round trip less.)
//!
//! | precondition | the object is…        | PUT mode                                  |
//! |--------------|-----------------------|-------------------------------------------|
//! | `Any`        | anything              | `Overwrite`                               |
//! | `Absent`     | missing               | `Create` (`If-None-Match: *`)             |
//! | `Absent`     | a tombstone           | `Update` with the tombstone's ETag        |
//! | `Version(v)` | live with write id v  | `Update` with the ETag read (`If-Match`)  |
//!
//! A lost condition (`AlreadyExists`/`Precondition` from the store) means another writer got
//! there between the read and the PUT. The call reads again: if its precondition fails now it
//! returns [`Error::Conflict`] with the version that read saw (the read is where the call
//! linearizes) and removes the view rows it wrote; if the precondition still holds (a blind
//! `Any` remove deleted the tombstone an insert was swapping against: the pin stayed absent
//! throughout) it swaps again against what it read (checked against the memory model by
//! `backends/object/tests/linearizability.rs`).
//!
//! The version handed out is the record's **write id**, not the ETag: S3's ETag of a single-part
//! PUT is the MD5 of the body, so two writes of the same pin would otherwise share a version,
//! and a PUT's ETag and a later GET's can differ in form across stores. The write id is fresh
//! for every write (sequence + 64 random bits), so no version ever repeats, re-inserts after a
//! remove included. The ETag read alongside is what makes the check atomic with the write.
//!
//! Removes: `Any` deletes the object (a blind delete is linearizable); `Version(v)` must be
//! conditional, and `object_store` has no conditional DELETE, so it overwrites the pin with a
//! tombstone by `Update`. A tombstone reads as absent; the next insert replaces it (by
//! `Update`, since `Create` would fail). Tombstones are never deleted: deleting one blindly
//! could delete a pin inserted over it a moment before (one small object per CID ever removed
//! by version is the price).

use bytes::Bytes;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{PutMode, UpdateVersion};
use pinvault_core::codec::protobuf;
use pinvault_core::paging::Page;
use pinvault_core::{
    Batch, BatchOp, Cid, Cursor, Error, ListEntry, Pin, Precondition, Receipt, Result, Version,
    Versioned,
};
use prost::Message;
use tracing::Instrument;

use crate::backend::LIST_PAGE;
use crate::layout::{self, PinRecord, FORMAT_VERSION};
use crate::listing;
use crate::store::Inner;
use crate::{views, COMMIT_VALIDATED, COMMIT_VIEWS_WRITTEN, COMMIT_WRITTEN};
use pinvault_core::error::Access;

/// Compare-and-swaps a write tries, each after a fresh read shows its precondition still
/// holds, before it gives up as `Unavailable`.
const CAS_ATTEMPTS: usize = 16;

/// A pin's object as read: its record, the pin (when live) and the ETag to CAS against.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) record: PinRecord,
    /// `None` for a tombstone.
    pub(crate) pin: Option<Pin>,
    pub(crate) e_tag: Option<String>,
    pub(crate) object_version: Option<String>,
}

impl Stored {
    /// The live pin's version.
    pub(crate) fn version(&self) -> Option<Version> {
        self.pin.as_ref().map(|_| Version::from_bytes(self.record.write_id.clone()))
    }

    fn update(&self) -> UpdateVersion {
        UpdateVersion { e_tag: self.e_tag.clone(), version: self.object_version.clone() }
    }
}

impl Inner {
    /// Reads the object of `cid`: `None` when there is none.
    pub(crate) async fn read_pin(&self, cid: &Cid) -> Result<Option<Stored>> {
        let path = self.layout.pin(cid);
        let Some((bytes, meta)) = self.read(&path, &format!("pin {cid}")).await? else {
            return Ok(None);
        };
        let record: PinRecord = layout::decode(&path, &bytes)?;
        if record.format > FORMAT_VERSION {
            return Err(Error::unsupported(
                self.backend,
                format!(
                    "reading pin record format {}: this build knows up to {FORMAT_VERSION}",
                    record.format
                ),
            ));
        }
        let pin = if record.tombstone {
            None
        } else {
            let pin = protobuf::decode_record(&record.pin)
                .map_err(|e| layout::corrupt(&path, e.to_string()).with_source(e))?;
            if pin.cid != *cid {
                return Err(layout::corrupt(&path, format!("record holds pin {}", pin.cid)));
            }
            Some(pin)
        };
        Ok(Some(Stored { record, pin, e_tag: meta.e_tag, object_version: meta.version }))
    }

    /// The live pin of `cid`, or `NotFound`.
    pub(crate) async fn get_pin(&self, cid: &Cid) -> Result<Versioned> {
        match self.read_pin(cid).await? {
            Some(Stored { pin: Some(pin), record, .. }) => {
                Ok(Versioned { pin, version: Version::from_bytes(record.write_id) })
            }
            _ => Err(Error::not_found(format!("pin {cid}"))),
        }
    }

    /// One page of the pin listing: the live pins among the [`LIST_PAGE`] keys after `after`
    /// (tombstones, and pins removed since the LIST, are skipped), and the key to go on from.
    pub(crate) async fn pin_page(&self, after: Option<Path>) -> Result<Page<ListEntry, Path>> {
        let dir = self.layout.pins_dir();
        let keys =
            listing::page(&*self.store, &dir, after.as_ref(), LIST_PAGE, self.ordered_listing)
                .await
                .map_err(|e| self.err(Access::Read, "pin listing", e))?;
        let next =
            if keys.len() < LIST_PAGE { None } else { keys.last().map(|m| m.location.clone()) };
        let entries: Vec<Option<ListEntry>> = stream::iter(keys)
            .map(|meta| async move {
                let cid = self.layout.cid_of_pin(&meta.location)?;
                Ok::<_, Error>(self.read_pin(&cid).await?.and_then(|s| {
                    let version = Version::from_bytes(s.record.write_id);
                    s.pin.map(|pin| ListEntry { pin, version, cursor: Cursor(cid.to_bytes()) })
                }))
            })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        Ok(Page { items: entries.into_iter().flatten().collect(), next })
    }

    /// After a lost compare-and-swap: reads the pin again. `Ok(Some(stored))` when `pre` still
    /// holds (the write is tried again against what is there now); a `Conflict` carrying the
    /// version this read saw when it does not, which is where the call linearizes; `Unavailable`
    /// after [`CAS_ATTEMPTS`] lost swaps in a row.
    async fn after_lost_swap(
        &self,
        cid: &Cid,
        pre: &Precondition,
        attempts: usize,
    ) -> Result<Option<Stored>> {
        let again = self.read_pin(cid).await?;
        let current = again.as_ref().and_then(Stored::version);
        if !pre.holds(current.as_ref()) {
            return Err(Error::Conflict {
                key: cid.to_string(),
                expected: pre.describe(),
                current,
                op_index: 0,
            });
        }
        if attempts >= CAS_ATTEMPTS {
            return Err(Error::unavailable(
                format!(
                    "pin {cid}: lost the compare-and-swap to concurrent writers {attempts} times \
                     in a row; nothing was written"
                ),
                false,
            ));
        }
        Ok(again)
    }

    /// Commits a one-op batch (see the crate doc for why one op). The input checks and the
    /// capability refusals are the checking layer's (`pinvault_core::checked`); this only
    /// refuses what it could not write without dropping ops.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<Receipt> {
        let Ok([op]) = <[BatchOp; 1]>::try_from(batch.ops) else {
            return Err(Error::unsupported(
                self.backend,
                "a batch of other than one op: object stores commit one pin at a time \
                 (max_batch_ops: 1; the checking layer refuses this first)",
            ));
        };
        let span = tracing::debug_span!("object.commit", backend = self.backend, cid = %op.cid());
        let (sequence, version) = async {
            match op {
                BatchOp::Put { pin, precondition } => {
                    let (sequence, v) = self.put_pin(pin, precondition).await?;
                    Ok::<_, Error>((sequence, Some(v)))
                }
                BatchOp::Remove { cid, precondition } => {
                    Ok((self.remove_pin(cid, precondition).await?, None))
                }
            }
        }
        .instrument(span)
        .await?;
        // The op count and digest are filled in by the checking layer.
        Ok(Receipt {
            sequence,
            ops: 1,
            committed_at: Utc::now(),
            digest: [0; 32],
            versions: vec![version],
        })
    }

    async fn put_pin(&self, pin: Pin, pre: Precondition) -> Result<(u64, Version)> {
        let cid = pin.cid;
        let (sequence, write_id) = self.clock.write_id();
        let rows = views::rows_of(&self.layout, &pin, &write_id);
        let rows_what = format!("view rows of pin {cid}");
        let current = if pre.is_conditional() {
            // Check first, so that a conflict writes nothing.
            let current = self.read_pin(&cid).await?;
            let current_version = current.as_ref().and_then(Stored::version);
            if !pre.holds(current_version.as_ref()) {
                return Err(Error::Conflict {
                    key: cid.to_string(),
                    expected: pre.describe(),
                    current: current_version,
                    op_index: 0,
                });
            }
            self.faults.hit(COMMIT_VALIDATED)?;
            self.put_empty_all(&rows, &rows_what).await?;
            current
        } else {
            // `Any` always holds: the read (for the rows to clean and the incarnation) and the
            // new rows go out together, one round trip less.
            self.faults.hit(COMMIT_VALIDATED)?;
            let (current, written) =
                futures::join!(self.read_pin(&cid), self.put_empty_all(&rows, &rows_what));
            written?;
            current?
        };
        self.faults.hit(COMMIT_VIEWS_WRITTEN)?;
        let path = self.layout.pin(&cid);
        let mut current = current;
        let mut attempts = 0;
        loop {
            let live = current.as_ref().filter(|s| s.pin.is_some());
            let incarnation =
                live.map_or_else(|| write_id.to_vec(), |s| s.record.incarnation.clone());
            let record = PinRecord {
                format: FORMAT_VERSION,
                write_id: write_id.to_vec(),
                incarnation,
                tombstone: false,
                pin: protobuf::encode_record(&pin),
            };
            let mode = match (&pre, &current) {
                (Precondition::Any, _) => PutMode::Overwrite,
                (_, None) => PutMode::Create,
                (_, Some(stored)) => PutMode::Update(stored.update()),
            };
            match self.put_raw(&path, Bytes::from(record.encode_to_vec()), mode).await {
                Ok(_) => break,
                Err(e) if crate::store::lost_race(&e) => {
                    // Another writer changed the object between the read and the PUT; the
                    // precondition may still hold (a blind delete of a tombstone leaves the
                    // pin as absent as before), so it is checked again, not assumed failed.
                    attempts += 1;
                    match self.after_lost_swap(&cid, &pre, attempts).await {
                        Ok(again) => current = again,
                        Err(e) => {
                            self.delete_quietly(rows, "view rows of a lost write").await;
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    let e = self.err(Access::Write, &format!("pin {cid}"), e);
                    // Rows of a write that certainly failed are dropped; if the outcome is
                    // unknown they may index the pin now stored, and stay (readers verify them).
                    if !matches!(e, Error::Unavailable { outcome_unknown: true, .. }) {
                        self.delete_quietly(rows, "view rows of a failed write").await;
                    }
                    return Err(e);
                }
            }
        }
        let live = current.as_ref().filter(|s| s.pin.is_some());
        tracing::debug!(sequence, "object: pin written");
        self.faults.hit(COMMIT_WRITTEN)?;
        if let Some(old) = live {
            let stale = views::rows_of(
                &self.layout,
                old.pin.as_ref().unwrap_or(&pin),
                &old.record.write_id,
            );
            self.delete_quietly(stale, "view rows of the replaced write").await;
        }
        Ok((sequence, Version::from_bytes(write_id.to_vec())))
    }

    async fn remove_pin(&self, cid: Cid, pre: Precondition) -> Result<u64> {
        let current = self.read_pin(&cid).await?;
        let current_version = current.as_ref().and_then(Stored::version);
        if !pre.holds(current_version.as_ref()) {
            return Err(Error::Conflict {
                key: cid.to_string(),
                expected: pre.describe(),
                current: current_version,
                op_index: 0,
            });
        }
        self.faults.hit(COMMIT_VALIDATED)?;
        let (sequence, write_id) = self.clock.write_id();
        let Some(mut live) = current.filter(|s| s.pin.is_some()) else {
            // Removing an absent pin with `Any`: nothing to write.
            return Ok(sequence);
        };
        let path = self.layout.pin(&cid);
        match pre {
            Precondition::Version(_) => {
                let tombstone = PinRecord {
                    format: FORMAT_VERSION,
                    write_id: write_id.to_vec(),
                    incarnation: Vec::new(),
                    tombstone: true,
                    pin: Vec::new(),
                };
                let bytes = Bytes::from(tombstone.encode_to_vec());
                let mut attempts = 0;
                loop {
                    let mode = PutMode::Update(live.update());
                    match self.put_raw(&path, bytes.clone(), mode).await {
                        Ok(_) => break,
                        Err(e) if crate::store::lost_race(&e) => {
                            attempts += 1;
                            // The version still matching means the pin itself is unchanged.
                            match self.after_lost_swap(&cid, &pre, attempts).await? {
                                Some(again) if again.pin.is_some() => live = again,
                                _ => {
                                    return Err(Error::Conflict {
                                        key: cid.to_string(),
                                        expected: pre.describe(),
                                        current: None,
                                        op_index: 0,
                                    })
                                }
                            }
                        }
                        Err(e) => return Err(self.err(Access::Write, &format!("pin {cid}"), e)),
                    }
                }
            }
            _ => self.delete_all(vec![path], &format!("pin {cid}")).await?,
        }
        self.faults.hit(COMMIT_WRITTEN)?;
        if let Some(pin) = &live.pin {
            let stale = views::rows_of(&self.layout, pin, &live.record.write_id);
            self.delete_quietly(stale, "view rows of a removed pin").await;
        }
        Ok(sequence)
    }
}
