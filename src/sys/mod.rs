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

/// Whether the process has root's powers (mounts, loop devices, chroot).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
