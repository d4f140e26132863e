//! Lightweight transactions: reading their result by column name, and resolving a write whose
//! outcome is unknown (a timeout) by reading back at SERIAL consistency.
//!
//! Cassandra and Scylla answer a conditional statement with a row whose `[applied]` column says
//! whether it applied; on a failed condition Cassandra adds the current values of the columns
//! named in the condition (or every column for `IF NOT EXISTS`), Scylla returns every column.
//! So results are read **by column name**, never by position.
//!
//! # Resolving an unknown outcome
//!
//! Every write carries a fresh random 128-bit version token, so after a timeout a SERIAL read
//! (which completes any in-flight Paxos round it finds) tells what happened:
//!
//! * a put whose new version is now stored **was applied**;
//! * a conditional remove whose expected version is still stored **was not applied**;
//! * anything else (another writer's version, or an absent row) cannot be told apart from "ours
//!   applied and was then overwritten/removed": the outcome stays unknown
//!   (`Unavailable { outcome_unknown: true }`).
//!
//! Caveat (Cassandra's Paxos v1): a proposal accepted by a minority of replicas that the SERIAL
//! read's quorum did not include may still be completed by a later round, so "was not applied"
//! is "not applied as of the SERIAL read". Version tokens never repeat, so this can never make
//! a stale version match.

use pinvault_core::{Precondition, Version};
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};

use crate::errors::map_other;
use pinvault_core::Result;

/// The parsed answer of a conditional statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LwtOutcome {
    /// Whether it applied.
    pub applied: bool,
    /// The `version` column of the returned row, when the server returned one (a failed
    /// condition on an existing row).
    pub current_version: Option<Version>,
}

/// Reads `[applied]` and `version` by column name from an LWT result (first row).
pub fn outcome(result: QueryResult, what: &str) -> Result<LwtOutcome> {
    let rows = result.into_rows_result().map_err(|e| map_other(e, what))?;
    let specs = rows.column_specs();
    let applied_idx = specs
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| map_other("no [applied] column in an LWT result", what))?;
    let version_idx = specs.get_by_name("version").map(|(i, _)| i);
    let mut it = rows.rows::<Row>().map_err(|e| map_other(e, what))?;
    let Some(row) = it.next() else {
        return Err(map_other("an LWT returned no row", what));
    };
    let row = row.map_err(|e| map_other(e, what))?;
    let applied = matches!(row.columns.get(applied_idx), Some(Some(CqlValue::Boolean(true))));
    let current_version = version_idx.and_then(|i| match row.columns.get(i) {
        Some(Some(CqlValue::Blob(b))) if !b.is_empty() => Some(Version::from_bytes(b.clone())),
        _ => None,
    });
    Ok(LwtOutcome { applied, current_version })
}

/// `[applied]` and the named column (`None` when absent or null), read by name.
pub fn applied_and(
    result: QueryResult,
    column: &str,
    what: &str,
) -> Result<(bool, Option<CqlValue>)> {
    let rows = result.into_rows_result().map_err(|e| map_other(e, what))?;
    let specs = rows.column_specs();
    let applied_idx = specs
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| map_other("no [applied] column in an LWT result", what))?;
    let col_idx = specs.get_by_name(column).map(|(i, _)| i);
    let mut it = rows.rows::<Row>().map_err(|e| map_other(e, what))?;
    let Some(row) = it.next() else {
        return Err(map_other("an LWT returned no row", what));
    };
    let mut row = row.map_err(|e| map_other(e, what))?;
    let applied = matches!(row.columns.get(applied_idx), Some(Some(CqlValue::Boolean(true))));
    let value = col_idx.and_then(|i| row.columns.get_mut(i).and_then(Option::take));
    Ok((applied, value))
}

/// What a SERIAL read-back says about a write whose outcome was unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The write is stored.
    Applied,
    /// The write did not apply (as of the SERIAL read): safe to retry.
    NotApplied,
    /// Cannot tell: the outcome stays unknown.
    Unknown,
}

/// Decides the outcome of a timed-out write of one pin from the version a SERIAL read found
/// (`None` = absent). `new_version` is the version a put wrote (`None` for a remove).
pub fn resolve(
    new_version: Option<&Version>,
    precondition: &Precondition,
    serial_current: Option<&Version>,
) -> Resolution {
    match new_version {
        Some(ours) => {
            if serial_current == Some(ours) {
                Resolution::Applied
            } else {
                Resolution::Unknown
            }
        }
        None => match precondition {
            Precondition::Version(expected) if serial_current == Some(expected) => {
                Resolution::NotApplied
            }
            _ => Resolution::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::from_u64(n)
    }

    #[test]
    fn a_timed_out_put_whose_version_is_stored_was_applied() {
        assert_eq!(resolve(Some(&v(2)), &Precondition::Absent, Some(&v(2))), Resolution::Applied);
        assert_eq!(
            resolve(Some(&v(2)), &Precondition::Version(v(1)), Some(&v(2))),
            Resolution::Applied
        );
    }

    #[test]
    fn a_timed_out_put_not_visible_stays_unknown() {
        // Absent now: ours may have applied and been removed since.
        assert_eq!(resolve(Some(&v(2)), &Precondition::Absent, None), Resolution::Unknown);
        // Another version: ours may have been overwritten.
        assert_eq!(
            resolve(Some(&v(2)), &Precondition::Version(v(1)), Some(&v(3))),
            Resolution::Unknown
        );
    }

    #[test]
    fn a_timed_out_conditional_remove_is_resolved_by_the_expected_version() {
        assert_eq!(
            resolve(None, &Precondition::Version(v(1)), Some(&v(1))),
            Resolution::NotApplied
        );
        assert_eq!(resolve(None, &Precondition::Version(v(1)), None), Resolution::Unknown);
        assert_eq!(resolve(None, &Precondition::Any, Some(&v(1))), Resolution::Unknown);
    }
}
