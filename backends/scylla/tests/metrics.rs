//! The backend's metrics (`metrics` crate facade) are recorded: per-operation latency
//! histograms labelled by `op`, and conflict counters. A debugging recorder is installed as the
//! process's global recorder, so this file holds one test (one process).

mod common;

use common::{env_config, random_keyspace, KeyspaceGuard};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use pinvault_conformance::fixtures::cid;
use pinvault_core::{Error, FaultInjector, Pin, PinState, Precondition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_record_latency_and_conflicts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test process");

    let ks = random_keyspace();
    let backend =
        pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
    let _guard = KeyspaceGuard { keyspace: ks, session: backend.session() };
    backend.put(Pin::new(cid(1)), Precondition::Absent).await.expect("put");
    let e = backend.put(Pin::new(cid(1)), Precondition::Absent).await.expect_err("second Absent");
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    backend.get(&cid(1)).await.expect("get");

    let snapshot = snapshotter.snapshot().into_vec();
    let find = |kind: MetricKind, name: &str, op: &str| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let k = key.key();
            let labelled = k.labels().any(|l| l.key() == "op" && l.value() == op);
            (key.kind() == kind && k.name() == name && labelled).then_some(value)
        })
    };
    match find(MetricKind::Histogram, "pinvault_scylla_op_seconds", "commit") {
        Some(DebugValue::Histogram(samples)) => {
            assert_eq!(samples.len(), 2, "one latency sample per commit");
            assert!(samples.iter().all(|s| s.into_inner() > 0.0 && s.into_inner() < 60.0));
        }
        other => panic!("no commit latency histogram: {other:?}"),
    }
    match find(MetricKind::Histogram, "pinvault_scylla_op_seconds", "get") {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 1),
        other => panic!("no get latency histogram: {other:?}"),
    }
    assert_eq!(
        find(MetricKind::Counter, "pinvault_scylla_conflicts_total", "commit"),
        Some(&DebugValue::Counter(1)),
        "the lost Absent put counts as one conflict"
    );
    assert_eq!(find(MetricKind::Counter, "pinvault_scylla_errors_total", "commit"), None);
}
