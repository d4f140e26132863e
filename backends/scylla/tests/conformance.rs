//! The whole conformance suite on Cassandra (the testenv's single node). Each store gets a
//! fresh random keyspace (dropped when the test ends); a crash drops the instance without
//! closing it; reopen = a new session over the same keyspace.

mod common;

use std::sync::Arc;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_conformance::{async_trait, Harness, Location, TestStore};
use pinvault_core::{Error, FaultInjector, Result};

struct CassandraHarness;

#[async_trait]
impl Harness for CassandraHarness {
    async fn create(&self, faults: FaultInjector) -> Result<TestStore> {
        let ks = random_keyspace();
        let backend = Arc::new(pinvault_scylla::open(env_config(&ks), faults).await?);
        let guard = Arc::new(KeyspaceGuard { keyspace: ks, session: backend.session() });
        Ok(TestStore::new(backend, guard))
    }

    async fn reopen(&self, location: &Location, faults: FaultInjector) -> Result<TestStore> {
        let guard = location
            .downcast_ref::<Arc<KeyspaceGuard>>()
            .ok_or_else(|| Error::invalid("location", "not a Cassandra keyspace"))?
            .clone();
        let backend = Arc::new(pinvault_scylla::open(env_config(&guard.keyspace), faults).await?);
        Ok(TestStore::new(backend, guard))
    }
}

mod scylla {
    use super::CassandraHarness;

    pinvault_conformance::conformance_tests!(CassandraHarness);
}
