//! A streaming writer of binary RPM v4 packages.
//!
//! The layout is rpm's: a 96-byte lead, the signature header (header digests, the
//! header+payload MD5 that koji records as `sigmd5`, sizes, space reserved for a
//! signature), the main header, the cpio payload, uncompressed. Header blobs are built
//! with the `rpm` crate; the writing is ours because the crate's builder keeps the whole
//! payload in memory, writes no SIGMD5 and fixes SOURCERPM to `(none)`.
//!
//! The image is read once. Every digest has a fixed length, so the header's size is
//! known before any digest is: the payload is streamed to its final offset while both
//! SHA-256 digests are computed on their own threads, then the header is filled in,
//! then the MD5 of header and payload is taken by reading the payload back (it is
//! usually still in the page cache). The output is a `.partial` file until it has been
//! read back and checked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use md5::Md5;
use rpm::{Header, HeaderEntry, IndexData, IndexSignatureTag, IndexTag, Lead, PackageMetadata};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::cpio::{self, EntryHeader};
use super::fanout::{self, CHUNK, Chunk};
use crate::artifacts::PartialFile;
use crate::nevra::{check_evr_part, check_name};
use crate::sys::cancel;
use crate::sys::progress::Progress;
use crate::units::human;

/// Packages smaller than this are written too fast to need progress.
const WORTH_REPORTING: u64 = 256 << 20;

/// Dependency sense flags (rpm's `rpmsenseFlags`).
pub mod sense {
    pub const ANY: u32 = 0;
    pub const LESS: u32 = 1 << 1;
    pub const GREATER: u32 = 1 << 2;
    pub const EQUAL: u32 = 1 << 3;
    pub const INTERP: u32 = 1 << 8;
    pub const SCRIPT_PRE: u32 = 1 << 9;
    pub const SCRIPT_POST: u32 = 1 << 10;
    pub const RPMLIB: u32 = 1 << 24;
}

/// `PGPHASHALGO_SHA256`, for file and payload digests.
const SHA256_ALGO: u32 = 8;
/// rpm 4.14+ reserves this much zeroed space in the signature header so that a
/// signature can be added in place without rewriting the file.
const RESERVED_SPACE: usize = 4128;
/// What every scriptlet runs with.
const SHELL: &str = "/bin/sh";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub flags: u32,
    pub version: String,
}

impl Dependency {
    pub fn new(name: &str, flags: u32, version: &str) -> Dependency {
        Dependency {
            name: name.to_owned(),
            flags,
            version: version.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Content {
    Directory,
    /// A regular file, copied from this path.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Absolute path in the installed system.
    pub path: String,
    /// Permission bits.
    pub perms: u16,
    pub content: Content,
}

/// Everything a package says about itself.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub name: String,
    pub version: String,
    pub release: String,
    /// `noarch`, or the architecture the package is for (checked by `check_arch`).
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub license: String,
    pub url: Option<String>,
    pub requires: Vec<Dependency>,
    /// Besides the package's own `name = version-release`, which is always added.
    pub provides: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    /// `%pre` and `%post` bodies, run by /bin/sh.
    pub pre: Option<String>,
    pub post: Option<String>,
    pub files: Vec<FileEntry>,
}

impl PackageSpec {
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// The file name rpmbuild would give it.
    pub fn file_name(&self) -> String {
        format!("{}.{}.rpm", self.nvr(), self.arch)
    }
}

/// When and where the package is built.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub build_time: u32,
    pub build_host: String,
    /// File mtimes are clamped to this (rpm's `clamp_mtime_to_source_date_epoch`).
    pub clamp_mtime: Option<u32>,
    /// Use rpm's 64-bit file sizes and stripped cpio headers even when every file is
    /// smaller than 4 GiB (rpm reads both layouts; it writes this one only for larger
    /// files, so tests need a way to reach it without writing 4 GiB).
    pub large_files: bool,
}

impl BuildInfo {
    /// `SOURCE_DATE_EPOCH` when set (as rpm's `use_source_date_epoch_as_buildtime` and
    /// `clamp_mtime_to_source_date_epoch` use it), otherwise now; `build_host`, or the
    /// host's name (rpm's `%_buildhost`: set it for packages identical across builders).
    pub fn from_env(build_host: Option<&str>) -> Result<BuildInfo> {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) => Some(value.trim().parse::<u32>().with_context(|| {
                format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")
            })?),
            Err(_) => None,
        };
        let build_time = match epoch {
            Some(epoch) => epoch,
            None => u32::try_from(crate::sys::now()).unwrap_or(u32::MAX),
        };
        let build_host = match build_host {
            Some(name) => {
                ensure!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
                    "build host {name:?} is not a host name"
                );
                name.to_owned()
            }
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "localhost".to_owned()),
        };
        Ok(BuildInfo {
            build_time,
            build_host,
            clamp_mtime: epoch,
            large_files: false,
        })
    }
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub size: u64,
    /// Hex MD5 of header and payload: koji's `sigmd5`, rpm's `%{SIGMD5}`.
    pub sigmd5: String,
    pub payload_sha256: String,
    /// SHA-256 of each regular file, by path.
    pub file_digests: Vec<(String, String)>,
}

/// One payload entry with what the header and cpio need.
struct Planned {
    path: String,
    mode: u16,
    size: u64,
    mtime: u32,
    source: Option<PathBuf>,
}

/// A piece of the payload stream.
enum Segment {
    Bytes(Vec<u8>),
    File { index: usize, size: u64 },
}

/// Write `spec` as `DIR/N-V-R.ARCH.rpm`. Refuses to replace an existing package
/// unless `overwrite`.
pub fn write(spec: &PackageSpec, info: &BuildInfo, dir: &Path, overwrite: bool) -> Result<Written> {
    validate(spec)?;
    let started = Instant::now();
    let entries = plan(spec, info)?;
    let large = info.large_files || entries.iter().any(|e| e.size > u64::from(u32::MAX));
    let segments = segments(&entries, large);
    let payload_size: u64 = segments
        .iter()
        .map(|s| match s {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::File { size, .. } => *size,
        })
        .sum();

    // Sizes first: every digest has a fixed length, so placeholders give the layout.
    let zero_digests = Digests {
        files: entries.iter().map(|e| hex_or_empty(e, &[0; 32])).collect(),
        payload: hex::encode([0u8; 32]),
    };
    let header = main_header(spec, info, &entries, large, &zero_digests)?;
    let header_len = header_bytes(&header)?.len() as u64;
    let signature = signature_header(&[0; 20], &[0; 32], &[0; 16], header_len, payload_size);
    let metadata_len = metadata_bytes(spec, signature, &header)?.len() as u64;

    let target = dir.join(spec.file_name());
    let partial = PartialFile::new(&target, overwrite)?;
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(partial.path())
        .with_context(|| format!("creating {}", partial.path().display()))?;

    tracing::info!(
        package = %target.display(),
        payload = %human(payload_size),
        "writing the RPM"
    );
    out.seek(SeekFrom::Start(metadata_len))
        .with_context(|| format!("writing {}", partial.path().display()))?;
    let flusher = Flusher::start(&out, partial.path())?;
    let digests = stream_payload(&entries, &segments, &mut out, partial.path(), &flusher)?;
    flusher.nudge();
    cancel::pause_point("rpm.payload-written")?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "payload written and digested"
    );

    // The real header, then the digests over it.
    let header = main_header(spec, info, &entries, large, &digests)?;
    let bytes = header_bytes(&header)?;
    ensure!(
        bytes.len() as u64 == header_len,
        "the RPM header changed size when its digests were filled in ({} → {} bytes)",
        header_len,
        bytes.len()
    );
    let sigmd5 = md5_of_package(&bytes, &out, metadata_len, payload_size, partial.path())?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "MD5 of header and payload taken"
    );
    flusher.finish()?;
    let signature = signature_header(
        &Sha1::digest(&bytes).into(),
        &Sha256::digest(&bytes).into(),
        &sigmd5,
        header_len,
        payload_size,
    );
    let metadata = metadata_bytes(spec, signature, &header)?;
    ensure!(
        metadata.len() as u64 == metadata_len,
        "the RPM signature header changed size ({} → {} bytes)",
        metadata_len,
        metadata.len()
    );
    out.write_all_at(&metadata, 0)
        .with_context(|| format!("writing {}", partial.path().display()))?;
    drop(out);

    verify(partial.path(), spec, metadata_len + payload_size)?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "read back and verified"
    );
    let path = partial.commit()?;
    let elapsed = started.elapsed().as_secs_f64();
    tracing::info!(
        package = %path.display(),
        seconds = format!("{elapsed:.1}"),
        rate = format!("{}/s", human((payload_size as f64 / elapsed.max(1e-3)) as u64)),
        "RPM written"
    );
    Ok(Written {
        path,
        size: metadata_len + payload_size,
        sigmd5: hex::encode(sigmd5),
        payload_sha256: digests.payload,
        file_digests: entries
            .iter()
            .zip(digests.files)
            .filter(|(e, _)| e.source.is_some())
            .map(|(e, d)| (e.path.clone(), d))
            .collect(),
    })
}

/// Names, versions and paths end up in an RPM header, on an installed system and in
/// file names: refuse anything rpm would reject or misread.
fn validate(spec: &PackageSpec) -> Result<()> {
    check_name(&spec.name)?;
    check_evr_part("version", &spec.version)?;
    check_evr_part("release", &spec.release)?;
    crate::nevra::check_arch(&spec.arch)?;
    for file in &spec.files {
        validate_path(&file.path)?;
    }
    for dep in spec
        .requires
        .iter()
        .chain(&spec.provides)
        .chain(&spec.obsoletes)
        .chain(&spec.conflicts)
    {
        ensure!(
            !dep.name.is_empty() && !dep.name.chars().any(char::is_whitespace),
            "dependency name {:?} is empty or contains whitespace",
            dep.name
        );
        if !dep.version.is_empty() {
            let (_, vr) = dep.version.split_once(':').unwrap_or(("", &dep.version));
            for part in vr.splitn(2, '-') {
                check_evr_part("dependency version", part)?;
            }
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<()> {
    ensure!(
        path.starts_with('/') && path.len() > 1 && !path.ends_with('/'),
        "package path {path:?} must be absolute and name a file"
    );
    ensure!(
        !path
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == "." || c == ".."),
        "package path {path:?} has an empty, '.' or '..' component"
    );
    ensure!(
        !path.chars().any(|c| c.is_control() || c.is_whitespace()),
        "package path {path:?} contains whitespace or control characters"
    );
    Ok(())
}

/// The payload entries, sorted by path as rpm keeps them, with their sizes and times.
fn plan(spec: &PackageSpec, info: &BuildInfo) -> Result<Vec<Planned>> {
    let clamp = |t: u32| info.clamp_mtime.map_or(t, |c| t.min(c));
    let mut entries = Vec::with_capacity(spec.files.len());
    for file in &spec.files {
        let (mode, size, mtime, source) = match &file.content {
            Content::Directory => (0o040000 | file.perms, 0, clamp(info.build_time), None),
            Content::File(source) => {
                let meta = std::fs::metadata(source)
                    .with_context(|| format!("reading {}", source.display()))?;
                ensure!(meta.is_file(), "{} is not a regular file", source.display());
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
                (
                    0o100000 | file.perms,
                    meta.len(),
                    clamp(mtime),
                    Some(source.clone()),
                )
            }
        };
        entries.push(Planned {
            path: file.path.clone(),
            mode,
            size,
            mtime,
            source,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        bail!("{} is listed twice in the package", pair[0].path);
    }
    Ok(entries)
}

fn segments(entries: &[Planned], large: bool) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut bytes = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if large {
            bytes.extend(cpio::stripped_header(index as u32));
        } else {
            let name = format!(".{}", entry.path);
            bytes.extend(cpio::newc_header(&EntryHeader {
                name: &name,
                ino: index as u32 + 1,
                mode: u32::from(entry.mode),
                mtime: entry.mtime,
                size: entry.size,
            }));
        }
        if entry.source.is_some() {
            out.push(Segment::Bytes(std::mem::take(&mut bytes)));
            out.push(Segment::File {
                index,
                size: entry.size,
            });
            bytes.resize(cpio::pad4(entry.size) as usize, 0);
        }
    }
    bytes.extend(cpio::trailer());
    out.push(Segment::Bytes(bytes));
    out.retain(|s| !matches!(s, Segment::Bytes(b) if b.is_empty()));
    out
}

struct Digests {
    /// Hex SHA-256 per entry; empty for directories.
    files: Vec<String>,
    payload: String,
}

fn hex_or_empty(entry: &Planned, digest: &[u8]) -> String {
    if entry.source.is_some() {
        hex::encode(digest)
    } else {
        String::new()
    }
}

/// Write the payload at the file's current offset, computing the SHA-256 of every
/// regular file and of the whole payload on their own threads.
fn stream_payload(
    entries: &[Planned],
    segments: &[Segment],
    out: &mut File,
    out_path: &Path,
    flusher: &Flusher,
) -> Result<Digests> {
    let mut payload_hasher = Sha256::new();
    let mut file_hashers: Vec<Sha256> = entries.iter().map(|_| Sha256::new()).collect();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut progress = Progress::bytes("packaging", total, WORTH_REPORTING);
    fanout::run(
        vec![
            Box::new(|chunk: &Chunk| payload_hasher.update(&chunk.data[..])),
            Box::new(|chunk: &Chunk| {
                if let Some(index) = chunk.file {
                    file_hashers[index].update(&chunk.data[..]);
                }
            }),
        ],
        |feeder| {
            for segment in segments {
                match segment {
                    Segment::Bytes(bytes) => {
                        feeder
                            .push(None, |buf| {
                                buf.extend_from_slice(bytes);
                                Ok::<(), std::io::Error>(())
                            })?
                            .and_then(|chunk| out.write_all(&chunk))
                            .with_context(|| format!("writing {}", out_path.display()))?;
                    }
                    Segment::File { index, size } => {
                        let Some(source) = &entries[*index].source else {
                            continue;
                        };
                        let mut input = File::open(source)
                            .with_context(|| format!("opening {}", source.display()))?;
                        let mut left = *size;
                        while left > 0 {
                            cancel::check()?;
                            let want = left.min(CHUNK as u64) as usize;
                            let chunk = feeder
                                .push(Some(*index), |buf| fill(&mut input, buf, want))?
                                .with_context(|| format!("reading {}", source.display()))?;
                            ensure!(
                                chunk.len() == want,
                                "{} shrank while it was being packaged (it should be {size} \
                                 bytes); is something still writing it?",
                                source.display()
                            );
                            out.write_all(&chunk)
                                .with_context(|| format!("writing {}", out_path.display()))?;
                            left -= want as u64;
                            progress.advance(want as u64);
                            if progress.done().is_multiple_of(Flusher::EVERY) {
                                flusher.nudge();
                            }
                        }
                        let mut probe = [0u8; 1];
                        ensure!(
                            input.read(&mut probe).unwrap_or(0) == 0,
                            "{} grew while it was being packaged; is something still writing it?",
                            source.display()
                        );
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(Digests {
        files: entries
            .iter()
            .zip(file_hashers)
            .map(|(e, h)| hex_or_empty(e, &h.finalize()))
            .collect(),
        payload: hex::encode(payload_hasher.finalize()),
    })
}

/// Read up to `want` bytes, stopping early only at the end of the file.
fn fill(input: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<()> {
    buf.resize(want, 0);
    let mut got = 0;
    while got < want {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    buf.truncate(got);
    Ok(())
}

/// MD5 over the header and the payload just written, read back from the output.
fn md5_of_package(
    header: &[u8],
    out: &File,
    payload_offset: u64,
    payload_size: u64,
    out_path: &Path,
) -> Result<[u8; 16]> {
    let mut md5 = Md5::new();
    md5.update(header);
    fanout::run(
        vec![Box::new(|chunk: &Chunk| md5.update(&chunk.data[..]))],
        |feeder| {
            let mut offset = payload_offset;
            let end = payload_offset + payload_size;
            while offset < end {
                cancel::check()?;
                let want = (end - offset).min(CHUNK as u64) as usize;
                feeder
                    .push(None, |buf| {
                        buf.resize(want, 0);
                        out.read_exact_at(buf, offset)
                    })?
                    .with_context(|| format!("reading back {}", out_path.display()))?;
                offset += want as u64;
            }
            Ok(())
        },
    )?;
    Ok(md5.finalize().into())
}

/// Pushes what has been written to disk in the background, so the disk works while
/// the digests are computed and the fsync before the package is named finds little
/// left to do. Without it the kernel would start writing only when a tenth of memory
/// is dirty, and the whole image would be flushed at the end, in series.
struct Flusher {
    wake: Option<SyncSender<()>>,
    worker: Option<thread::JoinHandle<std::io::Result<()>>>,
    path: PathBuf,
}

impl Flusher {
    /// Ask for a flush after this many bytes.
    const EVERY: u64 = 64 << 20;

    fn start(file: &File, path: &Path) -> Result<Flusher> {
        let file = file
            .try_clone()
            .with_context(|| format!("opening {} again", path.display()))?;
        // One pending request is enough: a flush writes everything dirty so far.
        let (wake, requests) = sync_channel::<()>(1);
        let worker = thread::spawn(move || {
            for () in requests {
                file.sync_data()?;
            }
            Ok(())
        });
        Ok(Flusher {
            wake: Some(wake),
            worker: Some(worker),
            path: path.to_owned(),
        })
    }

    fn nudge(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    /// Wait for the flushes asked for so far.
    fn finish(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        drop(self.wake.take());
        match self.worker.take().map(thread::JoinHandle::join) {
            Some(Ok(Err(err))) => {
                Err(err).with_context(|| format!("writing {} to disk", self.path.display()))
            }
            Some(Err(_)) => bail!("the thread flushing {} panicked", self.path.display()),
            _ => Ok(()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn string(tag: IndexTag, value: &str) -> HeaderEntry {
    HeaderEntry::new(tag as u32, IndexData::StringTag(value.to_owned()))
}

fn strings(tag: IndexTag, values: Vec<String>) -> HeaderEntry {
    HeaderEntry::new(tag as u32, IndexData::StringArray(values))
}

fn i18n(tag: IndexTag, value: &str) -> HeaderEntry {
    HeaderEntry::new(tag as u32, IndexData::I18NString(vec![value.to_owned()]))
}

fn int32(tag: IndexTag, values: Vec<u32>) -> HeaderEntry {
    HeaderEntry::new(tag as u32, IndexData::Int32(values))
}

/// The main header's bytes, tags as rpmbuild 4.18 writes them.
fn main_header(
    spec: &PackageSpec,
    info: &BuildInfo,
    entries: &[Planned],
    large: bool,
    digests: &Digests,
) -> Result<Header<IndexTag>> {
    use IndexTag::*;
    let evr = format!("{}-{}", spec.version, spec.release);

    let mut requires = spec.requires.clone();
    let mut script = |body: &Option<String>, flag: u32| {
        if body.is_some() {
            requires.push(Dependency::new(SHELL, sense::INTERP | flag, ""));
        }
    };
    script(&spec.pre, sense::SCRIPT_PRE);
    script(&spec.post, sense::SCRIPT_POST);
    let rpmlib = |name: &str, version: &str| {
        Dependency::new(
            &format!("rpmlib({name})"),
            sense::RPMLIB | sense::LESS | sense::EQUAL,
            version,
        )
    };
    requires.push(rpmlib("CompressedFileNames", "3.0.4-1"));
    if entries.iter().any(|e| e.source.is_some()) {
        requires.push(rpmlib("FileDigests", "4.6.0-1"));
    }
    if large {
        requires.push(rpmlib("LargeFiles", "4.12.0-1"));
    }
    requires.push(rpmlib("PayloadFilesHavePrefix", "4.0-1"));
    let mut provides = spec.provides.clone();
    provides.push(Dependency::new(&spec.name, sense::EQUAL, &evr));
    if let Some(isa) = isa(&spec.arch) {
        // rpmbuild's `%{name}%{?_isa}`, which arch-specific packages always provide.
        provides.push(Dependency::new(
            &format!("{}({isa})", spec.name),
            sense::EQUAL,
            &evr,
        ));
    }

    let mut tags = vec![
        strings(RPMTAG_HEADERI18NTABLE, vec!["C".to_owned()]),
        string(RPMTAG_NAME, &spec.name),
        string(RPMTAG_VERSION, &spec.version),
        string(RPMTAG_RELEASE, &spec.release),
        i18n(RPMTAG_SUMMARY, &spec.summary),
        i18n(RPMTAG_DESCRIPTION, &spec.description),
        int32(RPMTAG_BUILDTIME, vec![info.build_time]),
        string(RPMTAG_BUILDHOST, &info.build_host),
        string(RPMTAG_LICENSE, &spec.license),
        i18n(RPMTAG_GROUP, "Unspecified"),
        string(RPMTAG_OS, "linux"),
        string(RPMTAG_ARCH, &spec.arch),
        string(RPMTAG_SOURCERPM, &format!("{}.src.rpm", spec.nvr())),
        string(
            RPMTAG_RPMVERSION,
            concat!("nodeimg ", env!("CARGO_PKG_VERSION")),
        ),
        string(RPMTAG_PAYLOADFORMAT, "cpio"),
        // rpmbuild writes no compressor for an uncompressed (w.ufdio) payload, and an
        // empty flags string; readers then pass the bytes through unchanged.
        string(RPMTAG_PAYLOADFLAGS, ""),
        string(RPMTAG_ENCODING, "utf-8"),
        strings(RPMTAG_PAYLOADSHA256, vec![digests.payload.clone()]),
        int32(RPMTAG_PAYLOADSHA256ALGO, vec![SHA256_ALGO]),
        // The payload is not compressed: the digest of the archive is the same.
        strings(RPMTAG_PAYLOADSHA256ALT, vec![digests.payload.clone()]),
    ];
    if let Some(url) = &spec.url {
        tags.push(string(RPMTAG_URL, url));
    }
    let total_size: u64 = entries.iter().map(|e| e.size).sum();
    if large {
        tags.push(HeaderEntry::new(
            RPMTAG_LONGSIZE as u32,
            IndexData::Int64(vec![total_size]),
        ));
    } else {
        tags.push(int32(RPMTAG_SIZE, vec![total_size as u32]));
    }
    if let Some(body) = &spec.pre {
        tags.push(string(RPMTAG_PREIN, body.trim_end()));
        tags.push(string(RPMTAG_PREINPROG, SHELL));
    }
    if let Some(body) = &spec.post {
        tags.push(string(RPMTAG_POSTIN, body.trim_end()));
        tags.push(string(RPMTAG_POSTINPROG, SHELL));
    }
    tags.extend(dependencies(
        &requires,
        RPMTAG_REQUIRENAME,
        RPMTAG_REQUIREFLAGS,
        RPMTAG_REQUIREVERSION,
    ));
    tags.extend(dependencies(
        &provides,
        RPMTAG_PROVIDENAME,
        RPMTAG_PROVIDEFLAGS,
        RPMTAG_PROVIDEVERSION,
    ));
    tags.extend(dependencies(
        &spec.obsoletes,
        RPMTAG_OBSOLETENAME,
        RPMTAG_OBSOLETEFLAGS,
        RPMTAG_OBSOLETEVERSION,
    ));
    tags.extend(dependencies(
        &spec.conflicts,
        RPMTAG_CONFLICTNAME,
        RPMTAG_CONFLICTFLAGS,
        RPMTAG_CONFLICTVERSION,
    ));
    if !entries.is_empty() {
        tags.extend(file_tags(entries, large, digests));
    }
    Ok(Header::from_entries(tags, IndexTag::RPMTAG_HEADERIMMUTABLE))
}

/// Name, flags and version arrays, sorted by name as rpmbuild sorts them.
/// rpm's ISA name for an arch (`%{__isa_name}-%{__isa_bits}` of its platform
/// macros); none for noarch and for arches whose platform defines none here.
fn isa(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" | "amd64" => "x86-64",
        "i386" | "i486" | "i586" | "i686" | "athlon" | "pentium4" => "x86-32",
        "aarch64" => "aarch-64",
        "ppc64le" | "ppc64" => "ppc-64",
        "s390x" => "s390-64",
        "riscv64" => "riscv-64",
        _ => return None,
    })
}

fn dependencies(
    deps: &[Dependency],
    names: IndexTag,
    flags: IndexTag,
    versions: IndexTag,
) -> Vec<HeaderEntry> {
    if deps.is_empty() {
        return Vec::new();
    }
    let mut deps = deps.to_vec();
    deps.sort_by(|a, b| (&a.name, a.flags).cmp(&(&b.name, b.flags)));
    deps.dedup();
    vec![
        strings(names, deps.iter().map(|d| d.name.clone()).collect()),
        int32(flags, deps.iter().map(|d| d.flags).collect()),
        strings(versions, deps.iter().map(|d| d.version.clone()).collect()),
    ]
}

fn file_tags(entries: &[Planned], large: bool, digests: &Digests) -> Vec<HeaderEntry> {
    use IndexTag::*;
    let n = entries.len();
    // Directory names as rpm stores them: with a trailing slash, in order of first use.
    let mut dirnames: Vec<String> = Vec::new();
    let mut dirindexes = Vec::with_capacity(n);
    let mut basenames = Vec::with_capacity(n);
    for entry in entries {
        let (dir, base) = entry.path.rsplit_once('/').unwrap_or(("", &entry.path));
        let dir = format!("{dir}/");
        let index = match dirnames.iter().position(|d| *d == dir) {
            Some(index) => index,
            None => {
                dirnames.push(dir);
                dirnames.len() - 1
            }
        };
        dirindexes.push(index as u32);
        basenames.push(base.to_owned());
    }
    let mut class_dict = vec!["directory".to_owned(), String::new()];
    class_dict.dedup();
    let mut tags = vec![
        HeaderEntry::new(
            RPMTAG_FILEMODES as u32,
            IndexData::Int16(entries.iter().map(|e| e.mode).collect()),
        ),
        HeaderEntry::new(RPMTAG_FILERDEVS as u32, IndexData::Int16(vec![0; n])),
        int32(RPMTAG_FILEMTIMES, entries.iter().map(|e| e.mtime).collect()),
        strings(RPMTAG_FILEDIGESTS, digests.files.clone()),
        strings(RPMTAG_FILELINKTOS, vec![String::new(); n]),
        int32(RPMTAG_FILEFLAGS, vec![0; n]),
        strings(RPMTAG_FILEUSERNAME, vec!["root".to_owned(); n]),
        strings(RPMTAG_FILEGROUPNAME, vec!["root".to_owned(); n]),
        int32(RPMTAG_FILEVERIFYFLAGS, vec![u32::MAX; n]),
        int32(RPMTAG_FILEDEVICES, vec![1; n]),
        int32(RPMTAG_FILEINODES, (1..=n as u32).collect()),
        strings(RPMTAG_FILELANGS, vec![String::new(); n]),
        int32(RPMTAG_DIRINDEXES, dirindexes),
        strings(RPMTAG_BASENAMES, basenames),
        strings(RPMTAG_DIRNAMES, dirnames),
        int32(RPMTAG_FILECOLORS, vec![0; n]),
        int32(
            RPMTAG_FILECLASS,
            entries
                .iter()
                .map(|e| u32::from(e.source.is_some()))
                .collect(),
        ),
        strings(RPMTAG_CLASSDICT, class_dict),
        int32(RPMTAG_FILEDIGESTALGO, vec![SHA256_ALGO]),
    ];
    if large {
        tags.push(HeaderEntry::new(
            RPMTAG_LONGFILESIZES as u32,
            IndexData::Int64(entries.iter().map(|e| e.size).collect()),
        ));
    } else {
        tags.push(int32(
            RPMTAG_FILESIZES,
            entries.iter().map(|e| e.size as u32).collect(),
        ));
    }
    tags
}

/// The bytes of a main header, which its digests cover.
fn header_bytes(header: &Header<IndexTag>) -> Result<Vec<u8>> {
    let metadata = PackageMetadata {
        lead: Lead::new(""),
        signature: Header::from_entries(Vec::new(), IndexSignatureTag::HEADER_SIGNATURES),
        header: header.clone(),
    };
    Ok(metadata.header_bytes()?)
}

fn signature_header(
    header_sha1: &[u8; 20],
    header_sha256: &[u8; 32],
    md5: &[u8; 16],
    header_len: u64,
    payload_size: u64,
) -> Header<IndexSignatureTag> {
    use IndexSignatureTag::*;
    let total = header_len + payload_size;
    let mut tags = vec![
        HeaderEntry::new(
            RPMSIGTAG_SHA1 as u32,
            IndexData::StringTag(hex::encode(header_sha1)),
        ),
        HeaderEntry::new(
            RPMSIGTAG_SHA256 as u32,
            IndexData::StringTag(hex::encode(header_sha256)),
        ),
        HeaderEntry::new(RPMSIGTAG_MD5 as u32, IndexData::Bin(md5.to_vec())),
        HeaderEntry::new(
            RPMSIGTAG_RESERVEDSPACE as u32,
            IndexData::Bin(vec![0; RESERVED_SPACE]),
        ),
    ];
    // rpm switches to the 64-bit tags only when a size does not fit in 32 bits.
    match u32::try_from(total) {
        Ok(total) => tags.push(HeaderEntry::new(
            RPMSIGTAG_SIZE as u32,
            IndexData::Int32(vec![total]),
        )),
        Err(_) => tags.push(HeaderEntry::new(
            RPMSIGTAG_LONGSIZE as u32,
            IndexData::Int64(vec![total]),
        )),
    }
    match u32::try_from(payload_size) {
        Ok(size) => tags.push(HeaderEntry::new(
            RPMSIGTAG_PAYLOADSIZE as u32,
            IndexData::Int32(vec![size]),
        )),
        Err(_) => tags.push(HeaderEntry::new(
            RPMSIGTAG_LONGARCHIVESIZE as u32,
            IndexData::Int64(vec![payload_size]),
        )),
    }
    Header::from_entries(tags, HEADER_SIGNATURES)
}

/// Lead, signature header and main header, as they go at the start of the file.
fn metadata_bytes(
    spec: &PackageSpec,
    signature: Header<IndexSignatureTag>,
    header: &Header<IndexTag>,
) -> Result<Vec<u8>> {
    let metadata = PackageMetadata {
        lead: Lead::new(&spec.nvr()),
        signature,
        header: header.clone(),
    };
    let mut bytes = Vec::with_capacity(16 << 10);
    metadata.write(&mut bytes)?;
    Ok(bytes)
}

/// Read the package back with the rpm crate: its header digests and identity.
fn verify(path: &Path, spec: &PackageSpec, expected_size: u64) -> Result<()> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading back {}", path.display()))?
        .len();
    ensure!(
        size == expected_size,
        "{} is {size} bytes, expected {expected_size}",
        path.display()
    );
    let metadata =
        PackageMetadata::open(path).with_context(|| format!("reading back {}", path.display()))?;
    metadata
        .verify_digests()
        .with_context(|| format!("verifying the header digests of {}", path.display()))?;
    let nevra = metadata.get_nevra()?;
    ensure!(
        nevra.nvra() == format!("{}.{}", spec.nvr(), spec.arch),
        "{} reads back as {}",
        path.display(),
        nevra.nvra()
    );
    Ok(())
}
