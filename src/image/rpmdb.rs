//! The installed packages of an image, from its sqlite rpmdb (EL9, Fedora 33+).
//!
//! Each row of `Packages` holds a header blob: rpm's header without its 8-byte magic.
//! The rpm crate parses headers only as part of a package, so each blob is framed as
//! the smallest package it accepts (a lead and an empty signature header) and read
//! back through `PackageMetadata::parse`: the crate does the header validation.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use rpm::IndexTag;
use serde::Serialize;

/// rpm's lead magic and header magic (with version 1 and four reserved bytes).
pub(super) const LEAD_MAGIC: [u8; 4] = [0xED, 0xAB, 0xEE, 0xDB];
pub(super) const HEADER_MAGIC: [u8; 8] = [0x8E, 0xAD, 0xE8, 0x01, 0, 0, 0, 0];
/// Header tags that carry a package signature once rpm has installed it.
const SIGNATURE_TAGS: [IndexTag; 4] = [
    IndexTag::RPMTAG_RSAHEADER,
    IndexTag::RPMTAG_DSAHEADER,
    IndexTag::RPMTAG_SIGPGP,
    IndexTag::RPMTAG_SIGGPG,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub signed: bool,
    /// MD5 of header and payload (koji's `sigmd5`), hex.
    pub sigmd5: Option<String>,
    /// The signing key's short id (koji's `sigkey`: the last 8 hex digits), when signed.
    pub sigkey: Option<String>,
    /// Installed size and build time: what koji records of an external RPM.
    pub size: Option<u64>,
    pub buildtime: Option<u64>,
    /// The license expression (`License:`).
    #[serde(default)]
    pub license: Option<String>,
    /// The source package it was built from (`N-V-R.src.rpm`).
    #[serde(default)]
    pub sourcerpm: Option<String>,
    /// The payload's SHA-256 (hex), as rpm records it (`RPMTAG_PAYLOADDIGEST`).
    #[serde(default)]
    pub payload_digest: Option<String>,
    /// `%changelog`, newest first (not kept in reports: `nodeimg diff` reads it).
    #[serde(skip)]
    pub changelog: Vec<Change>,
    /// The files it owns, when asked for (`nodeimg diff --files`).
    #[serde(skip)]
    pub files: Vec<PackageFile>,
}

/// One file as the package's header records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: String,
    pub size: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// `user:group`.
    pub owner: String,
    /// The file's digest (hex, the package's algorithm), for regular files.
    pub digest: Option<String>,
}

/// The most files read from one rpmdb: far more than any installed system owns, few
/// enough to keep a hostile rpmdb within the inspection's memory bound.
pub const MAX_FILES: usize = 2_000_000;

/// One `%changelog` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// Seconds since the epoch (the entry's day).
    pub time: u64,
    /// `Name <mail> - V-R`.
    pub author: String,
    pub text: String,
}

impl Package {
    /// `name-version-release.arch`, with `epoch:` before the version when set: the form
    /// of upstream's manifest-rpm (`rpm -qa`).
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// `[E:]V-R`, the epoch shown when it is set and not 0.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch > 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    pub fn version_release(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }
}

/// Read every package from an rpmdb.sqlite file (its -wal beside it, if any, is applied).
pub fn read_packages(db: &Path) -> Result<Vec<Package>> {
    read_packages_with(db, false)
}

/// As [`read_packages`], with each package's file list when `files`.
pub fn read_packages_with(db: &Path, files: bool) -> Result<Vec<Package>> {
    let mut total_files = 0usize;
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .context("sqlite cannot open it")?;
    // The blob is fetched only when it is of a size a header can have: sqlite would
    // otherwise allocate whatever the record claims (up to a gigabyte).
    let mut stmt = conn
        .prepare(
            "SELECT hnum, length(blob), CASE WHEN length(blob) <= ?1 THEN blob END \
             FROM Packages ORDER BY hnum",
        )
        .context("no readable Packages table: not an rpm sqlite database, or a corrupt one")?;
    let rows = stmt
        .query_map([MAX_BLOB as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .context("reading the Packages table")?;
    let mut packages = Vec::new();
    for row in rows {
        let (hnum, len, blob) = row.context("reading the Packages table")?;
        ensure!(
            packages.len() < MAX_PACKAGES,
            "more than {MAX_PACKAGES} packages in the Packages table: not a real rpmdb"
        );
        let blob = blob.with_context(|| match len {
            Some(len) => format!(
                "corrupt rpmdb entry {hnum}: a header blob of {len} bytes (at most {MAX_BLOB})"
            ),
            None => format!("corrupt rpmdb entry {hnum}: no header blob"),
        })?;
        let corrupt = || format!("corrupt rpmdb entry {hnum}");
        let meta = header_metadata(&blob).with_context(corrupt)?;
        let mut package = package(&meta).with_context(corrupt)?;
        if files {
            package.files = file_list(&meta).with_context(corrupt)?;
            total_files = total_files.saturating_add(package.files.len());
            ensure!(
                total_files <= MAX_FILES,
                "more than {MAX_FILES} files in the rpmdb: not a real one"
            );
        }
        packages.push(package);
    }
    packages.sort_by_key(Package::nevra);
    Ok(packages)
}

/// The largest header blob read: rpm allows 256 MiB of data, but the biggest real
/// headers (kernel-devel, texlive's file lists) are a few MiB; this keeps an
/// inspection within its memory bound.
pub const MAX_BLOB: u64 = 32 << 20;
/// More packages than any installed system has (a full Fedora workstation: ~3,000).
const MAX_PACKAGES: usize = 100_000;

/// rpm's own limits on a header (header_internal.h: HEADER_TAGS_MAX, HEADER_DATA_MAX).
pub(super) const MAX_ENTRIES: u64 = 0xffff;
pub(super) const MAX_DATA: u64 = 0x0fff_ffff;

pub(super) fn be32(raw: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes([
        raw[at],
        raw[at + 1],
        raw[at + 2],
        raw[at + 3],
    ]))
}

/// What rpm's `headerVerifyInfo` checks of a blob, done before the rpm crate sees it:
/// the crate indexes its store with each entry's offset and count unchecked, and
/// reserves `count` elements up front.
fn check_blob(blob: &[u8]) -> Result<()> {
    ensure!(
        blob.len() >= 8,
        "the header blob is {} bytes long",
        blob.len()
    );
    let (entries, data) = (be32(blob, 0), be32(blob, 4));
    ensure!(
        entries <= MAX_ENTRIES && data <= MAX_DATA,
        "the header claims {entries} entries and {data} bytes of data (rpm allows {MAX_ENTRIES} and {MAX_DATA})"
    );
    let expected = 8 + entries * 16 + data;
    ensure!(
        expected == blob.len() as u64,
        "the header's {entries} entries and {data} data bytes make {expected} bytes, but the blob has {}",
        blob.len()
    );
    for i in 0..entries as usize {
        let at = 8 + 16 * i;
        let (tag, kind, offset, count) = (
            be32(blob, at),
            be32(blob, at + 4),
            be32(blob, at + 8),
            be32(blob, at + 12),
        );
        // CHAR, INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING.
        let element = match kind {
            1 | 2 | 7 => 1,
            3 => 2,
            4 => 4,
            5 => 8,
            6 | 8 | 9 => 1, // at least a NUL a string
            _ => bail!("entry {i} (tag {tag}) has type {kind}, which rpm does not know"),
        };
        let end = count
            .checked_mul(element)
            .and_then(|len| len.checked_add(offset));
        ensure!(
            count >= 1 && end.is_some_and(|end| end <= data),
            "entry {i} (tag {tag}) claims {count} elements at offset {offset}, past the {data} bytes of data"
        );
    }
    Ok(())
}

/// A header blob as the rpmdb stores it (entry count, data size, index, data), checked
/// as rpm checks one before the rpm crate reads it.
pub fn header_metadata(blob: &[u8]) -> Result<rpm::PackageMetadata> {
    check_blob(blob)?;
    let mut framed = Vec::with_capacity(96 + 16 + 8 + blob.len());
    framed.extend_from_slice(&LEAD_MAGIC);
    framed.extend_from_slice(&[3, 0]); // lead version 3.0
    framed.resize(96, 0);
    framed.extend_from_slice(&HEADER_MAGIC); // the signature header: no entries, no data
    framed.extend_from_slice(&[0; 8]);
    framed.extend_from_slice(&HEADER_MAGIC);
    framed.extend_from_slice(blob);
    // The last line of defence: a panic in the crate's parser is this entry's error,
    // not the end of the program.
    std::panic::catch_unwind(|| rpm::PackageMetadata::parse(&mut framed.as_slice()))
        .map_err(|_| anyhow::anyhow!("the rpm crate could not parse it (it panicked)"))?
        .context("not a valid rpm header")
}

/// The files a header blob lists.
fn file_list(meta: &rpm::PackageMetadata) -> Result<Vec<PackageFile>> {
    let entries = meta.get_file_entries().context("its file list")?;
    ensure!(
        entries.len() <= MAX_FILES,
        "{} files in one package",
        entries.len()
    );
    Ok(entries
        .iter()
        .map(|f| PackageFile {
            path: f.path().display().to_string(),
            size: f.size() as u64,
            mode: u32::from(f.mode()),
            owner: format!("{}:{}", f.user(), f.group()),
            digest: f.digest().map(|d| d.as_hex().to_owned()),
        })
        .collect())
}

/// One header blob as stored in the rpmdb.
pub fn parse_blob(blob: &[u8]) -> Result<Package> {
    package(&header_metadata(blob)?)
}

/// What a parsed header says of its package.
fn package(meta: &rpm::PackageMetadata) -> Result<Package> {
    let header = &meta.header;
    Ok(Package {
        name: meta.get_name()?.to_owned(),
        epoch: meta.get_epoch().ok(),
        version: meta.get_version()?.to_owned(),
        release: meta.get_release()?.to_owned(),
        arch: meta.get_arch().unwrap_or("noarch").to_owned(),
        signed: SIGNATURE_TAGS
            .iter()
            .any(|&tag| header.entry_is_present(tag as u32)),
        sigmd5: header
            .get_entry_data_as_binary(IndexTag::RPMTAG_SIGMD5)
            .ok()
            .map(hex::encode),
        sigkey: SIGNATURE_TAGS
            .iter()
            .find_map(|&tag| header.get_entry_data_as_binary(tag).ok())
            .and_then(issuer_key_id)
            .map(|id| id[id.len().saturating_sub(8)..].to_owned()),
        size: meta.get_installed_size().ok(),
        buildtime: meta.get_build_time().ok(),
        license: meta.get_license().ok().map(str::to_owned),
        sourcerpm: meta.get_source_rpm().ok().map(str::to_owned),
        payload_digest: header
            .get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256)
            .ok()
            .and_then(|digests| digests.first().map(|d| (*d).to_owned()))
            // Only a SHA-256 (hash algorithm 8) is one: older rpms recorded others.
            .filter(|_| {
                header
                    .get_entry_data_as_u32_array(IndexTag::RPMTAG_PAYLOADSHA256ALGO)
                    .map_or(true, |algo| algo.first() == Some(&8))
            })
            .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())),
        changelog: meta
            .get_changelog_entries()
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|e| Change {
                        time: e.timestamp,
                        author: e.name,
                        text: e.description,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        files: Vec::new(),
    })
}

/// The issuer key id (hex) of an OpenPGP signature packet, as koji reads it to name a
/// package's signing key: v3 carries it at a fixed place, v4 and later in an issuer
/// (16) or issuer-fingerprint (33) subpacket.
pub fn issuer_key_id(packet: &[u8]) -> Option<String> {
    let first = *packet.first()?;
    let (body_start, body_len) = if first & 0x40 == 0 {
        // Old format: the length's size is in the low two bits.
        match first & 3 {
            0 => (2, *packet.get(1)? as usize),
            1 => (
                3,
                u16::from_be_bytes([*packet.get(1)?, *packet.get(2)?]) as usize,
            ),
            2 => (
                5,
                u32::from_be_bytes(packet.get(1..5)?.try_into().ok()?) as usize,
            ),
            _ => (1, packet.len() - 1),
        }
    } else {
        let (len, used) = new_length(packet.get(1..)?)?;
        (1 + used, len)
    };
    let body = packet.get(body_start..body_start + body_len)?;
    match *body.first()? {
        3 => Some(hex::encode(body.get(7..15)?)),
        4 | 5 => {
            let hashed_len = u16::from_be_bytes([*body.get(4)?, *body.get(5)?]) as usize;
            let hashed = body.get(6..6 + hashed_len)?;
            let at = 6 + hashed_len;
            let unhashed_len = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
            let unhashed = body.get(at + 2..at + 2 + unhashed_len)?;
            let mut fingerprint = None;
            for area in [hashed, unhashed] {
                let mut rest = area;
                while !rest.is_empty() {
                    let (len, used) = new_length(rest)?;
                    let sub = rest.get(used..used + len)?;
                    match sub.first().map(|t| t & 0x7f) {
                        Some(16) => return Some(hex::encode(sub.get(1..9)?)),
                        Some(33) => fingerprint = Some(hex::encode(sub.get(2..)?)),
                        _ => {}
                    }
                    rest = &rest[used + len..];
                }
            }
            fingerprint
        }
        _ => None,
    }
}

/// An OpenPGP new-format length: (length, octets used).
fn new_length(data: &[u8]) -> Option<(usize, usize)> {
    let first = *data.first()? as usize;
    match first {
        0..=191 => Some((first, 1)),
        192..=254 => Some((((first - 192) << 8) + *data.get(1)? as usize + 192, 2)),
        255 => Some((
            u32::from_be_bytes(data.get(1..5)?.try_into().ok()?) as usize,
            5,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with NAME, VERSION, RELEASE and ARCH, as rpm stores it.
    fn blob() -> Vec<u8> {
        let strings: [(u32, &str); 4] =
            [(1000, "bash"), (1001, "5.1"), (1002, "1"), (1022, "x86_64")];
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in strings {
            for word in [tag, 6, data.len() as u32, 1] {
                index.extend_from_slice(&word.to_be_bytes());
            }
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(strings.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    #[test]
    fn a_header_blob_parses() {
        let p = parse_blob(&blob()).unwrap();
        assert_eq!(p.nevra(), "bash-5.1-1.x86_64");
    }

    #[test]
    fn entries_pointing_outside_the_data_are_errors_not_panics() {
        let set = |at: usize, value: u32| {
            let mut b = blob();
            b[at..at + 4].copy_from_slice(&value.to_be_bytes());
            b
        };
        for (what, bad) in [
            ("offset", set(8 + 8, 0xFFFF_FF00)),
            ("count", set(8 + 12, 0xFFFF_FFFF)),
            ("entries", set(0, 0xFFFF_FFFF)),
            ("data length", set(4, 0x7FFF_FFFF)),
            ("type", set(8 + 4, 99)),
        ] {
            let err = format!("{:#}", parse_blob(&bad).unwrap_err());
            assert!(!err.is_empty(), "{what}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Any byte of a blob changed to anything: an error or a package, never a panic
        /// that escapes.
        #[test]
        fn mutated_blobs_never_escape(at in 0usize..96, value: u8, at2 in 0usize..96, value2: u8) {
            let mut b = blob();
            let len = b.len();
            b[at % len] = value;
            b[at2 % len] = value2;
            let _ = parse_blob(&b);
        }
    }
}
