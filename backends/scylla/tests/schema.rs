//! Schema migrations against Cassandra: from an empty keyspace to the current version,
//! idempotent re-application, and refusal of a keyspace whose schema is newer than the code.

mod common;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_core::{Error, FaultInjector};
use pinvault_scylla::schema::{self, CURRENT_VERSION};

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
