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
    })
}
