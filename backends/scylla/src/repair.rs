//! Cleaning the view tables: rows of `pins_by_peer` and `pin_ttl_queue` that no current pin
//! state backs. Reads already skip them (filter-on-read, the crate doc's view protocol); this
//! pass deletes them so the tables do not grow with the garbage of crashed or failed writes.
//! `PinState::migrate` runs it after the schema migrations.
//!
//! A stray row can be the write-ahead row of a write still in flight (protocol step 1 done,
//! the pin's LWT not yet applied), which must not be lost. So each delete carries the client
//! timestamp `scan start − VIEW_REPAIR_GRACE`: a Cassandra tombstone shadows only cells written
//! at or before its timestamp, so the delete removes the row only if it was written before the
//! grace, and is a no-op for any row written (or re-written, by protocol step 3) since. No
//! coordination with writers is needed, and a concurrent pass in another process is harmless.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use pinvault_core::pin::cid_from_bytes;
use pinvault_core::{Error, PeerId, Result};
use scylla::statement::prepared::PreparedStatement;

use crate::errors::{map_exec, map_other};
use crate::pins::Stored;
use crate::{observe, ScyllaBackend};
use pinvault_core::error::Access;

/// How old a stray view row must be before [`ScyllaBackend::repair_views`] deletes it: longer
/// than any write's window between its write-ahead rows and its commit (request timeouts and
/// retries included).
pub const VIEW_REPAIR_GRACE: Duration = Duration::from_secs(10 * 60);

/// What [`ScyllaBackend::repair_views`] found and deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewRepairReport {
    /// `pins_by_peer` rows read.
    pub peer_rows_scanned: u64,
    /// `pins_by_peer` rows no pin backs, older than the grace: deleted.
    pub peer_rows_deleted: u64,
    /// `pins_by_peer` rows no pin backs, younger than the grace: kept (a write may be in flight).
    pub peer_rows_young: u64,
    /// `pin_ttl_queue` rows read.
    pub expiry_rows_scanned: u64,
    /// `pin_ttl_queue` rows no pin backs, older than the grace: deleted.
    pub expiry_rows_deleted: u64,
    /// `pin_ttl_queue` rows no pin backs, younger than the grace: kept.
    pub expiry_rows_young: u64,
}

impl ScyllaBackend {
    /// Deletes view rows that no current pin backs and that are older than
    /// [`VIEW_REPAIR_GRACE`]. Full scans of both view tables, paged; one pin read per distinct
    /// CID met.
    pub async fn repair_views(&self) -> Result<ViewRepairReport> {
        let started = Instant::now();
        let r = self.repair_views_inner().await;
        observe("repair_views", started, &r);
        r
    }

    async fn repair_views_inner(&self) -> Result<ViewRepairReport> {
        let cutoff = self.timestamp() - VIEW_REPAIR_GRACE.as_micros() as i64;
        let st = &self.inner.st;
        let mut pins: HashMap<Vec<u8>, Option<Stored>> = HashMap::new();
        let mut report = ViewRepairReport::default();

        let mut rows = self.scan::<(Vec<u8>, Vec<u8>)>(&st.peer_all, "pins_by_peer").await?;
        while let Some((peer, cid)) =
            rows.try_next().await.map_err(|e| map_other(e, "pins_by_peer"))?
        {
            report.peer_rows_scanned += 1;
            let backed = match self.pin_of(&mut pins, &cid).await? {
                Some(stored) => {
                    PeerId::from_bytes(&peer).is_ok_and(|p| stored.pin.allocations.contains(&p))
                }
                None => false,
            };
            if !backed {
                self.session_exec(&st.peer_delete, (cutoff, &peer, &cid), "delete stray peer row")
                    .await?;
                if self.still_there(&st.peer_one, (&peer, &cid), "pins_by_peer").await? {
                    report.peer_rows_young += 1;
                } else {
                    report.peer_rows_deleted += 1;
                }
            }
        }

        let mut rows = self.scan::<(i64, i64, i32, Vec<u8>)>(&st.ttl_all, "pin_ttl_queue").await?;
        while let Some((bucket, secs, nanos, cid)) =
            rows.try_next().await.map_err(|e| map_other(e, "pin_ttl_queue"))?
        {
            report.expiry_rows_scanned += 1;
            let backed = match self.pin_of(&mut pins, &cid).await? {
                Some(stored) => stored.pin.options.expire_at.is_some_and(|at| {
                    at.timestamp() == secs && at.timestamp_subsec_nanos() as i32 == nanos
                }),
                None => false,
            };
            if !backed {
                self.session_exec(
                    &st.ttl_delete,
                    (cutoff, bucket, secs, nanos, &cid),
                    "delete stray expiry row",
                )
                .await?;
                if self
                    .still_there(&st.ttl_one, (bucket, secs, nanos, &cid), "pin_ttl_queue")
                    .await?
                {
                    report.expiry_rows_young += 1;
                } else {
                    report.expiry_rows_deleted += 1;
                }
            }
        }
        tracing::info!(?report, "scylla: views repaired");
        Ok(report)
    }

    /// The pin a view row names, read once per CID; a CID that does not parse backs nothing.
    async fn pin_of<'a>(
        &self,
        cache: &'a mut HashMap<Vec<u8>, Option<Stored>>,
        cid: &[u8],
    ) -> Result<&'a Option<Stored>> {
        if !cache.contains_key(cid) {
            let stored = match cid_from_bytes(cid) {
                Ok(parsed) => self.read_pin(&parsed, false).await?,
                Err(_) => None,
            };
            cache.insert(cid.to_vec(), stored);
        }
        cache.get(cid).ok_or_else(|| Error::corrupt("view repair", "cache lost an entry"))
    }

    async fn scan<R>(
        &self,
        stmt: &PreparedStatement,
        what: &'static str,
    ) -> Result<scylla::client::pager::TypedRowStream<R>>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + 'static,
    {
        let pager = self
            .inner
            .session
            .execute_iter(stmt.clone(), ())
            .await
            .map_err(|e| map_other(e, what))?;
        pager.rows_stream::<R>().map_err(|e| map_other(e, what))
    }

    /// Whether the row a delete just targeted survived it (it was written after the cutoff).
    async fn still_there(
        &self,
        stmt: &PreparedStatement,
        key: impl scylla::serialize::row::SerializeRow,
        what: &'static str,
    ) -> Result<bool> {
        let rows = self
            .inner
            .session
            .execute_unpaged(stmt, key)
            .await
            .map_err(|e| map_exec(e, what, Access::Read))?
            .into_rows_result()
            .map_err(|e| map_other(e, what))?;
        Ok(rows.rows_num() > 0)
    }

    async fn session_exec(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &'static str,
    ) -> Result<()> {
        self.inner
            .session
            .execute_unpaged(stmt, values)
            .await
            .map(|_| ())
            .map_err(|e| map_exec(e, what, Access::Write))
    }
}
