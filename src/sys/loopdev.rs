//! Loop devices that detach themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::cmd::Cmd;
use super::mount::absolute;

const LOSETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How to attach a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopOptions {
    pub read_only: bool,
    /// Start of the device within the file, in bytes.
    pub offset: Option<u64>,
    /// Length of the device, in bytes.
    pub size_limit: Option<u64>,
    /// Let the kernel create partition devices (`/dev/loopNpM`).
    pub partscan: bool,
}

/// A loop device backed by a file, detached when dropped (also on error and on
/// SIGINT/SIGTERM, which unwind through `?` to here).
#[derive(Debug)]
pub struct LoopDevice {
    device: PathBuf,
    backing: PathBuf,
    attached: bool,
}

impl LoopDevice {
    pub fn attach(file: &Path, options: LoopOptions) -> Result<LoopDevice> {
        let backing = absolute(file)?;
        let mut cmd = Cmd::new("losetup").args(["--find", "--show"]);
        if options.read_only {
            cmd = cmd.arg("--read-only");
        }
        if let Some(offset) = options.offset {
            cmd = cmd.arg("--offset").arg(offset.to_string());
        }
        if let Some(size) = options.size_limit {
            cmd = cmd.arg("--sizelimit").arg(size.to_string());
        }
        if options.partscan {
            cmd = cmd.arg("--partscan");
        }
        // Uninterruptible: killing losetup after it attached the device but before it
        // printed the name would leave a device we could not detach.
        let out = cmd
            .arg("--")
            .arg(&backing)
            .timeout(LOSETUP_TIMEOUT)
            .uninterruptible()
            .quiet()
            .output_text()
            .with_context(|| format!("attaching {} to a loop device", backing.display()))?;
        let name = out.trim();
        if !name.starts_with("/dev/loop") || name.contains(char::is_whitespace) {
            bail!(
                "losetup attached {} but printed {name:?} instead of a device name",
                backing.display()
            );
        }
        tracing::debug!("{} is attached as {name}", backing.display());
        Ok(LoopDevice {
            device: PathBuf::from(name),
            backing,
            attached: true,
        })
    }

    /// The device, e.g. `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.device
    }

    /// The file behind the device.
    pub fn backing_file(&self) -> &Path {
        &self.backing
    }

    /// Detach now and report failure (drop only logs it).
    pub fn detach(mut self) -> Result<()> {
        self.attached = false;
        detach(&self.device)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if self.attached
            && let Err(err) = detach(&self.device)
        {
            tracing::error!("{err:#}");
        }
    }
}

fn detach(device: &Path) -> Result<()> {
    Cmd::new("losetup")
        .arg("--detach")
        .arg(device)
        .timeout(LOSETUP_TIMEOUT)
        .uninterruptible()
        .quiet()
        .run()
        .with_context(|| {
            format!(
                "could not detach {}; run `losetup --detach {}`",
                device.display(),
                device.display()
            )
        })?;
    wait_released(device);
    Ok(())
}

/// `losetup --detach` returns at once when someone else still has the device open
/// (udev's probe after the attach, say): the kernel then only marks it to be freed
/// when the last user closes it. Wait a little for that, so that a nodeimg that
/// exits leaves no loop device behind.
fn wait_released(device: &Path) {
    let Some(name) = device.file_name() else {
        return;
    };
    let backing = Path::new("/sys/block").join(name).join("loop/backing_file");
    for _ in 0..100 {
        if !backing.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!(
        "{} is detached but still open elsewhere; the kernel frees it when that closes",
        device.display()
    );
}
