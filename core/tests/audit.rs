//! `pinvault_core::audit` over the reference model: the digest ignores listing order and
//! versions, `verify_views` finds a view that disagrees with the pins, and `copy` resumes from
//! its checkpoint after an interruption and respects the destination's batch limit.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use multihash::Multihash;
use pinvault_core::audit::{self, PinsetDigest};
use pinvault_core::memory::MemoryBackend;
use pinvault_core::transfer::NoProgress;
use pinvault_core::{
    Batch, Cid, Cursor, Error, Expiry, ListEntry, MigrationReport, PeerId, Pin, PinCapabilities,
    PinState, Placement, Precondition, Receipt, Result, Versioned,
};

fn cid(n: u64) -> Cid {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    Cid::new_v1(0x70, Multihash::<64>::wrap(0x12, &digest).unwrap())
}

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes(&Multihash::<64>::wrap(0x12, &[n; 32]).unwrap().to_bytes()).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn pin(n: u64) -> Pin {
    let mut pin = Pin::new(cid(n));
    pin.allocations = vec![peer((n % 3) as u8), peer(10)];
    if n % 2 == 0 {
        pin.options.expire_at = Some(at(2_000_000_000 + n as i64));
    }
    pin
}

async fn filled(order: impl Iterator<Item = u64>) -> MemoryBackend {
    let backend = MemoryBackend::new();
    for n in order {
        backend.put(pin(n), Precondition::Any).await.unwrap();
    }
    backend
}

/// A backend whose `pins_by_peer` hides one CID and whose batches are limited: the rest is the
/// reference model.
#[derive(Debug)]
struct Wrapped {
    inner: MemoryBackend,
    hide: Option<Cid>,
    max_batch_ops: Option<usize>,
    largest_batch: AtomicUsize,
}

impl Wrapped {
    fn new(inner: MemoryBackend) -> Self {
        Wrapped { inner, hide: None, max_batch_ops: None, largest_batch: AtomicUsize::new(0) }
    }
}

#[async_trait]
impl PinState for Wrapped {
    fn pin_capabilities(&self) -> PinCapabilities {
        let mut caps = self.inner.pin_capabilities();
        caps.max_batch_ops = self.max_batch_ops;
        caps
    }
    async fn get(&self, cid: &Cid) -> Result<Versioned> {
        self.inner.get(cid).await
    }
    fn list(&self, after: Option<Cursor>) -> BoxStream<'_, Result<ListEntry>> {
        self.inner.list(after)
    }
    async fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.largest_batch.fetch_max(batch.ops.len(), Ordering::Relaxed);
        self.inner.commit(batch).await
    }
    fn pins_by_peer(&self, peer: &PeerId) -> BoxStream<'_, Result<Cid>> {
        let hide = self.hide;
        self.inner
            .pins_by_peer(peer)
            .filter(move |c| futures::future::ready(!matches!(c, Ok(c) if Some(*c) == hide)))
            .boxed()
    }
    fn expiring_before(&self, before: DateTime<Utc>) -> BoxStream<'_, Result<Expiry>> {
        self.inner.expiring_before(before)
    }
    async fn placement(&self, cid: &Cid) -> Result<Placement> {
        self.inner.placement(cid).await
    }
    async fn record_placement(&self, cid: &Cid, actual: BTreeSet<PeerId>) -> Result<()> {
        self.inner.record_placement(cid, actual).await
    }
    async fn migrate(&self) -> Result<MigrationReport> {
        self.inner.migrate().await
    }
}

#[tokio::test]
async fn digest_ignores_order_and_versions_but_not_content() {
    let forward = filled(0..50).await;
    let backward = filled((0..50).rev()).await;
    // Rewriting pins changes their versions, not the pinset.
    for n in 0..10 {
        backward.put(pin(n), Precondition::Any).await.unwrap();
    }
    let a = audit::digest(&forward).await.unwrap();
    let b = audit::digest(&backward).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.pins, 50);
    let mut changed = pin(7);
    changed.options.name = "renamed".into();
    backward.put(changed.clone(), Precondition::Any).await.unwrap();
    let renamed = audit::digest(&backward).await.unwrap().digest;
    assert_ne!(renamed, a.digest);
    // A field Go's protobuf does not carry still counts.
    changed.options.mode = match changed.options.mode {
        pinvault_core::PinMode::Recursive => pinvault_core::PinMode::Direct,
        pinvault_core::PinMode::Direct => pinvault_core::PinMode::Recursive,
    };
    backward.put(changed, Precondition::Any).await.unwrap();
    assert_ne!(audit::digest(&backward).await.unwrap().digest, renamed);
    assert_eq!(audit::digest(&MemoryBackend::new()).await.unwrap(), PinsetDigest::default());
}

#[tokio::test]
async fn verify_views_accepts_the_model_and_finds_a_hidden_row() {
    let backend = filled(0..30).await;
    let report = audit::verify_views(&backend).await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!((report.pins, report.peers, report.expiring), (30, 4, 15));

    let mut broken = Wrapped::new(backend);
    broken.hide = Some(cid(4));
    let report = audit::verify_views(&broken).await.unwrap();
    // cid(4) is allocated to peer(1) and peer(10): both views miss it.
    assert_eq!(report.problem_count, 2, "{report:?}");
    assert!(report
        .problems
        .iter()
        .all(|p| p.contains("misses") && p.contains(&cid(4).to_string())));
}

#[tokio::test]
async fn copy_resumes_from_its_checkpoint_and_respects_the_batch_limit() {
    let source = filled(0..95).await;
    let mut destination = Wrapped::new(MemoryBackend::new());
    destination.max_batch_ops = Some(10);

    // The first run is interrupted after its third committed batch.
    let saved: Mutex<Option<(Cursor, u64)>> = Mutex::new(None);
    let mut calls = 0;
    let mut interrupting = |cursor: &Cursor, copied: u64| {
        *saved.lock().unwrap() = Some((cursor.clone(), copied));
        calls += 1;
        if calls == 3 {
            return Err(Error::unavailable("interrupted", false));
        }
        Ok(())
    };
    let err = audit::copy(&source, &destination, None, 1000, &mut interrupting, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }));
    let (cursor, copied) = saved.lock().unwrap().clone().unwrap();
    assert_eq!(copied, 30);
    assert_eq!(audit::digest(&destination).await.unwrap().pins, 30);

    // Resumed from the checkpoint, it copies the rest exactly once.
    let mut ignore = |_: &Cursor, _: u64| Ok(());
    let summary = audit::copy(&source, &destination, Some(cursor), 1000, &mut ignore, &NoProgress)
        .await
        .unwrap();
    assert_eq!((summary.pins, summary.batches), (65, 7));
    assert_eq!(destination.largest_batch.load(Ordering::Relaxed), 10, "lowered to the limit");
    assert_eq!(audit::digest(&destination).await.unwrap(), audit::digest(&source).await.unwrap());
    assert!(audit::verify_views(&destination).await.unwrap().is_consistent());

    let mut never = |_: &Cursor, _: u64| Ok(());
    let zero = audit::copy(&source, &destination, None, 0, &mut never, &NoProgress).await;
    assert!(matches!(zero, Err(Error::InvalidInput { .. })));
}
