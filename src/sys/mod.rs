//! Everything that touches the host: external commands, signals, mounts, loop
//! devices and temporary directories. Each resource is a guard that undoes itself.

pub mod cancel;
pub mod cmd;
pub mod loopdev;
pub mod mount;
pub mod progress;

use std::path::Path;

use anyhow::{Context, Result};
pub use cancel::Interrupted;
pub use cmd::{Cmd, CmdError, Output};
pub use loopdev::{LoopDevice, LoopOptions};
pub use mount::Mount;
pub use tempfile::TempDir;

/// A fresh directory under `parent`, removed with everything in it when dropped.
///
/// Declare mounts and loop devices that live inside it *after* it, so that Rust drops
/// them first: a directory cannot be removed while something is mounted in it.
pub fn temp_dir(parent: &Path, prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))
}

/// A scratch directory for an inspection: `nodeimg-inspect-PID-XXXXXX` in `parent`.
/// The owner's pid in the name lets a later run sweep away what a killed one
/// (SIGKILL, an abort) could not remove, so scratch copies never pile up.
pub fn inspect_scratch(parent: &Path) -> Result<TempDir> {
    const PREFIX: &str = "nodeimg-inspect-";
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner) = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let alive = Path::new("/proc").join(owner.to_string()).exists();
            if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) {
                tracing::debug!("removing {} (its nodeimg is gone)", entry.path().display());
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    temp_dir(parent, &format!("{PREFIX}{}-", std::process::id()))
}

/// Whether the process has root's powers (mounts, loop devices, chroot).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Seconds since 1970, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `SOURCE_DATE_EPOCH`, when it is set to a number: what pins times for reproducible
/// artifacts.
pub fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// A file's SHA-256 (hex), read in 1 MiB blocks, cancellably.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    sha256_range(path, 0, u64::MAX)
}

/// The SHA-256 (hex) of `len` bytes of a file from `offset` (fewer at its end).
pub fn sha256_range(path: &Path, offset: u64, len: u64) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use sha2::Digest as _;
    use std::io::{Read as _, Seek as _};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .with_context(|| format!("reading {}", path.display()))?;
    let mut input = file.take(len);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        cancel::check()?;
        let n = input
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
