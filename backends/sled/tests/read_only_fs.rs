//! sled has no read-only mode: `OpenMode::ReadOnly` opens it as a writer (lock, log), so on a
//! read-only filesystem (a read-only bind mount here) every open is `Error::Path` with
//! `ReadOnlyFilesystem`, naming the store. `harness = false`: where `mount` is refused
//! (`pinvault_conformance::mounts` probes once), `SKIPPED: <reason>` is printed and the check
//! is reported ignored, never passed.

use pinvault_conformance::mounts;
use pinvault_core::{Error, OpenMode, PathProblem};
use pinvault_sled::{DirOptions, SledEngine};

fn read_only_filesystem_is_a_path_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    drop(SledEngine::open(&path, &DirOptions::default()).expect("create"));
    let mnt = tmp.path().join("ro");
    std::fs::create_dir(&mnt).expect("mkdir");
    let _mounted = mounts::bind_read_only(&path, &mnt).unwrap_or_else(|e| panic!("{e}"));
    for mode in [OpenMode::ReadOnly, OpenMode::MustExist] {
        match SledEngine::open_with_mode(&mnt, &DirOptions::default(), mode) {
            Err(Error::Path { problem: PathProblem::ReadOnlyFilesystem, path, .. }) => {
                assert!(path.starts_with(&mnt), "{}", path.display())
            }
            other => panic!("{mode:?} on a read-only mount: {:?}", other.map(|_| ())),
        }
    }
}

fn main() {
    mounts::run(&[(
        "read_only_filesystem_is_a_path_error",
        true,
        read_only_filesystem_is_a_path_error,
    )]);
}
