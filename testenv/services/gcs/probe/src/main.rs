//! Probes which `object_store` operations work against the emulators of testenv/pvenv
//! (fake-gcs-server for GCS, MinIO for S3): each operation the object backend may use is run
//! once and reported as `OK` or `FAILED(<what happened>)`, one markdown table row each. The
//! findings tables of testenv/services/{gcs,minio}/NOTES.md were made with it; CI does not run it.
//!
//! Usage: `cargo run --manifest-path testenv/services/gcs/probe/Cargo.toml -- gcs|s3`
//! with the emulator up. Endpoints come from the PINVAULT_GCS_* / PINVAULT_S3_* variables of
//! the pvenv env file when set, otherwise from the fixed loopback defaults of testenv.
//!
//! Objects a row needs as its starting point are written with object_store; where the store
//! refuses that write (fake-gcs-server has no XML API PUT), they are seeded through the
//! emulator's JSON upload API instead, so the read, list, copy and delete rows still say
//! something about those operations.

use std::env;
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut, S3CopyIfNotExists};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{
    Error, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};

type Store = Box<dyn ObjectStore>;

fn var(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Uploads through fake-gcs-server's JSON API (`uploadType=media`), which it does implement.
struct JsonSeeder {
    http: reqwest::Client,
    endpoint: String,
    bucket: String,
}

impl JsonSeeder {
    async fn put(&self, path: &Path, body: &'static [u8]) -> Result<(), String> {
        let url = format!("{}/upload/storage/v1/b/{}/o", self.endpoint, self.bucket);
        let response = self
            .http
            .post(url)
            .query(&[("uploadType", "media"), ("name", path.as_ref())])
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("JSON upload: HTTP {}", response.status()))
        }
    }
}

/// The store under test, plus stores configured differently for the rows that depend on it.
struct Target {
    store: Store,
    seeder: Option<JsonSeeder>,
    copy_modes: Vec<(&'static str, Store)>,
}

fn gcs_target() -> Result<Target, Error> {
    let endpoint = var("PINVAULT_GCS_ENDPOINT", "http://127.0.0.1:4443");
    let bucket = var("PINVAULT_GCS_BUCKET", "pinvault");
    let builder = GoogleCloudStorageBuilder::new().with_bucket_name(&bucket);
    // The emulator takes no OAuth token: a service account with `disable_oauth` makes
    // object_store send none, and `gcs_base_url` points it at the emulator.
    let builder = match env::var("PINVAULT_GCS_SERVICE_ACCOUNT") {
        Ok(path) => builder.with_service_account_path(path),
        Err(_) => builder.with_service_account_key(format!(
            r#"{{"gcs_base_url":"{endpoint}","disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}}"#
        )),
    };
    Ok(Target {
        store: Box::new(builder.build()?),
        seeder: Some(JsonSeeder { http: reqwest::Client::new(), endpoint, bucket }),
        copy_modes: Vec::new(),
    })
}

fn s3_store(copy_if_not_exists: Option<S3CopyIfNotExists>) -> Result<Store, Error> {
    let mut builder = AmazonS3Builder::new()
        .with_endpoint(var("PINVAULT_S3_ENDPOINT", "http://127.0.0.1:9000"))
        .with_bucket_name(var("PINVAULT_S3_BUCKET", "pinvault"))
        .with_access_key_id(var("PINVAULT_S3_ACCESS_KEY_ID", "pinvault"))
        .with_secret_access_key(var("PINVAULT_S3_SECRET_ACCESS_KEY", "pinvault-secret"))
        .with_region(var("PINVAULT_S3_REGION", "us-east-1"))
        .with_allow_http(true)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(mode) = copy_if_not_exists {
        builder = builder.with_copy_if_not_exists(mode);
    }
    Ok(Box::new(builder.build()?))
}

fn s3_target() -> Result<Target, Error> {
    let header = S3CopyIfNotExists::Header("If-None-Match".into(), "*".into());
    Ok(Target {
        store: s3_store(None)?,
        seeder: None,
        copy_modes: vec![
            ("header If-None-Match: *", s3_store(Some(header))?),
            ("multipart", s3_store(Some(S3CopyIfNotExists::Multipart))?),
        ],
    })
}

/// Prints the rows of the findings table and counts them.
#[derive(Default)]
struct Report {
    ok: usize,
    failed: usize,
}

impl Report {
    fn row(&mut self, operation: &str, expected: &str, outcome: Result<String, String>) {
        let cell = match outcome {
            Ok(detail) => {
                self.ok += 1;
                if detail.is_empty() { "OK".to_string() } else { format!("OK ({detail})") }
            }
            Err(problem) => {
                self.failed += 1;
                format!("FAILED({})", problem.replace('|', "/").replace('\n', " "))
            }
        };
        println!("| {operation} | {expected} | {cell} |");
    }
}

/// Success is expected: any error is the failure.
fn ok<T>(r: Result<T, Error>, check: impl FnOnce(T) -> Result<String, String>) -> Result<String, String> {
    match r {
        Ok(v) => check(v),
        Err(e) => Err(e.to_string()),
    }
}

/// An error is expected; `want` tells whether it is the right one.
fn err<T: Debug>(r: Result<T, Error>, want: impl FnOnce(&Error) -> bool) -> Result<String, String> {
    match r {
        Ok(v) => Err(format!("succeeded: {v:?}")),
        Err(e) if want(&e) => Ok(short_error(&e)),
        Err(e) => Err(e.to_string()),
    }
}

fn short_error(e: &Error) -> String {
    match e {
        Error::AlreadyExists { .. } => "AlreadyExists".into(),
        Error::Precondition { .. } => "Precondition".into(),
        Error::NotModified { .. } => "NotModified".into(),
        Error::NotFound { .. } => "NotFound".into(),
        Error::NotSupported { .. } => "NotSupported".into(),
        other => other.to_string(),
    }
}

fn same(got: &[u8], want: &[u8]) -> Result<String, String> {
    if got == want {
        Ok(String::new())
    } else {
        Err(format!("content differs: {} bytes, want {}", got.len(), want.len()))
    }
}

async fn read(store: &Store, p: &Path) -> Result<Vec<u8>, Error> {
    Ok(store.get(p).await?.bytes().await?.to_vec())
}

impl Target {
    /// Writes a row's starting object: with object_store, else through the JSON API.
    async fn setup(&self, r: &mut Report, path: &Path, body: &'static [u8]) -> bool {
        let problem = match self.store.put(path, PutPayload::from_static(body)).await {
            Ok(_) => return true,
            Err(e) => e.to_string(),
        };
        let problem = match &self.seeder {
            Some(seeder) => match seeder.put(path, body).await {
                Ok(()) => return true,
                Err(e) => format!("{problem}; {e}"),
            },
            None => problem,
        };
        r.row(&format!("setup: put {path}"), "Ok", Err(problem));
        false
    }
}

async fn probe(t: &Target) -> Report {
    let store = &t.store;
    let mut r = Report::default();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let base = format!("probe-{nanos}");
    let p = |name: &str| Path::from(format!("{base}/{name}"));
    println!("| operation | expected | result |");
    println!("| --- | --- | --- |");

    let plain = p("plain");
    r.row("put (Overwrite, new)", "Ok", ok(store.put(&plain, PutPayload::from_static(b"hello world")).await, |_| Ok(String::new())));
    r.row(
        "put (Overwrite, existing)",
        "Ok",
        ok(store.put(&plain, PutPayload::from_static(b"hello again")).await, |_| Ok(String::new())),
    );

    let created = p("created");
    let create = || PutOptions::from(PutMode::Create);
    let first = store.put_opts(&created, PutPayload::from_static(b"v1"), create()).await;
    let first_ok = first.is_ok();
    r.row(
        "put_opts Create (new)",
        "Ok",
        ok(first, |res| Ok(format!("e_tag={:?} version={:?}", res.e_tag, res.version))),
    );
    if first_ok || t.setup(&mut r, &created, b"v1").await {
        r.row(
            "put_opts Create (exists)",
            "AlreadyExists",
            err(store.put_opts(&created, PutPayload::from_static(b"v1bis"), create()).await, |e| {
                matches!(e, Error::AlreadyExists { .. })
            }),
        );
        update_rows(&mut r, store, &created).await;
    }

    if !t.setup(&mut r, &plain, b"hello again").await {
        return r;
    }
    r.row("get", "Ok", ok(read(store, &plain).await, |b| same(&b, b"hello again")));
    let meta = store.head(&plain).await;
    let e_tag = meta.as_ref().ok().and_then(|m| m.e_tag.clone());
    r.row(
        "head",
        "Ok",
        ok(meta, |m| {
            if m.size == 11 {
                Ok(format!("e_tag={:?} version={:?}", m.e_tag, m.version))
            } else {
                Err(format!("size {} want 11", m.size))
            }
        }),
    );
    r.row(
        "head (missing)",
        "NotFound",
        err(store.head(&p("missing")).await, |e| matches!(e, Error::NotFound { .. })),
    );
    r.row(
        "get (missing)",
        "NotFound",
        err(store.get(&p("missing")).await.map(|g| g.meta), |e| matches!(e, Error::NotFound { .. })),
    );
    r.row("get_range 6..11", "Ok", ok(store.get_range(&plain, 6..11).await, |b| same(&b, b"again")));
    let stale_tag = GetOptions { if_match: Some("\"0000\"".into()), ..Default::default() };
    r.row(
        "get_opts if_match (stale e_tag)",
        "Precondition",
        err(store.get_opts(&plain, stale_tag).await.map(|g| g.meta), |e| {
            matches!(e, Error::Precondition { .. })
        }),
    );
    match e_tag {
        Some(tag) => {
            let current = GetOptions { if_match: Some(tag.clone()), ..Default::default() };
            r.row(
                "get_opts if_match (current e_tag)",
                "Ok",
                ok(store.get_opts(&plain, current).await, |_| Ok(String::new())),
            );
            let not_modified = GetOptions { if_none_match: Some(tag), ..Default::default() };
            r.row(
                "get_opts if_none_match (current e_tag)",
                "NotModified",
                err(store.get_opts(&plain, not_modified).await.map(|g| g.meta), |e| {
                    matches!(e, Error::NotModified { .. })
                }),
            );
        }
        None => r.row("get_opts if_match/if_none_match", "Ok", Err("head returned no e_tag".into())),
    }

    for name in ["dir/a", "dir/b", "dir/sub/c"] {
        t.setup(&mut r, &p(name), b"x").await;
    }
    let dir = p("dir");
    r.row(
        "list (prefix, recursive)",
        "3 objects",
        ok(store.list(Some(&dir)).try_collect::<Vec<_>>().await, |v| {
            if v.len() == 3 { Ok(String::new()) } else { Err(format!("{} objects", v.len())) }
        }),
    );
    let offset = p("dir/a");
    r.row(
        "list_with_offset (after dir/a)",
        "2 objects",
        ok(store.list_with_offset(Some(&dir), &offset).try_collect::<Vec<_>>().await, |v| {
            if v.len() == 2 { Ok(String::new()) } else { Err(format!("{} objects", v.len())) }
        }),
    );
    r.row(
        "list_with_delimiter",
        "2 objects, 1 prefix",
        ok(store.list_with_delimiter(Some(&dir)).await, |l| {
            if l.objects.len() == 2 && l.common_prefixes.len() == 1 {
                Ok(String::new())
            } else {
                Err(format!("{} objects, {} prefixes", l.objects.len(), l.common_prefixes.len()))
            }
        }),
    );

    let copied = p("copied");
    let copy_result = match store.copy(&plain, &copied).await {
        Ok(()) => read(store, &copied).await.map_err(|e| e.to_string()).and_then(|b| same(&b, b"hello again")),
        Err(e) => Err(e.to_string()),
    };
    r.row("copy", "Ok", copy_result);
    if_not_exists_rows(&mut r, t, "", store, &plain, &format!("{base}/if-not-exists")).await;
    for (i, (mode, extra)) in t.copy_modes.iter().enumerate() {
        if_not_exists_rows(&mut r, t, &format!(" [{mode}]"), extra, &plain, &format!("{base}/if-not-exists-{i}")).await;
    }

    let moved = p("moved");
    if t.setup(&mut r, &moved, b"move me").await {
        let renamed = p("renamed");
        let rename_result = match store.rename(&moved, &renamed).await {
            Ok(()) => match (store.head(&moved).await, read(store, &renamed).await) {
                (Err(Error::NotFound { .. }), Ok(b)) => same(&b, b"move me"),
                (src, dst) => Err(format!("source after rename: {:?}, target: {:?}", src.map(|m| m.size), dst.map(|b| b.len()))),
            },
            Err(e) => Err(e.to_string()),
        };
        r.row("rename", "Ok", rename_result);
    }

    let doomed = p("doomed");
    if t.setup(&mut r, &doomed, b"delete me").await {
        let delete_result = match store.delete(&doomed).await {
            Ok(()) => match store.head(&doomed).await {
                Err(Error::NotFound { .. }) => Ok(String::new()),
                other => Err(format!("head after delete: {other:?}")),
            },
            Err(e) => Err(e.to_string()),
        };
        r.row("delete", "Ok", delete_result);
    }
    r.row(
        "delete (missing)",
        "Ok or NotFound",
        match store.delete(&p("missing")).await {
            Ok(()) => Ok("Ok".into()),
            Err(e @ Error::NotFound { .. }) => Ok(short_error(&e)),
            Err(e) => Err(e.to_string()),
        },
    );

    r.row("multipart upload (5 MiB + 5 MiB + 1 KiB)", "Ok", multipart(store, &p("multipart")).await);
    r.row("multipart abort", "Ok", match store.put_multipart(&p("aborted")).await {
        Ok(mut upload) => match upload.put_part(PutPayload::from(vec![7u8; 1024])).await {
            Ok(()) => upload.abort().await.map(|()| String::new()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    });
    r
}

/// PutMode::Update with the object's current version, then with the version it had before.
async fn update_rows(r: &mut Report, store: &Store, path: &Path) {
    let current = match store.head(path).await {
        Ok(m) => UpdateVersion { e_tag: m.e_tag, version: m.version },
        Err(e) => {
            r.row("put_opts Update", "Ok", Err(format!("head: {e}")));
            return;
        }
    };
    let updated = store
        .put_opts(path, PutPayload::from_static(b"v2"), PutMode::Update(current.clone()).into())
        .await;
    let ok_update = updated.is_ok();
    r.row(
        "put_opts Update (current version)",
        "Ok",
        ok(updated, |res| Ok(format!("e_tag={:?} version={:?}", res.e_tag, res.version))),
    );
    if !ok_update {
        return;
    }
    r.row(
        "put_opts Update (stale version)",
        "Precondition",
        err(
            store.put_opts(path, PutPayload::from_static(b"v3"), PutMode::Update(current).into()).await,
            |e| matches!(e, Error::Precondition { .. }),
        ),
    );
    r.row("get after Update", "v2", ok(read(store, path).await, |b| same(&b, b"v2")));
}

/// copy_if_not_exists and rename_if_not_exists (a copy_if_not_exists and a delete) with the
/// copy mode `store` is configured with; `dir` is a fresh prefix for this mode's objects.
async fn if_not_exists_rows(r: &mut Report, t: &Target, mode: &str, store: &Store, from: &Path, dir: &str) {
    let at = |name: &str| Path::from(format!("{dir}/{name}"));
    let to = at("copy");
    let fresh = store.copy_if_not_exists(from, &to).await;
    let copied = fresh.is_ok();
    r.row(&format!("copy_if_not_exists{mode} (new target)"), "Ok", ok(fresh, |()| Ok(String::new())));
    if copied || t.setup(r, &to, b"already there").await {
        r.row(
            &format!("copy_if_not_exists{mode} (target exists)"),
            "AlreadyExists",
            err(store.copy_if_not_exists(from, &to).await, |e| matches!(e, Error::AlreadyExists { .. })),
        );
    }
    let (source, existing) = (at("rename-source-1"), at("rename-existing"));
    if t.setup(r, &source, b"rename me").await && t.setup(r, &existing, b"keep me").await {
        r.row(
            &format!("rename_if_not_exists{mode} (target exists)"),
            "AlreadyExists",
            err(store.rename_if_not_exists(&source, &existing).await, |e| matches!(e, Error::AlreadyExists { .. })),
        );
    }
    let source = at("rename-source-2");
    if !t.setup(r, &source, b"rename me").await {
        return;
    }
    let renamed = match store.rename_if_not_exists(&source, &at("renamed")).await {
        Ok(()) => match store.head(&source).await {
            Err(Error::NotFound { .. }) => Ok(String::new()),
            other => Err(format!("source after rename: {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    };
    r.row(&format!("rename_if_not_exists{mode} (new target)"), "Ok", renamed);
}

async fn multipart(store: &Store, path: &Path) -> Result<String, String> {
    let part = 5 * 1024 * 1024;
    let mut upload = store.put_multipart(path).await.map_err(|e| e.to_string())?;
    for (fill, len) in [(1u8, part), (2u8, part), (3u8, 1024)] {
        upload.put_part(PutPayload::from(vec![fill; len])).await.map_err(|e| e.to_string())?;
    }
    upload.complete().await.map_err(|e| e.to_string())?;
    let body = read(store, path).await.map_err(|e| e.to_string())?;
    let want = 2 * part + 1024;
    if body.len() == want && body[0] == 1 && body[part] == 2 && body[want - 1] == 3 {
        Ok(String::new())
    } else {
        Err(format!("read back {} bytes, want {want}", body.len()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = env::args().nth(1).unwrap_or_default();
    let target = match name.as_str() {
        "gcs" => gcs_target(),
        "s3" | "minio" => s3_target(),
        _ => {
            eprintln!("usage: pinvault-objstore-probe gcs|s3");
            std::process::exit(2);
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot build the {name} store: {e}");
            std::process::exit(1);
        }
    };
    println!("object_store probe against {name} ({})\n", target.store);
    let report = probe(&target).await;
    println!("\nsummary: {} OK, {} FAILED", report.ok, report.failed);
}
