//! The stored-format migration check for engines on the shared KV layer
//! ([`pinvault_core::kv`]): a format-1 store (pins only, each the plain ipfs-cluster protobuf,
//! see `core/src/kv/layout.rs`) built from the golden protobuf fixtures of
//! `core/testdata/golden`, refused until migrated, then converted with versions and views.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use pinvault_core::codec::protobuf;
use pinvault_core::kv::{layout, KvBackend, KvEngine, KvWrite, Table};
use pinvault_core::{Error, FaultInjector, Pin, PinState};

/// The fixture: ipfs-cluster `Pin` protobufs as Go marshals them (see the golden README).
pub const FORMAT_1_PINS: &[(&str, &[u8])] = &[
    ("full_v1", include_bytes!("../../core/testdata/golden/full_v1.bin")),
    ("minimal_v0", include_bytes!("../../core/testdata/golden/minimal_v0.bin")),
    ("meta_pin", include_bytes!("../../core/testdata/golden/meta_pin.bin")),
    ("shard_pin", include_bytes!("../../core/testdata/golden/shard_pin.bin")),
    ("clusterdag_pin", include_bytes!("../../core/testdata/golden/clusterdag_pin.bin")),
    ("pre_epoch", include_bytes!("../../core/testdata/golden/pre_epoch.bin")),
    (
        "deprecated_metadata_field6",
        include_bytes!("../../core/testdata/golden/deprecated_metadata_field6.bin"),
    ),
];

/// The fixture's pins with their bytes, one per CID (some fixtures share a CID; the later
/// one is kept, as a later write would have been).
fn fixture_pins() -> Vec<(Pin, &'static [u8])> {
    let mut by_cid = std::collections::BTreeMap::new();
    for (name, bytes) in FORMAT_1_PINS {
        let pin = protobuf::decode_pin(bytes).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        by_cid.insert(pin.cid.to_bytes(), (pin, *bytes));
    }
    by_cid.into_values().collect()
}

/// Writes the format-1 fixture into `engine` as an older pinvault would have left it.
pub fn write_format_1<E: KvEngine>(engine: &E) {
    let mut writes = vec![KvWrite::Put {
        table: Table::Meta,
        key: layout::META_FORMAT.to_vec(),
        value: layout::FORMAT_PINS_ONLY.to_be_bytes().to_vec(),
    }];
    for (pin, bytes) in fixture_pins() {
        writes.push(KvWrite::Put {
            table: Table::Pins,
            key: pin.cid.to_bytes(),
            value: bytes.to_vec(),
        });
    }
    engine.write(writes).expect("writing the format-1 fixture");
}

/// Opens a format-1 store, checks that use before migration is refused, migrates, and checks
/// every pin, its version and its views; then migrates again (a no-op) and reopens.
/// `open_engine` opens the engine over the same data each time it is called.
pub async fn check_migrates_format_1<E, F>(open_engine: F)
where
    E: KvEngine,
    F: Fn() -> E,
{
    write_format_1(&open_engine());
    let expected: Vec<Pin> = fixture_pins().into_iter().map(|(pin, _)| pin).collect();
    assert!(expected.len() >= 5, "the fixture holds several distinct pins");
    let backend = KvBackend::open(open_engine(), FaultInjector::disabled()).expect("open format 1");
    match backend.get(&expected[0].cid).await {
        Err(Error::Unsupported { operation, .. }) => {
            assert!(operation.contains("migrate"), "the refusal names migrate: {operation}")
        }
        other => panic!("a format-1 store must refuse use before migrate, got {other:?}"),
    }
    let report = backend.migrate().await.expect("migrate 1 -> 2");
    assert_eq!((report.from, report.to), (layout::FORMAT_PINS_ONLY, layout::FORMAT_VERSION));
    assert_eq!(report.records_rewritten, expected.len() as u64);

    let mut versions = BTreeSet::new();
    for pin in &expected {
        let got = backend.get(&pin.cid).await.expect("a migrated pin reads back");
        assert_eq!(&got.pin, pin, "pin {} survives migration unchanged", pin.cid);
        assert!(versions.insert(got.version), "every migrated pin gets its own version");
        for peer in &pin.allocations {
            let by_peer: Vec<_> = backend.pins_by_peer(peer).try_collect().await.expect("by peer");
            assert!(by_peer.contains(&pin.cid), "migration indexes {} under {peer:?}", pin.cid);
        }
    }
    let expiring: Vec<_> = backend
        .expiring_before(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .try_collect()
        .await
        .expect("expiry queue");
    let with_expiry = expected.iter().filter(|p| p.options.expire_at.is_some()).count();
    assert_eq!(expiring.len(), with_expiry, "migration fills the expiry queue");
    drop(backend);

    let reopened = KvBackend::open(open_engine(), FaultInjector::disabled()).expect("reopen");
    let again = reopened.migrate().await.expect("second migrate");
    assert_eq!(again.records_rewritten, 0, "migrate is idempotent");
    let listed: Vec<_> = reopened.list(None).try_collect().await.expect("list after migrate");
    assert_eq!(listed.len(), expected.len());
}

/// A store whose format is newer than this code knows is refused at open, untouched.
pub fn check_refuses_newer_format<E: KvEngine, F: Fn() -> E>(open_engine: F) {
    open_engine()
        .write(vec![KvWrite::Put {
            table: Table::Meta,
            key: layout::META_FORMAT.to_vec(),
            value: (layout::FORMAT_VERSION + 1).to_be_bytes().to_vec(),
        }])
        .expect("write a future format");
    match KvBackend::open(open_engine(), FaultInjector::disabled()) {
        Err(Error::Unsupported { operation, .. }) => assert!(operation.contains("format")),
        other => panic!("a newer stored format must be refused, got {:?}", other.map(|_| ())),
    }
}

/// [`check_migrates_format_1`] on a store in a fresh temporary directory; `open_engine` opens
/// the engine at the path it is given.
pub async fn migrates_format_1_fixture<E: KvEngine>(open_engine: impl Fn(&std::path::Path) -> E) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    check_migrates_format_1(|| open_engine(&path)).await;
}

/// [`check_refuses_newer_format`] on a store in a fresh temporary directory; `open_engine`
/// opens the engine at the path it is given.
pub fn refuses_a_newer_format<E: KvEngine>(open_engine: impl Fn(&std::path::Path) -> E) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    check_refuses_newer_format(|| open_engine(&path));
}

/// Defines the stored-format tests of an engine on the shared KV layer,
/// `migrates_format_1_fixture` (a `#[tokio::test]`) and `refuses_a_newer_format`, for the
/// engine type `$engine`, opened with `<$engine>::open(path, &Default::default())` (the
/// constructor every directory engine has: a path and its options).
#[macro_export]
macro_rules! kv_migration_tests {
    ($engine:ty) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn migrates_format_1_fixture() {
            $crate::kv_migration::migrates_format_1_fixture(|path| {
                <$engine>::open(path, &Default::default())
                    .expect(concat!("open ", stringify!($engine)))
            })
            .await;
        }

        #[test]
        fn refuses_a_newer_format() {
            $crate::kv_migration::refuses_a_newer_format(|path| {
                <$engine>::open(path, &Default::default())
                    .expect(concat!("open ", stringify!($engine)))
            });
        }
    };
}
