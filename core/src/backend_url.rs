//! Backend URLs: the grammar every backend crate parses its URL with.
//!
//! A backend URL has one of four shapes ([`Shape`]): nothing (`memory:`), an absolute directory
//! (`rocksdb:///var/lib/pins`), a bucket and key prefix (`s3://bucket/prefix`), or contact points
//! and a keyspace (`scylla://db1:9042,db2/pins`), plus query options (`?sync=false`), each key at
//! most once. [`BackendUrl::parse`] checks the shape; the backend crate that owns the scheme
//! interprets the location and its own options (`open_url` in each crate), refusing options it
//! does not know with [`BackendUrl::check_options`]. One spelling for every option value lives
//! here: booleans are `true` or `false`, durations are decimal seconds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// The option of the directory backends that bounds how long a writable open waits for another
/// process holding the store's lock (decimal seconds).
pub const LOCK_TIMEOUT: &str = "lock_timeout";

/// The option of the directory backends that makes every acknowledged write durable first.
pub const SYNC: &str = "sync";

/// The URL shape a scheme takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `scheme:` and nothing else.
    InProcess,
    /// `scheme:///absolute/path`.
    Directory,
    /// `scheme://bucket/prefix`.
    Bucket,
    /// `scheme://host1,host2/keyspace`.
    Cluster,
}

/// A scheme, the form its URLs take (for messages) and their shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlForm {
    /// The URL scheme (`"rocksdb"`), matched without regard to case.
    pub scheme: &'static str,
    /// The URL form for help and error messages (`"rocksdb:///path"`).
    pub form: &'static str,
    /// The shape its URLs must have.
    pub shape: Shape,
}

impl UrlForm {
    /// A `scheme:///path` form (`form` is its example, e.g. `"fs:///path"`).
    pub const fn directory(scheme: &'static str, form: &'static str) -> Self {
        UrlForm { scheme, form, shape: Shape::Directory }
    }

    /// A `scheme://bucket/prefix` form.
    pub const fn bucket(scheme: &'static str, form: &'static str) -> Self {
        UrlForm { scheme, form, shape: Shape::Bucket }
    }

    /// A `scheme://host1,host2/keyspace` form.
    pub const fn cluster(scheme: &'static str, form: &'static str) -> Self {
        UrlForm { scheme, form, shape: Shape::Cluster }
    }
}

/// Where a backend URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Nothing: the backend lives in this process (`memory:`).
    InProcess,
    /// A local directory (`rocksdb:///path`, `sled:///path`, `fs:///path`).
    Directory(PathBuf),
    /// A bucket or container and a key prefix inside it (`s3://bucket/prefix`).
    Bucket {
        /// The bucket (S3, GCS) or container (Azure).
        bucket: String,
        /// The key prefix, without leading or trailing `/`; empty for the whole bucket.
        prefix: String,
    },
    /// Contact points and a keyspace (`scylla://host1:9042,host2/keyspace`).
    Cluster {
        /// `host` or `host:port`, in the order given.
        hosts: Vec<String>,
        /// The keyspace holding pinvault's tables (its naming rule is the backend's).
        keyspace: String,
    },
}

/// A parsed, shape-checked backend URL.
///
/// Its `Debug` shows the URL, which never holds credentials: the bucket and cluster shapes
/// refuse them, and backends take secrets from the environment only.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendUrl {
    url: String,
    form: UrlForm,
    location: Location,
    options: BTreeMap<String, String>,
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendUrl")
            .field("url", &self.url)
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BackendUrl {
    /// Parses `url`, which must have `form`'s scheme and shape.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the URL and, for a wrong shape, the form it should take.
    pub fn parse(url: &str, form: UrlForm) -> Result<Self> {
        match scheme_of(url) {
            Some(scheme) if scheme.eq_ignore_ascii_case(form.scheme) => {}
            _ => return Err(wrong_shape(url, form, format!("it is not a {} URL", form.scheme))),
        }
        let mut options = BTreeMap::new();
        let location = match form.shape {
            Shape::InProcess => parse_in_process(url, form)?,
            Shape::Directory => parse_directory(url, form, &mut options)?,
            Shape::Bucket => parse_bucket(url, form, &mut options)?,
            Shape::Cluster => parse_cluster(url, form, &mut options)?,
        };
        Ok(BackendUrl { url: url.to_owned(), form, location, options })
    }

    /// The URL as the caller wrote it.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The form it was parsed against.
    pub fn form(&self) -> UrlForm {
        self.form
    }

    /// What it points at.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The query options, each key once.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// Sets `key` unless the URL gives it: a caller's default that the URL overrides.
    pub fn default_option(&mut self, key: &str, value: impl Into<String>) {
        self.options.entry(key.to_owned()).or_insert_with(|| value.into());
    }

    /// The directory of a [`Location::Directory`] URL.
    pub fn directory(&self) -> Result<PathBuf> {
        match &self.location {
            Location::Directory(path) => Ok(path.clone()),
            other => Err(self.invalid(format!("{other:?} is not a directory"))),
        }
    }

    /// Refuses any option not in `known`, listing the known ones.
    pub fn check_options(&self, known: &[&str]) -> Result<()> {
        match self.options.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) if known.is_empty() => {
                Err(self.invalid(format!("unknown option {key:?}; this backend takes none")))
            }
            Some(key) => Err(self.invalid(format!(
                "unknown option {key:?}; this backend takes: {}",
                known.join(", ")
            ))),
        }
    }

    /// The text of option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// A `true`/`false` option, `default` when absent.
    pub fn bool_option(&self, key: &str, default: bool) -> Result<bool> {
        match self.option(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => {
                Err(self.invalid(format!("option {key}={other:?} must be true or false")))
            }
        }
    }

    /// A duration option in decimal seconds (`lock_timeout=2.5`), `None` when absent.
    pub fn seconds_option(&self, key: &str) -> Result<Option<Duration>> {
        self.option(key)
            .map(|text| {
                parse_seconds(text)
                    .map_err(|why| self.invalid(format!("option {key}={text:?} {why}")))
            })
            .transpose()
    }

    /// An option parsed with [`std::str::FromStr`] and checked by `valid`; `what` says what a
    /// good value is (`"a positive replication factor"`).
    pub fn parsed_option<T: std::str::FromStr>(
        &self,
        key: &str,
        what: &str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>> {
        self.option(key)
            .map(|text| {
                text.parse::<T>()
                    .ok()
                    .filter(|v| valid(v))
                    .ok_or_else(|| self.invalid(format!("option {key}={text:?} must be {what}")))
            })
            .transpose()
    }

    /// [`Error::InvalidInput`] about this URL.
    pub fn invalid(&self, why: impl fmt::Display) -> Error {
        Error::invalid(format!("backend URL {:?}", self.url), why.to_string())
    }
}

/// The options every directory backend takes (`?sync=true|false&lock_timeout=SECONDS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirOptions {
    /// Make every write durable (fsync) before it is acknowledged (URL option [`SYNC`]).
    pub sync: bool,
    /// How long a writable open waits for another process (or another handle in this one)
    /// to release the store's lock before it fails with [`Error::Unavailable`]; zero fails at
    /// once. Read-only opens take no lock. URL option [`LOCK_TIMEOUT`].
    pub lock_wait: Duration,
}

impl Default for DirOptions {
    /// Synced, no lock wait: pinvault's default is never to acknowledge what a crash can take
    /// back.
    fn default() -> Self {
        DirOptions { sync: true, lock_wait: Duration::ZERO }
    }
}

impl DirOptions {
    /// The options of a directory URL, refusing any other option.
    pub fn from_url(url: &BackendUrl) -> Result<Self> {
        url.check_options(&[SYNC, LOCK_TIMEOUT])?;
        Ok(DirOptions {
            sync: url.bool_option(SYNC, true)?,
            lock_wait: url.seconds_option(LOCK_TIMEOUT)?.unwrap_or_default(),
        })
    }
}

/// A variable of the process environment, `None` when unset or empty: where backends read the
/// credentials and defaults a URL does not carry.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The scheme of `url` (before the first `:`), if it has one.
pub fn scheme_of(url: &str) -> Option<&str> {
    url.split_once(':').map(|(scheme, _)| scheme).filter(|s| !s.is_empty())
}

/// Decimal seconds (`10`, `0.5`) as a [`Duration`]; the error says what is wrong.
pub fn parse_seconds(text: &str) -> std::result::Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| "must be a number of seconds, 0 or more (e.g. 10 or 0.5)".to_owned())
}

fn malformed(url: &str, reason: impl fmt::Display) -> Error {
    Error::invalid(format!("backend URL {url:?}"), format!("malformed URL: {reason}"))
}

fn wrong_shape(url: &str, form: UrlForm, reason: impl fmt::Display) -> Error {
    Error::invalid(
        format!("backend URL {url:?}"),
        format!("{reason}; a {} URL looks like {}", form.scheme, form.form),
    )
}

fn parse_url(url: &str) -> Result<url::Url> {
    let parsed = url::Url::parse(url).map_err(|e| malformed(url, e))?;
    if parsed.fragment().is_some() {
        return Err(malformed(url, "fragments are not supported"));
    }
    Ok(parsed)
}

fn parse_in_process(url: &str, form: UrlForm) -> Result<Location> {
    let parsed = parse_url(url)?;
    if parsed.query().is_some() {
        return Err(malformed(url, "query parameters are not supported by this scheme"));
    }
    let empty = parsed.path().is_empty() && parsed.host_str().unwrap_or("").is_empty();
    if !empty || parsed.port().is_some() || !parsed.username().is_empty() {
        return Err(wrong_shape(url, form, "it takes no location"));
    }
    Ok(Location::InProcess)
}

fn parse_directory(
    url: &str,
    form: UrlForm,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let parsed = parse_with_options(url, options)?;
    if parsed.cannot_be_a_base() || parsed.has_host() && parsed.host_str() != Some("") {
        return Err(wrong_shape(url, form, "it needs an absolute path after three slashes"));
    }
    let path = parsed
        .to_file_path()
        .map_err(|()| wrong_shape(url, form, "its path is not a valid local path"))?;
    if path.parent().is_none() {
        return Err(wrong_shape(url, form, "it needs a directory, not the filesystem root"));
    }
    Ok(Location::Directory(path))
}

/// Parses `url`, its query parameters into `options`.
fn parse_with_options(url: &str, options: &mut BTreeMap<String, String>) -> Result<url::Url> {
    let parsed = parse_url(url)?;
    collect_options(url, parsed.query_pairs(), options)?;
    Ok(parsed)
}

/// Query parameters into `options`, each key at most once.
fn collect_options<'a>(
    url: &str,
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    options: &mut BTreeMap<String, String>,
) -> Result<()> {
    for (key, value) in pairs {
        if options.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(malformed(url, format!("option {key:?} is given twice")));
        }
    }
    Ok(())
}

fn parse_bucket(
    url: &str,
    form: UrlForm,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let parsed = parse_with_options(url, options)?;
    let bucket = parsed.host_str().unwrap_or("");
    if bucket.is_empty() {
        return Err(wrong_shape(url, form, "it names no bucket"));
    }
    if parsed.port().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(wrong_shape(
            url,
            form,
            "a bucket takes no port or credentials (credentials come from the environment: \
             URLs get logged)",
        ));
    }
    let prefix = parsed.path().trim_matches('/');
    Ok(Location::Bucket { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
}

/// Parsed by hand: `url` cannot hold a comma-separated list of `host:port` contact points.
fn parse_cluster(
    url: &str,
    form: UrlForm,
    options: &mut BTreeMap<String, String>,
) -> Result<Location> {
    let rest = url
        .get(form.scheme.len()..)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| wrong_shape(url, form, "it needs '//' before the hosts"))?;
    if rest.contains(['#', '@']) {
        return Err(malformed(url, "fragments and credentials are not supported"));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    collect_options(url, url::form_urlencoded::parse(query.as_bytes()), options)?;
    let (hosts, keyspace) =
        rest.split_once('/').ok_or_else(|| wrong_shape(url, form, "it names no keyspace"))?;
    let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
    if let Some(bad) = hosts.iter().find(|h| !valid_contact_point(h)) {
        return Err(wrong_shape(url, form, format!("{bad:?} is not a host or host:port")));
    }
    check_keyspace(keyspace).map_err(|why| wrong_shape(url, form, why))?;
    Ok(Location::Cluster { hosts, keyspace: keyspace.to_owned() })
}

/// The keyspace naming rule of a [`Location::Cluster`]: a CQL identifier used unquoted, so it
/// starts with a letter and holds 1 to 48 ASCII letters, digits or `_` (Cassandra's limit).
pub fn check_keyspace(keyspace: &str) -> std::result::Result<(), String> {
    let ok = (1..=48).contains(&keyspace.len())
        && keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && keyspace.starts_with(|c: char| c.is_ascii_alphabetic());
    match ok {
        true => Ok(()),
        false => Err(format!(
            "keyspace {keyspace:?} must start with a letter and hold 1 to 48 letters, digits or '_'"
        )),
    }
}

fn valid_contact_point(contact: &str) -> bool {
    let (host, port) = match contact.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((v6, "")) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            Some((v6, port)) => match port.strip_prefix(':') {
                Some(port) if v6.parse::<std::net::Ipv6Addr>().is_ok() => ("localhost", Some(port)),
                _ => return false,
            },
            None => return false,
        },
        None => match contact.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (contact, None),
        },
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    port_ok && !host.is_empty() && url::Host::parse(host).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: UrlForm = UrlForm { scheme: "sled", form: "sled:///path", shape: Shape::Directory };
    const BUCKET: UrlForm =
        UrlForm { scheme: "s3", form: "s3://bucket/prefix", shape: Shape::Bucket };
    const CLUSTER: UrlForm =
        UrlForm { scheme: "scylla", form: "scylla://host1,host2/keyspace", shape: Shape::Cluster };
    const MEMORY: UrlForm = UrlForm { scheme: "memory", form: "memory:", shape: Shape::InProcess };

    fn message(url: &str, form: UrlForm) -> String {
        match BackendUrl::parse(url, form) {
            Ok(parsed) => panic!("{url} parsed to {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn directory_urls_give_absolute_paths_and_options() {
        let url = BackendUrl::parse("SLED:///var/lib/pin%20vault", DIR).unwrap();
        assert_eq!(url.location(), &Location::Directory(PathBuf::from("/var/lib/pin vault")));
        for bad in ["sled:relative", "sled://host/path", "sled:///", "sled:", "sled:///x#frag"] {
            assert!(message(bad, DIR).contains(bad), "{bad}");
        }
        assert!(message("sled://host/path", DIR).contains("sled:///path"));
        assert!(message("fs:///x", DIR).contains("not a sled URL"));
        let url = BackendUrl::parse("sled:///x?sync=false", DIR).unwrap();
        assert!(!url.bool_option("sync", true).unwrap());
        assert!(url.check_options(&["sync"]).is_ok());
        assert!(url.check_options(&["cache"]).unwrap_err().to_string().contains("\"sync\""));
        assert!(message("sled:///x?sync=true&sync=false", DIR).contains("twice"));
        for bad in ["maybe", "1", "yes"] {
            let url = BackendUrl::parse(&format!("sled:///x?sync={bad}"), DIR).unwrap();
            assert!(url.bool_option("sync", true).is_err(), "{bad}");
        }
    }

    #[test]
    fn dir_options_default_to_synced_and_refuse_others() {
        let url = BackendUrl::parse("sled:///x", DIR).unwrap();
        assert_eq!(DirOptions::from_url(&url).unwrap(), DirOptions::default());
        let url = BackendUrl::parse("sled:///x?sync=false&lock_timeout=2.5", DIR).unwrap();
        let options = DirOptions::from_url(&url).unwrap();
        assert_eq!(options, DirOptions { sync: false, lock_wait: Duration::from_millis(2500) });
        let url = BackendUrl::parse("sled:///x?durable=false", DIR).unwrap();
        let err = DirOptions::from_url(&url).unwrap_err().to_string();
        assert!(err.contains("\"durable\"") && err.contains("sync, lock_timeout"), "{err}");
    }

    #[test]
    fn lock_timeout_is_decimal_seconds() {
        let url = BackendUrl::parse("sled:///x?lock_timeout=2.5", DIR).unwrap();
        assert_eq!(url.seconds_option(LOCK_TIMEOUT).unwrap(), Some(Duration::from_millis(2500)));
        assert_eq!(url.seconds_option("absent").unwrap(), None);
        for bad in ["-1", "soon", "NaN", "1e400"] {
            let url = BackendUrl::parse(&format!("sled:///x?lock_timeout={bad}"), DIR).unwrap();
            let err = url.seconds_option(LOCK_TIMEOUT).unwrap_err().to_string();
            assert!(err.contains("lock_timeout") && err.contains("seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn memory_takes_no_location() {
        assert_eq!(BackendUrl::parse("memory:", MEMORY).unwrap().location(), &Location::InProcess);
        for url in ["memory:foo", "memory://host", "memory:///tmp", "memory:?x=1"] {
            assert!(message(url, MEMORY).contains(url), "{url}");
        }
    }

    #[test]
    fn bucket_urls_split_bucket_and_prefix() {
        let url = BackendUrl::parse("s3://data/partitions/2026/", BUCKET).unwrap();
        let expected = Location::Bucket { bucket: "data".into(), prefix: "partitions/2026".into() };
        assert_eq!(url.location(), &expected);
        for bad in ["s3:///prefix", "s3:bucket", "s3://user@bucket/p", "s3://b:9000/p"] {
            assert!(message(bad, BUCKET).contains("bucket"), "{bad}: {}", message(bad, BUCKET));
        }
        let url =
            BackendUrl::parse("s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=x", BUCKET)
                .unwrap();
        assert_eq!(url.option("endpoint"), Some("http://127.0.0.1:9000"));
        assert!(url.check_options(&["endpoint", "region"]).is_ok());
        assert!(message("s3://b/p?region=a&region=b", BUCKET).contains("twice"));
    }

    #[test]
    fn cluster_urls_list_contact_points() {
        let url =
            BackendUrl::parse("scylla://10.0.0.1:9042,db2,[::1]:19042/pins", CLUSTER).unwrap();
        let hosts = vec!["10.0.0.1:9042".to_owned(), "db2".to_owned(), "[::1]:19042".to_owned()];
        assert_eq!(url.location(), &Location::Cluster { hosts, keyspace: "pins".into() });
        for bad in [
            "scylla:host/ks",
            "scylla://host",
            "scylla://host/",
            "scylla:///ks",
            "scylla://h1,,h2/ks",
            "scylla://h1:99999/ks",
            "scylla://h1/ks/more",
            "scylla://h1/bad-keyspace",
            "scylla://h1/_ks",
            "scylla://h1/1ks",
            "scylla://h1/ks?tls=true&tls=false",
            "scylla://h1/ks#frag",
        ] {
            assert!(message(bad, CLUSTER).contains(bad), "{bad}");
        }
        let url = BackendUrl::parse("scylla://db1/pins?replication=3&x=0", CLUSTER).unwrap();
        let positive = |rf: &u32| *rf > 0;
        assert_eq!(url.parsed_option("replication", "positive", positive).unwrap(), Some(3));
        assert!(url.parsed_option("x", "a positive number", positive).is_err());
        assert_eq!(url.parsed_option::<u32>("absent", "", |_| true).unwrap(), None);
    }

    #[test]
    fn a_caller_default_yields_to_the_url() {
        let mut url = BackendUrl::parse("sled:///x?lock_timeout=1", DIR).unwrap();
        url.default_option(LOCK_TIMEOUT, "9");
        assert_eq!(url.option(LOCK_TIMEOUT), Some("1"));
        let mut url = BackendUrl::parse("sled:///x", DIR).unwrap();
        url.default_option(LOCK_TIMEOUT, "9");
        assert_eq!(url.option(LOCK_TIMEOUT), Some("9"));
    }
}
