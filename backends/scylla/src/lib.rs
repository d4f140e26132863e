//! # pinvault-scylla
//!
//! pinvault's ScyllaDB / Apache Cassandra backend on the `scylla` driver: both contracts
//! ([`PinState`](pinvault_core::PinState) and [`Publisher`](pinvault_core::Publisher)) over
//! the CQL schema of `schema/` (applied at open by [`schema::migrate`]), with prepared
//! statements only. The invariants the modules rely on:
//!
//! * **Versions.** One row per pin in `pins_by_cid` carries the record and a random 128-bit
//!   version token written with every write, so a version never repeats (also after a remove
//!   and a re-insert). `Absent` → `INSERT … IF NOT EXISTS`; `Version(v)` → `UPDATE/DELETE … IF
//!   version = v`; `Any` → a plain write. LWT answers are read by column name ([`lwt`]); an LWT
//!   that times out is resolved by a SERIAL read ([`lwt::resolve`]), never blindly retried.
//! * **Batches.** A one-op batch is one LWT; a multi-op batch of `Any` ops is one LOGGED batch
//!   (all or nothing, not isolated across partitions); a multi-op batch with a precondition is
//!   refused with [`Error::Unsupported`] (LWT batches cannot span partitions).
//! * **Receipt sequences** come from one `commit_sequence` row advanced by compare-and-set
//!   before each commit, so a commit that returned before another started has a smaller
//!   sequence, across processes and reopen (gaps allowed).
//! * **Views** (`pins_by_peer`, `pin_ttl_queue`) live in other partitions than the pin, so a
//!   write (1) inserts the new state's view rows ahead, (2) writes the pin (the commit point),
//!   (3) re-inserts the new rows with a timestamp after the commit and deletes the old state's
//!   other rows with a timestamp taken before it. Reads keep a row only if the pin it names
//!   still matches it. So every committed pin's rows exist from its commit point on, whatever
//!   instant a crash hits; leftover rows are filtered, and deleted by
//!   [`ScyllaBackend::repair_views`]. Client timestamps strictly increase per instance.
//! * **Publication.** The set record, inserted `IF NOT EXISTS` in one LWT batch with the flip
//!   of every published staged row `IF state = 'staged'` (all in the set's partition), is the
//!   commit point and the only thing readers follow: a set is visible whole or not at all, and
//!   an `abort` (an LWT on the same rows) cannot delete published bytes.
//!
//! The crate's `README.md` has the capabilities, the reasons behind each protocol, its costs
//! and known limits, the configuration, errors and metrics.

#![deny(missing_docs)]

pub mod config;
pub mod errors;
pub mod lwt;
mod objects;
mod pins;
mod repair;
pub mod schema;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use pinvault_core::clock::{MonotonicClock, Resolution};
use pinvault_core::{Error, FaultInjector, Result};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

pub use config::{Replication, ScyllaConfig, TlsTrust, ENV_HINT, URL_FORM};
pub use errors::{ConnectError, BACKEND};
pub use pinvault_core::Secret;
pub use repair::{ViewRepairReport, VIEW_REPAIR_GRACE};

/// Crash point: views written ahead and sequence taken; the pins are not written.
pub const COMMIT_PREPARED: &str = "scylla.commit.prepared";
/// Crash point: the pin write (LWT or logged batch) is done.
pub const COMMIT_APPLIED: &str = "scylla.commit.applied";
/// Crash point: a staged row is recorded, its bytes are not written.
pub const STAGE_RECORDED: &str = "scylla.stage.recorded";
/// Crash point: a staged object is fully written.
pub const STAGE_WRITTEN: &str = "scylla.stage.written";
/// Crash point: manifest staged and index rows written ahead; the set record is not written.
pub const FINALIZE_PREPARED: &str = "scylla.finalize.prepared";
/// Crash point: the set record's LWT applied.
pub const FINALIZE_COMMITTED: &str = "scylla.finalize.committed";
/// The crash points of the commit path.
pub const PIN_CRASH_POINTS: &[&str] = &[COMMIT_PREPARED, COMMIT_APPLIED];
/// The crash points of the stage and finalize paths.
pub const PUBLISH_CRASH_POINTS: &[&str] =
    &[STAGE_RECORDED, STAGE_WRITTEN, FINALIZE_PREPARED, FINALIZE_COMMITTED];

/// Largest object `stage` accepts: 16 MiB.
pub const MAX_OBJECT_SIZE: u64 = 16 * 1024 * 1024;
/// Bytes per chunk row.
pub const CHUNK_BYTES: usize = 1024 * 1024;

macro_rules! stmts {
    ($($name:ident = $cql:literal,)*) => {
        /// Every prepared statement, with `{ks}` replaced by the keyspace.
        #[derive(Debug)]
        pub(crate) struct Stmts { $(pub(crate) $name: PreparedStatement,)* }

        impl Stmts {
            async fn prepare(session: &Session, ks: &str, config: &ScyllaConfig) -> Result<Self> {
                Ok(Stmts { $($name: {
                    let cql = $cql.replace("{ks}", ks);
                    let mut p = session.prepare(cql).await.map_err(|e| errors::map_other(e, concat!("prepare ", stringify!($name))))?;
                    p.set_page_size(256);
                    p.set_consistency(config.consistency);
                    p.set_serial_consistency(Some(config.serial_consistency));
                    p
                },)* })
            }
        }
    };
}

stmts! {
    pin_get = "SELECT record, version, placement_actual FROM {ks}.pins_by_cid WHERE mh_prefix = ? AND cid = ?",
    pin_insert_absent = "INSERT INTO {ks}.pins_by_cid (mh_prefix, cid, record, version) VALUES (?, ?, ?, ?) IF NOT EXISTS",
    pin_update_any = "UPDATE {ks}.pins_by_cid SET record = ?, version = ? WHERE mh_prefix = ? AND cid = ?",
    pin_update_if = "UPDATE {ks}.pins_by_cid SET record = ?, version = ? WHERE mh_prefix = ? AND cid = ? IF version = ?",
    pin_delete_any = "DELETE FROM {ks}.pins_by_cid WHERE mh_prefix = ? AND cid = ?",
    pin_delete_if = "DELETE FROM {ks}.pins_by_cid WHERE mh_prefix = ? AND cid = ? IF version = ?",
    pin_set_actual = "UPDATE {ks}.pins_by_cid SET placement_actual = ? WHERE mh_prefix = ? AND cid = ? IF EXISTS",
    pin_scan_all = "SELECT mh_prefix, cid, record, version FROM {ks}.pins_by_cid",
    pin_scan_after_token = "SELECT mh_prefix, cid, record, version FROM {ks}.pins_by_cid WHERE token(mh_prefix) > token(?)",
    pin_scan_partition_after = "SELECT mh_prefix, cid, record, version FROM {ks}.pins_by_cid WHERE mh_prefix = ? AND cid > ?",
    peer_insert = "INSERT INTO {ks}.pins_by_peer (peer, cid) VALUES (?, ?) USING TIMESTAMP ?",
    peer_delete = "DELETE FROM {ks}.pins_by_peer USING TIMESTAMP ? WHERE peer = ? AND cid = ?",
    peer_scan = "SELECT cid FROM {ks}.pins_by_peer WHERE peer = ?",
    peer_all = "SELECT peer, cid FROM {ks}.pins_by_peer",
    peer_one = "SELECT cid FROM {ks}.pins_by_peer WHERE peer = ? AND cid = ?",
    ttl_insert = "INSERT INTO {ks}.pin_ttl_queue (bucket, expire_s, expire_ns, cid) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
    ttl_delete = "DELETE FROM {ks}.pin_ttl_queue USING TIMESTAMP ? WHERE bucket = ? AND expire_s = ? AND expire_ns = ? AND cid = ?",
    ttl_scan = "SELECT expire_s, expire_ns, cid FROM {ks}.pin_ttl_queue WHERE bucket = ?",
    ttl_all = "SELECT bucket, expire_s, expire_ns, cid FROM {ks}.pin_ttl_queue",
    ttl_one = "SELECT cid FROM {ks}.pin_ttl_queue WHERE bucket = ? AND expire_s = ? AND expire_ns = ? AND cid = ?",
    bucket_insert = "INSERT INTO {ks}.pin_ttl_buckets (shard, bucket) VALUES (0, ?) USING TIMESTAMP ?",
    bucket_scan = "SELECT bucket FROM {ks}.pin_ttl_buckets WHERE shard = 0 AND bucket <= ?",
    seq_init = "INSERT INTO {ks}.commit_sequence (id, seq) VALUES (0, 0) IF NOT EXISTS",
    seq_cas = "UPDATE {ks}.commit_sequence SET seq = ? WHERE id = 0 IF seq = ?",
    seq_get = "SELECT seq FROM {ks}.commit_sequence WHERE id = 0",
    staged_insert = "INSERT INTO {ks}.publication_sets (set_name, kind, stage_id, object_name, size, sha256, staged_at_us, state) VALUES (?, 'staged', ?, ?, ?, ?, ?, 'staged')",
    staged_abort = "UPDATE {ks}.publication_sets SET state = 'aborted' WHERE set_name = ? AND kind = 'staged' AND stage_id = ? IF state = 'staged'",
    staged_publish = "UPDATE {ks}.publication_sets SET state = 'published' WHERE set_name = ? AND kind = 'staged' AND stage_id = ? IF state = 'staged'",
    staged_delete = "DELETE FROM {ks}.publication_sets WHERE set_name = ? AND kind = 'staged' AND stage_id = ?",
    set_partition = "SELECT kind, stage_id, object_name, size, sha256, state FROM {ks}.publication_sets WHERE set_name = ?",
    set_insert = "INSERT INTO {ks}.publication_sets (set_name, kind, stage_id, version, published_at_us, manifest_id, objects) VALUES (?, 'set', '', ?, ?, ?, ?) IF NOT EXISTS",
    set_get = "SELECT version, published_at_us, manifest_id, objects FROM {ks}.publication_sets WHERE set_name = ? AND kind = 'set' AND stage_id = ''",
    staged_scan = "SELECT set_name, kind, stage_id, size, staged_at_us, state FROM {ks}.publication_sets",
    chunk_insert = "INSERT INTO {ks}.object_chunks (stage_id, chunk, data) VALUES (?, ?, ?)",
    chunk_get = "SELECT data FROM {ks}.object_chunks WHERE stage_id = ?",
    chunk_delete = "DELETE FROM {ks}.object_chunks WHERE stage_id = ?",
    index_insert = "INSERT INTO {ks}.object_index (shard, key_text, set_name, object_name) VALUES (0, ?, ?, ?)",
    index_scan = "SELECT key_text, set_name, object_name FROM {ks}.object_index WHERE shard = 0 AND key_text >= ?",
}

pub(crate) struct Inner {
    pub(crate) session: Arc<Session>,
    pub(crate) st: Stmts,
    pub(crate) config: ScyllaConfig,
    pub(crate) faults: FaultInjector,
    /// Last commit sequence this instance saw (a guess for the next compare-and-set).
    pub(crate) seq_guess: AtomicU64,
    /// Client write timestamps (microseconds), strictly increasing within this instance.
    pub(crate) timestamps: MonotonicClock,
}

/// An open instance of the Scylla/Cassandra backend. Cheap to clone.
///
/// Its contract methods expect input checked by the checking layer
/// ([`pinvault_core::Checked`], which `pinvault::open` applies): used directly they skip the
/// contract's input checks, the batch-size limit and the receipts' digest.
#[derive(Clone)]
pub struct ScyllaBackend {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ScyllaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaBackend")
            .field("config", &self.inner.config)
            .field("faults", &self.inner.faults)
            .finish_non_exhaustive()
    }
}

/// Connects, creates the keyspace if needed, applies the schema migrations, and prepares every
/// statement. A keyspace with a newer schema than this code is refused with `Unsupported`.
pub async fn open(config: ScyllaConfig, faults: FaultInjector) -> Result<ScyllaBackend> {
    let session = Arc::new(config.connect().await?);
    open_with_session(session, config, faults).await
}

/// Opens the backend a [`URL_FORM`] URL names ([`ScyllaConfig::from_url`]), as [`open`] does.
pub async fn open_url(
    url: &pinvault_core::BackendUrl,
    faults: FaultInjector,
) -> Result<ScyllaBackend> {
    open(ScyllaConfig::from_url(url)?, faults).await
}

/// [`open`] over an existing session (several instances may share one).
pub async fn open_with_session(
    session: Arc<Session>,
    config: ScyllaConfig,
    faults: FaultInjector,
) -> Result<ScyllaBackend> {
    config.validate()?;
    schema::migrate(&session, &config, schema::CURRENT_VERSION).await?;
    let st = Stmts::prepare(&session, &config.keyspace, &config).await?;
    session.execute_unpaged(&st.seq_init, ()).await.map_err(|e| {
        errors::map_exec(e, "init commit_sequence", pinvault_core::error::Access::Write)
    })?;
    Ok(ScyllaBackend {
        inner: Arc::new(Inner {
            session,
            st,
            config,
            faults,
            seq_guess: AtomicU64::new(0),
            timestamps: MonotonicClock::new(Resolution::Micros),
        }),
    })
}

impl ScyllaBackend {
    /// The driver session (shared).
    pub fn session(&self) -> Arc<Session> {
        self.inner.session.clone()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &ScyllaConfig {
        &self.inner.config
    }

    /// Whether a write acknowledged at the configured consistency is on a quorum of replicas.
    pub(crate) fn quorum_writes(&self) -> bool {
        use scylla::statement::Consistency as C;
        matches!(self.inner.config.consistency, C::Quorum | C::LocalQuorum | C::EachQuorum | C::All)
    }

    /// A client timestamp in microseconds, strictly increasing within this instance.
    pub(crate) fn timestamp(&self) -> i64 {
        i64::try_from(self.inner.timestamps.next()).unwrap_or(i64::MAX)
    }

    /// Runs an idempotent operation, retrying retryable failures with exponential backoff.
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &'static str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut delay = self.inner.config.retry_backoff;
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if e.is_retryable() && attempt < self.inner.config.max_retries => {
                    attempt += 1;
                    metrics::counter!("pinvault_scylla_retries_total", "op" => what).increment(1);
                    tracing::debug!(op = what, attempt, error = %e, "scylla: retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
    }
}

/// Records an operation's latency and outcome in `metrics` (histogram
/// `pinvault_scylla_op_seconds`, counters `pinvault_scylla_errors_total` and
/// `pinvault_scylla_conflicts_total`, labelled by op).
pub(crate) fn observe<T>(op: &'static str, started: Instant, result: &Result<T>) {
    let secs = started.elapsed().as_secs_f64();
    metrics::histogram!("pinvault_scylla_op_seconds", "op" => op).record(secs);
    tracing::debug!(op, duration_ms = secs * 1000.0, ok = result.is_ok(), "scylla: op done");
    match result {
        Ok(_) => {}
        Err(Error::Conflict { .. }) | Err(Error::AlreadyExists { .. }) => {
            metrics::counter!("pinvault_scylla_conflicts_total", "op" => op).increment(1)
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => {
            metrics::counter!("pinvault_scylla_errors_total", "op" => op).increment(1);
            tracing::debug!(op, error = %e, "scylla: operation failed");
        }
    }
}

/// The rows `stmt` returns for `values`, paged by the driver (one page in memory at a time),
/// decoded as `R`; errors name `what`.
pub(crate) fn rows<R>(
    session: Arc<Session>,
    stmt: PreparedStatement,
    values: impl scylla::serialize::row::SerializeRow + Send + 'static,
    what: &'static str,
) -> BoxStream<'static, Result<R>>
where
    R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + Send + 'static,
{
    stream::once(async move {
        let pager =
            session.execute_iter(stmt, values).await.map_err(|e| errors::map_other(e, what))?;
        let rows = pager.rows_stream::<R>().map_err(|e| errors::map_other(e, what))?;
        Ok::<_, Error>(rows.map_err(move |e| errors::map_other(e, what)))
    })
    .try_flatten()
    .boxed()
}

/// A fresh random 128-bit token (versions, stage ids).
pub(crate) fn token() -> [u8; 16] {
    rand::random()
}
