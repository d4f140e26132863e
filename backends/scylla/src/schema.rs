//! Schema migrations: the numbered CQL files of `schema/migrations/` (embedded at build time),
//! applied at open, idempotently, and refusing a keyspace whose schema is newer than this code.
//!
//! Protocol: create the keyspace (configured replication) and the `schema_version` table if
//! absent; read the version (no row = 0); if it is above [`CURRENT_VERSION`] refuse with
//! [`Error::Unsupported`]; otherwise run each later migration's statements (all `IF NOT
//! EXISTS`, so a crash half-way or two processes migrating at once is harmless) and advance the
//! version by LWT (`IF version = previous`, or `IF NOT EXISTS` for the first), so it only grows.

use pinvault_core::{Error, Result};
use scylla::client::session::Session;
use scylla::value::CqlValue;

use crate::config::ScyllaConfig;
use crate::errors::{map_exec, map_other, Kind, BACKEND};

/// The migrations, in order: `(version, CQL text)`.
pub const MIGRATIONS: &[(i32, &str)] =
    &[(1, include_str!("../../../schema/migrations/0001_initial.cql"))];

/// The schema version this code writes.
pub const CURRENT_VERSION: i32 = 1;

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
                let e = map_exec(e, what, Kind::Write);
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
        .map_err(|e| map_exec(e, "read schema_version", Kind::Read))?
        .into_rows_result()
        .map_err(|e| map_other(e, "read schema_version"))?;
    let row = rows.maybe_first_row::<(Option<i32>,)>().map_err(|e| map_other(e, "schema_version"))?;
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
    for (version, cql) in MIGRATIONS.iter().filter(|(v, _)| *v > found && *v <= target) {
        session.use_keyspace(ks, false).await.map_err(|e| map_other(e, "use keyspace"))?;
        for stmt in statements(cql) {
            run(session, stmt, &format!("migration {version}")).await?;
        }
        let (cql, values): (String, Vec<CqlValue>) = if now == 0 {
            (
                format!("INSERT INTO {ks}.schema_version (id, version) VALUES (0, ?) IF NOT EXISTS"),
                vec![CqlValue::Int(*version)],
            )
        } else {
            (
                format!("UPDATE {ks}.schema_version SET version = ? WHERE id = 0 IF version = ?"),
                vec![CqlValue::Int(*version), CqlValue::Int(now)],
            )
        };
        // Not applied means a concurrent opener advanced it: re-read below.
        session.query_unpaged(cql, values).await.map_err(|e| map_exec(e, "advance schema_version", Kind::Write))?;
        now = stored_version(session, ks).await?;
        if now > CURRENT_VERSION {
            return Err(Error::unsupported(BACKEND, format!("keyspace {ks} moved to schema version {now} while migrating")));
        }
        tracing::info!(keyspace = %ks, version = now, "scylla: schema migrated");
    }
    Ok((found, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_create_statements() {
        let stmts = statements(MIGRATIONS[0].1);
        assert!(stmts.len() >= 8, "{stmts:#?}");
        for s in &stmts {
            assert!(s.starts_with("CREATE TABLE IF NOT EXISTS"), "not idempotent: {s}");
            assert!(!s.contains("--"));
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(CURRENT_VERSION));
    }
}
