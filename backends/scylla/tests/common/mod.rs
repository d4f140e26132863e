//! Shared test helpers: the Cassandra test environment (failing loudly when absent), fresh
//! random keyspaces, and a guard that drops a keyspace when its last user goes.

#![allow(dead_code)]

use std::sync::Arc;

use pinvault_scylla::{ScyllaConfig, ENV_HINT};
use scylla::client::session::Session;

/// The test environment's configuration for `keyspace`, or a panic saying how to get one.
pub fn env_config(keyspace: &str) -> ScyllaConfig {
    match ScyllaConfig::from_env(keyspace) {
        Ok(c) => c,
        Err(e) => panic!("Cassandra test environment missing ({e}): {ENV_HINT}"),
    }
}

/// A fresh random keyspace name.
pub fn random_keyspace() -> String {
    format!("pv_{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// Drops its keyspace when dropped (inside a multi-thread tokio runtime).
pub struct KeyspaceGuard {
    pub keyspace: String,
    pub session: Arc<Session>,
}

impl Drop for KeyspaceGuard {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let session = self.session.clone();
        let cql = format!("DROP KEYSPACE IF EXISTS {}", self.keyspace);
        tokio::task::block_in_place(|| {
            handle.block_on(async move {
                let _ = session.query_unpaged(cql, ()).await;
            })
        });
    }
}
