//! Configuration of the Scylla/Cassandra backend and how a driver session is built from it:
//! contact points, keyspace and replication, consistency levels, pool size, credentials, TLS
//! (rustls, verifying a given CA), token- and DC-aware load balancing, timeouts and the retry
//! policy. Credentials never appear in `Debug` output or logs.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use pinvault_core::backend_url::{check_keyspace, process_env, Location, UrlForm};
use pinvault_core::{BackendUrl, Error, Result, Secret};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::statement::{Consistency, SerialConsistency};

use crate::errors::{classify_connect, BACKEND};

/// Replication of the keyspace the backend creates when it does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with this replication factor (single-DC and test clusters).
    Simple(u32),
    /// `NetworkTopologyStrategy` with a factor per data center.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// The CQL map literal of `replication = {...}`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(rf) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut s = "{'class': 'NetworkTopologyStrategy'".to_owned();
                for (dc, rf) in dcs {
                    s.push_str(&format!(", '{}': {rf}", dc.replace('\'', "''")));
                }
                s.push('}');
                s
            }
        }
    }
}

/// The URL form of the Scylla/Cassandra backend.
pub const URL_FORM: UrlForm = UrlForm::cluster("scylla", "scylla://host1,host2/keyspace");

/// `host` → `host:port`; a contact point that names its port is kept as it is.
fn with_default_port(contact: &str, port: u16) -> String {
    let has_port = match contact.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').is_some_and(|(_, rest)| rest.starts_with(':')),
        None => contact.contains(':'),
    };
    match has_port {
        true => contact.to_owned(),
        false => format!("{contact}:{port}"),
    }
}

/// Which certificates a TLS connection trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsTrust {
    /// The PEM file of a CA (the cluster's own CA).
    CaFile(std::path::PathBuf),
    /// The Mozilla root set only (webpki-roots is not bundled: this trusts nothing but what
    /// rustls is given, i.e. no private CA). Used to prove a private CA is not trusted by default.
    SystemRootsOnly,
}

/// Everything [`crate::open`] needs.
#[derive(Clone)]
pub struct ScyllaConfig {
    /// `host:port` of one or more nodes.
    pub contact_points: Vec<String>,
    /// The keyspace (created with `replication` when absent).
    pub keyspace: String,
    /// Replication for a keyspace the backend creates.
    pub replication: Replication,
    /// Consistency of reads and writes (default `LocalQuorum`).
    pub consistency: Consistency,
    /// Serial consistency of lightweight transactions (default `LocalSerial`).
    pub serial_consistency: SerialConsistency,
    /// Connections per node (default 1 per shard/node).
    pub pool_size: NonZeroUsize,
    /// Username for PasswordAuthenticator.
    pub username: Option<String>,
    /// Its password (never printed).
    pub password: Option<Secret>,
    /// TLS: `None` for plaintext.
    pub tls: Option<TlsTrust>,
    /// Prefer replicas of this data center (DC-aware); others only on failover.
    pub local_dc: Option<String>,
    /// Client-side timeout of one request.
    pub request_timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Retries (with exponential backoff) of retryable failures of idempotent operations.
    pub max_retries: u32,
    /// First backoff delay; doubled per retry.
    pub retry_backoff: Duration,
    /// Most ops one batch may hold (Cassandra's `batch_size_fail_threshold` is 50 KiB by
    /// default; 50 pins stay below it).
    pub max_batch_ops: usize,
}

impl fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("contact_points", &self.contact_points)
            .field("keyspace", &self.keyspace)
            .field("replication", &self.replication)
            .field("consistency", &self.consistency)
            .field("serial_consistency", &self.serial_consistency)
            .field("pool_size", &self.pool_size)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("local_dc", &self.local_dc)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_batch_ops", &self.max_batch_ops)
            .finish()
    }
}

/// The message tests print when the test server's environment is missing.
// Public for this crate's tests and benches (tests/common, tests/auth_tls.rs,
// tests/linearizability.rs, benches/scylla.rs); not API.
#[doc(hidden)]
pub const ENV_HINT: &str = "run testenv/pvenv up and source its env file";

impl ScyllaConfig {
    /// The configuration a [`URL_FORM`] URL names:
    /// `scylla://host1[:port],host2/keyspace[?tls=&local_dc=&replication=]`, the port 9042 by
    /// default. Credentials come from `PINVAULT_CASSANDRA_USER` and `PINVAULT_CASSANDRA_PASSWORD`
    /// (both or neither); `tls=true` verifies the server against `PINVAULT_CASSANDRA_CA_CERT`
    /// when set, else the system roots; `replication` is the SimpleStrategy factor of a keyspace
    /// the backend creates (default 1).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown or malformed option, or one credential without the
    /// other.
    pub fn from_url(url: &BackendUrl) -> Result<Self> {
        Self::from_url_with_env(url, process_env)
    }

    /// [`ScyllaConfig::from_url`] with an explicit environment lookup.
    pub fn from_url_with_env(
        url: &BackendUrl,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        url.check_options(&["tls", "local_dc", "replication"])?;
        let Location::Cluster { hosts, keyspace } = url.location() else {
            return Err(url.invalid("the scylla backend takes a cluster URL"));
        };
        let mut config =
            ScyllaConfig::new(hosts.iter().map(|h| with_default_port(h, 9042)).collect(), keyspace);
        match (env("PINVAULT_CASSANDRA_USER"), env("PINVAULT_CASSANDRA_PASSWORD")) {
            (Some(user), Some(password)) => {
                config.username = Some(user);
                config.password = Some(Secret::new(password));
            }
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "environment",
                    "set both PINVAULT_CASSANDRA_USER and PINVAULT_CASSANDRA_PASSWORD, or neither",
                ))
            }
        }
        if url.bool_option("tls", false)? {
            config.tls = Some(match env("PINVAULT_CASSANDRA_CA_CERT") {
                Some(ca) => TlsTrust::CaFile(ca.into()),
                None => TlsTrust::SystemRootsOnly,
            });
        }
        config.local_dc = url.option("local_dc").map(str::to_owned);
        let positive = |rf: &u32| *rf > 0;
        if let Some(rf) =
            url.parsed_option("replication", "a positive replication factor", positive)?
        {
            config.replication = Replication::Simple(rf);
        }
        config.validate()?;
        Ok(config)
    }

    /// A configuration with defaults for `contact_points` and `keyspace`.
    pub fn new(contact_points: Vec<String>, keyspace: impl Into<String>) -> Self {
        ScyllaConfig {
            contact_points,
            keyspace: keyspace.into(),
            replication: Replication::Simple(1),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            pool_size: NonZeroUsize::MIN,
            username: None,
            password: None,
            tls: None,
            local_dc: None,
            request_timeout: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            retry_backoff: Duration::from_millis(50),
            max_batch_ops: 50,
        }
    }

    // Public for this crate's tests and benches; not API.
    #[doc(hidden)]
    /// From the test environment (`testenv/pvenv env`): `PINVAULT_CASSANDRA_CONTACT_POINTS`,
    /// `PINVAULT_CASSANDRA_USER`, `PINVAULT_CASSANDRA_PASSWORD`, and
    /// `PINVAULT_CASSANDRA_CA_CERT` (used only when `tls` is asked for by the caller). Fails with
    /// [`Error::InvalidInput`] naming [`ENV_HINT`] when a variable is absent.
    pub fn from_env(keyspace: impl Into<String>) -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::invalid("environment", format!("{name} is not set: {ENV_HINT}"))
            })
        };
        let points = var("PINVAULT_CASSANDRA_CONTACT_POINTS")?;
        let mut config = ScyllaConfig::new(
            points.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            keyspace,
        );
        config.username = Some(var("PINVAULT_CASSANDRA_USER")?);
        config.password = Some(Secret::new(var("PINVAULT_CASSANDRA_PASSWORD")?));
        Ok(config)
    }

    // Public for this crate's tests; not API.
    #[doc(hidden)]
    /// The CA file of the test environment (`PINVAULT_CASSANDRA_CA_CERT`).
    pub fn env_ca_cert() -> Result<std::path::PathBuf> {
        std::env::var("PINVAULT_CASSANDRA_CA_CERT")
            .ok()
            .filter(|v| !v.is_empty())
            .map(Into::into)
            .ok_or_else(|| {
                Error::invalid(
                    "environment",
                    format!("PINVAULT_CASSANDRA_CA_CERT is not set: {ENV_HINT}"),
                )
            })
    }

    /// Checks the keyspace name ([`check_keyspace`]: an unquoted CQL identifier of at most 48
    /// characters) and that there is a contact point and a batch size.
    pub fn validate(&self) -> Result<()> {
        check_keyspace(&self.keyspace)
            .map_err(|why| Error::invalid(format!("keyspace {:?}", self.keyspace), why))?;
        if self.contact_points.is_empty() {
            return Err(Error::invalid("contact points", "at least one host:port is needed"));
        }
        if self.max_batch_ops == 0 {
            return Err(Error::invalid("max_batch_ops", "must be at least 1"));
        }
        Ok(())
    }

    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        let Some(trust) = &self.tls else { return Ok(None) };
        let mut roots = rustls::RootCertStore::empty();
        match trust {
            TlsTrust::CaFile(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::invalid(format!("CA file {}", path.display()), e.to_string())
                })?;
                let mut reader: &[u8] = &pem;
                for cert in rustls_pemfile::certs(&mut reader) {
                    let cert = cert.map_err(|e| {
                        Error::invalid(format!("CA file {}", path.display()), e.to_string())
                    })?;
                    roots.add(cert).map_err(|e| {
                        Error::invalid(format!("CA file {}", path.display()), e.to_string())
                    })?;
                }
                if roots.is_empty() {
                    return Err(Error::invalid(
                        format!("CA file {}", path.display()),
                        "holds no PEM certificate",
                    ));
                }
            }
            TlsTrust::SystemRootsOnly => {}
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::backend(BACKEND, e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }

    /// Builds a driver session (not bound to the keyspace).
    pub async fn connect(&self) -> Result<Session> {
        self.validate()?;
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &self.local_dc {
            policy = policy.prefer_datacenter(dc.clone()).permit_dc_failover(true);
        }
        let profile = ExecutionProfile::builder()
            .consistency(self.consistency)
            .serial_consistency(Some(self.serial_consistency))
            .request_timeout(Some(self.request_timeout))
            .load_balancing_policy(policy.build())
            .retry_policy(Arc::new(DefaultRetryPolicy::new()))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.contact_points)
            .connection_timeout(self.connect_timeout)
            .pool_size(PoolSize::PerHost(self.pool_size))
            .default_execution_profile_handle(profile.into_handle());
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.user(user.clone(), password.expose().to_owned());
        }
        if let Some(tls) = self.tls_config()? {
            builder = builder.tls_context(Some(tls));
        }
        builder.build().await.map_err(|e| classify_connect(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cluster_urls_take_options_and_a_default_port() {
        let url = BackendUrl::parse(
            "scylla://db1,db2:19042,[::1],[::1]:19042/pins?tls=true&local_dc=dc1&replication=3",
            URL_FORM,
        )
        .unwrap();
        let config = ScyllaConfig::from_url_with_env(&url, no_env).unwrap();
        assert_eq!(config.contact_points, ["db1:9042", "db2:19042", "[::1]:9042", "[::1]:19042"]);
        assert_eq!(config.keyspace, "pins");
        assert_eq!(config.tls, Some(TlsTrust::SystemRootsOnly));
        assert_eq!(config.local_dc.as_deref(), Some("dc1"));
        assert_eq!(config.replication, Replication::Simple(3));
        for bad in ["replication=0", "replication=x", "tls=yes", "consistency=one"] {
            let url = BackendUrl::parse(&format!("scylla://db1/pins?{bad}"), URL_FORM).unwrap();
            assert!(ScyllaConfig::from_url_with_env(&url, no_env).is_err(), "{bad}");
        }
        let user_only = |name: &str| (name == "PINVAULT_CASSANDRA_USER").then(|| "u".to_owned());
        let url = BackendUrl::parse("scylla://db1/pins", URL_FORM).unwrap();
        assert!(ScyllaConfig::from_url_with_env(&url, user_only).is_err());
    }
}
