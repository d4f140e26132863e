//! sled has no read-only mode: `OpenMode::ReadOnly` opens it as a writer (lock, log), so on a
//! read-only filesystem (a read-only bind mount here) every open is `Error::Path` with
//! `ReadOnlyFilesystem`, naming the store. `harness = false`: where `mount` is refused the
//! check prints `SKIPPED: <reason>` and counts as ignored, never as passed.

use std::path::Path;
use std::process::Command;

use pinvault_core::{Error, OpenMode, PathProblem};
use pinvault_sled::{SledEngine, SledOptions};

fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// `Err(reason)` when the check cannot run here.
fn read_only_filesystem_is_a_path_error() -> Result<(), String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    drop(SledEngine::open(&path, &SledOptions::default()).expect("create"));
    let mnt = tmp.path().join("ro");
    std::fs::create_dir(&mnt).expect("mkdir");
    let (src, target) = (path.display().to_string(), mnt.display().to_string());
    mount(&["--bind", &src, &target])?;
    let _mounted = Mounted(&mnt);
    mount(&["-o", "remount,bind,ro", &target])?;
    for mode in [OpenMode::ReadOnly, OpenMode::MustExist] {
        match SledEngine::open_with_mode(&mnt, &SledOptions::default(), mode) {
            Err(Error::Path {
                problem: PathProblem::ReadOnlyFilesystem,
                path,
                ..
            }) => {
                assert!(path.starts_with(&mnt), "{}", path.display())
            }
            other => panic!("{mode:?} on a read-only mount: {:?}", other.map(|_| ())),
        }
    }
    Ok(())
}

fn main() {
    let started = std::time::Instant::now();
    let name = "read_only_fs::read_only_filesystem_is_a_path_error";
    let (passed, ignored) = match read_only_filesystem_is_a_path_error() {
        Ok(()) => {
            println!("test {name} ... ok");
            (1, 0)
        }
        Err(reason) => {
            println!("test {name} ... ignored");
            println!("SKIPPED: {name}: {reason}");
            (0, 1)
        }
    };
    println!(
        "test result: ok. {passed} passed; 0 failed; {ignored} ignored; 0 measured; 0 filtered out; finished in {:.2}s",
        started.elapsed().as_secs_f64()
    );
}
