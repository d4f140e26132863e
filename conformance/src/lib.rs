//! # pinvault-conformance
//!
//! The shared suite that proves both pinvault contracts — [`PinState`](pinvault_core::PinState)
//! and [`Publisher`](pinvault_core::Publisher) — on every backend. Each promise the contracts'
//! docs make is one public `async fn check(h: &dyn Harness)` that panics with a message naming
//! the broken promise, as `object_store`'s `integration.rs` does; a macro turns every check into
//! its own named test in the backend's crate, as OpenDAL's behavior tests and SurrealDB's
//! `define_tests!` do.
//!
//! ## Running the suite on a backend
//!
//! 1. Implement [`Harness`]: `create` opens a new, empty store (a fresh random directory,
//!    bucket prefix or keyspace, so tests never see each other) with the given
//!    [`FaultInjector`](pinvault_core::FaultInjector); `reopen` opens a new instance over the
//!    data of a [`Location`] after the old instance was dropped without closing (a crash).
//!    [`TestStore::new`] wraps a backend implementing both contracts with its location.
//! 2. In a test file (the backend crate needs `tokio` with `macros` and `rt-multi-thread` as a
//!    dev-dependency), invoke the macro inside a module named after the backend:
//!
//! ```text
//! mod rocksdb {
//!     use super::RocksHarness;
//!     pinvault_conformance::conformance_tests!(RocksHarness::new());
//! }
//! ```
//!
//! `cargo test` then prints one line per check, e.g.
//! `rocksdb::preconditions::put_absent_refuses_existing ... ok`. `tests/memory.rs` of this
//! crate runs the suite on the memory reference backend and is the example to copy.
//!
//! ## Families
//!
//! | module | promises |
//! |---|---|
//! | [`crud`] | put/get/has/remove, exact round trips (every field, CIDv0/v1), durability across reopen, migrate |
//! | [`preconditions`] | `Absent`/`Version` on put and remove, conflicts carrying the current version and op index, nothing written on conflict, a new version on every write (no ABA) |
//! | [`batch`] | all or nothing with the failing op named, receipts (sequence, digest, ops, versions), views in the same step, input checks, limits |
//! | [`list`] | every pin once, stable order, cursor resume, 2500-pin paging, listing under concurrent writes |
//! | [`views`] | pins by peer, the bucketed expiry queue (strict `<`), placements desired/actual |
//! | [`transfer`] | NDJSON and protobuf export → import round trips; malformed and truncated input stops at the named line/offset with whole earlier batches only |
//! | [`publication`] | staged invisible, finalize all at once (also to a reader polling during it), first writer wins, abort, sweep, list order, hostile names, size limits, error order |
//! | [`races`] | N×M CAS increments end exact; one winner among inserters, conditional removers, conditional batches, finalizers |
//! | [`faults`] | crash at every declared crash point, reopen, all or nothing, views in step (or, without atomic views, no dangling entry and in step after `migrate`), the store still works |
//! | [`differential`] | proptest: random sequences against the memory model, every result and the final state compared; refused operations answer exactly as the contract says and are replayed in the shapes the backend accepts |
//!
//! Directory backends also run [`store_dir`]'s checks (the store identity marker, foreign and
//! unknown directories refused, adoption, `MustExist`, a path under a file) with
//! [`store_dir_tests!`]: they need a backend opened on a path in an open mode, which a
//! [`Harness`] does not give.
//!
//! ## Capabilities: gated, never skipped
//!
//! A check whose promise the backend does not declare in its
//! capabilities ([`PinCapabilities`](pinvault_core::PinCapabilities),
//! [`PublishCapabilities`](pinvault_core::PublishCapabilities)) asserts instead that the operation is refused
//! with [`Error::Unsupported`](pinvault_core::Error::Unsupported), prints
//! `refused as declared: <check> (<flag> is false)` and records the refusal in the file named
//! by `PINVAULT_REFUSALS` ([`harness::REFUSALS_ENV`]), so that a run's summary counts such
//! checks apart from those that kept a promise (`scripts/test.sh`: "N passed, M refused as
//! declared"). A check passes only by checking something. The suite reads the flags this way:
//!
//! * `linearizable_conditional_writes: false` — single-key `Absent`/`Version` writes are refused.
//! * `atomic_batch: false` — multi-op batches are refused; `conditional_batch: false` —
//!   multi-op batches carrying a precondition are refused.
//! * `atomic_views: false` — views must converge after a write (polled for 10 s) instead of
//!   being right at once.
//! * `atomic_publication: false` — `stage`, `finalize` and `abort` are refused.
//! * `persistent: false` — the harness may refuse `reopen` with `Unsupported`; a persistent
//!   backend must reopen and must declare at least one crash point.
//!
//! ## Crash point names
//!
//! The [`faults`] family drives each name in the capabilities' `crash_points` with the operation
//! its name says it lies on, so every name must contain one of these path words (checked in
//! this order): `finalize` (a finalize of a 3-object set), `stage` (one stage), `import` (an
//! NDJSON import of 30 pins in batches of 10), `commit` (a 3-op batch commit; commit points
//! are also fired on an import's second batch). E.g. `rocksdb.commit.before_write`,
//! `s3.finalize.manifest_written`.
//!
//! ## Adding a check
//!
//! Write a `pub async fn name(h: &dyn Harness)` in its family's module, named after the
//! promise it checks, with a doc comment stating that promise; then add its name to the list
//! in the `__conformance_checks!` macro of this file. Every backend runs it from then on.
//!
//! ## Environment
//!
//! * `PINVAULT_PROPTEST_CASES` — cases of the differential test (default 32).
//! * `PINVAULT_PROPTEST_SEED` — a fixed seed for it; every run prints the seed it used.

#![deny(missing_docs)]

pub mod batch;
pub mod crud;
pub mod damage;
pub mod differential;
pub mod dir_harness;
pub mod faults;
pub mod fixtures;
pub mod harness;
pub mod kill;
pub mod kv_migration;
pub mod linearizability;
pub mod list;
pub mod mounts;
pub mod preconditions;
pub mod publication;
pub mod races;
pub mod runner;
pub mod store_dir;
pub mod transfer;
pub mod views;

pub use async_trait::async_trait;
pub use dir_harness::DirHarness;
pub use harness::{Harness, Location, TestStore};

/// The one list of checks, by family. Calls `$callback!` with the list (and `$args`).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $crate::$callback! { ( $($args)* )
            crud {
                put_then_get_returns_equal_pin, minimal_pin_round_trips, cid_versions_are_preserved,
                get_absent_is_not_found, has_follows_put_and_remove, remove_deletes_only_its_pin,
                remove_absent_with_any_is_noop, put_any_replaces_whole_pin, invalid_pin_is_refused,
                committed_writes_survive_reopen, migrate_is_idempotent, overwrite_is_visible_immediately,
            }
            preconditions {
                put_absent_inserts_new, put_absent_refuses_existing, put_version_updates_current,
                put_version_refuses_stale, put_version_on_absent_conflicts, remove_version_deletes_current,
                remove_version_refuses_stale, remove_absent_is_invalid_input, version_changes_on_every_write,
                reinsert_after_remove_gets_fresh_version, any_write_invalidates_held_version,
            }
            batch {
                batch_applies_every_op, failing_op_in_middle_applies_nothing, receipt_sequences_strictly_increase,
                receipt_describes_the_batch, batch_updates_views_with_pins, duplicate_cid_in_batch_is_invalid,
                empty_batch_is_invalid, invalid_pin_in_batch_applies_nothing, batch_size_limit_is_enforced,
                concurrent_commits_get_distinct_sequences,
            }
            list {
                empty_store_lists_nothing, listing_yields_every_pin_once, listing_order_is_stable,
                cursor_resumes_just_after_entry, cursor_survives_removal_of_its_pin,
                listing_pages_through_thousands, concurrent_writes_do_not_disturb_listing,
            }
            views {
                pins_by_peer_lists_allocated_pins, pins_by_peer_follows_reallocation,
                pins_by_peer_drops_removed_pin, expiring_before_is_strict_and_ordered,
                expiring_before_follows_expire_at_changes, expiring_before_drops_removed_pins,
                placement_tracks_desired_and_actual, placement_is_dropped_with_its_pin,
            }
            transfer {
                ndjson_round_trip, protobuf_round_trip, ndjson_export_is_one_line_per_pin,
                ndjson_malformed_line_stops_import, ndjson_bad_cid_stops_import,
                protobuf_truncated_record_stops_import, import_absent_refuses_existing_pins,
            }
            publication {
                staged_objects_are_invisible, finalize_publishes_whole_set, finalize_is_atomic_to_concurrent_readers,
                manifest_only_set_publishes,
                finalize_of_published_set_already_exists, abort_removes_staged, abort_leaves_published_alone,
                sweep_removes_only_old_staged, list_shows_published_in_key_order, hostile_names_are_refused,
                names_have_one_spelling, publish_helper_leaves_nothing_staged_on_failure,
                object_size_limit_is_enforced, oversized_manifest_is_refused,
                finalize_with_foreign_or_duplicate_object_is_invalid, finalize_reports_errors_in_contract_order,
                unknown_objects_are_not_found, publication_survives_reopen,
            }
            races {
                cas_increments_reach_exact_count, concurrent_inserts_have_one_winner,
                concurrent_conditional_removes_have_one_winner, concurrent_conditional_batches_have_one_winner,
                concurrent_finalizers_have_one_winner,
            }
            faults {
                crash_points_are_declared_and_named, crash_during_commit_is_all_or_nothing,
                crash_during_finalize_is_all_or_nothing, crash_during_stage_leaves_nothing_visible,
                crash_during_import_keeps_whole_batches,
            }
            differential {
                random_sequences_match_memory_model,
            }
        }
    };
}

/// Expands the check list into one `#[tokio::test]` per check, in one module per family.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_for {
    ( ($harness:expr) $( $family:ident { $( $check:ident ),* $(,)? } )* ) => {
        $(
            #[allow(unused_imports)]
            mod $family {
                use super::*;
                $(
                    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let harness = $harness;
                        $crate::$family::$check(&harness).await;
                    }
                )*
            }
        )*
    };
}

/// For a store whose emulator cannot run the suite at all: one test per check, each named
/// `<family>::<check>` inside the calling module (name that module after the gap, e.g.
/// `gcs_emulator_gap_xml_put`), so the output lists by name every check that was **not** run
/// and why, instead of skipping silently. Each test awaits `$probe(<"family::check">)`, which
/// must prove the gap still exists and panic once it is closed (the suite should then run
/// there). `scripts/test.sh` counts these tests as gaps, not as passes.
#[macro_export]
macro_rules! conformance_gaps {
    ($probe:expr) => {
        $crate::__conformance_checks!(__conformance_gaps_for!($probe));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_gaps_for {
    ( ($probe:expr) $( $family:ident { $( $check:ident ),* $(,)? } )* ) => {
        $(
            #[allow(unused_imports)]
            mod $family {
                use super::*;
                $(
                    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        $probe(concat!(stringify!($family), "::", stringify!($check))).await;
                    }
                )*
            }
        )*
    };
}

/// Defines [`CHECKS`] from the check list.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_check_names {
    ( () $( $family:ident { $( $check:ident ),* $(,)? } )* ) => {
        /// Every check of the suite, as `(family, [check names])`, in the order the macro
        /// defines their tests.
        pub const CHECKS: &[(&str, &[&str])] = &[ $( (stringify!($family), &[ $( stringify!($check) ),* ]) ),* ];
    };
}

__conformance_checks!(__conformance_check_names!());

/// Defines one `#[tokio::test]` per conformance check, for the backend built by `$harness`
/// (an expression evaluated once per test, whose type implements [`Harness`]). Invoke it
/// inside a module named after the backend; tests are named `<module>::<family>::<check>`.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::__conformance_checks!(__conformance_tests_for!($harness));
    };
}
