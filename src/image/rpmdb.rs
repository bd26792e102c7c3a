//! The installed packages of an image, from its sqlite rpmdb (EL9, Fedora 33+).
//!
//! Each row of `Packages` holds a header blob: rpm's header without its 8-byte magic.
//! The rpm crate parses headers only as part of a package, so each blob is framed as
//! the smallest package it accepts (a lead and an empty signature header) and read
//! back through `PackageMetadata::parse`: the crate does the header validation.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use rpm::IndexTag;
use serde::Serialize;

/// rpm's lead magic and header magic (with version 1 and four reserved bytes).
const LEAD_MAGIC: [u8; 4] = [0xED, 0xAB, 0xEE, 0xDB];
const HEADER_MAGIC: [u8; 8] = [0x8E, 0xAD, 0xE8, 0x01, 0, 0, 0, 0];
/// Header tags that carry a package signature once rpm has installed it.
const SIGNATURE_TAGS: [IndexTag; 4] = [
    IndexTag::RPMTAG_RSAHEADER,
    IndexTag::RPMTAG_DSAHEADER,
    IndexTag::RPMTAG_SIGPGP,
    IndexTag::RPMTAG_SIGGPG,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

impl Package {
    /// `name-version-release.arch`, with `epoch:` before the version when set: the form
    /// of upstream's manifest-rpm (`rpm -qa`).
    pub fn nevra(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch > 0 => format!(
                "{}-{epoch}:{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
            _ => format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
        }
    }

    pub fn version_release(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }
}

/// Read every package from an rpmdb.sqlite file (its -wal beside it, if any, is applied).
pub fn read_packages(db: &Path) -> Result<Vec<Package>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("opening the rpmdb {}", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .with_context(|| {
            format!(
                "{} has no Packages table: not an rpm sqlite database",
                db.display()
            )
        })?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    let mut packages = Vec::new();
    for row in rows {
        let (hnum, blob) = row.with_context(|| format!("reading {}", db.display()))?;
        packages.push(
            parse_blob(&blob)
                .with_context(|| format!("package header {hnum} in {}", db.display()))?,
        );
    }
    packages.sort_by_key(Package::nevra);
    Ok(packages)
}

/// One header blob as stored in the rpmdb.
pub fn parse_blob(blob: &[u8]) -> Result<Package> {
    ensure!(
        blob.len() >= 8,
        "the header blob is {} bytes long",
        blob.len()
    );
    let mut framed = Vec::with_capacity(96 + 16 + 8 + blob.len());
    framed.extend_from_slice(&LEAD_MAGIC);
    framed.extend_from_slice(&[3, 0]); // lead version 3.0
    framed.resize(96, 0);
    framed.extend_from_slice(&HEADER_MAGIC); // the signature header: no entries, no data
    framed.extend_from_slice(&[0; 8]);
    framed.extend_from_slice(&HEADER_MAGIC);
    framed.extend_from_slice(blob);
    let meta =
        rpm::PackageMetadata::parse(&mut framed.as_slice()).context("not a valid rpm header")?;
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
