//! Atomic publication: staged bytes that never move, and one manifest created with
//! `PutMode::Create` as the commit point.
//!
//! * **stage** writes the pending record `pending/<id>`, then the bytes `staging/<id>/data`
//!   (two PUTs, in that order, so a crash between them leaves a record a sweep finds, never
//!   bytes nobody knows about).
//! * **finalize** checks the input, then issues at once one `HEAD` of the manifest key and one
//!   `HEAD` per staged object's bytes: a manifest means `AlreadyExists`; a missing object, a
//!   size that differs, or a stage id whose binding does not match the `StagedObject` means
//!   `NotFound` (that order). Then it creates the manifest with `PutMode::Create`: the one
//!   conditional step that publishes the set. Losing that race is `AlreadyExists`. Only then
//!   are the pending records deleted (in bulk where the store can).
//! * **readers** (`head`, `get`, `publication`, `list`) look at manifests only: an object is
//!   visible exactly when a manifest lists it, and its bytes are read where staging put them.
//! * **abort** and **sweep** delete bytes only for objects that still have a pending record
//!   *and* that the manifest of their set (if any) does not list: a crash between the manifest
//!   PUT and the cleanup leaves pending records of published objects, and those lose only the
//!   record. Bytes go first, the record last, so an interrupted abort or sweep leaves a record
//!   for the next sweep.
//!
//! An `abort` or `sweep` racing a `finalize` *of the same staged objects* can delete bytes the
//! finalize has just checked; nothing short of one conditional write per object (claiming it)
//! closes that window, which would double a finalize's writes. Sweep with a cutoff far older
//! than any finalize in flight (hours), as Delta Lake's VACUUM retention does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::stream::{self, StreamExt};
use object_store::{GetOptions, ObjectStore, PutMode};
use pinvault_core::publish::{self, ObjectMeta, Publication, StagedObject, SweepReport};
use pinvault_core::{Error, ObjectKey, ObjectName, Result, SetName, Version};
use prost::Message;
use tracing::Instrument;

use crate::layout::{self, ManifestObject, ManifestRecord, PendingRecord, FORMAT_VERSION};
use crate::listing;
use crate::store::Inner;
use crate::{FINALIZE_COMMITTED, FINALIZE_VALIDATED, STAGE_PENDING_WRITTEN, STAGE_WRITTEN};
use pinvault_core::error::Access;

/// A decoded manifest: the publication and where each object's bytes are.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) publication: Publication,
    /// Object name → (stage id, ETag at publication).
    locations: HashMap<String, (String, String)>,
}

impl Published {
    fn decode(set: &SetName, path: &object_store::path::Path, bytes: &[u8]) -> Result<Self> {
        let record: ManifestRecord = layout::decode(path, bytes)?;
        if record.format > FORMAT_VERSION {
            return Err(layout::corrupt(
                path,
                format!("manifest format {} is newer than this build", record.format),
            ));
        }
        if record.set != set.as_str() {
            return Err(layout::corrupt(path, format!("manifest of set {:?}", record.set)));
        }
        let published_at = Utc
            .timestamp_opt(record.published_secs, record.published_nanos)
            .single()
            .ok_or_else(|| layout::corrupt(path, "time out of range"))?;
        let version = Version::from_bytes(record.version.clone());
        let mut objects = Vec::with_capacity(record.objects.len());
        let mut locations = HashMap::with_capacity(record.objects.len());
        for o in record.objects {
            let name = ObjectName::new(o.name.as_str())
                .map_err(|e| layout::corrupt(path, e.to_string()).with_source(e))?;
            let sha256: [u8; 32] = o.sha256.as_slice().try_into().map_err(|_| {
                layout::corrupt(path, format!("digest of {} bytes", o.sha256.len()))
            })?;
            objects.push(ObjectMeta {
                key: ObjectKey::new(set.clone(), name),
                size: o.size,
                sha256,
                version: version.clone(),
            });
            locations.insert(o.name, (o.stage_id, o.e_tag));
        }
        Ok(Published {
            publication: Publication {
                set: set.clone(),
                version,
                published_at,
                manifest: Bytes::from(record.manifest),
                objects,
            },
            locations,
        })
    }

    fn lists(&self, stage_id: &str) -> bool {
        self.locations.values().any(|(id, _)| id == stage_id)
    }
}

impl Inner {
    /// The published set `set`, from the cache or its manifest.
    pub(crate) async fn published(&self, set: &SetName) -> Result<Option<Arc<Published>>> {
        if let Some(p) = self.manifests.lock().unwrap_or_else(|e| e.into_inner()).get(set) {
            return Ok(Some(p.clone()));
        }
        let path = self.layout.manifest(set);
        let Some((bytes, _)) = self.read(&path, &format!("manifest of {set}")).await? else {
            return Ok(None);
        };
        let published = Arc::new(Published::decode(set, &path, &bytes)?);
        self.remember(set, published.clone());
        Ok(Some(published))
    }

    fn remember(&self, set: &SetName, published: Arc<Published>) {
        let mut cache = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= crate::store::MANIFEST_CACHE {
            cache.clear();
        }
        cache.insert(set.clone(), published);
    }

    /// Writes the pending record, then the bytes.
    pub(crate) async fn stage(
        &self,
        set: &SetName,
        name: &ObjectName,
        bytes: Bytes,
    ) -> Result<StagedObject> {
        // The size limit (MAX_OBJECT_SIZE) is the checking layer's.
        let size = bytes.len() as u64;
        let sha256 = publish::sha256(&bytes);
        let staged_at = Utc::now();
        let binding = layout::binding(set, name, size, &sha256);
        let stage_id = layout::stage_id(staged_at, self.clock.nonce(), &binding);
        let span = tracing::debug_span!("object.stage", backend = self.backend, %set, %name, stage_id = %stage_id);
        async {
            let record = PendingRecord {
                set: set.to_string(),
                name: name.to_string(),
                size,
                sha256: sha256.to_vec(),
            };
            self.put(
                &self.layout.pending(&stage_id),
                Bytes::from(record.encode_to_vec()),
                "pending record",
            )
            .await?;
            self.faults.hit(STAGE_PENDING_WRITTEN)?;
            self.put(
                &self.layout.staged_data(&stage_id),
                bytes,
                &format!("staged object {set}/{name}"),
            )
            .await?;
            self.faults.hit(STAGE_WRITTEN)?;
            Ok(StagedObject {
                set: set.clone(),
                name: name.clone(),
                stage_id: stage_id.clone(),
                size,
                sha256,
                staged_at,
            })
        }
        .instrument(span)
        .await
    }

    /// Publishes `staged` and `manifest` as `set` with one `PutMode::Create`.
    pub(crate) async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication> {
        // The input rules (validate_finalize) were checked by the checking layer.
        let span = tracing::debug_span!("object.finalize", backend = self.backend, %set, objects = staged.len());
        async {
            let manifest_path = self.layout.manifest(set);
            let heads = stream::iter(0..staged.len())
                .map(|i| async move {
                    let s = &staged[i];
                    if !layout::binding_holds(s) {
                        return Ok::<_, Error>(None);
                    }
                    let meta =
                        self.head(&self.layout.staged_data(&s.stage_id), "staged object").await?;
                    Ok::<_, Error>(meta.filter(|m| m.size == s.size))
                })
                .buffered(self.concurrency)
                .collect::<Vec<_>>();
            let what = format!("manifest of {set}");
            let (existing, heads) = futures::join!(self.head(&manifest_path, &what), heads);
            if existing?.is_some() {
                return Err(Error::AlreadyExists { what: format!("published set {set}") });
            }
            let mut objects = Vec::with_capacity(staged.len());
            for (s, head) in staged.iter().zip(heads) {
                let Some(meta) = head? else {
                    return Err(Error::not_found(format!(
                        "staged object {} ({}) of set {set}",
                        s.name, s.stage_id
                    )));
                };
                objects.push((s, meta));
            }
            self.faults.hit(FINALIZE_VALIDATED)?;
            objects.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            let (_, version) = self.clock.write_id();
            let published_at = Utc::now();
            let record = ManifestRecord {
                format: FORMAT_VERSION,
                set: set.to_string(),
                version: version.to_vec(),
                published_secs: published_at.timestamp(),
                published_nanos: published_at.timestamp_subsec_nanos(),
                manifest: manifest.to_vec(),
                objects: objects
                    .iter()
                    .map(|(s, meta)| ManifestObject {
                        name: s.name.to_string(),
                        size: s.size,
                        sha256: s.sha256.to_vec(),
                        stage_id: s.stage_id.clone(),
                        e_tag: meta.e_tag.clone().unwrap_or_default(),
                        data_version: meta.version.clone().unwrap_or_default(),
                    })
                    .collect(),
            };
            let bytes = Bytes::from(record.encode_to_vec());
            match self.put_raw(&manifest_path, bytes.clone(), PutMode::Create).await {
                Ok(_) => {}
                Err(e) if crate::store::lost_race(&e) => {
                    return Err(Error::AlreadyExists { what: format!("published set {set}") });
                }
                Err(e) => return Err(self.err(Access::Write, &format!("manifest of {set}"), e)),
            }
            tracing::debug!("object: set published");
            self.faults.hit(FINALIZE_COMMITTED)?;
            let pending = staged.iter().map(|s| self.layout.pending(&s.stage_id)).collect();
            self.delete_quietly(pending, "pending records of a published set").await;
            let published = Arc::new(Published::decode(set, &manifest_path, &bytes)?);
            self.remember(set, published.clone());
            Ok(published.publication.clone())
        }
        .instrument(span)
        .await
    }

    /// Whether the manifest of `set` lists `stage_id` (cached per call in `seen`).
    async fn is_published(
        &self,
        set: &str,
        stage_id: &str,
        seen: &mut HashMap<String, Option<Arc<Published>>>,
    ) -> Result<bool> {
        if !seen.contains_key(set) {
            let published = match SetName::new(set) {
                Ok(name) => self.published(&name).await?,
                Err(_) => None,
            };
            seen.insert(set.to_owned(), published);
        }
        Ok(seen.get(set).and_then(Option::as_ref).is_some_and(|p| p.lists(stage_id)))
    }

    /// Deletes a staged object that is still pending: its bytes unless published, then its
    /// record. Returns the size removed, `None` when nothing unpublished was removed.
    async fn remove_pending(
        &self,
        stage_id: &str,
        seen: &mut HashMap<String, Option<Arc<Published>>>,
    ) -> Result<Option<u64>> {
        let path = self.layout.pending(stage_id);
        let Some((bytes, _)) = self.read(&path, "pending record").await? else { return Ok(None) };
        let record: PendingRecord = layout::decode(&path, &bytes)?;
        let published = self.is_published(&record.set, stage_id, seen).await?;
        if !published {
            self.delete_all(vec![self.layout.staged_data(stage_id)], "staged object").await?;
        }
        self.delete_all(vec![path], "pending record").await?;
        Ok((!published).then_some(record.size))
    }

    /// Removes still-staged objects; published or already removed ones are left alone.
    pub(crate) async fn abort(&self, staged: &[StagedObject]) -> Result<()> {
        let mut seen = HashMap::new();
        for s in staged {
            if layout::parse_stage_id(&s.stage_id).is_some() {
                self.remove_pending(&s.stage_id, &mut seen).await?;
            }
        }
        Ok(())
    }

    /// Removes objects staged strictly before `cutoff` that no manifest lists.
    pub(crate) async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport> {
        let pending = listing::all(&*self.store, &self.layout.pending_dir())
            .await
            .map_err(|e| self.err(Access::Read, "pending records", e))?;
        let mut report = SweepReport::default();
        let mut seen = HashMap::new();
        for meta in pending {
            let Some(stage_id) = meta.location.filename().map(str::to_owned) else { continue };
            let Some((staged_at, _)) = layout::parse_stage_id(&stage_id) else { continue };
            if staged_at >= cutoff {
                continue;
            }
            if let Some(size) = self.remove_pending(&stage_id, &mut seen).await? {
                report.removed += 1;
                report.bytes += size;
            }
        }
        tracing::debug!(backend = self.backend, removed = report.removed, "object: swept");
        Ok(report)
    }

    /// Metadata of a published object.
    pub(crate) async fn head_object(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let published = self.published(&key.set).await?;
        published
            .and_then(|p| p.publication.objects.iter().find(|o| o.key.name == key.name).cloned())
            .ok_or_else(|| Error::not_found(format!("object {key}")))
    }

    /// Bytes of a published object, read where staging put them.
    pub(crate) async fn get_object(&self, key: &ObjectKey) -> Result<Bytes> {
        let published = self.published(&key.set).await?;
        let Some((stage_id, e_tag)) =
            published.as_ref().and_then(|p| p.locations.get(key.name.as_str()))
        else {
            return Err(Error::not_found(format!("object {key}")));
        };
        let path = self.layout.staged_data(stage_id);
        let options = GetOptions {
            if_match: (!e_tag.is_empty()).then(|| e_tag.clone()),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&path, options).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(layout::corrupt(
                &path,
                format!("the bytes of published object {key} are missing"),
            )),
            Err(object_store::Error::Precondition { .. }) => Err(layout::corrupt(
                &path,
                format!("the bytes of published object {key} were replaced"),
            )),
            Err(e) => Err(self.err(Access::Read, &format!("object {key}"), e)),
        }
    }

    /// A published set.
    pub(crate) async fn publication(&self, set: &SetName) -> Result<Publication> {
        self.published(set)
            .await?
            .map(|p| p.publication.clone())
            .ok_or_else(|| Error::not_found(format!("published set {set}")))
    }

    /// Published objects whose `set/name` starts with `prefix`, by key text, then set.
    pub(crate) async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Every set that can hold a matching key starts with the prefix's first segment when
        // the prefix has one complete segment; otherwise every set is a candidate.
        let dir = match prefix.split_once('/') {
            Some((first, _)) => self.layout.sets_under(first),
            None => self.layout.sets_dir(),
        };
        let listed = listing::all(&*self.store, &dir)
            .await
            .map_err(|e| self.err(Access::Read, "manifests", e))?;
        let sets: HashSet<SetName> = listed
            .iter()
            .filter_map(|m| self.layout.set_of_manifest(&m.location))
            .filter(|set| {
                let with_slash = format!("{set}/");
                with_slash.starts_with(prefix) || prefix.starts_with(&with_slash)
            })
            .collect();
        let manifests: Vec<Result<Option<Arc<Published>>>> = stream::iter(sets)
            .map(|set: SetName| async move { self.published(&set).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut out = Vec::new();
        for published in manifests {
            let Some(published) = published? else { continue };
            out.extend(
                published
                    .publication
                    .objects
                    .iter()
                    .filter(|o| o.key.to_string().starts_with(prefix))
                    .cloned(),
            );
        }
        out.sort_by(|a, b| (a.key.to_string(), &a.key.set).cmp(&(b.key.to_string(), &b.key.set)));
        Ok(out)
    }
}
