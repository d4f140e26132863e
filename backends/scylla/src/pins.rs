//! [`PinState`] on Cassandra: one LWT (or one logged batch) per commit, views written ahead and
//! filtered on read. Its invariants are in the crate docs, the protocol in full in the crate's
//! README.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use pinvault_core::codec::protobuf::{decode_record, encode_record};
use pinvault_core::pin::cid_from_bytes;
use pinvault_core::state::expiry_bucket;
use pinvault_core::{
    Batch, BatchOp, Cid, Cursor, Error, Expiry, ListEntry, MigrationReport, PeerId, Pin,
    PinCapabilities, PinState, Placement, Precondition, Receipt, Result, Version, Versioned,
};
use scylla::statement::batch::{Batch as CqlBatch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;
use tracing::Instrument;

use crate::errors::{map_exec, map_other, BACKEND};
use crate::lwt::{self, Resolution};
use crate::{observe, rows, schema, ScyllaBackend, COMMIT_APPLIED, COMMIT_PREPARED};
use pinvault_core::error::Access;

/// The partition of a CID: the first two bytes of its multihash digest.
pub(crate) fn mh_prefix(cid: &Cid) -> i32 {
    let d = cid.hash().digest();
    let b0 = d.first().copied().unwrap_or(0);
    let b1 = d.get(1).copied().unwrap_or(0);
    i32::from(u16::from_be_bytes([b0, b1]))
}

/// A stored pin row.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) pin: Pin,
    pub(crate) version: Version,
    pub(crate) actual: Vec<Vec<u8>>,
}

/// One view row of a pin state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ViewRow {
    Peer(Vec<u8>),
    Ttl { bucket: i64, secs: i64, nanos: i32 },
}

fn view_rows(pin: &Pin) -> HashSet<ViewRow> {
    let mut rows: HashSet<ViewRow> =
        pin.allocations.iter().map(|p| ViewRow::Peer(p.to_bytes())).collect();
    if let Some(at) = pin.options.expire_at {
        rows.insert(ViewRow::Ttl {
            bucket: expiry_bucket(at),
            secs: at.timestamp(),
            nanos: at.timestamp_subsec_nanos() as i32,
        });
    }
    rows
}

fn decode_row(cid_bytes: &[u8], record: &[u8], version: Vec<u8>) -> Result<(Pin, Version)> {
    let location = || format!("pins_by_cid {}", hex::encode(cid_bytes));
    let pin = decode_record(record)
        .map_err(|e| Error::corrupt(location(), e.to_string()).with_source(e))?;
    if pin.cid.to_bytes() != cid_bytes {
        return Err(Error::corrupt(location(), "the record's CID is not the row's"));
    }
    if version.is_empty() {
        return Err(Error::corrupt(location(), "empty version"));
    }
    Ok((pin, Version::from_bytes(version)))
}

fn conflict(op: &BatchOp, op_index: usize, current: Option<Version>) -> Error {
    Error::Conflict {
        key: op.cid().to_string(),
        expected: op.precondition().describe(),
        current,
        op_index,
    }
}

type PinRow = (i32, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

impl ScyllaBackend {
    pub(crate) async fn read_pin(&self, cid: &Cid, serial: bool) -> Result<Option<Stored>> {
        let key = (mh_prefix(cid), cid.to_bytes());
        let st = &self.inner.st;
        let session = &self.inner.session;
        let result = self
            .retrying("get", || async {
                let r = if serial {
                    let mut p: PreparedStatement = st.pin_get.clone();
                    p.set_consistency(scylla::statement::Consistency::Serial);
                    session.execute_unpaged(&p, &key).await
                } else {
                    session.execute_unpaged(&st.pin_get, &key).await
                };
                r.map_err(|e| map_exec(e, "read pin", Access::Read))
            })
            .await?;
        let rows = result.into_rows_result().map_err(|e| map_other(e, "read pin"))?;
        let row = rows
            .maybe_first_row::<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<Vec<u8>>>)>()
            .map_err(|e| map_other(e, "read pin"))?;
        let Some((Some(record), Some(version), actual)) = row else { return Ok(None) };
        let (pin, version) = decode_row(&key.1, &record, version)?;
        Ok(Some(Stored { pin, version, actual: actual.unwrap_or_default() }))
    }

    /// The version a SERIAL read finds (completes in-flight Paxos rounds).
    // Hidden: test-only; public because the outcome-unknown tests (tests/lwt_paths.rs) use it.
    #[doc(hidden)]
    pub async fn serial_version(&self, cid: &Cid) -> Result<Option<Version>> {
        Ok(self.read_pin(cid, true).await?.map(|s| s.version))
    }

    async fn write_views(&self, cid: &[u8], rows: &HashSet<ViewRow>, ts: i64) -> Result<()> {
        let st = &self.inner.st;
        let session = &self.inner.session;
        let futs = rows.iter().map(|row| async move {
            match row {
                ViewRow::Peer(peer) => {
                    session.execute_unpaged(&st.peer_insert, (peer, cid, ts)).await.map(|_| ())
                }
                ViewRow::Ttl { bucket, secs, nanos } => {
                    match session.execute_unpaged(&st.bucket_insert, (bucket, ts)).await {
                        Ok(_) => session
                            .execute_unpaged(&st.ttl_insert, (bucket, secs, nanos, cid, ts))
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
            }
            .map_err(|e| map_exec(e, "write view", Access::Write))
        });
        futures::future::try_join_all(futs).await.map(|_| ())
    }

    async fn delete_views(&self, cid: &[u8], rows: &HashSet<ViewRow>, ts: i64) -> Result<()> {
        let st = &self.inner.st;
        let session = &self.inner.session;
        let futs = rows.iter().map(|row| async move {
            match row {
                ViewRow::Peer(peer) => {
                    session.execute_unpaged(&st.peer_delete, (ts, peer, cid)).await
                }
                ViewRow::Ttl { bucket, secs, nanos } => {
                    session.execute_unpaged(&st.ttl_delete, (ts, bucket, secs, nanos, cid)).await
                }
            }
            .map(|_| ())
            .map_err(|e| map_exec(e, "delete view", Access::Write))
        });
        futures::future::try_join_all(futs).await.map(|_| ())
    }

    /// Takes the next commit sequence by compare-and-set on `commit_sequence`.
    async fn next_sequence(&self) -> Result<u64> {
        let st = &self.inner.st;
        let mut backoff = std::time::Duration::from_millis(2);
        for _ in 0..200 {
            let guess = self.inner.seq_guess.load(Ordering::SeqCst);
            let next = guess + 1;
            let r =
                self.inner.session.execute_unpaged(&st.seq_cas, (next as i64, guess as i64)).await;
            match r {
                Ok(result) => {
                    let (applied, current) = lwt::applied_and(result, "seq", "commit sequence")?;
                    if applied {
                        self.inner.seq_guess.fetch_max(next, Ordering::SeqCst);
                        return Ok(next);
                    }
                    if let Some(CqlValue::BigInt(cur)) = current {
                        self.inner.seq_guess.fetch_max(cur.max(0) as u64, Ordering::SeqCst);
                    } else {
                        self.refresh_sequence().await?;
                    }
                }
                Err(e) => {
                    let e = map_exec(e, "commit sequence", Access::Write);
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    // Unknown outcome is harmless: a burnt number is a gap.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_millis(200));
                    self.refresh_sequence().await?;
                }
            }
        }
        Err(Error::unavailable("commit sequence: too much contention", false))
    }

    async fn refresh_sequence(&self) -> Result<()> {
        let mut p = self.inner.st.seq_get.clone();
        p.set_consistency(scylla::statement::Consistency::Serial);
        let rows = self
            .inner
            .session
            .execute_unpaged(&p, ())
            .await
            .map_err(|e| map_exec(e, "read commit sequence", Access::Read))?
            .into_rows_result()
            .map_err(|e| map_other(e, "read commit sequence"))?;
        if let Some((Some(seq),)) =
            rows.maybe_first_row::<(Option<i64>,)>().map_err(|e| map_other(e, "sequence"))?
        {
            self.inner.seq_guess.fetch_max(seq.max(0) as u64, Ordering::SeqCst);
        }
        Ok(())
    }

    /// One op as one statement; conditional ops as LWTs. Returns Ok(()) when applied.
    async fn write_single(&self, op: &BatchOp, new_version: Option<&Version>) -> Result<()> {
        let st = &self.inner.st;
        let s = &self.inner.session;
        let cid = op.cid();
        let (pfx, key) = (mh_prefix(cid), cid.to_bytes());
        let nv = new_version.map(|v| v.as_bytes().to_vec());
        let (result, conditional) = match (op, op.precondition()) {
            (BatchOp::Put { pin, .. }, Precondition::Any) => {
                let rec = encode_record(pin);
                return self
                    .retrying("put", || async {
                        s.execute_unpaged(&st.pin_update_any, (&rec, &nv, pfx, &key))
                            .await
                            .map(|_| ())
                            .map_err(|e| map_exec(e, "put", Access::Write))
                    })
                    .await;
            }
            (BatchOp::Remove { .. }, Precondition::Any) => {
                return self
                    .retrying("remove", || async {
                        s.execute_unpaged(&st.pin_delete_any, (pfx, &key))
                            .await
                            .map(|_| ())
                            .map_err(|e| map_exec(e, "remove", Access::Write))
                    })
                    .await;
            }
            (BatchOp::Put { pin, .. }, Precondition::Absent) => (
                s.execute_unpaged(&st.pin_insert_absent, (pfx, &key, encode_record(pin), &nv))
                    .await,
                true,
            ),
            (BatchOp::Put { pin, .. }, Precondition::Version(v)) => (
                s.execute_unpaged(
                    &st.pin_update_if,
                    (encode_record(pin), &nv, pfx, &key, v.as_bytes()),
                )
                .await,
                true,
            ),
            (BatchOp::Remove { .. }, Precondition::Version(v)) => {
                (s.execute_unpaged(&st.pin_delete_if, (pfx, &key, v.as_bytes())).await, true)
            }
            (BatchOp::Remove { .. }, Precondition::Absent) => {
                return Err(Error::invalid("batch op 0", "remove with Absent"));
            }
        };
        debug_assert!(conditional);
        match result {
            Ok(r) => {
                let o = lwt::outcome(r, "conditional write")?;
                if o.applied {
                    Ok(())
                } else {
                    Err(conflict(op, 0, o.current_version))
                }
            }
            Err(e) => match map_exec(e, "conditional write", Access::Write) {
                Error::Unavailable { outcome_unknown: true, reason, source } => {
                    metrics::counter!("pinvault_scylla_lwt_unknown_total").increment(1);
                    let current = self.serial_version(cid).await?;
                    match lwt::resolve(new_version, op.precondition(), current.as_ref()) {
                        Resolution::Applied => Ok(()),
                        Resolution::NotApplied => Err(Error::Unavailable {
                            reason: format!("{reason} (not applied, per a SERIAL read)"),
                            outcome_unknown: false,
                            source,
                        }),
                        Resolution::Unknown => {
                            Err(Error::Unavailable { reason, outcome_unknown: true, source })
                        }
                    }
                }
                other => Err(other),
            },
        }
    }

    async fn write_logged(&self, ops: &[BatchOp], versions: &[Option<Version>]) -> Result<()> {
        let st = &self.inner.st;
        let mut batch = CqlBatch::new(BatchType::Logged);
        let mut values: Vec<Vec<CqlValue>> = Vec::with_capacity(ops.len());
        for (op, v) in ops.iter().zip(versions) {
            let cid = op.cid();
            let pk = [CqlValue::Int(mh_prefix(cid)), CqlValue::Blob(cid.to_bytes())];
            match (op, v) {
                (BatchOp::Put { pin, .. }, Some(v)) => {
                    batch.append_statement(st.pin_update_any.clone());
                    let mut row = vec![
                        CqlValue::Blob(encode_record(pin)),
                        CqlValue::Blob(v.as_bytes().to_vec()),
                    ];
                    row.extend(pk);
                    values.push(row);
                }
                _ => {
                    batch.append_statement(st.pin_delete_any.clone());
                    values.push(pk.to_vec());
                }
            }
        }
        batch.set_consistency(self.inner.config.consistency);
        batch.set_is_idempotent(true);
        self.retrying("commit", || async {
            self.inner
                .session
                .batch(&batch, &values)
                .await
                .map(|_| ())
                .map_err(|e| map_exec(e, "logged batch", Access::Write))
        })
        .await
    }

    /// The input checks and capability refusals (batch size, conditional batches) are the
    /// checking layer's (`pinvault_core::checked`); this only refuses what a logged batch could
    /// not carry.
    async fn commit_inner(&self, batch: Batch) -> Result<Receipt> {
        if batch.len() > 1 && batch.is_conditional() {
            return Err(Error::unsupported(
                BACKEND,
                "a multi-op batch with preconditions: a logged batch cannot carry them \
                 (conditional_batch: false; the checking layer refuses this first)",
            ));
        }
        let ops = batch.len();
        // Old states, for cleaning up their view rows after the commit.
        let olds = futures::future::try_join_all(
            batch.ops.iter().map(|op| self.read_pin(op.cid(), false)),
        )
        .await?;
        let versions: Vec<Option<Version>> = batch
            .ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { .. } => Some(Version::from_bytes(crate::token().to_vec())),
                BatchOp::Remove { .. } => None,
            })
            .collect();
        // 1. Write ahead the view rows of every new state.
        let ahead_ts = self.timestamp();
        futures::future::try_join_all(batch.ops.iter().filter_map(|op| match op {
            BatchOp::Put { pin, .. } => Some(async move {
                self.write_views(&pin.cid.to_bytes(), &view_rows(pin), ahead_ts).await
            }),
            BatchOp::Remove { .. } => None,
        }))
        .await?;
        let sequence = self.next_sequence().await?;
        let cleanup_ts = self.timestamp();
        self.inner.faults.hit(COMMIT_PREPARED)?;
        // 2. The commit point.
        if ops == 1 {
            self.write_single(&batch.ops[0], versions[0].as_ref()).await?;
        } else {
            self.write_logged(&batch.ops, &versions).await?;
        }
        let committed_at = Utc::now();
        self.inner.faults.hit(COMMIT_APPLIED)?;
        // 3. Re-assert the new rows after the commit, delete the old state's other rows.
        let after_ts = self.timestamp();
        let steps = batch.ops.iter().zip(&olds).map(|(op, old)| async move {
            let cid = op.cid().to_bytes();
            let new_rows = match op {
                BatchOp::Put { pin, .. } => view_rows(pin),
                BatchOp::Remove { .. } => HashSet::new(),
            };
            if !new_rows.is_empty() {
                self.write_views(&cid, &new_rows, after_ts).await?;
            }
            if let Some(old) = old {
                let stale: HashSet<ViewRow> =
                    view_rows(&old.pin).difference(&new_rows).cloned().collect();
                if !stale.is_empty() {
                    self.delete_views(&cid, &stale, cleanup_ts).await?;
                }
            }
            Ok::<(), Error>(())
        });
        if let Err(e) = futures::future::try_join_all(steps).await {
            // The batch is committed; stale rows are filtered on read.
            tracing::warn!(error = %e, "scylla: view cleanup after a commit failed");
        }
        // The digest is filled in by the checking layer.
        Ok(Receipt { sequence, ops, committed_at, digest: [0; 32], versions })
    }

    fn pin_page_stream(
        &self,
        stmt: PreparedStatement,
        values: Vec<CqlValue>,
    ) -> BoxStream<'_, Result<ListEntry>> {
        rows::<PinRow>(self.inner.session.clone(), stmt, values, "list pins")
            .and_then(|(pfx, cid, record, version)| async move {
                let (Some(record), Some(version)) = (record, version) else {
                    return Err(Error::corrupt(
                        format!("pins_by_cid {}", hex::encode(&cid)),
                        "row without record or version",
                    ));
                };
                let (pin, version) = decode_row(&cid, &record, version)?;
                let mut cursor = pfx.to_be_bytes().to_vec();
                cursor.extend_from_slice(&cid);
                Ok(ListEntry { pin, version, cursor: Cursor(cursor) })
            })
            .boxed()
    }
}

#[async_trait]
impl PinState for ScyllaBackend {
    fn pin_capabilities(&self) -> PinCapabilities {
        let mut caps = PinCapabilities::none(BACKEND);
        caps.persistent = true;
        caps.durable_on_return = self.quorum_writes();
        caps.linearizable_conditional_writes = true;
        caps.atomic_batch = true;
        caps.conditional_batch = false;
        caps.atomic_views = true;
        caps.max_batch_ops = Some(self.inner.config.max_batch_ops);
        caps.crash_points = crate::PIN_CRASH_POINTS;
        caps
    }

    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        let started = Instant::now();
        let span = tracing::debug_span!("scylla.get", %cid);
        let r = async {
            match self.read_pin(cid, false).await? {
                Some(s) => Ok(Versioned { pin: s.pin, version: s.version }),
                None => Err(Error::not_found(format!("pin {cid}"))),
            }
        }
        .instrument(span)
        .await;
        observe("get", started, &r);
        r
    }

    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        let st = &self.inner.st;
        match after {
            None => self.pin_page_stream(st.pin_scan_all.clone(), vec![]),
            Some(c) if c.0.len() > 4 => {
                let pfx = i32::from_be_bytes([c.0[0], c.0[1], c.0[2], c.0[3]]);
                let cid = c.0[4..].to_vec();
                let rest = self.pin_page_stream(
                    st.pin_scan_partition_after.clone(),
                    vec![CqlValue::Int(pfx), CqlValue::Blob(cid)],
                );
                let later =
                    self.pin_page_stream(st.pin_scan_after_token.clone(), vec![CqlValue::Int(pfx)]);
                rest.chain(later).boxed()
            }
            Some(c) => stream::once(async move {
                Err(Error::invalid("cursor", format!("{} is not a scylla cursor", c.to_hex())))
            })
            .boxed(),
        }
    }

    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        let started = Instant::now();
        let first = batch.ops.first().map(|op| op.cid().to_string()).unwrap_or_default();
        let span = tracing::debug_span!("scylla.commit", cid = %first, ops = batch.len());
        let r = self.commit_inner(batch).instrument(span).await;
        observe("commit", started, &r);
        r
    }

    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        let stmt = self.inner.st.peer_scan.clone();
        let peer_bytes = peer.to_bytes();
        let peer = peer.clone();
        rows::<(Vec<u8>,)>(self.inner.session.clone(), stmt, (peer_bytes,), "pins_by_peer")
            .map_ok(move |(cid_bytes,)| {
                let peer = peer.clone();
                async move {
                    let cid = cid_from_bytes(&cid_bytes).map_err(|e| {
                        Error::corrupt("pins_by_peer", e.to_string()).with_source(e)
                    })?;
                    let keep = self
                        .read_pin(&cid, false)
                        .await?
                        .is_some_and(|s| s.pin.allocations.contains(&peer));
                    Ok::<_, Error>(keep.then_some(cid))
                }
            })
            .try_buffered(16)
            .try_filter_map(|c| async move { Ok(c) })
            .boxed()
    }

    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        let session = &self.inner.session;
        let last_bucket = expiry_bucket(before);
        let bucket_stmt = self.inner.st.bucket_scan.clone();
        rows::<(i64,)>(session.clone(), bucket_stmt, (last_bucket,), "expiry buckets")
            .map_ok(move |(bucket,)| {
                let stmt = self.inner.st.ttl_scan.clone();
                rows::<(i64, i32, Vec<u8>)>(session.clone(), stmt, (bucket,), "expiry queue")
            })
            .try_flatten()
            .try_filter_map(move |(secs, nanos, cid_bytes)| async move {
                let Some(at) = DateTime::from_timestamp(secs, nanos.max(0) as u32) else {
                    return Err(Error::corrupt(
                        "pin_ttl_queue",
                        format!("bad time {secs}.{nanos}"),
                    ));
                };
                if at >= before {
                    return Ok(None);
                }
                Ok(Some((at, cid_bytes)))
            })
            .map_ok(move |(at, cid_bytes)| async move {
                let cid = cid_from_bytes(&cid_bytes)
                    .map_err(|e| Error::corrupt("pin_ttl_queue", e.to_string()).with_source(e))?;
                let keep = self
                    .read_pin(&cid, false)
                    .await?
                    .is_some_and(|s| s.pin.options.expire_at == Some(at));
                Ok::<_, Error>(keep.then_some(Expiry { expire_at: at, cid }))
            })
            .try_buffered(16)
            .try_filter_map(|e| async move { Ok(e) })
            .boxed()
    }

    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        let s = self
            .read_pin(cid, false)
            .await?
            .ok_or_else(|| Error::not_found(format!("pin {cid}")))?;
        let actual = s
            .actual
            .iter()
            .map(|b| {
                PeerId::from_bytes(b).map_err(|e| {
                    Error::corrupt(format!("placement of {cid}"), e.to_string()).with_source(e)
                })
            })
            .collect::<Result<BTreeSet<_>>>()?;
        Ok(Placement { cid: *cid, desired: s.pin.allocations.iter().cloned().collect(), actual })
    }

    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        let started = Instant::now();
        let peers: Vec<Vec<u8>> = actual.iter().map(PeerId::to_bytes).collect();
        let key = cid.to_bytes();
        let r = async {
            let result = self
                .inner
                .session
                .execute_unpaged(&self.inner.st.pin_set_actual, (&peers, mh_prefix(cid), &key))
                .await
                .map_err(|e| map_exec(e, "record_placement", Access::Write))?;
            if lwt::outcome(result, "record_placement")?.applied {
                Ok(())
            } else {
                Err(Error::not_found(format!("pin {cid}")))
            }
        }
        .await;
        observe("record_placement", started, &r);
        r
    }

    /// Applies the schema migrations, then deletes stray view rows (`repair_views`);
    /// `records_rewritten` counts the rows deleted.
    async fn migrate(&self) -> Result<MigrationReport> {
        let (from, to) =
            schema::migrate(&self.inner.session, &self.inner.config, schema::CURRENT_VERSION)
                .await?;
        let repaired = self.repair_views().await?;
        Ok(MigrationReport {
            from: from as u32,
            to: to as u32,
            records_rewritten: repaired.peer_rows_deleted + repaired.expiry_rows_deleted,
        })
    }
}
