//! The Node image inside an update RPM, found without unpacking the package: the RPM's
//! payload is an uncompressed cpio archive (nodeimg's writer and the update spec's
//! `w.ufdio` both make it so), so the image is a run of bytes of the RPM file that the
//! squashfs reader reads in place.
//!
//! Layout (rpm's lib/package.c, lib/cpio.c): a 96-byte lead, the signature header
//! (padded to 8 bytes), the main header, then the cpio payload: newc entries
//! (`070701`), or rpm's stripped entries (`07070X` and the file's index, sizes in the
//! main header) when a file is 4 GiB or larger. Every size is checked before it is
//! used; the main header goes through the same checks as an rpmdb blob.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::Embedded;
use super::rpmdb::{self, HEADER_MAGIC, LEAD_MAGIC, MAX_BLOB, MAX_DATA, MAX_ENTRIES, be32};

const LEAD: u64 = 96;
/// Where the update RPM installs its image.
const IMAGE_DIR: &str = "/usr/share/ovirt-node-ng-image-update/image/";

/// Whether `path` starts like an RPM.
pub fn is_rpm(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == LEAD_MAGIC
}

/// A header's entry count and data size, from its 16-byte intro, checked.
fn header_intro(intro: &[u8; 16], what: &str) -> Result<(u64, u64)> {
    ensure!(
        intro[..4] == HEADER_MAGIC[..4],
        "no {what} header where one belongs"
    );
    let (entries, data) = (be32(intro, 8), be32(intro, 12));
    ensure!(
        entries <= MAX_ENTRIES && data <= MAX_DATA,
        "the {what} header claims {entries} entries and {data} bytes (rpm allows {MAX_ENTRIES} and {MAX_DATA})"
    );
    Ok((entries, data))
}

/// Where the image of the update RPM `path` is inside it.
pub fn find_image(path: &Path) -> Result<Embedded> {
    find(path).with_context(|| format!("{}: no readable image inside the RPM", path.display()))
}

fn find(path: &Path) -> Result<Embedded> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_len = file.metadata()?.len();
    let mut input = BufReader::new(file);
    let mut lead = [0u8; LEAD as usize];
    input
        .read_exact(&mut lead)
        .context("shorter than an RPM lead")?;
    ensure!(lead[..4] == LEAD_MAGIC, "not an RPM");

    let mut intro = [0u8; 16];
    input.read_exact(&mut intro)?;
    let (entries, data) = header_intro(&intro, "signature")?;
    let signature = 16 + entries * 16 + data;
    let padded = signature + (8 - signature % 8) % 8;
    input.seek(SeekFrom::Start(LEAD + padded))?;

    input.read_exact(&mut intro)?;
    let (entries, data) = header_intro(&intro, "main")?;
    let body = entries * 16 + data;
    ensure!(
        body <= MAX_BLOB,
        "a main header of {body} bytes (at most {MAX_BLOB} are read)"
    );
    let mut blob = Vec::with_capacity(8 + body as usize);
    blob.extend_from_slice(&intro[8..16]);
    (&mut input)
        .take(body)
        .read_to_end(&mut blob)
        .context("reading the main header")?;
    ensure!(
        blob.len() as u64 == 8 + body,
        "the main header is cut short"
    );
    let meta = rpmdb::header_metadata(&blob).context("its main header")?;
    let files: Vec<(String, u64)> = meta
        .get_file_entries()
        .context("its file list")?
        .iter()
        .map(|f| (f.path().display().to_string(), f.size() as u64))
        .collect();
    let payload = LEAD + padded + 16 + body;
    walk_cpio(&mut input, payload, file_len, &files)
}

/// Walk the cpio entries from `at` to the image's; its place in the file.
fn walk_cpio(
    input: &mut BufReader<File>,
    payload: u64,
    file_len: u64,
    files: &[(String, u64)],
) -> Result<Embedded> {
    // cpio aligns to 4 bytes from the start of the archive, not of the file.
    let align = |offset: u64| offset + (4 - (offset - payload) % 4) % 4;
    let mut at = payload;
    // At most one entry a file, and the trailer.
    for _ in 0..=files.len() {
        input.seek(SeekFrom::Start(at))?;
        let mut magic = [0u8; 6];
        input
            .read_exact(&mut magic)
            .context("the payload ends before its image")?;
        let (name, size, data) = match &magic {
            b"070701" => {
                let mut fields = [0u8; 104];
                input.read_exact(&mut fields)?;
                let field = |i: usize| {
                    std::str::from_utf8(&fields[i * 8..i * 8 + 8])
                        .ok()
                        .and_then(|h| u64::from_str_radix(h, 16).ok())
                        .context("a cpio header that is not hex")
                };
                let (size, namesize) = (field(6)?, field(11)?);
                ensure!(
                    namesize > 0 && namesize <= 4096,
                    "a cpio name of {namesize} bytes"
                );
                let mut name = vec![0u8; namesize as usize];
                input.read_exact(&mut name)?;
                let name = String::from_utf8_lossy(&name[..name.len() - 1]).into_owned();
                let data = align(at + 110 + namesize);
                (name, size, data)
            }
            b"07070X" => {
                let mut index = [0u8; 8];
                input.read_exact(&mut index)?;
                let index = std::str::from_utf8(&index)
                    .ok()
                    .and_then(|h| usize::from_str_radix(h, 16).ok())
                    .context("a stripped cpio header that is not hex")?;
                let (name, size) = files.get(index).with_context(|| {
                    format!("a stripped cpio entry for file {index} of {}", files.len())
                })?;
                (name.clone(), *size, align(at + 14))
            }
            other => bail!(
                "its payload is not an uncompressed cpio archive (it starts {:?}); unpack the image with rpm2cpio first",
                String::from_utf8_lossy(other)
            ),
        };
        if name == "TRAILER!!!" {
            break;
        }
        let end = data
            .checked_add(size)
            .filter(|end| *end <= file_len)
            .with_context(|| format!("{name}: {size} bytes at {data}, past the end of the file"))?;
        let path = name.trim_start_matches('.');
        if path.starts_with(IMAGE_DIR) && path.ends_with(".squashfs.img") {
            return Ok(Embedded {
                offset: data,
                len: size,
            });
        }
        at = align(end);
    }
    bail!("it carries no {IMAGE_DIR}*.squashfs.img")
}
