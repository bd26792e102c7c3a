//! The few fields of an ext2/3/4 superblock nodeimg needs (enough to size a
//! filesystem inside a partition and to tell ext4 from what is not), and random access
//! to a filesystem at an offset in a file, for ext4-view.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The superblock starts 1024 bytes into the filesystem.
const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xEF53;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    Ext2,
    Ext3,
    Ext4,
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavour::Ext2 => "ext2",
            Flavour::Ext3 => "ext3",
            Flavour::Ext4 => "ext4",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Superblock {
    pub flavour: Flavour,
    pub block_size: u64,
    pub blocks: u64,
    pub free_blocks: u64,
    pub label: String,
    pub uuid: [u8; 16],
}

impl Superblock {
    /// Length of the filesystem in bytes (not of the partition or file holding it).
    pub fn size_bytes(&self) -> u64 {
        self.blocks * self.block_size
    }

    pub fn used_bytes(&self) -> u64 {
        self.blocks.saturating_sub(self.free_blocks) * self.block_size
    }

    /// Parse a superblock from its 1024 bytes. `None` when the magic is not there.
    pub fn parse(raw: &[u8; SUPERBLOCK_LEN]) -> Option<Superblock> {
        let u16_at = |at: usize| u16::from_le_bytes([raw[at], raw[at + 1]]);
        let u32_at =
            |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        if u16_at(0x38) != MAGIC {
            return None;
        }
        let compat = u32_at(0x5C);
        let incompat = u32_at(0x60);
        let is_64bit = incompat & INCOMPAT_64BIT != 0;
        let wide = |lo: usize, hi: usize| {
            u64::from(u32_at(lo))
                | if is_64bit {
                    u64::from(u32_at(hi)) << 32
                } else {
                    0
                }
        };
        let log_block_size = u32_at(0x18);
        let flavour = if incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG) != 0 {
            Flavour::Ext4
        } else if compat & COMPAT_HAS_JOURNAL != 0 {
            Flavour::Ext3
        } else {
            Flavour::Ext2
        };
        let label_raw = &raw[0x78..0x88];
        let label_len = label_raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(label_raw.len());
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[0x68..0x78]);
        Some(Superblock {
            flavour,
            // 1 KiB << s_log_block_size; ext4 allows at most 64 KiB.
            block_size: 1024u64.checked_shl(log_block_size.min(6))?,
            blocks: wide(0x04, 0x150),
            free_blocks: wide(0x0C, 0x158),
            label: String::from_utf8_lossy(&label_raw[..label_len]).into_owned(),
            uuid,
        })
    }
}

/// Read the superblock of the filesystem that starts `offset` bytes into `path`.
/// `Ok(None)` when there is no ext2/3/4 filesystem there.
pub fn read_superblock(path: &Path, offset: u64) -> Result<Option<Superblock>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut raw = [0u8; SUPERBLOCK_LEN];
    file.seek(SeekFrom::Start(offset + SUPERBLOCK_OFFSET))
        .and_then(|_| file.read_exact(&mut raw))
        .map(|()| Superblock::parse(&raw))
        .or_else(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => Ok(None),
            _ => Err(err),
        })
        .with_context(|| {
            format!(
                "reading the superblock at byte {offset} of {}",
                path.display()
            )
        })
}

/// The superblock of an ext4 filesystem at `offset`, or an error saying what is there
/// instead.
pub fn require_ext4(path: &Path, offset: u64, what: &str) -> Result<Superblock> {
    let Some(sb) = read_superblock(path, offset)? else {
        bail!("{what} holds no ext4 filesystem (no ext2/3/4 superblock)");
    };
    if sb.flavour != Flavour::Ext4 {
        bail!(
            "{what} holds an {} filesystem, not ext4: the Node image needs ext4 (imgbased and dracut expect it)",
            sb.flavour
        );
    }
    Ok(sb)
}

/// A filesystem `offset` bytes into a file.
pub struct OffsetFile {
    file: File,
    offset: u64,
}

impl OffsetFile {
    pub fn new(file: File, offset: u64) -> OffsetFile {
        OffsetFile { file, offset }
    }
}

impl ext4_view::Ext4Read for OffsetFile {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // Readers stop on SIGINT/SIGTERM between blocks (image::inspect reports it).
        crate::sys::cancel::check()?;
        let at = self
            .offset
            .checked_add(start_byte)
            .ok_or_else(|| format!("byte {start_byte} of the filesystem is past any file"))?;
        self.file.seek(SeekFrom::Start(at))?;
        self.file.read_exact(dst)?;
        Ok(())
    }
}
