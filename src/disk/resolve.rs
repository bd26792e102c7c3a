//! Path resolution inside an image, one component at a time, so that no symlink is
//! read on the image's word.
//!
//! ext4-view follows symlinks in the middle of a path itself and reads a target longer
//! than 59 bytes whole into memory, sized by the inode (1.0.0: `Inode::symlink_target`
//! → `read_inode_file`): a link claiming a terabyte-long target aborts the process.
//! Here every lookup is of a path whose directories are already known to be real
//! directories, so ext4-view never follows a link; each link is checked against
//! PATH_MAX before its target is read, and a path may pass at most 40 links (the
//! kernel's limit, which ext4-view uses too).

use std::collections::VecDeque;

use anyhow::{Result, bail, ensure};
use ext4_view::{Ext4, Ext4Error, Metadata, PathBuf};

/// The longest symlink target or path, as the kernel allows (PATH_MAX).
pub const PATH_MAX: u64 = 4096;
/// The most symlinks one lookup may pass (the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// What `path` names in the image with every symlink resolved: a path made of real
/// directories ending in a non-symlink. `None` when some component is not there (a
/// dangling link included) or a file stands where a directory should be.
pub fn resolve(fs: &Ext4, path: &str) -> Result<Option<(PathBuf, Metadata)>> {
    let mut pending: VecDeque<Vec<u8>> = components(path.as_bytes()).collect();
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut found = None;
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == b".." {
            // `resolved` holds real directories only, so ".." is its parent.
            resolved.pop();
            found = None;
            continue;
        }
        let candidate = join(&resolved, Some(&name))?;
        let meta = match fs.symlink_metadata(&candidate) {
            Ok(meta) => meta,
            Err(Ext4Error::NotFound | Ext4Error::NotADirectory) => return Ok(None),
            Err(err) => bail!("{}: {err}", candidate.display()),
        };
        if meta.is_symlink() {
            links += 1;
            ensure!(
                links <= MAX_LINKS,
                "{path}: more than {MAX_LINKS} symlinks to follow (a loop?)"
            );
            let target = read_link_checked(fs, &candidate, &meta)?;
            if target.is_absolute() {
                resolved.clear();
            }
            for part in components(target.as_ref())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                pending.push_front(part);
            }
            let left: usize = pending.iter().map(|p| p.len() + 1).sum();
            ensure!(
                left as u64 <= PATH_MAX,
                "{path}: longer than {PATH_MAX} bytes once its symlinks are followed"
            );
            found = None;
            continue;
        }
        if !pending.is_empty() && !meta.is_dir() {
            return Ok(None);
        }
        resolved.push(name);
        found = Some(meta);
    }
    let real = join(&resolved, None)?;
    let meta = match found {
        Some(meta) => meta,
        // The root, or a path ending in ".." or a link to a directory above.
        None => fs
            .symlink_metadata(&real)
            .map_err(|err| anyhow::anyhow!("{}: {err}", real.display()))?,
    };
    Ok(Some((real, meta)))
}

/// `path` without following its last component; its directories resolved as above.
pub fn lstat(fs: &Ext4, path: &str) -> Result<Option<(PathBuf, Metadata)>> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let Some((dir, _)) = resolve(fs, if dir.is_empty() { "/" } else { dir })? else {
        return Ok(None);
    };
    let full = dir.join(name);
    match fs.symlink_metadata(&full) {
        Ok(meta) => Ok(Some((full, meta))),
        Err(Ext4Error::NotFound | Ext4Error::NotADirectory) => Ok(None),
        Err(err) => bail!("{}: {err}", full.display()),
    }
}

/// A symlink's target, once its inode's size is known to be at most PATH_MAX.
pub fn read_link_checked(fs: &Ext4, link: &PathBuf, meta: &Metadata) -> Result<PathBuf> {
    ensure!(
        meta.len() <= PATH_MAX,
        "{}: a symlink whose inode claims a {}-byte target (at most {PATH_MAX}): the image is \
         corrupt",
        link.display(),
        meta.len()
    );
    fs.read_link(link)
        .map_err(|err| anyhow::anyhow!("{}: reading the symlink: {err}", link.display()))
}

fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(<[u8]>::to_vec)
}

fn join(dirs: &[Vec<u8>], last: Option<&[u8]>) -> Result<PathBuf> {
    let mut bytes = Vec::new();
    for part in dirs.iter().map(Vec::as_slice).chain(last) {
        bytes.push(b'/');
        bytes.extend_from_slice(part);
    }
    if bytes.is_empty() {
        bytes.push(b'/');
    }
    PathBuf::try_from(bytes).map_err(|err| anyhow::anyhow!("a path in the image: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    /// An ext4 image of a small tree with relative, absolute, dotted and looping links.
    fn image() -> (tempfile::TempDir, Ext4) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=test\n").unwrap();
        symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        symlink("/usr/./lib/", root.join("lib")).unwrap();
        symlink("loop-b", root.join("etc/loop-a")).unwrap();
        symlink("loop-a", root.join("etc/loop-b")).unwrap();
        symlink("/nowhere", root.join("etc/dangling")).unwrap();
        symlink("../../../../..", root.join("etc/up")).unwrap();
        let img = dir.path().join("fs.ext4");
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&root)
            .arg(&img)
            .arg("4M")
            .status()
            .unwrap();
        assert!(status.success());
        let file = std::fs::File::open(&img).unwrap();
        let fs = Ext4::load(Box::new(crate::disk::ext4::OffsetFile::new(file, 0))).unwrap();
        (dir, fs)
    }

    fn real(fs: &Ext4, path: &str) -> Option<String> {
        resolve(fs, path)
            .unwrap()
            .map(|(p, _)| p.display().to_string())
    }

    #[test]
    fn links_resolve_to_real_paths() {
        let (_dir, fs) = image();
        assert_eq!(real(&fs, "/etc/os-release").unwrap(), "/usr/lib/os-release");
        assert_eq!(real(&fs, "/lib/os-release").unwrap(), "/usr/lib/os-release");
        assert_eq!(real(&fs, "/etc/up/usr/lib").unwrap(), "/usr/lib");
        assert_eq!(real(&fs, "/usr/lib/..").unwrap(), "/usr");
        assert_eq!(real(&fs, "/").unwrap(), "/");
        assert!(resolve(&fs, "/etc/up").unwrap().unwrap().1.is_dir());
        assert_eq!(real(&fs, "/etc/dangling"), None);
        assert_eq!(real(&fs, "/usr/lib/os-release/x"), None);
        assert_eq!(real(&fs, "/absent/x"), None);
        let lstat = lstat(&fs, "/etc/os-release").unwrap().unwrap();
        assert!(lstat.1.is_symlink());
    }

    #[test]
    fn a_symlink_loop_is_an_error() {
        let (_dir, fs) = image();
        let err = resolve(&fs, "/etc/loop-a").unwrap_err().to_string();
        assert!(err.contains("more than 40 symlinks"), "{err}");
    }
}
