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

/// A build's staging directory inside OUTDIR: artifacts are made there and moved
/// into OUTDIR together, only when the whole build succeeded, with
/// `CHECKSUMS.sha256` last, so its presence means a whole build. Dropped without
/// [`Staging::commit`], it goes with everything in it.
#[derive(Debug)]
pub struct Staging {
    outdir: PathBuf,
    dir: tempfile::TempDir,
}

/// The prefix of staging directories (skipped when OUTDIR is checked for an earlier build).
const STAGING_PREFIX: &str = ".nodeimg-build-";
/// The checksum list: written last.
pub const CHECKSUMS: &str = "CHECKSUMS.sha256";

impl Staging {
    /// Create OUTDIR if needed and a staging directory in it. An OUTDIR that holds an
    /// earlier build's artifacts is refused unless `force` (they are replaced at commit).
    pub fn new(outdir: &Path, force: bool) -> Result<Staging> {
        std::fs::create_dir_all(outdir)
            .with_context(|| format!("creating {}", outdir.display()))?;
        let earlier = earlier_artifacts(outdir)?;
        if !earlier.is_empty() && !force {
            bail!(
                "{} already holds {} (an earlier build?); use another directory or --force to replace them",
                outdir.display(),
                earlier.join(", ")
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(outdir)
            .with_context(|| format!("creating a staging directory in {}", outdir.display()))?;
        Ok(Staging {
            outdir: outdir.to_owned(),
            dir,
        })
    }

    /// Where a staged file named `name` is.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A staged file's size and SHA-256.
    pub fn digest(&self, name: &str) -> Result<(u64, String)> {
        let path = self.path(name);
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok((bytes, crate::sys::sha256_file(&path)?))
    }

    /// Move the staged `files` (name, SHA-256) and the record into OUTDIR, after the
    /// earlier build's artifacts are removed (they could have other names), and write
    /// CHECKSUMS.sha256 last.
    pub fn commit(self, files: &[(&str, &str)], record: (&str, &str)) -> Result<()> {
        use sha2::Digest as _;
        let (record_name, record_text) = record;
        std::fs::write(self.path(record_name), record_text)
            .with_context(|| format!("writing {record_name}"))?;
        let mut checksums = String::new();
        for (name, sha256) in files {
            checksums.push_str(&format!("{sha256}  {name}\n"));
        }
        let record_sha = hex::encode(sha2::Sha256::digest(record_text.as_bytes()));
        checksums.push_str(&format!("{record_sha}  {record_name}\n"));
        std::fs::write(self.path(CHECKSUMS), checksums)
            .with_context(|| format!("writing {CHECKSUMS}"))?;

        for name in earlier_artifacts(&self.outdir)? {
            let path = self.outdir.join(&name);
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the earlier {}", path.display()))?;
        }
        let names = files
            .iter()
            .map(|(name, _)| *name)
            .chain([record_name, CHECKSUMS]);
        for name in names {
            std::fs::rename(self.path(name), self.outdir.join(name))
                .with_context(|| format!("moving {name} into {}", self.outdir.display()))?;
        }
        Ok(())
    }
}

/// What an earlier build left in OUTDIR: every file but logs/ and staging directories.
fn earlier_artifacts(outdir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries =
        std::fs::read_dir(outdir).with_context(|| format!("reading {}", outdir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "logs" || name.starts_with(STAGING_PREFIX) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            bail!(
                "{} holds a directory {name}; nodeimg only writes files and logs/ there",
                outdir.display()
            );
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_refuses_an_earlier_build_unless_forced_and_commits_checksums_last() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("old.rpm"), "old").unwrap();
        let err = Staging::new(out.path(), false).unwrap_err().to_string();
        assert!(err.contains("already holds old.rpm"), "{err}");

        let staging = Staging::new(out.path(), true).unwrap();
        std::fs::write(staging.path("a.img"), "image").unwrap();
        let (bytes, sha) = staging.digest("a.img").unwrap();
        assert_eq!(bytes, 5);
        staging
            .commit(&[("a.img", &sha)], ("build.json", "{}\n"))
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["CHECKSUMS.sha256", "a.img", "build.json"]);
        let sums = std::fs::read_to_string(out.path().join(CHECKSUMS)).unwrap();
        assert!(sums.starts_with(&format!("{sha}  a.img\n")), "{sums}");
        assert!(sums.ends_with("  build.json\n"), "{sums}");
    }

    #[test]
    fn a_dropped_staging_leaves_nothing() {
        let out = tempfile::tempdir().unwrap();
        let staging = Staging::new(out.path(), false).unwrap();
        std::fs::write(staging.path("half.img"), "x").unwrap();
        drop(staging);
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
