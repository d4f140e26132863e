//! Schema migrations: the numbered CQL files of `schema/migrations/` (embedded at build time),
//! applied at open, idempotently, and refusing a keyspace whose schema is newer than this code.
//!
//! Protocol: create the keyspace (configured replication) and the `schema_version` table if
//! absent; read the version (no row = 0); if it is above [`CURRENT_VERSION`] refuse with
//! [`Error::Unsupported`]; otherwise run each later migration's statements (all `IF NOT
//! EXISTS`, so a crash half-way or two processes migrating at once is harmless) and advance the
//! version by LWT (`IF version = previous`, or `IF NOT EXISTS` for the first), so it only grows.
//!
//! From version 2 the keyspace also keeps `schema_migrations`: one row per applied migration
//! with the SHA-256 of its file. Each open records the rows still missing (`IF NOT EXISTS`; the
//! migrations applied before the table existed get the checksum of the file embedded here), then
//! compares every recorded checksum with the embedded file and refuses a mismatch with
//! [`Error::Corrupt`]: a migration edited after it ran leaves a schema nobody tested.

use pinvault_core::{Error, Result};
use scylla::client::session::Session;
use scylla::value::CqlValue;
use sha2::{Digest, Sha256};

use crate::config::ScyllaConfig;
use crate::errors::{map_exec, map_other, BACKEND};
use pinvault_core::error::Access;

/// One numbered migration file of `schema/migrations/`.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number: the schema version once it is applied.
    pub version: i32,
    /// Its file name without `NNNN_` and `.cql`.
    pub name: &'static str,
    /// Its text.
    pub cql: &'static str,
}

impl Migration {
    /// The SHA-256 of the file's text, as recorded in `schema_migrations`.
    pub fn checksum(&self) -> [u8; 32] {
        Sha256::digest(self.cql.as_bytes()).into()
    }
}

/// The migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        cql: include_str!("../../../schema/migrations/0001_initial.cql"),
    },
    Migration {
        version: 2,
        name: "migration_history",
        cql: include_str!("../../../schema/migrations/0002_migration_history.cql"),
    },
];

/// The schema version this code writes.
pub const CURRENT_VERSION: i32 = 2;

/// The first version that has the `schema_migrations` history table.
pub const HISTORY_VERSION: i32 = 2;

/// The statements of one migration file: `--` comments dropped, split at `;` line ends.
pub fn statements(cql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in cql.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if line.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').trim().to_owned();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Client timeout of one schema statement: DDL waits for schema agreement and is slow on a
/// busy node (many keyspaces created at once in tests).
pub const DDL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs one (idempotent) schema statement, retrying timeouts a few times.
async fn run(session: &Session, cql: String, what: &str) -> Result<()> {
    let mut stmt = scylla::statement::Statement::new(cql);
    stmt.set_request_timeout(Some(DDL_TIMEOUT));
    let mut attempt = 0;
    loop {
        match session.query_unpaged(stmt.clone(), ()).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = map_exec(e, what, Access::Write);
                if e.is_retryable() && attempt < 3 {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "scylla: schema statement retried");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// The stored schema version (0 when none).
pub async fn stored_version(session: &Session, keyspace: &str) -> Result<i32> {
    let rows = session
        .query_unpaged(format!("SELECT version FROM {keyspace}.schema_version WHERE id = 0"), ())
        .await
        .map_err(|e| map_exec(e, "read schema_version", Access::Read))?
        .into_rows_result()
        .map_err(|e| map_other(e, "read schema_version"))?;
    let row =
        rows.maybe_first_row::<(Option<i32>,)>().map_err(|e| map_other(e, "schema_version"))?;
    Ok(row.and_then(|(v,)| v).unwrap_or(0))
}

/// Creates the keyspace if needed and brings its schema to [`CURRENT_VERSION`] (or up to
/// `target` for tests). Returns `(found, now)`.
pub async fn migrate(session: &Session, config: &ScyllaConfig, target: i32) -> Result<(i32, i32)> {
    let ks = &config.keyspace;
    run(
        session,
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
            config.replication.cql()
        ),
        "create keyspace",
    )
    .await?;
    run(
        session,
        format!("CREATE TABLE IF NOT EXISTS {ks}.schema_version (id int PRIMARY KEY, version int)"),
        "create schema_version",
    )
    .await?;
    let found = stored_version(session, ks).await?;
    if found > CURRENT_VERSION {
        return Err(Error::unsupported(
            BACKEND,
            format!(
                "keyspace {ks} has schema version {found}, newer than the {CURRENT_VERSION} this \
                 code knows: upgrade pinvault"
            ),
        ));
    }
    let mut now = found;
    for migration in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
        let version = &migration.version;
        session.use_keyspace(ks, false).await.map_err(|e| map_other(e, "use keyspace"))?;
        for stmt in statements(migration.cql) {
            run(session, stmt, &format!("migration {version}")).await?;
        }
        let (cql, values): (String, Vec<CqlValue>) = if now == 0 {
            (
                format!(
                    "INSERT INTO {ks}.schema_version (id, version) VALUES (0, ?) IF NOT EXISTS"
                ),
                vec![CqlValue::Int(*version)],
            )
        } else {
            (
                format!("UPDATE {ks}.schema_version SET version = ? WHERE id = 0 IF version = ?"),
                vec![CqlValue::Int(*version), CqlValue::Int(now)],
            )
        };
        // Not applied means a concurrent opener advanced it: re-read below.
        session
            .query_unpaged(cql, values)
            .await
            .map_err(|e| map_exec(e, "advance schema_version", Access::Write))?;
        now = stored_version(session, ks).await?;
        if now > CURRENT_VERSION {
            return Err(Error::unsupported(
                BACKEND,
                format!("keyspace {ks} moved to schema version {now} while migrating"),
            ));
        }
        tracing::info!(keyspace = %ks, version = now, "scylla: schema migrated");
    }
    if now >= HISTORY_VERSION {
        record_history(session, ks, now).await?;
        verify_history(session, ks).await?;
    }
    Ok((found, now))
}

/// Records every applied migration (up to `now`) missing from `schema_migrations`.
async fn record_history(session: &Session, ks: &str, now: i32) -> Result<()> {
    let recorded = history(session, ks).await?;
    let applied_at = chrono::Utc::now().timestamp_micros();
    for m in MIGRATIONS.iter().filter(|m| m.version <= now) {
        if recorded.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_migrations (version, name, sha256, applied_at_us) \
                     VALUES (?, ?, ?, ?) IF NOT EXISTS"
                ),
                (m.version, m.name, m.checksum().to_vec(), applied_at),
            )
            .await
            .map_err(|e| map_exec(e, "record schema_migrations", Access::Write))?;
    }
    Ok(())
}

/// `(version, sha256)` of every row of `schema_migrations`.
pub async fn history(session: &Session, ks: &str) -> Result<Vec<(i32, Vec<u8>)>> {
    let rows = session
        .query_unpaged(format!("SELECT version, sha256 FROM {ks}.schema_migrations"), ())
        .await
        .map_err(|e| map_exec(e, "read schema_migrations", Access::Read))?
        .into_rows_result()
        .map_err(|e| map_other(e, "read schema_migrations"))?;
    let mut out = Vec::new();
    for row in
        rows.rows::<(i32, Option<Vec<u8>>)>().map_err(|e| map_other(e, "schema_migrations"))?
    {
        let (version, sha) = row.map_err(|e| map_other(e, "schema_migrations row"))?;
        out.push((version, sha.unwrap_or_default()));
    }
    out.sort();
    Ok(out)
}

/// Refuses a history whose checksums differ from the embedded files.
async fn verify_history(session: &Session, ks: &str) -> Result<()> {
    for (version, sha) in history(session, ks).await? {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == version) else { continue };
        if sha != m.checksum() {
            return Err(Error::corrupt(
                format!("{ks}.schema_migrations version {version}"),
                format!(
                    "migration {version:04}_{} was applied with checksum {}, but this code's file \
                     has {}: the file was edited after it ran, so the keyspace's schema is not \
                     the one this code knows",
                    m.name,
                    hex::encode(&sha),
                    hex::encode(m.checksum())
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_create_statements() {
        let stmts = statements(MIGRATIONS[0].cql);
        assert!(stmts.len() >= 8, "{stmts:#?}");
        for m in MIGRATIONS {
            for s in statements(m.cql) {
                assert!(s.starts_with("CREATE TABLE IF NOT EXISTS"), "not idempotent: {s}");
                assert!(!s.contains("--"));
            }
        }
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(
            versions,
            (1..=CURRENT_VERSION).collect::<Vec<_>>(),
            "numbered 1, 2, ... without gaps"
        );
        assert_ne!(MIGRATIONS[0].checksum(), MIGRATIONS[1].checksum());
    }
}
