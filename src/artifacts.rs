//! Outputs that appear only when they are complete.
//!
//! Every artifact is written as `NAME.partial` beside its final name and renamed once
//! it is whole and verified. A failed or interrupted step drops its guard, which
//! removes the partial file: nothing that looks finished is ever left behind.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// An output being written. Removed on drop unless [`PartialFile::commit`] ran.
#[derive(Debug)]
pub struct PartialFile {
    partial: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PartialFile {
    /// Reserve `target`. Fails if it exists and `overwrite` is false, or if its
    /// directory does not exist.
    pub fn new(target: &Path, overwrite: bool) -> Result<PartialFile> {
        let Some(name) = target.file_name() else {
            bail!("{} is not a file name", target.display());
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!("the output directory {} does not exist", dir.display());
        }
        if target.exists() && !overwrite {
            bail!(
                "{} already exists; remove it or pass --force",
                target.display()
            );
        }
        let mut partial_name = OsString::from(name);
        partial_name.push(".partial");
        let partial = dir.join(partial_name);
        // A leftover from a killed run is ours to replace.
        if partial.exists() {
            std::fs::remove_file(&partial)
                .with_context(|| format!("removing the stale {}", partial.display()))?;
        }
        Ok(PartialFile {
            partial,
            target: target.to_owned(),
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// The name it will have.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Make the output durable and give it its final name.
    pub fn commit(mut self) -> Result<PathBuf> {
        std::fs::File::open(&self.partial)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", self.partial.display()))?;
        std::fs::rename(&self.partial, &self.target).with_context(|| {
            format!(
                "renaming {} to {}",
                self.partial.display(),
                self.target.display()
            )
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed
            && let Err(err) = std::fs::remove_file(&self.partial)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(
                "could not remove the unfinished {}: {err}",
                self.partial.display()
            );
        }
    }
}
