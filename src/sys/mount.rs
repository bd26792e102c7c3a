//! Mounts that unmount themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::cmd::Cmd;

/// Limit for one `mount` or `umount`; they touch only the kernel and the device.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at a normal unmount before falling back to a lazy one.
const UMOUNT_ATTEMPTS: u32 = 3;

/// A mounted filesystem, unmounted when dropped (also on error and on SIGINT/SIGTERM,
/// which unwind through `?` to here).
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
    mounted: bool,
}

impl Mount {
    /// `mount [-t FSTYPE] [-o OPTIONS] SOURCE TARGET`.
    pub fn new(
        source: &Path,
        target: &Path,
        fstype: Option<&str>,
        options: &[&str],
    ) -> Result<Mount> {
        let source = absolute(source)?;
        let target = absolute(target)?;
        let mut cmd = Cmd::new("mount");
        if let Some(fstype) = fstype {
            cmd = cmd.args(["-t", fstype]);
        }
        if !options.is_empty() {
            cmd = cmd.arg("-o").arg(options.join(","));
        }
        Self::run(cmd.arg("--").arg(&source).arg(&target), target)
    }

    /// `mount --bind SOURCE TARGET`, made read-only when asked.
    pub fn bind(source: &Path, target: &Path, read_only: bool) -> Result<Mount> {
        let source = absolute(source)?;
        let target = absolute(target)?;
        let mount = Self::run(
            Cmd::new("mount")
                .arg("--bind")
                .arg("--")
                .arg(&source)
                .arg(&target),
            target,
        )?;
        if read_only {
            // A bind mount takes the read-only flag only on a remount.
            Cmd::new("mount")
                .args(["-o", "remount,bind,ro", "--"])
                .arg(&mount.target)
                .timeout(MOUNT_TIMEOUT)
                .uninterruptible()
                .quiet()
                .run()
                .with_context(|| {
                    format!("making the bind mount {} read-only", mount.target.display())
                })?;
        }
        Ok(mount)
    }

    fn run(cmd: Cmd, target: PathBuf) -> Result<Mount> {
        // Uninterruptible: a mount that succeeded must reach its guard to be undone.
        cmd.timeout(MOUNT_TIMEOUT)
            .uninterruptible()
            .quiet()
            .run()
            .with_context(|| format!("mounting {}", target.display()))?;
        Ok(Mount {
            target,
            mounted: true,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmount now and report failure (drop only logs it).
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted
            && let Err(err) = unmount(&self.target)
        {
            tracing::error!("{err:#}");
        }
    }
}

fn unmount(target: &Path) -> Result<()> {
    let plain = || {
        Cmd::new("umount")
            .arg("--")
            .arg(target)
            .timeout(MOUNT_TIMEOUT)
            .uninterruptible()
            .quiet()
            .run()
    };
    let mut last = None;
    for attempt in 1..=UMOUNT_ATTEMPTS {
        match plain() {
            Ok(_) => return Ok(()),
            Err(err) => {
                tracing::warn!("unmounting {} (attempt {attempt}): {err}", target.display());
                last = Some(err);
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    // Still busy: detach it from the tree so nothing new can use it; the kernel
    // finishes the unmount when the last user goes.
    Cmd::new("umount")
        .args(["--lazy", "--"])
        .arg(target)
        .timeout(MOUNT_TIMEOUT)
        .uninterruptible()
        .quiet()
        .run()
        .map(|_| tracing::warn!("{} was busy and is unmounted lazily", target.display()))
        .with_context(|| {
            format!(
                "could not unmount {} ({}); unmount it by hand",
                target.display(),
                last.map(|e| e.to_string()).unwrap_or_default()
            )
        })
}

/// Absolute paths only, so that no path can be read as an option.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
