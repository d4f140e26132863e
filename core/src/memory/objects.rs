//! The object tables of the memory backend: staged objects and published sets.
//!
//! Pure data and the rules to change it; locking is [`super::store`]'s job.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::name::{ObjectKey, SetName};
use crate::publish::{ObjectMeta, Publication, StagedObject, SweepReport};
use crate::version::Version;
use crate::{Error, Result};

/// Staged objects by stage id; published sets, objects and bytes.
#[derive(Debug, Default)]
pub(crate) struct ObjectTables {
    /// Invisible to every reader: only `finalize`, `abort` and `sweep` look here.
    staged: HashMap<String, (StagedObject, Bytes)>,
    published: BTreeMap<SetName, Publication>,
    /// Published objects with their bytes, for `head` and `get`.
    objects: HashMap<ObjectKey, (ObjectMeta, Bytes)>,
    /// Published keys by their `set/name` text, the order of `list`. Two keys can share one
    /// text (set `a/b` object `c`, set `a` object `b/c`); they are then ordered by set.
    listing: BTreeMap<String, BTreeMap<SetName, ObjectMeta>>,
}

impl ObjectTables {
    pub(crate) fn stage(&mut self, staged: StagedObject, bytes: Bytes) {
        self.staged.insert(staged.stage_id.clone(), (staged, bytes));
    }

    /// The state-dependent checks of `finalize`, in the contract's order: `AlreadyExists`, then
    /// `NotFound` for a staged object that is gone or is not the one the caller was handed.
    pub(crate) fn check_finalize(&self, set: &SetName, staged: &[StagedObject]) -> Result<()> {
        if self.published.contains_key(set) {
            return Err(Error::AlreadyExists { what: format!("published set {set}") });
        }
        for s in staged {
            let held = self.staged.get(&s.stage_id).map(|(held, _)| held);
            let same = held.is_some_and(|h| {
                h.set == s.set && h.name == s.name && h.size == s.size && h.sha256 == s.sha256
            });
            if !same {
                return Err(Error::not_found(format!(
                    "staged object {} ({}) of set {set}",
                    s.name, s.stage_id
                )));
            }
        }
        Ok(())
    }

    /// Moves checked staged objects into a new publication of `set`.
    pub(crate) fn publish(
        &mut self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
        version: Version,
        published_at: DateTime<Utc>,
    ) -> Publication {
        let mut objects = Vec::with_capacity(staged.len());
        for s in staged {
            let Some((held, bytes)) = self.staged.remove(&s.stage_id) else { continue };
            let key = ObjectKey::new(set.clone(), held.name);
            let meta = ObjectMeta {
                key: key.clone(),
                size: held.size,
                sha256: held.sha256,
                version: version.clone(),
            };
            self.listing.entry(key.to_string()).or_default().insert(set.clone(), meta.clone());
            self.objects.insert(key, (meta.clone(), bytes));
            objects.push(meta);
        }
        objects.sort_by(|a, b| a.key.name.cmp(&b.key.name));
        let publication =
            Publication { set: set.clone(), version, published_at, manifest, objects };
        self.published.insert(set.clone(), publication.clone());
        publication
    }

    pub(crate) fn abort(&mut self, staged: &[StagedObject]) {
        for s in staged {
            self.staged.remove(&s.stage_id);
        }
    }

    pub(crate) fn sweep(&mut self, cutoff: DateTime<Utc>) -> SweepReport {
        let mut report = SweepReport::default();
        self.staged.retain(|_, (s, _)| {
            let keep = s.staged_at >= cutoff;
            if !keep {
                report.removed += 1;
                report.bytes += s.size;
            }
            keep
        });
        report
    }

    /// How many objects are staged (for tests and debugging; staged data is never listed).
    pub(crate) fn staged_count(&self) -> usize {
        self.staged.len()
    }

    pub(crate) fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.objects
            .get(key)
            .map(|(meta, _)| meta.clone())
            .ok_or_else(|| Error::not_found(format!("object {key}")))
    }

    pub(crate) fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.objects
            .get(key)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| Error::not_found(format!("object {key}")))
    }

    pub(crate) fn publication(&self, set: &SetName) -> Result<Publication> {
        self.published
            .get(set)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("published set {set}")))
    }

    /// Published objects whose `set/name` starts with `prefix`, in key-text order.
    pub(crate) fn list(&self, prefix: &str) -> Vec<ObjectMeta> {
        self.listing
            .range(prefix.to_owned()..)
            .take_while(|(text, _)| text.starts_with(prefix))
            .flat_map(|(_, by_set)| by_set.values().cloned())
            .collect()
    }
}
