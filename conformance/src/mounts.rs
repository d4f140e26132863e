//! Mounts for the tests of directory backends on real filesystems that refuse writes: a
//! read-only bind mount (a store read where nothing may be written) and a small tmpfs (a store
//! on a disk that fills up). Mocks would not show what the kernel and RocksDB, sled or the fs
//! log do there, so these tests mount for real; every test binary that mounts shares these
//! helpers.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`). libtest cannot decide at run time that a test is
//! ignored, so such binaries use `harness = false` and [`run`]: it finds out once, up front,
//! by a probe mount ([`mount_refused`]) whether this process may mount; where it may not, it
//! prints `SKIPPED: <reason>` and libtest-mimic reports the checks that need a mount as
//! *ignored*, never as passed (`scripts/test.sh` counts them as skipped). Inside a check that
//! runs, a mount that fails is a failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `mount` with `args`; `Err` carries what it printed when it failed.
pub fn mount(args: &[&str]) -> Result<(), String> {
    let out =
        Command::new("mount").args(args).output().map_err(|e| format!("cannot run mount: {e}"))?;
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

/// A mount point, unmounted when dropped (lazily, `umount -l`, if a plain `umount` fails), so
/// a failing check leaves no mount behind.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Mounts a tmpfs of `size` (`mount`'s spelling: `4m`, `64k`) on the existing directory `dir`.
pub fn tmpfs(dir: &Path, size: &str) -> Result<Mounted, String> {
    mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &dir.display().to_string()])?;
    Ok(Mounted(dir.to_path_buf()))
}

/// Bind-mounts `source` on the existing directory `target`, read-only (a bind mount, then a
/// read-only remount of it).
pub fn bind_read_only(source: &Path, target: &Path) -> Result<Mounted, String> {
    let target_arg = target.display().to_string();
    mount(&["--bind", &source.display().to_string(), &target_arg])?;
    let mounted = Mounted(target.to_path_buf());
    mount(&["-o", "remount,bind,ro", &target_arg])?;
    Ok(mounted)
}

/// Why this process may not mount, found by mounting (and unmounting) a 64 KiB tmpfs on
/// `probe_dir` (created if missing); `None` when it may.
pub fn mount_refused(probe_dir: &Path) -> Option<String> {
    if let Err(e) = std::fs::create_dir_all(probe_dir) {
        return Some(format!("cannot create the probe directory {}: {e}", probe_dir.display()));
    }
    tmpfs(probe_dir, "64k").err()
}

/// One check of a `harness = false` test binary: its name, whether it needs to mount, and the
/// function that runs it (it panics on failure).
pub type Check = (&'static str, bool, fn());

/// The `main` of a test binary whose checks may need to mount: runs `checks` with
/// libtest-mimic (so filters, `--list`, `--ignored` and the `test result:` line behave as
/// cargo's own harness). When a check needs a mount, a probe mount decides first whether this
/// process may mount; where it may not, the reason is printed once as `SKIPPED: <reason>` and
/// those checks are reported ignored. Exits with the harness's status.
pub fn run(checks: &[Check]) {
    let args = libtest_mimic::Arguments::from_args();
    let mounting: Vec<&str> =
        checks.iter().filter(|(_, needs_mount, _)| *needs_mount).map(|(name, ..)| *name).collect();
    let refused = if mounting.is_empty() || args.list {
        None
    } else {
        let probe = tempfile::tempdir().expect("a temporary directory for the mount probe");
        mount_refused(&probe.path().join("mount-probe"))
    };
    if let Some(reason) = &refused {
        println!(
            "SKIPPED: {reason}; mounting is refused here, so these checks are ignored: {}",
            mounting.join(", ")
        );
    }
    let trials = checks
        .iter()
        .map(|&(name, needs_mount, check)| {
            libtest_mimic::Trial::test(name, move || {
                check();
                Ok(())
            })
            .with_ignored_flag(needs_mount && refused.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
