//! The LWT paths against Cassandra: conflicts carry the current version read by column name,
//! and the outcome-unknown resolver's real SERIAL read path (a simulated timeout resolved by
//! reading back at SERIAL, as `commit` does after a `WriteTimeout`).

mod common;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_core::{Error, FaultInjector, Pin, PinState, Precondition};
use pinvault_scylla::lwt::{resolve, Resolution};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_read_back_resolves_a_simulated_timeout() {
    let ks = random_keyspace();
    let backend =
        pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
    let _guard = KeyspaceGuard { keyspace: ks, session: backend.session() };
    let cid = pinvault_core::pin::parse_cid(
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    )
    .expect("cid");
    // The put "timed out" from the caller's view, but reached the server.
    let v1 = backend.put(Pin::new(cid), Precondition::Absent).await.expect("put");
    let serial = backend.serial_version(&cid).await.expect("SERIAL read");
    assert_eq!(serial.as_ref(), Some(&v1), "a SERIAL read must see the committed LWT");
    assert_eq!(resolve(Some(&v1), &Precondition::Absent, serial.as_ref()), Resolution::Applied);
    // A conditional remove that "timed out" before reaching the server: the version is still
    // there, so it did not apply.
    assert_eq!(
        resolve(None, &Precondition::Version(v1.clone()), serial.as_ref()),
        Resolution::NotApplied
    );
    // A second writer moved the pin on: a lost put cannot be told from an overwritten one.
    let v2 = backend.put(Pin::new(cid), Precondition::Version(v1.clone())).await.expect("put");
    let serial = backend.serial_version(&cid).await.expect("SERIAL read");
    assert_eq!(serial.as_ref(), Some(&v2));
    let lost = pinvault_core::Version::from_bytes(vec![9u8; 16]);
    assert_eq!(resolve(Some(&lost), &Precondition::Absent, serial.as_ref()), Resolution::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_carry_the_current_version_from_the_lwt_row() {
    let ks = random_keyspace();
    let backend =
        pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
    let _guard = KeyspaceGuard { keyspace: ks, session: backend.session() };
    let cid = pinvault_core::pin::parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
        .expect("cid");
    let v1 = backend.put(Pin::new(cid), Precondition::Absent).await.expect("put");
    match backend.put(Pin::new(cid), Precondition::Absent).await {
        Err(Error::Conflict { current, op_index: 0, .. }) => assert_eq!(current, Some(v1.clone())),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stale = pinvault_core::Version::from_bytes(vec![1u8; 16]);
    match backend.remove(&cid, Precondition::Version(stale)).await {
        Err(Error::Conflict { current, .. }) => assert_eq!(current, Some(v1.clone())),
        other => panic!("expected a conflict, got {other:?}"),
    }
    backend.remove(&cid, Precondition::Version(v1.clone())).await.expect("remove");
    match backend.put(Pin::new(cid), Precondition::Version(v1)).await {
        Err(Error::Conflict { current, .. }) => assert_eq!(current, None),
        other => panic!("expected a conflict on an absent pin, got {other:?}"),
    }
}
