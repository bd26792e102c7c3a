//! Disk images for tests: GPT and MBR layouts around a filesystem image.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::run;

/// Recompute a GPT's header and entry-array CRCs (512-byte sectors, header at LBA 1),
/// so that a changed table is read rather than refused for its checksum.
pub fn fix_gpt_crcs(disk: &mut [u8]) {
    let h = 512;
    if disk.len() < 1024 || &disk[h..h + 8] != b"EFI PART" {
        return;
    }
    let le32 = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    let entries_at = u64::from_le_bytes(disk[h + 72..h + 80].try_into().unwrap());
    let count = le32(disk, h + 80) as u64;
    let size = le32(disk, h + 84) as u64;
    if let Some(start) = entries_at.checked_mul(512)
        && let Some(end) = count.checked_mul(size).and_then(|n| n.checked_add(start))
        && end <= disk.len() as u64
    {
        let crc = crc32fast::hash(&disk[start as usize..end as usize]);
        disk[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
    }
    let header_size = (le32(disk, h + 12) as usize).clamp(92, 512);
    disk[h + 16..h + 20].fill(0);
    let crc = crc32fast::hash(&disk[h..h + header_size]);
    disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
}

/// A `mib` MiB disk image with one GPT partition from sector 2048 holding `fs_image`.
pub fn gpt_disk_around(fs_image: &Path, disk: &Path, mib: u64) {
    run(Command::new("truncate").arg(format!("-s{mib}M")).arg(disk));
    let fs_sectors = fs::metadata(fs_image).unwrap().len() / 512;
    run(Command::new("sgdisk")
        .args(["-q", "-n"])
        .arg(format!("1:2048:+{fs_sectors}"))
        .args(["-t", "1:8300"])
        .arg(disk));
    write_at(disk, 2048 * 512, fs_image);
}

/// A `mib` MiB MBR disk image from an sfdisk script.
pub fn mbr_disk(disk: &Path, mib: u64, script: &str) {
    fs::File::create(disk).unwrap().set_len(mib << 20).unwrap();
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk {script}");
}

/// Copy `image` into `disk` at byte `offset`.
pub fn write_at(disk: &Path, offset: u64, image: &Path) {
    run(Command::new("dd")
        .arg(format!("if={}", image.display()))
        .arg(format!("of={}", disk.display()))
        .arg(format!("seek={offset}"))
        .args(["oflag=seek_bytes", "bs=1M", "conv=notrunc", "status=none"]));
}
