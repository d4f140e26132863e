//! Contract 2: atomic publication of object sets.
//!
//! A writer stages objects, then finalizes the set: one atomic step makes every object and the
//! manifest visible together. This is how a data pipeline publishes the Parquet files of a
//! partition without readers ever seeing half of them.
//!
//! # Promises every backend keeps (checked by `pinvault-conformance`)
//!
//! * **Staged is invisible.** Nothing `stage` writes is returned by `head`, `get`, `list` or
//!   `publication` until the set is finalized.
//! * **All or nothing.** When `finalize` returns `Ok`, every staged object and the manifest are
//!   visible. When it returns an error, or the process dies at any instant before it returns,
//!   readers see none of them (after a crash: once the store is reopened). Visibility is defined
//!   by one record written with one conditional step (a put-if-absent manifest, a no-replace
//!   rename, one transaction, one lightweight transaction), never by a loop of per-object moves.
//! * **First writer wins.** If the set is already published, `finalize` fails with
//!   [`Error::AlreadyExists`] and changes nothing. Of N concurrent finalizers of one set exactly
//!   one returns `Ok`; the others get `AlreadyExists`, and their staged objects stay staged for
//!   them to `abort`.
//! * **Check order.** `finalize` reports, in this order: [`Error::InvalidInput`] (a staged
//!   object of another set, two objects with one name, an oversized manifest), then
//!   [`Error::AlreadyExists`], then [`Error::NotFound`] (a staged object that was aborted, swept
//!   or already published). Backends follow the same order so results compare exactly.
//! * **Abort and sweep.** `abort` removes the given staged objects (ignoring ones already gone)
//!   and never touches published data. `sweep(cutoff)` removes staged objects staged strictly
//!   before `cutoff` — the leftovers of crashed writers — and nothing else.
//! * **Names.** Set and object names are [`SetName`]/[`ObjectName`], which refuse `..`, absolute
//!   paths, NUL, control characters, empty and oversized names, so no name escapes the store,
//!   and names not in Unicode NFC or carrying bidirectional or invisible formatting characters,
//!   so one visible name has one spelling (see [`crate::name`]).
//!   An object is identified by the pair `(set, name)`: set `a/b` with object `c` and set `a`
//!   with object `b/c` are two objects even though both print as `a/b/c`. Path-based backends
//!   must encode the pair so the two never land on one path; `list` yields both, ordered by set.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};

use crate::capability::PublishCapabilities;
use crate::name::{ObjectKey, ObjectName, SetName};
use crate::version::Version;
use crate::{Error, Result};

/// Largest manifest `finalize` accepts, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// A staged, not yet visible object. Returned by `stage`, passed back to `finalize` or `abort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedObject {
    /// The set it is staged for.
    pub set: SetName,
    /// Its name inside the set.
    pub name: ObjectName,
    /// A unique token for this staging (two stagings of one name get two tokens).
    pub stage_id: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// When it was staged (backend clock); `sweep` compares against this.
    pub staged_at: DateTime<Utc>,
}

/// Metadata of a published object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Version of the publication that made it visible.
    pub version: Version,
}

/// A published set: its manifest and objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The set.
    pub set: SetName,
    /// The publication's version (shared by its objects).
    pub version: Version,
    /// When it was published (backend clock).
    pub published_at: DateTime<Utc>,
    /// The caller's manifest bytes.
    pub manifest: Bytes,
    /// The objects, in name order.
    pub objects: Vec<ObjectMeta>,
}

/// What a sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Staged objects removed.
    pub removed: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// SHA-256 of `bytes`, as carried in [`StagedObject`] and [`ObjectMeta`].
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks the input-only rules of `finalize` (first in the check order). Backends call this.
pub fn validate_finalize(set: &SetName, staged: &[StagedObject], manifest: &[u8]) -> Result<()> {
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(Error::invalid(
            format!("manifest of {set}"),
            format!("{} bytes exceed {MAX_MANIFEST_BYTES}", manifest.len()),
        ));
    }
    let mut names = std::collections::HashSet::with_capacity(staged.len());
    for s in staged {
        if &s.set != set {
            return Err(Error::invalid(
                format!("staged object {}", s.name),
                format!("was staged for set {}, not {set}", s.set),
            ));
        }
        if !names.insert(&s.name) {
            return Err(Error::invalid(
                format!("staged object {}", s.name),
                "two staged objects share this name",
            ));
        }
    }
    Ok(())
}

/// The atomic-publication contract. Object safe: use it as `Arc<dyn Publisher>`.
#[async_trait]
pub trait Publisher: Send + Sync + std::fmt::Debug {
    /// What this backend's publication guarantees (`atomic_publication`, `max_object_size`,
    /// crash points).
    fn publish_capabilities(&self) -> PublishCapabilities;

    /// Writes `bytes` where no reader can see it. Refuses objects above `max_object_size`.
    async fn stage(&self, set: &SetName, name: &ObjectName, bytes: Bytes) -> Result<StagedObject>;

    /// Publishes `staged` and `manifest` as set `set`, all or nothing, first writer wins.
    async fn finalize(
        &self,
        set: &SetName,
        staged: &[StagedObject],
        manifest: Bytes,
    ) -> Result<Publication>;

    /// Removes staged objects. Ones already gone (aborted, swept, published) are ignored.
    async fn abort(&self, staged: &[StagedObject]) -> Result<()>;

    /// Removes staged objects staged strictly before `cutoff`.
    async fn sweep(&self, cutoff: DateTime<Utc>) -> Result<SweepReport>;

    /// Metadata of a published object, or [`Error::NotFound`].
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta>;

    /// Bytes of a published object, or [`Error::NotFound`].
    async fn get(&self, key: &ObjectKey) -> Result<Bytes>;

    /// A published set, or [`Error::NotFound`].
    async fn publication(&self, set: &SetName) -> Result<Publication>;

    /// Published objects whose key (`set/name`) starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>>;
}

/// The whole publication protocol as one call, for every [`Publisher`]: implemented once here
/// and not overridable, so no backend can get the order wrong.
#[async_trait]
pub trait PublisherExt: Publisher {
    /// Stages `objects` in order, then finalizes them with `manifest` as set `set`. If a stage
    /// or the finalize fails, what was staged is aborted and the error that stopped the
    /// publication is returned (a failed abort is logged; [`Publisher::sweep`] removes what it
    /// left). `AlreadyExists` means another writer published `set` first.
    async fn publish(
        &self,
        set: &SetName,
        objects: Vec<(ObjectName, Bytes)>,
        manifest: Bytes,
    ) -> Result<Publication> {
        let mut staged = Vec::with_capacity(objects.len());
        for (name, bytes) in objects {
            match self.stage(set, &name, bytes).await {
                Ok(s) => staged.push(s),
                Err(e) => return Err(abort_after(self, &staged, e).await),
            }
        }
        match self.finalize(set, &staged, manifest).await {
            Ok(publication) => Ok(publication),
            Err(e) => Err(abort_after(self, &staged, e).await),
        }
    }
}

impl<P: Publisher + ?Sized> PublisherExt for P {}

/// Aborts `staged` after `error` stopped a publication, and gives `error` back.
async fn abort_after<P: Publisher + ?Sized>(p: &P, staged: &[StagedObject], error: Error) -> Error {
    if !staged.is_empty() {
        if let Err(abort) = p.abort(staged).await {
            tracing::warn!(
                objects = staged.len(),
                error = %abort,
                "aborting the staged objects of a failed publication failed too; sweep removes them"
            );
        }
    }
    error
}
