//! MBR and GPT partition tables, read from a disk image file.
//!
//! Only what finding the root filesystem needs: where each partition starts and ends,
//! its type and name. GPT headers and entry arrays are checked against their CRC32,
//! and every partition must lie inside the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

const MBR_SIGNATURE: [u8; 2] = [0x55, 0xAA];
const MBR_PROTECTIVE: u8 = 0xEE;
const MBR_EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// Logical partitions beyond this are treated as a loop in the EBR chain.
const MAX_LOGICAL: u32 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Mbr,
    Gpt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based, as the kernel numbers them (`loop0p2`, `sda2`); MBR logical
    /// partitions start at 5.
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// What the table says it holds: "linux", "efi", "swap", "lvm", … or the raw type.
    pub kind: String,
    /// The GPT partition name, if any.
    pub name: Option<String>,
}

impl Partition {
    /// Where it ends; `read_table` has checked that this does not overflow.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub scheme: Scheme,
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
}

/// Read the partition table of a disk image. An image without one is an error.
pub fn read_table(path: &Path) -> Result<Table> {
    let mut disk = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = disk
        .metadata()
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    let table = read_from(&mut disk, len)
        .with_context(|| format!("reading the partition table of {}", path.display()))?;
    for part in &table.partitions {
        ensure!(
            part.start
                .checked_add(part.size)
                .is_some_and(|end| end <= len),
            "partition {} of {} ends at byte {} but the disk image is only {len} bytes long (truncated image?)",
            part.number,
            path.display(),
            part.end()
        );
    }
    Ok(table)
}

/// The partition named, or the only one holding ext4.
pub fn find_root(disk: &Path, wanted: Option<u32>) -> Result<Partition> {
    let table = read_table(disk)?;
    let list = || {
        if table.partitions.is_empty() {
            return "no partitions in its table".to_owned();
        }
        table
            .partitions
            .iter()
            .map(|p| format!("{} ({}, {})", p.number, p.kind, crate::units::human(p.size)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(number) = wanted {
        return table
            .partitions
            .iter()
            .find(|p| p.number == number)
            .cloned()
            .with_context(|| {
                format!(
                    "{} has no partition {number}; it has: {}",
                    disk.display(),
                    list()
                )
            });
    }
    let mut ext4 = Vec::new();
    for part in &table.partitions {
        if let Some(sb) = super::ext4::read_superblock(disk, part.start)?
            && sb.flavour == super::ext4::Flavour::Ext4
        {
            ext4.push(part.clone());
        }
    }
    if ext4.len() > 1 {
        // /boot and / are both ext4 on many disks: the root is the one with an OS in it.
        let mut with_os = Vec::new();
        for part in &ext4 {
            if holds_os_tree(disk, part.start)? {
                with_os.push(part.clone());
            }
        }
        if with_os.len() == 1 {
            ext4 = with_os;
        }
    }
    match ext4.len() {
        1 => Ok(ext4.remove(0)),
        0 => bail!(
            "no partition of {} holds ext4; it has: {}",
            disk.display(),
            list()
        ),
        _ => bail!(
            "several partitions of {} hold ext4 with an OS tree or none ({}); name the root one as disk:{}:N",
            disk.display(),
            ext4.iter()
                .map(|p| p.number.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            disk.display()
        ),
    }
}

/// Whether the ext4 filesystem at `offset` has an os-release file, as every systemd-era
/// root has.
fn holds_os_tree(disk: &Path, offset: u64) -> Result<bool> {
    let file = File::open(disk).with_context(|| format!("opening {}", disk.display()))?;
    let reader = super::ext4::OffsetFile::new(file, offset);
    let Ok(fs) = ext4_view::Ext4::load(Box::new(reader)) else {
        return Ok(false);
    };
    Ok(["/usr/lib/os-release", "/etc/os-release"]
        .iter()
        .any(|path| matches!(super::resolve::resolve(&fs, path), Ok(Some(_)))))
}

fn read_from(disk: &mut File, len: u64) -> Result<Table> {
    let mbr = read_at(disk, 0, 512).context("no MBR: the file is shorter than one sector")?;
    ensure!(
        mbr[510..512] == MBR_SIGNATURE,
        "no partition table (no MBR signature 55 AA at byte 510); is this a filesystem image? use fsimage:PATH"
    );
    let entries: Vec<MbrEntry> = (0..4)
        .map(|i| MbrEntry::parse(&mbr[446 + 16 * i..462 + 16 * i]))
        .collect();
    if entries.iter().any(|e| e.kind == MBR_PROTECTIVE) {
        return read_gpt(disk, len);
    }
    read_mbr(disk, &entries)
}

struct MbrEntry {
    kind: u8,
    start_lba: u64,
    sectors: u64,
}

impl MbrEntry {
    fn parse(raw: &[u8]) -> MbrEntry {
        MbrEntry {
            kind: raw[4],
            start_lba: u64::from(le32(raw, 8)),
            sectors: u64::from(le32(raw, 12)),
        }
    }
}

fn read_mbr(disk: &mut File, entries: &[MbrEntry]) -> Result<Table> {
    const SECTOR: u64 = 512;
    let mut partitions = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.kind == 0 || entry.sectors == 0 {
            continue;
        }
        if MBR_EXTENDED.contains(&entry.kind) {
            read_logical(disk, entry.start_lba, &mut partitions)?;
            continue;
        }
        partitions.push(Partition {
            number: index as u32 + 1,
            start: entry.start_lba * SECTOR,
            size: entry.sectors * SECTOR,
            kind: mbr_kind(entry.kind),
            name: None,
        });
    }
    Ok(Table {
        scheme: Scheme::Mbr,
        sector_size: SECTOR,
        partitions,
    })
}

/// Follow the chain of extended boot records: each holds one logical partition
/// (relative to itself) and a link to the next (relative to the extended partition).
fn read_logical(disk: &mut File, extended_lba: u64, partitions: &mut Vec<Partition>) -> Result<()> {
    let mut ebr_lba = extended_lba;
    for number in 5..5 + MAX_LOGICAL {
        let ebr = read_at(disk, ebr_lba * 512, 512)
            .with_context(|| format!("reading the extended boot record at sector {ebr_lba}"))?;
        ensure!(
            ebr[510..512] == MBR_SIGNATURE,
            "broken extended boot record at sector {ebr_lba}"
        );
        let logical = MbrEntry::parse(&ebr[446..462]);
        let next = MbrEntry::parse(&ebr[462..478]);
        if logical.sectors > 0 {
            partitions.push(Partition {
                number,
                start: (ebr_lba + logical.start_lba) * 512,
                size: logical.sectors * 512,
                kind: mbr_kind(logical.kind),
                name: None,
            });
        }
        if next.sectors == 0 || next.start_lba == 0 {
            return Ok(());
        }
        ebr_lba = extended_lba + next.start_lba;
    }
    bail!("more than {MAX_LOGICAL} logical partitions: the extended boot records loop")
}

fn read_gpt(disk: &mut File, len: u64) -> Result<Table> {
    // The header sits in LBA 1; the sector size is whichever puts it there.
    for sector in [512u64, 4096] {
        if len < 2 * sector {
            continue;
        }
        let header = read_at(disk, sector, sector as usize)?;
        if &header[..8] != GPT_SIGNATURE {
            continue;
        }
        let header_size = le32(&header, 12) as usize;
        ensure!(
            (92..=sector as usize).contains(&header_size),
            "GPT header size {header_size} is not valid"
        );
        let mut zeroed = header[..header_size].to_vec();
        zeroed[16..20].fill(0);
        let stored = le32(&header, 16);
        let computed = crc32fast::hash(&zeroed);
        ensure!(
            stored == computed,
            "GPT header checksum mismatch (stored {stored:08x}, computed {computed:08x}): the table is corrupt"
        );
        let entries_lba = le64(&header, 72);
        let count = le32(&header, 80) as usize;
        let entry_size = le32(&header, 84) as usize;
        // UEFI: 128 × 2^n bytes an entry. Real tables have 128 entries of 128 bytes;
        // 1024 of 4096 (4 MiB) is far beyond anything a partitioning tool writes.
        ensure!(
            (128..=4096).contains(&entry_size) && entry_size.is_power_of_two() && count <= 1024,
            "GPT declares {count} entries of {entry_size} bytes: not a valid table"
        );
        let array_at = entries_lba
            .checked_mul(sector)
            .context("the GPT partition entries' LBA is past any disk")?;
        let array = read_at(disk, array_at, count * entry_size)
            .context("the GPT partition entries lie past the end of the image")?;
        let stored = le32(&header, 88);
        let computed = crc32fast::hash(&array);
        ensure!(
            stored == computed,
            "GPT partition entries checksum mismatch (stored {stored:08x}, computed {computed:08x}): the table is corrupt"
        );
        let mut partitions = Vec::new();
        for (index, raw) in array.chunks_exact(entry_size).enumerate() {
            let type_guid = format_guid(&raw[0..16]);
            if raw[0..16].iter().all(|&b| b == 0) {
                continue;
            }
            let first = le64(raw, 32);
            let last = le64(raw, 40);
            ensure!(
                last >= first,
                "GPT partition {} ends before it starts",
                index + 1
            );
            let name: String = char::decode_utf16(
                raw[56..128]
                    .chunks_exact(2)
                    .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                    .take_while(|&unit| unit != 0),
            )
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
            let (start, size) = first
                .checked_mul(sector)
                .zip(
                    (last - first)
                        .checked_add(1)
                        .and_then(|n| n.checked_mul(sector)),
                )
                .with_context(|| {
                    format!(
                        "GPT partition {} (LBA {first} to {last}) lies past any disk",
                        index + 1
                    )
                })?;
            partitions.push(Partition {
                number: index as u32 + 1,
                start,
                size,
                kind: gpt_kind(&type_guid),
                name: (!name.is_empty()).then_some(name),
            });
        }
        return Ok(Table {
            scheme: Scheme::Gpt,
            sector_size: sector,
            partitions,
        });
    }
    bail!("the MBR is a GPT protective MBR but no GPT header was found (\"EFI PART\" missing)")
}

/// `len` bytes at `offset`: checked against the file's length before anything is
/// allocated, so a table cannot make us reserve memory for data the image does not have.
fn read_at(disk: &mut File, offset: u64, len: usize) -> Result<Vec<u8>> {
    let size = disk.metadata()?.len();
    ensure!(
        offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= size),
        "{len} bytes at byte {offset} lie past the end of the {size}-byte image"
    );
    let mut buf = vec![0u8; len];
    disk.seek(SeekFrom::Start(offset))?;
    disk.read_exact(&mut buf)
        .with_context(|| format!("reading {len} bytes at byte {offset}"))?;
    Ok(buf)
}

fn le32(raw: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]])
}

fn le64(raw: &[u8], at: usize) -> u64 {
    u64::from(le32(raw, at)) | u64::from(le32(raw, at + 4)) << 32
}

/// GUIDs are stored with their first three fields little-endian.
fn format_guid(raw: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le32(raw, 0),
        u16::from_le_bytes([raw[4], raw[5]]),
        u16::from_le_bytes([raw[6], raw[7]]),
        raw[8],
        raw[9],
        raw[10..16]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

fn gpt_kind(guid: &str) -> String {
    match guid {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "linux",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" | "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => {
            "linux-root"
        }
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "linux-boot",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "efi",
        "21686148-6449-6E6F-744E-656564454649" => "bios-boot",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "lvm",
        "9E1A2D38-C612-4316-AA26-8B49521E5A8B" => "prep",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn mbr_kind(kind: u8) -> String {
    match kind {
        0x83 => "linux".to_owned(),
        0x82 => "swap".to_owned(),
        0x8E => "lvm".to_owned(),
        0xEF => "efi".to_owned(),
        0x41 => "prep".to_owned(),
        other => format!("0x{other:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_mixed_endian() {
        // The Linux filesystem type as it is stored on disk.
        let raw = [
            0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47,
            0x7D, 0xE4,
        ];
        assert_eq!(format_guid(&raw), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(gpt_kind(&format_guid(&raw)), "linux");
    }

    /// A 1 MiB disk image with a protective MBR and a GPT (512-byte sectors) whose one
    /// Linux entry spans `first`..=`last`, entries of `entry_size` bytes, `count` of
    /// them (only the first 4 are written); every CRC correct.
    fn gpt_disk(first: u64, last: u64, entry_size: u32, count: u32) -> tempfile::NamedTempFile {
        let mut disk = vec![0u8; 1 << 20];
        disk[446 + 4] = MBR_PROTECTIVE;
        disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&2047u32.to_le_bytes());
        disk[510..512].copy_from_slice(&MBR_SIGNATURE);
        let linux = [
            0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47,
            0x7D, 0xE4,
        ];
        let entries_at = 1024;
        disk[entries_at..entries_at + 16].copy_from_slice(&linux);
        disk[entries_at + 16] = 1; // a unique GUID
        disk[entries_at + 32..entries_at + 40].copy_from_slice(&first.to_le_bytes());
        disk[entries_at + 40..entries_at + 48].copy_from_slice(&last.to_le_bytes());
        let array_len = (entry_size as usize * count as usize).min(disk.len() - entries_at);
        let array_crc = crc32fast::hash(&disk[entries_at..entries_at + array_len]);
        let h = 512;
        disk[h..h + 8].copy_from_slice(GPT_SIGNATURE);
        disk[h + 8..h + 12].copy_from_slice(&[0, 0, 1, 0]);
        disk[h + 12..h + 16].copy_from_slice(&92u32.to_le_bytes());
        disk[h + 72..h + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[h + 80..h + 84].copy_from_slice(&count.to_le_bytes());
        disk[h + 84..h + 88].copy_from_slice(&entry_size.to_le_bytes());
        disk[h + 88..h + 92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32fast::hash(&disk[h..h + 92]);
        disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &disk).unwrap();
        file
    }

    #[test]
    fn a_sane_gpt_reads() {
        let disk = gpt_disk(34, 2000, 128, 128);
        let table = read_table(disk.path()).unwrap();
        assert_eq!(table.partitions.len(), 1);
        assert_eq!(table.partitions[0].start, 34 * 512);
        assert_eq!(table.partitions[0].size, (2000 - 34 + 1) * 512);
    }

    #[test]
    fn a_gpt_entry_array_of_gigabytes_is_refused_before_allocating() {
        // CRC-valid headers that ask for 1024 × 2 GiB (and 1024 × 4 KiB past the end).
        for (size, count) in [(1u32 << 31, 1024), (1 << 21, 1024), (4096, 1024)] {
            let disk = gpt_disk(34, 100, size, count);
            let err = format!("{:#}", read_table(disk.path()).unwrap_err());
            assert!(
                err.contains("not a valid table") || err.contains("past the end"),
                "{size} × {count}: {err}"
            );
        }
    }

    #[test]
    fn partition_offsets_that_would_wrap_are_refused() {
        // 2^55 + 6144 sectors × 512 wraps u64 to byte 3 MiB.
        let first = (1u64 << 55) + 6144;
        let disk = gpt_disk(first, first + 100, 128, 128);
        let err = format!("{:#}", read_table(disk.path()).unwrap_err());
        assert!(err.contains("lies past any disk"), "{err}");
        let disk = gpt_disk(34, u64::MAX, 128, 128);
        let err = format!("{:#}", read_table(disk.path()).unwrap_err());
        assert!(err.contains("lies past any disk"), "{err}");
    }
}
