//! # pinvault-scylla
//!
//! pinvault's ScyllaDB / Apache Cassandra backend on the `scylla` driver: both contracts
//! ([`PinState`] and [`Publisher`]) over the CQL schema of `schema/` (applied at open by
//! [`schema::migrate`]), with prepared statements only.
//!
//! ## Pins and preconditions
//!
//! One row per pin in `pins_by_cid`, partitioned by the first two bytes of the CID's multihash
//! digest and clustered by the CID. The row carries the pin record
//! ([`pinvault_core::codec::protobuf::encode_record`]) and a **version**: a random 128-bit token
//! written with every write, so it changes on every write and never repeats (also after a remove
//! and a re-insert). `Absent` → `INSERT … IF NOT EXISTS`; `Version(v)` → `UPDATE/DELETE … IF
//! version = v`; `Any` → plain `UPDATE`/`DELETE`. LWT answers are read by column name
//! ([`lwt`]); a failed condition returns the current version from the LWT's row. A write timeout
//! on an LWT is resolved by reading back at SERIAL ([`lwt::resolve`]).
//!
//! Mixing plain (`Any`) writes with LWTs on one key is what Cassandra documents as unsafe for
//! linearizability when clocks differ; the conditional writes are linearizable among themselves.
//!
//! ## Batches (capabilities: `atomic_batch: true`, `conditional_batch: false`)
//!
//! * A one-op batch (every `put`/`remove`) may carry any precondition: it is one LWT.
//! * A multi-op batch of `Any` ops is one **LOGGED** batch: Cassandra's batch log makes it
//!   all-or-nothing (also when the coordinator dies), but it is **not isolated** when its pins
//!   live in several partitions: a concurrent reader can briefly see some of its pins and not
//!   others. Limited to `max_batch_ops` (default 50, under Cassandra's 50 KiB
//!   `batch_size_fail_threshold`).
//! * A multi-op batch carrying any precondition is refused with [`Error::Unsupported`]:
//!   Cassandra LWT batches must stay in one partition of one table, and pins of one batch fall
//!   in different partitions. (Accepting the single-partition case only would make the result
//!   depend on hash prefixes, which the capability flag cannot express.)
//! * Receipt sequence: one row `commit_sequence` advanced by compare-and-set LWT before each
//!   commit (a cached guess makes it one round when uncontended). A commit that returned before
//!   another started has a smaller sequence, across processes and reopen; sequences of failed
//!   commits are skipped (gaps).
//!
//! ## Views (capability: `atomic_views: true`, by filter-on-read)
//!
//! `pins_by_peer` and `pin_ttl_queue` (hour buckets, with `pin_ttl_buckets` listing the buckets
//! that have entries) live in other partitions than the pin, so they cannot change in the pin's
//! LWT. Protocol of a write:
//!
//! 1. **write-ahead**: insert the view rows of the new pin state;
//! 2. the pin write (the commit point);
//! 3. re-insert the new state's rows (timestamp after the commit) and delete the old state's
//!    rows that the new state does not have (timestamp taken before the commit).
//!
//! Reads **filter**: a view row is shown only if the pin it names currently exists and still has
//! that peer / that `expire_at`. So a view never shows a missing pin or a stale allocation, and
//! every committed pin's rows exist from its commit point on (written ahead), whatever instant a
//! crash hits. Rows of failed or crashed writes, and bucket rows, are garbage that reads skip;
//! `migrate` deletes the view rows among them once older than a grace period
//! ([`ScyllaBackend::repair_views`], module `repair`).
//! Placements: desired = the pin's allocations (read from the pin); actual = a
//! `placement_actual` column of the pin's own row, so a remove drops it in the same mutation.
//! Known limit: with two processes writing one CID concurrently and clocks skewed by more than a
//! write's latency, step 3 of one can delete a row the other's state needs.
//!
//! ## Publication (`atomic_publication: true`)
//!
//! `stage` records a staged row in the set's partition of `publication_sets`, then writes the
//! bytes in 1 MiB chunks to `object_chunks`. `finalize` stages the manifest the same way,
//! writes `object_index` rows ahead (filtered on read like the views), then commits with **one
//! LWT batch in the set's partition**: `INSERT` the set record `IF NOT EXISTS` and flip each
//! published staged row `IF state = 'staged'`. That record is the only thing readers follow
//! (`head`, `get`, `list`, `publication`), so a set is visible whole or not at all, first writer
//! wins, and a concurrent `abort` (an LWT on the same rows) cannot delete published bytes.
//!
//! ## Crash points
//!
//! `scylla.commit.prepared` (views written ahead, sequence taken, pin not written),
//! `scylla.commit.applied`, `scylla.stage.recorded`, `scylla.stage.written`,
//! `scylla.finalize.prepared`, `scylla.finalize.committed`.

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
use pinvault_core::{Capabilities, Error, FaultInjector, Result};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

pub use config::{Replication, ScyllaConfig, Secret, TlsTrust, ENV_HINT};
pub use errors::{ConnectError, BACKEND};
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
/// Every crash point.
pub const CRASH_POINTS: &[&str] = &[
    COMMIT_PREPARED,
    COMMIT_APPLIED,
    STAGE_RECORDED,
    STAGE_WRITTEN,
    FINALIZE_PREPARED,
    FINALIZE_COMMITTED,
];

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
    /// Last client timestamp handed out (microseconds), so they strictly increase.
    pub(crate) last_ts: AtomicU64,
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
            last_ts: AtomicU64::new(0),
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

    pub(crate) fn caps(&self) -> Capabilities {
        use scylla::statement::Consistency as C;
        let quorum = matches!(
            self.inner.config.consistency,
            C::Quorum | C::LocalQuorum | C::EachQuorum | C::All
        );
        let mut caps = Capabilities::none(BACKEND);
        caps.persistent = true;
        caps.durable_on_return = quorum;
        caps.linearizable_conditional_writes = true;
        caps.atomic_batch = true;
        caps.conditional_batch = false;
        caps.atomic_views = true;
        caps.max_batch_ops = Some(self.inner.config.max_batch_ops);
        caps.atomic_publication = true;
        caps.max_object_size = Some(MAX_OBJECT_SIZE);
        caps.crash_points = CRASH_POINTS;
        caps
    }

    /// A client timestamp in microseconds, strictly increasing within this process.
    pub(crate) fn timestamp(&self) -> i64 {
        let now = chrono::Utc::now().timestamp_micros().max(0) as u64;
        let mut last = self.inner.last_ts.load(std::sync::atomic::Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.inner.last_ts.compare_exchange_weak(
                last,
                next,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => return next as i64,
                Err(seen) => last = seen,
            }
        }
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
