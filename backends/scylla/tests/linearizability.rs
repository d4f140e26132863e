//! Linearizability of the Scylla backend's conditional writes (LWT) against the testenv's
//! Cassandra: 16 clients over 4 sessions (separate `open`s of one fresh keyspace), random get /
//! conditional put / conditional remove on 4 hot keys; each instance is reached through the checking layer
//! (`TestStore::new`); the history is checked against the memory model (`pinvault_conformance::linearizability`). A write that times out with its outcome
//! unknown is checked as "may or may not have happened". Needs `testenv/pvenv up cassandra` and
//! its env file sourced; fails (never skips) without. `PINVAULT_LIN_OPS` sets ops per client.

mod common;

use std::sync::Arc;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_conformance::linearizability::{self, TrialFuture, Workload};
use pinvault_conformance::TestStore;
use pinvault_core::{FaultInjector, PinState};

/// Sessions the clients are spread over.
const SESSIONS: usize = 4;

async fn cassandra() {
    let ks = random_keyspace();
    let first =
        pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
    let _guard = KeyspaceGuard { keyspace: ks.clone(), session: first.session() };
    let mut instances: Vec<Arc<dyn PinState>> = vec![TestStore::new(Arc::new(first), ()).state];
    for _ in 1..SESSIONS {
        let other =
            pinvault_scylla::open(env_config(&ks), FaultInjector::disabled()).await.expect("open");
        instances.push(TestStore::new(Arc::new(other), ()).state);
    }
    linearizability::run("scylla on Cassandra (4 sessions)", instances, &Workload::from_env(100))
        .await;
}

fn main() {
    let trials: Vec<(String, Box<dyn FnOnce() -> TrialFuture + Send>)> = vec![(
        "scylla::across_sessions".into(),
        Box::new(|| -> TrialFuture { Box::pin(cassandra()) }),
    )];
    linearizability::main(trials);
}
