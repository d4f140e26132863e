//! The secondary views as small index objects, verified against the pins on every read.
//!
//! A view row is an empty object whose key names the pin *and the write id of the write it
//! indexes*: `views/peer/<peer>/<cid>.<write id>`, `views/expiry/<bucket>/<time>.<cid>.<write id>`.
//! A write puts the rows of its new write id **before** the pin's conditional PUT and deletes
//! the rows of the write it replaced after it. A reader lists the rows, reads each pin, and
//! keeps a row only when the pin is live with exactly that write id: so a row can only ever be
//! shown for the write that made it, and the pin's one conditional PUT switches its rows on and
//! the old ones off in the same step, as seen by readers that verify.
//!
//! `atomic_views` is nevertheless declared **false**: a view is read as many GETs at slightly
//! different moments, not one snapshot, and a row can go missing in the case below, until
//! repaired. What crashes and races leave:
//!
//! * **Crash after the rows, before the pin PUT** (or a lost condition): rows of a write id no
//!   pin carries. Readers filter them; a reader deletes such a row once it is older than the
//!   view grace (15 minutes by default); `repair_views` deletes them too.
//! * **Crash after the pin PUT, before the old rows are deleted**: rows of a replaced write id,
//!   filtered and lazily deleted the same way. The pin itself is fully indexed.
//! * **A writer stalled longer than the grace between its row PUTs and its pin PUT**: a reader
//!   may have deleted its (then unmatched) rows, so the pin is missing from its views.
//!   [`crate::ObjectBackend::repair_views`] (also run by `migrate`) rebuilds every live pin's
//!   rows and deletes unmatched old ones. This is the only case where a view is wrong rather
//!   than merely carrying filtered garbage.
//!
//! Placements are one record per pin holding the peers reported and the pin's *incarnation*
//! (fixed from an insert until the pin is removed): a report about a removed pin never shows on
//! a re-added one, without any delete racing the re-add. `desired` always comes from the pin.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use object_store::path::Path;
use pinvault_core::state::expiry_bucket;
use pinvault_core::{Cid, Error, Expiry, MigrationReport, PeerId, Pin, Placement, Result};
use prost::Message;

use crate::clock::{sequence_of, time_of_sequence};
use crate::layout::{self, Layout, PlacementRecord, FORMAT_VERSION};
use crate::listing;
use crate::pins::Stored;
use crate::store::Inner;
use pinvault_core::error::Access;

/// What [`crate::ObjectBackend::repair_views`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Live pins read.
    pub pins: u64,
    /// View rows written because their pin's current write lacked them.
    pub rows_written: u64,
    /// Unmatched view rows (older than the grace) deleted.
    pub rows_deleted: u64,
    /// Placement records of absent pins deleted.
    pub placements_deleted: u64,
}

/// A view row: the write id it indexes and its key.
type Row = (Vec<u8>, Path);

/// The view rows of `pin` for the write `write_id`.
pub(crate) fn rows_of(layout: &Layout, pin: &Pin, write_id: &[u8]) -> Vec<Path> {
    let mut rows: Vec<Path> =
        pin.allocations.iter().map(|peer| layout.peer_row(peer, &pin.cid, write_id)).collect();
    if let Some(at) = pin.options.expire_at {
        rows.push(layout.expiry_row(at, &pin.cid, write_id));
    }
    rows
}

impl Inner {
    /// Whether an unmatched row of write `write_id` is old enough to delete.
    fn past_grace(&self, write_id: &[u8]) -> bool {
        let grace = chrono::Duration::from_std(self.view_grace).unwrap_or(chrono::Duration::MAX);
        sequence_of(write_id)
            .and_then(time_of_sequence)
            .is_none_or(|t| Utc::now().signed_duration_since(t) > grace)
    }

    /// The live pins of `cids`, read `concurrency` at a time, in the given order.
    async fn read_live(&self, cids: Vec<Cid>) -> Result<Vec<(Cid, Option<Stored>)>> {
        let results: Vec<Result<(Cid, Option<Stored>)>> = stream::iter(cids)
            .map(|cid| async move {
                let stored = self.read_pin(&cid).await?.filter(|s| s.pin.is_some());
                Ok((cid, stored))
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// CIDs allocated to `peer`, in CID byte order, verified against the pins.
    pub(crate) async fn pins_by_peer(&self, peer: &PeerId) -> Result<Vec<Cid>> {
        let dir = self.layout.peer_dir(peer);
        let rows = listing::all(&*self.store, &dir)
            .await
            .map_err(|e| self.err(Access::Read, &format!("view of peer {peer}"), e))?;
        let mut by_cid: BTreeMap<Vec<u8>, (Cid, Vec<Row>)> = BTreeMap::new();
        for meta in rows {
            let (cid, write_id) = self.layout.parse_peer_row(&meta.location)?;
            by_cid
                .entry(cid.to_bytes())
                .or_insert_with(|| (cid, Vec::new()))
                .1
                .push((write_id, meta.location));
        }
        let cids: Vec<Cid> = by_cid.values().map(|(cid, _)| *cid).collect();
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for (cid, stored) in self.read_live(cids).await? {
            let Some((_, rows)) = by_cid.remove(&cid.to_bytes()) else { continue };
            let current = stored.as_ref().map(|s| s.record.write_id.clone());
            let allocated = stored
                .as_ref()
                .and_then(|s| s.pin.as_ref())
                .is_some_and(|p| p.allocations.contains(peer));
            let mut matched = false;
            for (write_id, path) in rows {
                if allocated && current.as_ref() == Some(&write_id) {
                    matched = true;
                } else if self.past_grace(&write_id) {
                    stale.push(path);
                }
            }
            if matched {
                out.push(cid);
            }
        }
        self.delete_quietly(stale, "stale by-peer rows").await;
        Ok(out)
    }

    /// Pins expiring strictly before `before`, in `(expire_at, cid)` order, reading only the
    /// hour buckets up to `before`'s.
    pub(crate) async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<Expiry>> {
        let last_bucket = expiry_bucket(before);
        let buckets = listing::children(&*self.store, &self.layout.expiry_dir())
            .await
            .map_err(|e| self.err(Access::Read, "expiry queue", e))?;
        let mut rows = Vec::new();
        for dir in buckets {
            match self.layout.parse_expiry_bucket(&dir) {
                Some(bucket) if bucket <= last_bucket => {}
                _ => continue,
            }
            let listed = listing::all(&*self.store, &dir)
                .await
                .map_err(|e| self.err(Access::Read, "expiry queue", e))?;
            for meta in listed {
                let row = self.layout.parse_expiry_row(&meta.location)?;
                if row.at < before {
                    rows.push((row, meta.location));
                }
            }
        }
        let mut cids: Vec<Cid> = rows.iter().map(|(r, _)| r.cid).collect();
        cids.sort_by_key(|c| c.to_bytes());
        cids.dedup();
        let live: BTreeMap<Vec<u8>, Option<Stored>> =
            self.read_live(cids).await?.into_iter().map(|(c, s)| (c.to_bytes(), s)).collect();
        let mut out = BTreeMap::new();
        let mut stale = Vec::new();
        for (row, path) in rows {
            let stored = live.get(&row.cid.to_bytes()).and_then(Option::as_ref);
            let valid = stored.is_some_and(|s| {
                s.record.write_id == row.write_id
                    && s.pin.as_ref().and_then(|p| p.options.expire_at) == Some(row.at)
            });
            if valid {
                out.insert((row.at, row.cid.to_bytes()), row.cid);
            } else if self.past_grace(&row.write_id) {
                stale.push(path);
            }
        }
        self.delete_quietly(stale, "stale expiry rows").await;
        Ok(out.into_iter().map(|((expire_at, _), cid)| Expiry { expire_at, cid }).collect())
    }

    async fn read_placement(&self, cid: &Cid) -> Result<Option<PlacementRecord>> {
        let path = self.layout.placement(cid);
        match self.read(&path, &format!("placement of {cid}")).await? {
            Some((bytes, _)) => Ok(Some(layout::decode(&path, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Desired (from the pin) versus actual (the report about this incarnation) placement.
    pub(crate) async fn placement(&self, cid: &Cid) -> Result<Placement> {
        let stored = self.read_pin(cid).await?;
        let Some((stored, pin)) = stored.as_ref().and_then(|s| s.pin.as_ref().map(|p| (s, p)))
        else {
            return Err(Error::not_found(format!("pin {cid}")));
        };
        let path = self.layout.placement(cid);
        let actual = match self.read_placement(cid).await? {
            Some(r) if r.incarnation == stored.record.incarnation => r
                .peers
                .iter()
                .map(|p| {
                    PeerId::from_bytes(p)
                        .map_err(|e| layout::corrupt(&path, e.to_string()).with_source(e))
                })
                .collect::<Result<BTreeSet<_>>>()?,
            _ => BTreeSet::new(),
        };
        Ok(Placement { cid: *cid, desired: pin.allocations.iter().cloned().collect(), actual })
    }

    /// Replaces the report of where `cid` is pinned. Does not touch the pin.
    pub(crate) async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        let Some(stored) = self.read_pin(cid).await?.filter(|s| s.pin.is_some()) else {
            return Err(Error::not_found(format!("pin {cid}")));
        };
        let record = PlacementRecord {
            incarnation: stored.record.incarnation,
            peers: actual.iter().map(PeerId::to_bytes).collect(),
        };
        self.put(
            &self.layout.placement(cid),
            Bytes::from(record.encode_to_vec()),
            &format!("placement of {cid}"),
        )
        .await
        .map(|_| ())
    }

    /// Rebuilds every live pin's view rows and deletes unmatched rows older than the grace and
    /// placement records of absent pins. Reads the whole pinset; holds the set of row keys in
    /// memory.
    pub(crate) async fn repair_views(&self) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let views_dir = self.layout.root().clone().join("views");
        let existing: HashSet<String> = listing::all(&*self.store, &views_dir)
            .await
            .map_err(|e| self.err(Access::Read, "views", e))?
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        let mut valid = HashSet::new();
        let mut after = None;
        loop {
            let page = listing::page(
                &*self.store,
                &self.layout.pins_dir(),
                after.as_ref(),
                256,
                self.ordered_listing,
            )
            .await
            .map_err(|e| self.err(Access::Read, "pins", e))?;
            let Some(last) = page.last() else { break };
            after = Some(last.location.clone());
            let cids = page
                .iter()
                .map(|m| self.layout.cid_of_pin(&m.location))
                .collect::<Result<Vec<_>>>()?;
            for (cid, stored) in self.read_live(cids).await? {
                let Some(stored) = stored else {
                    // Absent or a tombstone: its placement report is garbage.
                    if self.read_placement(&cid).await?.is_some() {
                        self.delete_all(
                            vec![self.layout.placement(&cid)],
                            "placement of an absent pin",
                        )
                        .await?;
                        report.placements_deleted += 1;
                    }
                    continue;
                };
                report.pins += 1;
                let Some(pin) = &stored.pin else { continue };
                let rows = rows_of(&self.layout, pin, &stored.record.write_id);
                let missing: Vec<Path> =
                    rows.iter().filter(|r| !existing.contains(&r.to_string())).cloned().collect();
                report.rows_written += missing.len() as u64;
                self.put_empty_all(&missing, "repaired view rows").await?;
                valid.extend(rows.into_iter().map(|r| r.to_string()));
            }
        }
        let mut unmatched = Vec::new();
        for key in existing.iter().filter(|k| !valid.contains(*k)) {
            let path = Path::from(key.as_str());
            let write_id = self
                .layout
                .parse_peer_row(&path)
                .map(|(_, w)| w)
                .or_else(|_| self.layout.parse_expiry_row(&path).map(|r| r.write_id));
            // Rows of writes still in flight are younger than the grace and stay.
            if write_id.as_deref().map_or(true, |w| self.past_grace(w)) {
                unmatched.push(path);
            }
        }
        report.rows_deleted = unmatched.len() as u64;
        self.delete_all(unmatched, "unmatched view rows").await?;
        tracing::info!(backend = self.backend, ?report, "object: views repaired");
        Ok(report)
    }

    /// `migrate`: the stored format has one version so far; the pass repairs the views.
    pub(crate) async fn migrate(&self) -> Result<MigrationReport> {
        let r = self.repair_views().await?;
        Ok(MigrationReport {
            from: FORMAT_VERSION,
            to: FORMAT_VERSION,
            records_rewritten: r.rows_written + r.rows_deleted + r.placements_deleted,
        })
    }
}
