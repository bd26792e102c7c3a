//! Turn a root filesystem into the Node image: a squashfs whose one file is
//! `LiveOS/rootfs.img`, an ext4 filesystem labelled `LiveOS`.
//!
//! The root filesystem comes in one of three shapes:
//!
//! * `fsimage:PATH`: an ext4 filesystem image (livemedia-creator `--make-fsimage`);
//! * `disk:PATH[:N]`: a partitioned disk image (`--make-disk`, raw or qcow2), root on
//!   partition N or found by looking;
//! * `dir:PATH`: an installed tree (the dnf backend), made into ext4 with `mkfs.ext4 -d`.
//!
//! Images are copied with `e2image -ra`, which copies only the blocks in use: free
//! space becomes holes that read as zeros and compress to nothing, the filesystem is
//! sized by its superblock rather than by its partition, and the input is never
//! modified. Steps that write timestamps or identifiers are pinned to
//! `SOURCE_DATE_EPOCH` when it is set, so the same input gives the same bytes.

pub mod squashfs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use crate::artifacts::PartialFile;
use crate::disk::{ext4, partition};
pub use crate::image::{DEFAULT_LABEL, ROOTFS_PATH};
use crate::sys::{self, Cmd};
use crate::units::human;
pub use squashfs::{Bcj, Compression, SquashfsOptions};

/// Size of rootfs.img made from a tree when none is given: upstream's `part / --size=5120`.
pub const DEFAULT_DIR_SIZE: u64 = 5120 << 20;

/// Where the root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    Fsimage {
        path: PathBuf,
    },
    Disk {
        path: PathBuf,
        partition: Option<u32>,
    },
    Dir {
        path: PathBuf,
    },
}

impl FromStr for Source {
    type Err = String;

    fn from_str(spec: &str) -> Result<Source, String> {
        let (kind, rest) = spec.split_once(':').ok_or_else(|| {
            format!("{spec:?}: expected fsimage:PATH, disk:PATH[:PARTNUM] or dir:PATH")
        })?;
        if rest.is_empty() {
            return Err(format!("{spec:?}: the path is missing"));
        }
        match kind {
            "fsimage" => Ok(Source::Fsimage { path: rest.into() }),
            "dir" => Ok(Source::Dir { path: rest.into() }),
            "disk" => {
                // A trailing `:N` names the partition; a path may itself contain colons.
                match rest.rsplit_once(':') {
                    Some((path, number))
                        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        let partition = number
                            .parse::<u32>()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or_else(|| format!("{spec:?}: partition numbers start at 1"))?;
                        Ok(Source::Disk {
                            path: path.into(),
                            partition: Some(partition),
                        })
                    }
                    _ => Ok(Source::Disk {
                        path: rest.into(),
                        partition: None,
                    }),
                }
            }
            other => Err(format!(
                "{spec:?}: unknown source kind {other:?}; expected fsimage, disk or dir"
            )),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Fsimage { path } => write!(f, "fsimage:{}", path.display()),
            Source::Disk {
                path,
                partition: Some(n),
            } => write!(f, "disk:{}:{n}", path.display()),
            Source::Disk {
                path,
                partition: None,
            } => write!(f, "disk:{}", path.display()),
            Source::Dir { path } => write!(f, "dir:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub label: String,
    /// Size of rootfs.img in bytes: for `dir`, the filesystem to create (default 5 GiB);
    /// for images, grow or shrink the copy to it.
    pub size: Option<u64>,
    pub squashfs: SquashfsOptions,
    /// Pins every timestamp and identifier the pack writes.
    pub source_date_epoch: Option<u64>,
    /// Scratch space for rootfs.img (sparse: only the used blocks take room).
    pub workdir: PathBuf,
    /// Replace an existing output.
    pub overwrite: bool,
}

/// What was packed.
#[derive(Debug, Clone, Serialize)]
pub struct PackReport {
    pub source: Source,
    /// The partition the root filesystem was taken from, for disk images.
    pub partition: Option<partition::Partition>,
    pub output: PathBuf,
    pub output_bytes: u64,
    pub label: String,
    pub filesystem_bytes: u64,
    pub filesystem_used_bytes: u64,
    pub squashfs: SquashfsOptions,
}

/// Check an ext4 label: at most 16 bytes, printable ASCII (it ends up in kernel
/// command lines as `root=live:LABEL=…`).
pub fn validate_label(label: &str) -> Result<()> {
    ensure!(!label.is_empty(), "the filesystem label is empty");
    ensure!(
        label.len() <= 16,
        "the filesystem label {label:?} is longer than ext4's 16 bytes"
    );
    ensure!(
        label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "the filesystem label {label:?} may hold only letters, digits, '-', '_' and '.'"
    );
    Ok(())
}

/// Pack `source` into the squashfs `output`, atomically.
pub fn pack(source: &Source, output: &Path, options: &PackOptions) -> Result<PackReport> {
    validate_label(&options.label)?;
    let squashfs_args = options.squashfs.args(options.source_date_epoch)?;
    if !output.to_string_lossy().ends_with(".squashfs") {
        tracing::warn!(
            "{} does not end in .squashfs: koji files such names under the wrong archive type (use NAME.liveimg.squashfs)",
            output.display()
        );
    }
    let out = PartialFile::new(output, options.overwrite)?;

    // On any error both guards go: the scratch tree first, then the unfinished output.
    let scratch = sys::temp_dir(&options.workdir, "nodeimg-liveimg-")?;
    let tree = scratch.path().join("squashfs-root");
    let rootfs = tree.join(ROOTFS_PATH);
    std::fs::create_dir_all(tree.join("LiveOS"))
        .with_context(|| format!("creating {}", tree.display()))?;

    let partition = match source {
        Source::Fsimage { path } => {
            let sb = ext4::require_ext4(path, 0, &format!("fsimage {}", path.display()))?;
            check_fits(path, 0, sb.size_bytes(), None)?;
            copy_filesystem(path, 0, &rootfs)?;
            None
        }
        Source::Disk { path, partition } => {
            let raw;
            let path = if is_qcow2(path)? {
                raw = scratch.path().join("disk.raw");
                qcow2_to_raw(path, &raw)?;
                &raw
            } else {
                path
            };
            let part = partition::find_root(path, *partition)?;
            let what = format!("partition {} of {}", part.number, path.display());
            let sb = ext4::require_ext4(path, part.start, &what)?;
            check_fits(path, part.start, sb.size_bytes(), Some(&part))?;
            copy_filesystem(path, part.start, &rootfs)?;
            Some(part)
        }
        Source::Dir { path } => {
            make_filesystem(path, &rootfs, options)?;
            None
        }
    };

    check_filesystem(&rootfs, source)?;
    if let (Some(size), false) = (options.size, matches!(source, Source::Dir { .. })) {
        resize(&rootfs, size, options.source_date_epoch)?;
    }
    let sb = ext4::require_ext4(&rootfs, 0, "the copied root filesystem")?;
    if sb.label != options.label {
        let mut cmd = Cmd::new("tune2fs")
            .arg("-L")
            .arg(&options.label)
            .arg(&rootfs)
            .quiet();
        if let Some(epoch) = options.source_date_epoch {
            cmd = cmd.env("E2FSPROGS_FAKE_TIME", epoch.to_string());
        }
        cmd.run().context("setting the filesystem label")?;
    }
    set_mode(&rootfs, 0o644)?;
    set_mode(&tree.join("LiveOS"), 0o755)?;

    crate::sys::cancel::pause_point("liveimg.before-squashfs")?;
    tracing::info!(
        "packing {} ({} used of {}) with {}",
        ROOTFS_PATH,
        human(sb.used_bytes()),
        human(sb.size_bytes()),
        options.squashfs.compression
    );
    let progress = std::sync::Mutex::new(crate::sys::progress::Progress::new("squashfs", 0));
    Cmd::new("mksquashfs")
        .arg(&tree)
        .arg(out.path())
        .args(&squashfs_args)
        .on_line(move |line| {
            if let (Some((done, total)), Ok(mut p)) = (
                crate::sys::progress::parse_mksquashfs(line),
                progress.lock(),
            ) {
                p.set(done, total);
            }
        })
        // Timestamps are pinned by explicit options; mksquashfs refuses both at once.
        .env_remove("SOURCE_DATE_EPOCH")
        .run()
        .context("writing the squashfs")?;
    verify_layout(out.path())?;
    let output_bytes = std::fs::metadata(out.path())
        .with_context(|| format!("reading the size of {}", out.path().display()))?
        .len();
    let output = out.commit()?;
    tracing::info!("wrote {} ({})", output.display(), human(output_bytes));
    Ok(PackReport {
        source: source.clone(),
        partition,
        output,
        output_bytes,
        label: options.label.clone(),
        filesystem_bytes: sb.size_bytes(),
        filesystem_used_bytes: sb.used_bytes(),
        squashfs: options.squashfs.clone(),
    })
}

/// qcow2 images start with "QFI\xfb".
fn is_qcow2(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == *b"QFI\xfb")
}

/// A sparse raw copy of a qcow2 disk (`--make-disk --qcow2`), for the partition
/// table reader and e2image.
fn qcow2_to_raw(qcow2: &Path, raw: &Path) -> Result<()> {
    tracing::info!(
        "{} is qcow2: converting it to a sparse raw disk",
        qcow2.display()
    );
    Cmd::new("qemu-img")
        .args(["convert", "-q", "-f", "qcow2", "-O", "raw"])
        .arg(qcow2)
        .arg(raw)
        .run()
        .with_context(|| {
            format!(
                "reading the qcow2 disk image {} (needs qemu-img)",
                qcow2.display()
            )
        })?;
    Ok(())
}

/// The filesystem must lie within its partition and within the file.
fn check_fits(
    path: &Path,
    start: u64,
    fs_bytes: u64,
    part: Option<&partition::Partition>,
) -> Result<()> {
    if let Some(part) = part {
        ensure!(
            fs_bytes <= part.size,
            "the filesystem on partition {} of {} claims {} but the partition holds only {}",
            part.number,
            path.display(),
            human(fs_bytes),
            human(part.size)
        );
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    ensure!(
        start + fs_bytes <= len,
        "the filesystem in {} claims {} but the file ends after {}: truncated image?",
        path.display(),
        human(fs_bytes),
        human(len - start.min(len))
    );
    Ok(())
}

/// `e2image -ra`: the used blocks only, into a sparse file.
fn copy_filesystem(image: &Path, offset: u64, rootfs: &Path) -> Result<()> {
    Cmd::new("e2image")
        .args(["-r", "-a"])
        .arg("-o")
        .arg(offset.to_string())
        .arg(image)
        .arg(rootfs)
        .run()
        .with_context(|| format!("copying the root filesystem out of {}", image.display()))?;
    Ok(())
}

fn make_filesystem(tree: &Path, rootfs: &Path, options: &PackOptions) -> Result<()> {
    ensure!(tree.is_dir(), "{} is not a directory", tree.display());
    let size = options.size.unwrap_or(DEFAULT_DIR_SIZE);
    let mut cmd = Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L"])
        .arg(&options.label)
        .arg("-d")
        .arg(tree);
    if let Some(epoch) = options.source_date_epoch {
        // Fixed identifiers and clock, so the same tree gives the same image.
        let uuid = pinned_uuid(epoch, &options.label);
        cmd = cmd
            .arg("-U")
            .arg(&uuid)
            .arg("-E")
            .arg(format!("hash_seed={uuid}"))
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string());
    }
    cmd.arg(rootfs)
        .arg(format!("{}k", size / 1024))
        .run()
        .with_context(|| format!("creating an ext4 filesystem from {}", tree.display()))?;
    Ok(())
}

/// A UUID that depends only on the epoch and the label.
fn pinned_uuid(epoch: u64, label: &str) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&epoch.to_be_bytes());
    for (i, b) in label.bytes().take(8).enumerate() {
        bytes[8 + i] = b;
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40; // version 4 layout
    bytes[8] = (bytes[8] & 0x3F) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A read-only check of the copy: errors here are errors of the input.
fn check_filesystem(rootfs: &Path, source: &Source) -> Result<()> {
    Cmd::new("e2fsck")
        .args(["-f", "-n"])
        .arg(rootfs)
        .quiet()
        .run()
        .with_context(|| format!("the root filesystem from {source} has errors (e2fsck -fn)"))?;
    Ok(())
}

fn resize(rootfs: &Path, size: u64, epoch: Option<u64>) -> Result<()> {
    // resize2fs insists on a full check after the last mount.
    let mut fsck = Cmd::new("e2fsck").args(["-f", "-y"]).arg(rootfs).quiet();
    let mut resize = Cmd::new("resize2fs")
        .arg(rootfs)
        .arg(format!("{}K", size / 1024));
    if let Some(epoch) = epoch {
        fsck = fsck.env("E2FSCK_TIME", epoch.to_string());
        resize = resize.env("E2FSPROGS_FAKE_TIME", epoch.to_string());
    }
    fsck.run()
        .context("checking the root filesystem before resizing")?;
    resize
        .run()
        .with_context(|| format!("resizing the root filesystem to {}", human(size)))?;
    Ok(())
}

/// The squashfs must hold exactly `LiveOS/rootfs.img`: imgbased takes the last
/// `*/*.img` it finds, so anything else in it is a trap.
fn verify_layout(squashfs: &Path) -> Result<()> {
    let listing = Cmd::new("unsquashfs")
        .args(["-d", "", "-l"])
        .arg(squashfs)
        .quiet()
        .output_text()
        .context("listing the written squashfs")?;
    let entries: Vec<&str> = listing
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| !l.is_empty())
        .collect();
    ensure!(
        entries == ["LiveOS", ROOTFS_PATH],
        "the written squashfs holds {entries:?} instead of exactly {ROOTFS_PATH}"
    );
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_optional_partition() {
        assert_eq!(
            "disk:/a/b.raw:2".parse::<Source>().unwrap(),
            Source::Disk {
                path: "/a/b.raw".into(),
                partition: Some(2)
            }
        );
        assert_eq!(
            "disk:/a:b.raw".parse::<Source>().unwrap(),
            Source::Disk {
                path: "/a:b.raw".into(),
                partition: None
            }
        );
        assert_eq!(
            "dir:/x".parse::<Source>().unwrap(),
            Source::Dir { path: "/x".into() }
        );
        assert!(
            "disk:/a.raw:0"
                .parse::<Source>()
                .unwrap_err()
                .contains("start at 1")
        );
        assert!(
            "tar:/x"
                .parse::<Source>()
                .unwrap_err()
                .contains("unknown source kind")
        );
        assert!(
            "fsimage:"
                .parse::<Source>()
                .unwrap_err()
                .contains("path is missing")
        );
        assert!("/x".parse::<Source>().is_err());
    }

    #[test]
    fn labels_are_checked() {
        validate_label("LiveOS").unwrap();
        assert!(validate_label("a-label-longer-than-16").is_err());
        assert!(validate_label("bad label").is_err());
        assert!(validate_label("").is_err());
    }

    #[test]
    fn pinned_uuids_are_stable_and_well_formed() {
        let a = pinned_uuid(1700000000, "LiveOS");
        assert_eq!(a, pinned_uuid(1700000000, "LiveOS"));
        assert_ne!(a, pinned_uuid(1700000001, "LiveOS"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
