//! Stored-format checks on sled: migration from format 1 (a fixture of ipfs-cluster
//! protobufs) and refusal of a newer format. See `pinvault_conformance::kv_migration`.
pinvault_conformance::kv_migration_tests!(pinvault_sled::SledEngine);
