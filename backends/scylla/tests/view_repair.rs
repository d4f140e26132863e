//! `migrate` deletes stray view rows (rows of `pins_by_peer` and `pin_ttl_queue` that no pin
//! backs) once they are older than `VIEW_REPAIR_GRACE`, and leaves alone the rows current pins
//! need and younger stray rows (the write-ahead rows of writes that may still commit).

mod common;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_conformance::fixtures::{at, cid, peer};
use pinvault_core::state::expiry_bucket;
use pinvault_core::{FaultInjector, Pin, PinState, Precondition};
use scylla::client::session::Session;

async fn peer_rows(session: &Session, ks: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let rows = session
        .query_unpaged(format!("SELECT peer, cid FROM {ks}.pins_by_peer"), ())
        .await
        .expect("scan")
        .into_rows_result()
        .expect("rows");
    let mut out: Vec<_> =
        rows.rows::<(Vec<u8>, Vec<u8>)>().expect("typed").map(|r| r.expect("row")).collect();
    out.sort();
    out
}

async fn expiry_rows(session: &Session, ks: &str) -> Vec<(i64, Vec<u8>)> {
    let rows = session
        .query_unpaged(format!("SELECT expire_s, cid FROM {ks}.pin_ttl_queue"), ())
        .await
        .expect("scan")
        .into_rows_result()
        .expect("rows");
    let mut out: Vec<_> =
        rows.rows::<(i64, Vec<u8>)>().expect("typed").map(|r| r.expect("row")).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_deletes_old_stray_view_rows_only() {
    let ks = random_keyspace();
    let backend =
        pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
    let session = backend.session();
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: session.clone() };

    // A live pin with one allocation and an expiry: its rows must stay.
    let mut live = Pin::new(cid(1));
    live.allocations.push(peer(1));
    live.options.expire_at = Some(at(0));
    backend.put(live, Precondition::Any).await.expect("put");

    let now_us = chrono::Utc::now().timestamp_micros();
    let old = now_us - 3_600_000_000; // an hour ago: past the 10-minute grace
    let plant = |peer_bytes: Vec<u8>, cid_bytes: Vec<u8>, ts: i64| {
        let session = session.clone();
        let ks = ks.clone();
        async move {
            session
                .query_unpaged(
                    format!(
                        "INSERT INTO {ks}.pins_by_peer (peer, cid) VALUES (?, ?) USING TIMESTAMP ?"
                    ),
                    (peer_bytes, cid_bytes, ts),
                )
                .await
                .expect("plant peer row");
        }
    };
    // Old strays: a row for a pin that does not exist, and a stale allocation of the live pin.
    plant(peer(2).to_bytes(), cid(2).to_bytes(), old).await;
    plant(peer(3).to_bytes(), cid(1).to_bytes(), old).await;
    // A young stray: as a write in flight leaves it before its commit.
    plant(peer(4).to_bytes(), cid(4).to_bytes(), now_us).await;
    // An old stray expiry row: the live pin's expiry moved.
    let moved = at(7200);
    session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.pin_ttl_queue (bucket, expire_s, expire_ns, cid) VALUES (?, ?, 0, ?) USING TIMESTAMP ?"
            ),
            (expiry_bucket(moved), moved.timestamp(), cid(1).to_bytes(), old),
        )
        .await
        .expect("plant expiry row");
    assert_eq!(peer_rows(&session, &ks).await.len(), 4);
    assert_eq!(expiry_rows(&session, &ks).await.len(), 2);

    let report = backend.migrate().await.expect("migrate");
    assert_eq!(report.records_rewritten, 3, "two old peer rows and one old expiry row");

    let mut expected_peers =
        vec![(peer(1).to_bytes(), cid(1).to_bytes()), (peer(4).to_bytes(), cid(4).to_bytes())];
    expected_peers.sort();
    assert_eq!(peer_rows(&session, &ks).await, expected_peers);
    assert_eq!(expiry_rows(&session, &ks).await, vec![(at(0).timestamp(), cid(1).to_bytes())]);
    // The views read the same before and after: strays were filtered and now are gone.
    let by_peer: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(backend.pins_by_peer(&peer(1)))
            .await
            .expect("by peer");
    assert_eq!(by_peer, vec![cid(1)]);

    // A second pass deletes nothing more: the young stray row is still young.
    let report = backend.repair_views().await.expect("repair");
    assert_eq!((report.peer_rows_scanned, report.expiry_rows_scanned), (2, 1));
    assert_eq!((report.peer_rows_deleted, report.peer_rows_young), (0, 1));
    assert_eq!((report.expiry_rows_deleted, report.expiry_rows_young), (0, 0));
}
