//! Authentication and TLS against the testenv's Cassandra for real: a wrong password is a typed
//! error ([`ConnectError::Authentication`] inside `Error::Backend`), TLS verifying the
//! generated CA connects and works, TLS trusting no private CA fails with a typed TLS error.
//! Also: credentials never appear in `Debug`.

mod common;

use common::{env_config, random_keyspace, KeyspaceGuard};
use pinvault_core::{Error, FaultInjector, PinState};
use pinvault_scylla::{ConnectError, ScyllaConfig, Secret, TlsTrust};

fn connect_error(e: &Error) -> Option<&ConnectError> {
    match e {
        Error::Backend { source, .. } => source.downcast_ref::<ConnectError>(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_typed_authentication_error() {
    let mut config = env_config("pv_auth_unused");
    config.password = Some(Secret::new("definitely-not-the-password"));
    let e = pinvault_scylla::open(config, FaultInjector::disabled())
        .await
        .expect_err("a wrong password must be refused");
    assert!(
        matches!(connect_error(&e), Some(ConnectError::Authentication(_))),
        "expected ConnectError::Authentication, got {e:?}"
    );
    assert!(!e.to_string().contains("definitely-not-the-password"), "the password leaked: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifying_the_generated_ca_connects() {
    let ks = random_keyspace();
    let mut config = env_config(&ks);
    let ca = match ScyllaConfig::env_ca_cert() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    config.tls = Some(TlsTrust::CaFile(ca));
    let backend = pinvault_scylla::open(config, FaultInjector::disabled())
        .await
        .expect("TLS with the cluster's CA must connect");
    let _guard = KeyspaceGuard { keyspace: ks, session: backend.session() };
    let cid = pinvault_core::pin::parse_cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
        .expect("cid");
    backend
        .put(pinvault_core::Pin::new(cid), pinvault_core::Precondition::Absent)
        .await
        .expect("a write over TLS");
    assert!(backend.has(&cid).await.expect("read over TLS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trusting_no_private_ca_fails() {
    let mut config = env_config("pv_tls_unused");
    config.tls = Some(TlsTrust::SystemRootsOnly);
    let e = pinvault_scylla::open(config, FaultInjector::disabled())
        .await
        .expect_err("an untrusted server certificate must be refused");
    assert!(
        matches!(connect_error(&e), Some(ConnectError::Tls(_))),
        "expected ConnectError::Tls, got {e:?}"
    );
}

#[test]
fn credentials_never_print() {
    let mut config = ScyllaConfig::new(vec!["127.0.0.1:9042".into()], "ks");
    config.username = Some("alice".into());
    config.password = Some(Secret::new("hunter2"));
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("alice"), "{shown}");
}

#[test]
fn missing_environment_fails_with_the_hint() {
    // The message the tests fail with when the env file was not sourced.
    let e = ScyllaConfig::from_env("ks").err();
    if std::env::var("PINVAULT_CASSANDRA_CONTACT_POINTS").is_err() {
        let e = e.expect("from_env must fail without the environment");
        assert!(e.to_string().contains(pinvault_scylla::ENV_HINT), "{e}");
    }
}
