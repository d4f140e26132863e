//! Schema migrations against Cassandra: from an empty keyspace to the current version,
//! idempotent re-application, from a version-1 keyspace holding pins, refusal of a keyspace
//! whose schema is newer than the code, and refusal of an edited migration (checksum history).

mod common;

use std::sync::Arc;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_core::{Error, FaultInjector, Pin, PinState, Precondition};
use pinvault_scylla::schema::{self, CURRENT_VERSION, MIGRATIONS};

const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

/// The recorded history must be exactly the embedded files' checksums, versions 1..=current.
async fn assert_history_matches(session: &scylla::client::session::Session, ks: &str) {
    let recorded = schema::history(session, ks).await.expect("history");
    let expected: Vec<(i32, Vec<u8>)> =
        MIGRATIONS.iter().map(|m| (m.version, m.checksum().to_vec())).collect();
    assert_eq!(recorded, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_from_empty_and_are_idempotent() {
    let ks = random_keyspace();
    let config = env_config(&ks);
    let backend = pinvault_scylla::open(config.clone(), FaultInjector::disabled())
        .await
        .expect("open on an empty keyspace");
    let session = backend.session();
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: session.clone() };
    assert_eq!(schema::stored_version(&session, &ks).await.expect("version"), CURRENT_VERSION);
    let again = schema::migrate(&session, &config, CURRENT_VERSION).await.expect("re-migrate");
    assert_eq!(again, (CURRENT_VERSION, CURRENT_VERSION), "a second migration must be a no-op");
    assert_history_matches(&session, &ks).await;
    drop(backend);
    pinvault_scylla::open(config, FaultInjector::disabled()).await.expect("reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let ks = random_keyspace();
    let config = env_config(&ks);
    let backend =
        pinvault_scylla::open(config.clone(), FaultInjector::disabled()).await.expect("open");
    let session = backend.session();
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: session.clone() };
    session
        .query_unpaged(
            format!("UPDATE {ks}.schema_version SET version = ? WHERE id = 0"),
            (CURRENT_VERSION + 1,),
        )
        .await
        .expect("bump version");
    let e = pinvault_scylla::open(config, FaultInjector::disabled())
        .await
        .expect_err("a newer schema must be refused");
    assert!(matches!(e, Error::Unsupported { .. }), "expected Unsupported, got {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_keyspace_is_migrated_and_keeps_its_pins() {
    let ks = random_keyspace();
    let config = env_config(&ks);
    let session = Arc::new(config.connect().await.expect("connect"));
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: session.clone() };

    // What version-1 code creates: the initial tables and no history.
    assert_eq!(schema::migrate(&session, &config, 1).await.expect("migrate to 1"), (0, 1));
    assert_eq!(schema::stored_version(&session, &ks).await.expect("version"), 1);
    assert!(schema::history(&session, &ks).await.is_err(), "version 1 has no schema_migrations");

    // Opening with this code applies 0002 and records both migrations.
    let backend = pinvault_scylla::open_with_session(
        session.clone(),
        config.clone(),
        FaultInjector::disabled(),
    )
    .await
    .expect("open a version-1 keyspace");
    assert_eq!(schema::stored_version(&session, &ks).await.expect("version"), CURRENT_VERSION);
    assert_history_matches(&session, &ks).await;

    // A keyspace that version-1 code filled with pins: the same tables plus data, back at
    // version 1 without the history table (0002 only adds that table).
    let cid = pinvault_core::pin::parse_cid(CID).expect("cid");
    let version = backend.put(Pin::new(cid), Precondition::Absent).await.expect("put");
    drop(backend);
    session.query_unpaged(format!("DROP TABLE {ks}.schema_migrations"), ()).await.expect("drop");
    session
        .query_unpaged(format!("UPDATE {ks}.schema_version SET version = 1 WHERE id = 0"), ())
        .await
        .expect("back to 1");

    let backend =
        pinvault_scylla::open_with_session(session.clone(), config, FaultInjector::disabled())
            .await
            .expect("migrate 1 -> 2 with pins");
    assert_eq!(schema::stored_version(&session, &ks).await.expect("version"), CURRENT_VERSION);
    assert_history_matches(&session, &ks).await;
    let got = backend.get(&cid).await.expect("the pin survives the migration");
    assert_eq!((got.pin.cid, got.version), (cid, version));
    let report = backend.migrate().await.expect("migrate again");
    assert_eq!((report.from, report.to), (CURRENT_VERSION as u32, CURRENT_VERSION as u32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_migration_is_refused() {
    let ks = random_keyspace();
    let config = env_config(&ks);
    let backend =
        pinvault_scylla::open(config.clone(), FaultInjector::disabled()).await.expect("open");
    let session = backend.session();
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: session.clone() };
    // The history says migration 1 ran with other text than the file this code embeds.
    session
        .query_unpaged(
            format!("UPDATE {ks}.schema_migrations SET sha256 = ? WHERE version = 1"),
            (vec![0u8; 32],),
        )
        .await
        .expect("tamper");
    drop(backend);
    match pinvault_scylla::open(config, FaultInjector::disabled()).await {
        Err(Error::Corrupt { location, reason, .. }) => {
            assert!(location.contains("schema_migrations version 1"), "{location}");
            assert!(reason.contains("0001_initial"), "{reason}");
        }
        other => panic!("expected Corrupt for an edited migration, got {other:?}"),
    }
}
