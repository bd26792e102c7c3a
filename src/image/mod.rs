//! Read-only inspection of a Node image: a squashfs liveimg, an ext4 filesystem image
//! or a disk image, as an unprivileged user and without mounting anything.
//!
//! squashfs through backhand, ext4 through ext4-view, the rpmdb through sqlite and the
//! rpm crate. The report says what imgbased would refuse.

pub mod reader;
pub mod rpmdb;
pub mod update_rpm;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail, ensure};
use backhand::{FilesystemReader, InnerNode};
use ext4_view::{Ext4, Ext4Read};
use serde::Serialize;

use crate::disk::ext4::{self, OffsetFile, Superblock};
use crate::disk::partition::{self, Partition};
use crate::disk::resolve;
use crate::units::human;
use reader::SquashfsFile;

/// The update package's placeholder, whose V-R the update RPM takes.
pub const PLACEHOLDER: &str = "ovirt-node-ng-image-update-placeholder";
/// The label lorax gives rootfs.img and dracut looks for.
pub const DEFAULT_LABEL: &str = "LiveOS";
/// Where the filesystem image sits inside the squashfs: the layout imgbased reads.
pub const ROOTFS_PATH: &str = "LiveOS/rootfs.img";
/// Where `imgbase image-build --postprocess` records the image's NVR.
pub const NVR_FILE: &str = "/usr/share/imgbase/build/meta/nvr";
/// rpmdb locations, the Node's first (imgbased moves it under /usr).
/// Where rpm keeps its database: /usr/lib/sysimage/rpm on Fedora 36+ and EL10,
/// /var/lib/rpm on EL9 (/usr/share/rpm with imgbased's layout).
const RPMDBS: [&str; 3] = [
    "/usr/share/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Squashfs,
    Ext4,
    Disk,
}

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub format: Format,
    /// For a squashfs: every entry in it, and its compressor.
    pub squashfs_entries: Vec<String>,
    pub squashfs_compression: Option<String>,
    /// For a disk image: the partition holding the root filesystem.
    pub partition: Option<Partition>,
    pub filesystem: Filesystem,
    pub os_release: Option<OsRelease>,
    /// The imgbased NVR recorded in the image.
    pub nvr: Option<String>,
    /// `vmlinuz-*` under /boot.
    pub kernels: Vec<String>,
    pub rpmdb: Option<String>,
    pub packages: Vec<rpmdb::Package>,
    /// The placeholder's version-release: the V-R of the update RPM.
    pub placeholder: Option<String>,
    /// What imgbased (or the layout contract) would refuse.
    pub problems: Vec<String>,
    /// Every file of the root filesystem, when asked for (`nodeimg diff --files`).
    #[serde(skip)]
    pub tree: Vec<TreeFile>,
}

/// One file of the root filesystem, as its inode says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub size: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What to read besides the facts every inspection reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Every package's file list, and every file of the tree.
    pub files: bool,
}

impl Inspection {
    /// The manifest-rpm: one NEVRA a line, sorted.
    pub fn manifest(&self) -> Vec<String> {
        self.packages.iter().map(rpmdb::Package::nevra).collect()
    }

    /// The packages without a signature.
    pub fn unsigned(&self) -> Vec<String> {
        self.packages
            .iter()
            .filter(|p| !p.signed)
            .map(rpmdb::Package::nevra)
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct Filesystem {
    pub label: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct OsRelease {
    /// Where /etc/os-release points; `None` when it is a regular file.
    pub symlink_target: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
    pub cpe_name: Option<String>,
}

/// What kind of image `path` is, from its first bytes.
pub fn detect(path: &Path) -> Result<Format> {
    detect_at(path, 0)
}

/// What kind of image starts `offset` bytes into `path`.
fn detect_at(path: &Path, offset: u64) -> Result<Format> {
    use std::io::{Seek, SeekFrom};
    let mut head = Vec::with_capacity(2048);
    File::open(path)
        .and_then(|mut file| {
            file.seek(SeekFrom::Start(offset))?;
            file.take(2048).read_to_end(&mut head)
        })
        .with_context(|| format!("reading {}", path.display()))?;
    if head.starts_with(b"hsqs") {
        Ok(Format::Squashfs)
    } else if head.len() >= 1082 && head[1080..1082] == [0x53, 0xEF] {
        Ok(Format::Ext4)
    } else if head.len() >= 512 && head[510..512] == [0x55, 0xAA] {
        Ok(Format::Disk)
    } else {
        bail!(
            "{} is not a squashfs, an ext4 filesystem image or a partitioned disk image",
            path.display()
        )
    }
}

/// An image that is part of a file: `len` bytes from `offset` (a squashfs inside an
/// update RPM's uncompressed payload).
#[derive(Debug, Clone)]
pub struct Embedded {
    pub offset: u64,
    pub len: u64,
}

/// Inspect an image. `scratch` holds the copy of the rpmdb that sqlite reads.
pub fn inspect(path: &Path, scratch: &Path) -> Result<Inspection> {
    inspect_within(path, None, scratch, Reading::default())
}

/// Inspect an image file, or the image inside an update RPM (read in place); with the
/// part of `path` that is the image when it is inside an RPM.
pub fn inspect_file(
    path: &Path,
    scratch: &Path,
    reading: Reading,
) -> Result<(Inspection, Option<Embedded>)> {
    let embedded = if update_rpm::is_rpm(path) {
        Some(update_rpm::find_image(path)?)
    } else {
        None
    };
    let inspection = inspect_within(path, embedded.as_ref(), scratch, reading)?;
    Ok((inspection, embedded))
}

/// Inspect an image, the whole of `path` or the part `embedded` says.
pub fn inspect_within(
    path: &Path,
    embedded: Option<&Embedded>,
    scratch: &Path,
    reading: Reading,
) -> Result<Inspection> {
    let result = inspect_unchecked(path, embedded, scratch, reading);
    // A reader that stopped for a signal ends as any interrupted step does (exit
    // 128+N): the libraries in between keep its error only as text.
    match (result, crate::sys::cancel::check()) {
        (Err(_), Err(interrupted)) => Err(interrupted.into()),
        (result, _) => result,
    }
}

fn inspect_unchecked(
    path: &Path,
    embedded: Option<&Embedded>,
    scratch: &Path,
    reading: Reading,
) -> Result<Inspection> {
    let offset = embedded.map_or(0, |e| e.offset);
    let format = detect_at(path, offset)?;
    if embedded.is_some() && format != Format::Squashfs {
        bail!(
            "{}: the image inside it is not a squashfs liveimg",
            path.display()
        );
    }
    let mut problems = Vec::new();
    let mut squashfs_entries = Vec::new();
    let mut squashfs_compression = None;
    let mut partition = None;
    let source: Box<dyn Ext4Read> = match format {
        Format::Ext4 => Box::new(OffsetFile::new(open(path)?, 0)),
        Format::Disk => {
            let part = partition::find_root(path, None)?;
            let source = OffsetFile::new(open(path)?, part.start);
            partition = Some(part);
            Box::new(source)
        }
        Format::Squashfs => {
            check_squashfs_length(path, embedded)?;
            let fs = FilesystemReader::from_reader_with_offset(BufReader::new(open(path)?), offset)
                .map_err(|e| anyhow!("{}: not a readable squashfs: {e}", path.display()))?;
            squashfs_compression = fs.compressor.map(|c| format!("{c:?}").to_lowercase());
            let mut images = Vec::new();
            for node in fs.files() {
                let entry = node
                    .fullpath
                    .to_string_lossy()
                    .trim_start_matches('/')
                    .to_owned();
                if entry.is_empty() {
                    continue;
                }
                if let InnerNode::File(file) = &node.inner
                    && entry.matches('/').count() == 1
                    && entry.ends_with(".img")
                {
                    images.push((entry.clone(), file.clone()));
                }
                squashfs_entries.push(entry);
            }
            if squashfs_entries != ["LiveOS", ROOTFS_PATH] {
                problems.push(format!(
                    "the squashfs holds {squashfs_entries:?}, not exactly {ROOTFS_PATH}"
                ));
            }
            if images.len() > 1 {
                problems.push(format!(
                    "{} files match */*.img; imgbased would pick one of them at random",
                    images.len()
                ));
            }
            let (_, node) = match images.iter().position(|(name, _)| name == ROOTFS_PATH) {
                Some(at) => images.swap_remove(at),
                None => images.into_iter().next().with_context(|| {
                    format!(
                        "{}: no */*.img filesystem image in the squashfs",
                        path.display()
                    )
                })?,
            };
            Box::new(SquashfsFile::new(Rc::new(fs), node))
        }
    };
    inspect_root(path, format, source, scratch, problems, reading).map(|mut report| {
        report.squashfs_entries = squashfs_entries;
        report.squashfs_compression = squashfs_compression;
        report.partition = partition;
        report
    })
}

/// A squashfs records its length (`bytes_used`, at byte 40); a shorter file was cut.
fn check_squashfs_length(path: &Path, embedded: Option<&Embedded>) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut superblock = [0u8; 96];
    let mut file = open(path)?;
    file.seek(SeekFrom::Start(embedded.map_or(0, |e| e.offset)))
        .with_context(|| format!("reading {}", path.display()))?;
    file.read_exact(&mut superblock)
        .with_context(|| format!("{}: too short for a squashfs superblock", path.display()))?;
    let mut used = [0u8; 8];
    used.copy_from_slice(&superblock[40..48]);
    let used = u64::from_le_bytes(used);
    let len = match embedded {
        Some(e) => e.len,
        None => file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len(),
    };
    if len < used {
        bail!(
            "{}: truncated: the squashfs holds {used} bytes but the file has only {len}",
            path.display()
        );
    }
    Ok(())
}

fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("opening {}", path.display()))
}

fn inspect_root(
    path: &Path,
    format: Format,
    mut source: Box<dyn Ext4Read>,
    scratch: &Path,
    mut problems: Vec<String>,
    reading: Reading,
) -> Result<Inspection> {
    let mut raw = [0u8; 1024];
    source
        .read(1024, &mut raw)
        .map_err(|e| anyhow!("{}: reading the ext4 superblock: {e}", path.display()))?;
    let sb = Superblock::parse(&raw)
        .with_context(|| format!("{}: the root filesystem is not ext2/3/4", path.display()))?;
    if sb.flavour != ext4::Flavour::Ext4 {
        problems.push(format!("the root filesystem is {}, not ext4", sb.flavour));
    }
    if format == Format::Squashfs && sb.label != DEFAULT_LABEL {
        problems.push(format!("rootfs.img is labelled {:?}, not LiveOS", sb.label));
    }
    let fs = Ext4::load(source)
        .map_err(|e| anyhow!("{}: reading the ext4 filesystem: {e}", path.display()))?;
    let ctx = |what: &str| format!("{}: reading {what}", path.display());

    let os_release = read_os_release(&fs, &mut problems).with_context(|| ctx("/etc/os-release"))?;
    let nvr = read_optional(&fs, NVR_FILE)
        .with_context(|| ctx(NVR_FILE))?
        .map(|text| text.trim().to_owned());
    if nvr.is_none() {
        problems.push(format!("no {NVR_FILE}: imgbased cannot name the layer (was `imgbase image-build --postprocess` run?)"));
    }
    let kernels = list_kernels(&fs).with_context(|| ctx("/boot"))?;
    if kernels.is_empty() {
        problems.push(
            "no kernel (vmlinuz-*) under /boot: imgbased cannot make a boot entry".to_owned(),
        );
    }

    let mut rpmdb = None;
    let mut packages = Vec::new();
    for candidate in RPMDBS {
        let local = scratch.join("rpmdb.sqlite");
        if copy_out(&fs, candidate, &local).with_context(|| ctx(candidate))? {
            // Committed transactions may still sit in the write-ahead log.
            let wal = format!("{candidate}-wal");
            copy_out(&fs, &wal, &scratch.join("rpmdb.sqlite-wal")).with_context(|| ctx(&wal))?;
            packages = rpmdb::read_packages_with(&local, reading.files)
                .map_err(|e| anyhow!("{}: the rpmdb {candidate}: {e:#}", path.display()))?;
            rpmdb = Some(candidate.to_owned());
            break;
        }
    }
    if rpmdb.is_none() {
        let bdb = ["/usr/share/rpm/Packages", "/var/lib/rpm/Packages"]
            .into_iter()
            .find(|candidate| matches!(resolve::resolve(&fs, candidate), Ok(Some(_))));
        problems.push(match bdb {
            Some(found) => format!(
                "the rpmdb is Berkeley DB ({found}, EL8 or older): nodeimg reads only sqlite rpmdbs (EL9, Fedora 33+)"
            ),
            None => "no rpmdb (rpmdb.sqlite under /usr/share/rpm, /var/lib/rpm or /usr/lib/sysimage/rpm): the packages are unknown"
                .to_owned(),
        });
    }
    let placeholder = packages
        .iter()
        .find(|p| p.name == PLACEHOLDER)
        .map(rpmdb::Package::version_release);
    let tree = if reading.files {
        walk(&fs).with_context(|| ctx("the file tree"))?
    } else {
        Vec::new()
    };

    Ok(Inspection {
        path: path.to_owned(),
        format,
        squashfs_entries: Vec::new(),
        squashfs_compression: None,
        partition: None,
        filesystem: Filesystem {
            label: sb.label.clone(),
            size_bytes: sb.size_bytes(),
            used_bytes: sb.used_bytes(),
        },
        os_release,
        nvr,
        kernels,
        rpmdb,
        packages,
        placeholder,
        problems,
        tree,
    })
}

/// Every file of the tree, depth first, by name. Only real directories are entered
/// (never a symlink: their paths are listed, not followed), so no path is resolved on
/// the image's word; at most [`rpmdb::MAX_FILES`] entries.
fn walk(fs: &Ext4) -> Result<Vec<TreeFile>> {
    let mut files = Vec::new();
    let mut dirs = vec!["/".to_owned()];
    while let Some(dir) = dirs.pop() {
        crate::sys::cancel::check()?;
        let mut entries = Vec::new();
        for entry in fs
            .read_dir(dir.as_str())
            .map_err(|e| anyhow!("{dir}: {e}"))?
        {
            let entry = entry.map_err(|e| anyhow!("{dir}: {e}"))?;
            let name = entry.file_name();
            let name = name
                .as_str()
                .map_err(|_| anyhow!("{dir}: a name that is not UTF-8"))?;
            if name == "." || name == ".." {
                continue;
            }
            let meta = entry.metadata().map_err(|e| anyhow!("{dir}/{name}: {e}"))?;
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            if meta.file_type().is_dir() {
                dirs.push(path.clone());
            }
            entries.push(TreeFile {
                path,
                size: meta.len(),
                mode: u32::from(meta.mode()),
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
        files.extend(entries);
        ensure!(
            files.len() <= rpmdb::MAX_FILES,
            "more than {} files in the tree",
            rpmdb::MAX_FILES
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn read_os_release(fs: &Ext4, problems: &mut Vec<String>) -> Result<Option<OsRelease>> {
    let symlink_target = match resolve::lstat(fs, "/etc/os-release")? {
        Some((link, meta)) if meta.is_symlink() => Some(
            resolve::read_link_checked(fs, &link, &meta)?
                .display()
                .to_string(),
        ),
        Some(_) => None,
        None => {
            problems.push("no /etc/os-release".to_owned());
            return Ok(None);
        }
    };
    if symlink_target.is_none() {
        problems.push(
            "/etc/os-release is not a symlink (imgbased's postprocess requires one)".to_owned(),
        );
    }
    let Some(text) = read_optional(fs, "/etc/os-release")? else {
        problems.push("/etc/os-release is a dangling symlink".to_owned());
        return Ok(None);
    };
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(value.trim().trim_matches(['"', '\'']).to_owned())
        })
    };
    Ok(Some(OsRelease {
        symlink_target,
        id: field("ID"),
        name: field("NAME"),
        version_id: field("VERSION_ID"),
        pretty_name: field("PRETTY_NAME"),
        cpe_name: field("CPE_NAME"),
    }))
}

/// The most a small text file of the image (os-release, the NVR file) may hold: an
/// inode can claim any size, so nothing is read whole on its word.
const SMALL_FILE_MAX: u64 = 64 * 1024;
/// The most an rpmdb (or its write-ahead log) may hold; a real one is tens of MiB.
const RPMDB_MAX: u64 = 4 << 30;

/// Open `path` in the image, None when it is not there; its size must be at most `max`.
fn open_bounded(fs: &Ext4, path: &str, max: u64) -> Result<Option<ext4_view::File>> {
    let Some((real, meta)) = resolve::resolve(fs, path)? else {
        return Ok(None);
    };
    if meta.is_dir() {
        bail!("{path}: a directory, not a file");
    }
    let len = meta.len();
    ensure!(
        len <= max,
        "{path}: its inode claims {len} bytes, more than the {max} such a file can have: the \
         image is corrupt"
    );
    let file = fs.open(&real).map_err(|err| anyhow!("{path}: {err}"))?;
    Ok(Some(file))
}

/// A small file of the image, read whole once its size is known to be small.
fn read_small(fs: &Ext4, path: &str) -> Result<Option<Vec<u8>>> {
    let Some(mut file) = open_bounded(fs, path, SMALL_FILE_MAX)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file
            .read_bytes(&mut buf)
            .map_err(|e| anyhow!("{path}: reading: {e}"))?;
        if n == 0 {
            return Ok(Some(bytes));
        }
        bytes.extend_from_slice(&buf[..n]);
        ensure!(
            bytes.len() as u64 <= SMALL_FILE_MAX,
            "{path}: longer than its inode says"
        );
    }
}

fn read_optional(fs: &Ext4, path: &str) -> Result<Option<String>> {
    Ok(read_small(fs, path)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Stream `path` of the image into `dest` (1 MiB at a time, stopping on SIGINT or
/// SIGTERM); false when the image has no such file.
fn copy_out(fs: &Ext4, path: &str, dest: &Path) -> Result<bool> {
    use std::io::Write as _;
    let Some(mut file) = open_bounded(fs, path, RPMDB_MAX)? else {
        return Ok(false);
    };
    let mut out =
        std::fs::File::create(dest).with_context(|| format!("writing {}", dest.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        crate::sys::cancel::check()?;
        let n = file
            .read_bytes(&mut buf)
            .map_err(|e| anyhow!("{path}: reading at byte {copied}: {e}"))?;
        if n == 0 {
            return Ok(true);
        }
        copied += n as u64;
        ensure!(copied <= RPMDB_MAX, "{path}: longer than its inode says");
        out.write_all(&buf[..n])
            .with_context(|| format!("writing {}", dest.display()))?;
    }
}

fn list_kernels(fs: &Ext4) -> Result<Vec<String>> {
    let boot = match resolve::resolve(fs, "/boot")? {
        Some((boot, meta)) if meta.is_dir() => boot,
        _ => return Ok(Vec::new()),
    };
    let entries = fs.read_dir(&boot)?;
    let mut kernels = Vec::new();
    for entry in entries {
        let name = entry?.file_name().display().to_string();
        if name.starts_with("vmlinuz-") && !name.contains("rescue") {
            kernels.push(name);
        }
    }
    kernels.sort();
    Ok(kernels)
}

/// The report for people.
pub fn render_text(report: &Inspection) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let format = match report.format {
        Format::Squashfs => "squashfs liveimg",
        Format::Ext4 => "ext4 filesystem image",
        Format::Disk => "disk image",
    };
    let _ = writeln!(out, "{} ({format})", report.path.display());
    if let Some(compression) = &report.squashfs_compression {
        let _ = writeln!(
            out,
            "  squashfs:     {} [{}]",
            report.squashfs_entries.join(", "),
            compression
        );
    }
    if let Some(part) = &report.partition {
        let _ = writeln!(
            out,
            "  partition:    {} ({}, {})",
            part.number,
            part.kind,
            human(part.size)
        );
    }
    let fs = &report.filesystem;
    let _ = writeln!(
        out,
        "  filesystem:   ext4 label {:?}, {} with {} used",
        fs.label,
        human(fs.size_bytes),
        human(fs.used_bytes)
    );
    if let Some(os) = &report.os_release {
        let _ = writeln!(
            out,
            "  os-release:   {}{}",
            os.pretty_name
                .as_deref()
                .or(os.name.as_deref())
                .unwrap_or("?"),
            os.symlink_target
                .as_ref()
                .map(|t| format!(" (-> {t})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "  nvr:          {}",
        report.nvr.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  kernels:      {}",
        if report.kernels.is_empty() {
            "-".to_owned()
        } else {
            report.kernels.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  packages:     {} in {} ({} unsigned)",
        report.packages.len(),
        report.rpmdb.as_deref().unwrap_or("no rpmdb"),
        report.unsigned().len()
    );
    let _ = writeln!(
        out,
        "  placeholder:  {}",
        report.placeholder.as_deref().unwrap_or("not installed")
    );
    if report.problems.is_empty() {
        let _ = writeln!(out, "\nimgbased would accept this image.");
    } else {
        let _ = writeln!(out, "\nimgbased would refuse this image:");
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}
