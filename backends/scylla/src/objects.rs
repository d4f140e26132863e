//! [`Publisher`] on Cassandra: staged rows and chunks, and finalize as one LWT batch in the
//! set's partition (the set record `IF NOT EXISTS` plus every staged row `IF state = 'staged'`).
//! Its invariants are in the crate docs, the protocol in full in the crate's README.

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use pinvault_core::publish;
use pinvault_core::{
    Error, ObjectKey, ObjectMeta, ObjectName, Publication, PublishCapabilities, Publisher, Result,
    SetName, StagedObject, SweepReport, Version,
};
use scylla::statement::batch::{Batch as CqlBatch, BatchType};
use scylla::value::CqlValue;
use tracing::Instrument;

use crate::errors::{map_exec, map_other};
use crate::{
    lwt, observe, rows, ScyllaBackend, CHUNK_BYTES, FINALIZE_COMMITTED, FINALIZE_PREPARED,
};
use crate::{STAGE_RECORDED, STAGE_WRITTEN};
use pinvault_core::error::Access;

/// The reserved object name a set's manifest is staged under (names starting with `_pinvault`
/// are refused for callers, so it never collides).
const MANIFEST_NAME: &str = "_pinvault.manifest";

type ObjTuple = (String, String, i64, Vec<u8>);

/// A set record.
struct SetRecord {
    version: Version,
    published_at: DateTime<Utc>,
    manifest_id: String,
    objects: Vec<ObjTuple>,
}

fn micros_to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl ScyllaBackend {
    async fn stage_inner(
        &self,
        set: &SetName,
        name: &str,
        bytes: Bytes,
        crash_points: bool,
    ) -> Result<(String, u64, [u8; 32], DateTime<Utc>)> {
        let size = bytes.len() as u64;
        let sha = publish::sha256(&bytes);
        let stage_id = hex::encode(crate::token());
        let staged_at_us = Utc::now().timestamp_micros();
        let st = &self.inner.st;
        let s = &self.inner.session;
        self.retrying("stage", || async {
            s.execute_unpaged(
                &st.staged_insert,
                (set.as_str(), &stage_id, name, size as i64, sha.to_vec(), staged_at_us),
            )
            .await
            .map(|_| ())
            .map_err(|e| map_exec(e, "stage", Access::Write))
        })
        .await?;
        if crash_points {
            self.inner.faults.hit(STAGE_RECORDED)?;
        }
        let chunks: Vec<(i32, Bytes)> = (0..bytes.len().div_ceil(CHUNK_BYTES).max(1))
            .map(|i| {
                let end = ((i + 1) * CHUNK_BYTES).min(bytes.len());
                (i as i32, bytes.slice(i * CHUNK_BYTES..end))
            })
            .collect();
        stream::iter(chunks.into_iter().map(|(i, chunk)| {
            let stage_id = &stage_id;
            async move {
                let data = chunk.to_vec();
                self.retrying("stage chunk", || async {
                    s.execute_unpaged(&st.chunk_insert, (stage_id, i, &data))
                        .await
                        .map(|_| ())
                        .map_err(|e| map_exec(e, "stage chunk", Access::Write))
                })
                .await
            }
        }))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
        if crash_points {
            self.inner.faults.hit(STAGE_WRITTEN)?;
        }
        Ok((stage_id, size, sha, micros_to_time(staged_at_us)))
    }

    async fn read_set(&self, set: &str) -> Result<Option<SetRecord>> {
        let rows = self
            .retrying("read set", || async {
                self.inner
                    .session
                    .execute_unpaged(&self.inner.st.set_get, (set,))
                    .await
                    .map_err(|e| map_exec(e, "read set", Access::Read))
            })
            .await?
            .into_rows_result()
            .map_err(|e| map_other(e, "read set"))?;
        let row = rows
            .maybe_first_row::<(Option<Vec<u8>>, Option<i64>, Option<String>, Option<Vec<ObjTuple>>)>()
            .map_err(|e| map_other(e, "read set"))?;
        let Some((Some(version), published, manifest_id, objects)) = row else { return Ok(None) };
        Ok(Some(SetRecord {
            version: Version::from_bytes(version),
            published_at: micros_to_time(published.unwrap_or(0)),
            manifest_id: manifest_id.unwrap_or_default(),
            objects: objects.unwrap_or_default(),
        }))
    }

    async fn read_chunks(&self, stage_id: &str, size: u64, what: &str) -> Result<Bytes> {
        let pager = self
            .inner
            .session
            .execute_iter(self.inner.st.chunk_get.clone(), (stage_id,))
            .await
            .map_err(|e| map_other(e, "read object"))?;
        let mut rows =
            pager.rows_stream::<(Vec<u8>,)>().map_err(|e| map_other(e, "read object"))?;
        let mut out = BytesMut::with_capacity(size as usize);
        while let Some(row) = rows.next().await {
            let (data,) = row.map_err(|e| map_other(e, "read object"))?;
            out.extend_from_slice(&data);
        }
        if out.len() as u64 != size {
            return Err(Error::corrupt(
                what,
                format!("{} bytes stored, {size} expected", out.len()),
            ));
        }
        Ok(out.freeze())
    }

    fn meta(set: &SetName, rec: &SetRecord, o: &ObjTuple) -> Result<ObjectMeta> {
        let name = ObjectName::new(o.0.clone())
            .map_err(|e| Error::corrupt(format!("set {set}"), e.to_string()).with_source(e))?;
        let sha: [u8; 32] =
            o.3.as_slice()
                .try_into()
                .map_err(|_| Error::corrupt(format!("set {set}"), "a SHA-256 is not 32 bytes"))?;
        Ok(ObjectMeta {
            key: ObjectKey::new(set.clone(), name),
            size: o.2.max(0) as u64,
            sha256: sha,
            version: rec.version.clone(),
        })
    }

    /// Aborts one staged row by LWT; deletes its bytes when this call aborted it.
    async fn abort_one(&self, set: &str, stage_id: &str) -> Result<bool> {
        let st = &self.inner.st;
        let s = &self.inner.session;
        let r = s
            .execute_unpaged(&st.staged_abort, (set, stage_id))
            .await
            .map_err(|e| map_exec(e, "abort", Access::Write))?;
        let applied = lwt::outcome(r, "abort")?.applied;
        if applied {
            self.delete_staged(set, stage_id).await?;
        }
        Ok(applied)
    }

    async fn delete_staged(&self, set: &str, stage_id: &str) -> Result<()> {
        let st = &self.inner.st;
        let s = &self.inner.session;
        s.execute_unpaged(&st.chunk_delete, (stage_id,))
            .await
            .map_err(|e| map_exec(e, "delete chunks", Access::Write))?;
        s.execute_unpaged(&st.staged_delete, (set, stage_id))
            .await
            .map_err(|e| map_exec(e, "delete staged", Access::Write))?;
        Ok(())
    }

    async fn finalize_inner(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        // The input rules (validate_finalize) were checked by the checking layer.
        let st = &self.inner.st;
        let s = &self.inner.session;
        // The set's partition: its record and its staged rows.
        let rows = s
            .execute_unpaged(&st.set_partition, (set.as_str(),))
            .await
            .map_err(|e| map_exec(e, "read set", Access::Read))?
            .into_rows_result()
            .map_err(|e| map_other(e, "read set"))?;
        type PartRow =
            (String, String, Option<String>, Option<i64>, Option<Vec<u8>>, Option<String>);
        let mut staged_rows = HashMap::new();
        for row in rows.rows::<PartRow>().map_err(|e| map_other(e, "read set"))? {
            let (kind, stage_id, name, size, sha, state) =
                row.map_err(|e| map_other(e, "read set"))?;
            if kind == "set" {
                return Err(Error::AlreadyExists { what: format!("published set {set}") });
            }
            staged_rows.insert(stage_id, (name, size, sha, state));
        }
        for o in staged {
            let ok = staged_rows.get(&o.stage_id).is_some_and(|(name, size, sha, state)| {
                name.as_deref() == Some(o.name.as_str())
                    && *size == Some(o.size as i64)
                    && sha.as_deref() == Some(&o.sha256[..])
                    && state.as_deref() == Some("staged")
            });
            if !ok {
                return Err(Error::not_found(format!(
                    "staged object {} ({}) of set {set}",
                    o.name, o.stage_id
                )));
            }
        }
        let (manifest_id, manifest_size, _, _) =
            self.stage_inner(set, MANIFEST_NAME, manifest.clone(), false).await?;
        let _ = manifest_size;
        // Index rows written ahead; list shows them only once the set record names them.
        futures::future::try_join_all(staged.iter().map(|o| async move {
            s.execute_unpaged(
                &st.index_insert,
                (format!("{set}/{}", o.name), set.as_str(), o.name.as_str()),
            )
            .await
            .map_err(|e| map_exec(e, "index", Access::Write))
        }))
        .await?;
        self.inner.faults.hit(FINALIZE_PREPARED)?;

        let mut sorted: Vec<&StagedObject> = staged.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let objects: Vec<ObjTuple> = sorted
            .iter()
            .map(|o| (o.name.to_string(), o.stage_id.clone(), o.size as i64, o.sha256.to_vec()))
            .collect();
        let version = Version::from_bytes(crate::token().to_vec());
        let published_us = Utc::now().timestamp_micros();
        let mut batch = CqlBatch::new(BatchType::Unlogged);
        let mut values: Vec<Vec<CqlValue>> = Vec::new();
        batch.append_statement(st.set_insert.clone());
        values.push(vec![
            CqlValue::Text(set.to_string()),
            CqlValue::Blob(version.as_bytes().to_vec()),
            CqlValue::BigInt(published_us),
            CqlValue::Text(manifest_id.clone()),
            CqlValue::List(
                objects
                    .iter()
                    .map(|(n, id, size, sha)| {
                        CqlValue::Tuple(vec![
                            Some(CqlValue::Text(n.clone())),
                            Some(CqlValue::Text(id.clone())),
                            Some(CqlValue::BigInt(*size)),
                            Some(CqlValue::Blob(sha.clone())),
                        ])
                    })
                    .collect(),
            ),
        ]);
        for id in staged.iter().map(|o| o.stage_id.clone()).chain([manifest_id.clone()]) {
            batch.append_statement(st.staged_publish.clone());
            values.push(vec![CqlValue::Text(set.to_string()), CqlValue::Text(id)]);
        }
        batch.set_serial_consistency(Some(self.inner.config.serial_consistency));
        let applied = match s.batch(&batch, &values).await {
            Ok(r) => lwt::outcome(r, "finalize")?.applied,
            Err(e) => match map_exec(e, "finalize", Access::Write) {
                Error::Unavailable { outcome_unknown: true, reason, source } => {
                    // Resolve by a SERIAL read of the set record: set records are never
                    // removed, so another version there means ours lost.
                    let mut p = st.set_get.clone();
                    p.set_consistency(scylla::statement::Consistency::Serial);
                    let rows = s
                        .execute_unpaged(&p, (set.as_str(),))
                        .await
                        .map_err(|e| map_exec(e, "finalize read-back", Access::Read))?
                        .into_rows_result()
                        .map_err(|e| map_other(e, "finalize read-back"))?;
                    let found = rows
                        .maybe_first_row::<(Option<Vec<u8>>, Option<i64>, Option<String>, Option<Vec<ObjTuple>>)>()
                        .map_err(|e| map_other(e, "finalize read-back"))?;
                    match found.and_then(|r| r.0) {
                        Some(v) if v == version.as_bytes() => true,
                        Some(_) => false,
                        None => {
                            return Err(Error::Unavailable {
                                reason,
                                outcome_unknown: true,
                                source,
                            })
                        }
                    }
                }
                other => return Err(other),
            },
        };
        if !applied {
            let _ = self.abort_one(set.as_str(), &manifest_id).await;
            return match self.read_set(set.as_str()).await? {
                Some(_) => Err(Error::AlreadyExists { what: format!("published set {set}") }),
                None => Err(Error::not_found(format!(
                    "a staged object of set {set} (aborted or swept concurrently)"
                ))),
            };
        }
        self.inner.faults.hit(FINALIZE_COMMITTED)?;
        let rec = SetRecord {
            version: version.clone(),
            published_at: micros_to_time(published_us),
            manifest_id,
            objects,
        };
        let metas =
            rec.objects.iter().map(|o| Self::meta(set, &rec, o)).collect::<Result<Vec<_>>>()?;
        Ok(Publication {
            set: set.clone(),
            version,
            published_at: rec.published_at,
            manifest,
            objects: metas,
        })
    }
}

#[async_trait]
impl Publisher for ScyllaBackend {
    fn publish_capabilities(&self) -> PublishCapabilities {
        let mut caps = PublishCapabilities::none(crate::BACKEND);
        caps.persistent = true;
        caps.durable_on_return = self.quorum_writes();
        caps.atomic_publication = true;
        caps.max_object_size = Some(crate::MAX_OBJECT_SIZE);
        caps.crash_points = crate::PUBLISH_CRASH_POINTS;
        caps
    }

    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject> {
        let started = Instant::now();
        // The size limit (MAX_OBJECT_SIZE) is the checking layer's.
        let size = bytes.len() as u64;
        let span = tracing::debug_span!("scylla.stage", %set, %name, size);
        let r = self.stage_inner(set, name.as_str(), bytes, true).instrument(span).await;
        observe("stage", started, &r);
        let (stage_id, size, sha256, staged_at) = r?;
        Ok(StagedObject { set: set.clone(), name: name.clone(), stage_id, size, sha256, staged_at })
    }

    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        let started = Instant::now();
        let span = tracing::debug_span!("scylla.finalize", %set, objects = staged.len());
        let r = self.finalize_inner(set, staged, manifest).instrument(span).await;
        observe("finalize", started, &r);
        r
    }

    async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        for o in staged {
            self.abort_one(o.set.as_str(), &o.stage_id).await?;
        }
        Ok(())
    }

    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        let cutoff_us = cutoff.timestamp_micros();
        let pager = self
            .inner
            .session
            .execute_iter(self.inner.st.staged_scan.clone(), ())
            .await
            .map_err(|e| map_other(e, "sweep"))?;
        type ScanRow = (String, String, String, Option<i64>, Option<i64>, Option<String>);
        let mut rows = pager.rows_stream::<ScanRow>().map_err(|e| map_other(e, "sweep"))?;
        let mut report = SweepReport::default();
        let mut leftovers = Vec::new();
        let mut candidates = Vec::new();
        while let Some(row) = rows.next().await {
            let (set, kind, stage_id, size, staged_at, state) =
                row.map_err(|e| map_other(e, "sweep"))?;
            if kind != "staged" {
                continue;
            }
            match state.as_deref() {
                Some("staged") if staged_at.unwrap_or(i64::MIN) < cutoff_us => {
                    candidates.push((set, stage_id, size.unwrap_or(0)))
                }
                Some("aborted") => leftovers.push((set, stage_id)),
                _ => {}
            }
        }
        for (set, stage_id, size) in candidates {
            if self.abort_one(&set, &stage_id).await? {
                report.removed += 1;
                report.bytes += size.max(0) as u64;
            }
        }
        for (set, stage_id) in leftovers {
            self.delete_staged(&set, &stage_id).await?;
        }
        Ok(report)
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let rec = self
            .read_set(key.set.as_str())
            .await?
            .ok_or_else(|| Error::not_found(format!("object {key}")))?;
        let o = rec
            .objects
            .iter()
            .find(|o| o.0 == key.name.as_str())
            .ok_or_else(|| Error::not_found(format!("object {key}")))?;
        Self::meta(&key.set, &rec, o)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let started = Instant::now();
        let r = async {
            let rec = self
                .read_set(key.set.as_str())
                .await?
                .ok_or_else(|| Error::not_found(format!("object {key}")))?;
            let o = rec
                .objects
                .iter()
                .find(|o| o.0 == key.name.as_str())
                .ok_or_else(|| Error::not_found(format!("object {key}")))?;
            self.read_chunks(&o.1, o.2.max(0) as u64, &format!("object {key}")).await
        }
        .await;
        observe("get_object", started, &r);
        r
    }

    async fn publication(&self, set: &SetName) -> Result<Publication> {
        let rec = self
            .read_set(set.as_str())
            .await?
            .ok_or_else(|| Error::not_found(format!("published set {set}")))?;
        // The manifest's size is not in the record: read all its chunks.
        let pager = self
            .inner
            .session
            .execute_iter(self.inner.st.chunk_get.clone(), (rec.manifest_id.as_str(),))
            .await
            .map_err(|e| map_other(e, "read manifest"))?;
        let mut rows = pager.rows_stream::<(Vec<u8>,)>().map_err(|e| map_other(e, "manifest"))?;
        let mut manifest = BytesMut::new();
        while let Some(row) = rows.next().await {
            manifest.extend_from_slice(&row.map_err(|e| map_other(e, "manifest"))?.0);
        }
        let objects =
            rec.objects.iter().map(|o| Self::meta(set, &rec, o)).collect::<Result<Vec<_>>>()?;
        Ok(Publication {
            set: set.clone(),
            version: rec.version.clone(),
            published_at: rec.published_at,
            manifest: manifest.freeze(),
            objects,
        })
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        let prefix = prefix.to_owned();
        let stmt = self.inner.st.index_scan.clone();
        let start = prefix.clone();
        rows::<(String, String, String)>(self.inner.session.clone(), stmt, (start,), "list")
            .try_take_while(move |(key_text, _, _)| {
                let keep = key_text.starts_with(&prefix);
                async move { Ok(keep) }
            })
            .map_ok(move |(_, set_name, object_name)| async move {
                let Ok(set) = SetName::new(set_name) else { return Ok(None) };
                match self
                    .head(&ObjectKey::new(
                        set,
                        match ObjectName::new(object_name) {
                            Ok(n) => n,
                            Err(_) => return Ok(None),
                        },
                    ))
                    .await
                {
                    Ok(meta) => Ok(Some(meta)),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .try_buffered(8)
            .try_filter_map(|m| async move { Ok(m) })
            .boxed()
    }
}
