//! Random access to a filesystem image stored as a file inside a squashfs, for
//! ext4-view: nothing is mounted or unpacked. (Plain files and disk partitions are
//! read through `disk::ext4::OffsetFile`.)

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use backhand::{FilesystemReader, SquashfsFileReader};
use ext4_view::Ext4Read;

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// Squashfs blocks kept decompressed: ext4 reads jump between the inode tables and
/// file data, and each squashfs block (128 KiB by default) serves many of them.
const CACHED_BLOCKS: usize = 64;

/// A file inside a squashfs, read at random by decompressing only the blocks asked
/// for.
pub struct SquashfsFile {
    fs: Rc<FilesystemReader<'static>>,
    node: SquashfsFileReader,
    len: u64,
    block_size: u64,
    cache: VecDeque<(u64, Vec<u8>)>,
}

impl SquashfsFile {
    pub fn new(fs: Rc<FilesystemReader<'static>>, node: SquashfsFileReader) -> SquashfsFile {
        SquashfsFile {
            len: node.file_len() as u64,
            block_size: u64::from(fs.block_size),
            fs,
            node,
            cache: VecDeque::with_capacity(CACHED_BLOCKS),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block(&mut self, index: u64) -> std::io::Result<&[u8]> {
        if let Some(at) = self.cache.iter().position(|(i, _)| *i == index) {
            // Most recently used at the back.
            let hit = self.cache.remove(at).expect("position is in range");
            self.cache.push_back(hit);
        } else {
            let start = index * self.block_size;
            let len = self.block_size.min(self.len - start) as usize;
            let file = self.fs.file(&self.node);
            let mut reader = file.reader();
            reader.seek(SeekFrom::Start(start))?;
            let mut data = vec![0; len];
            reader.read_exact(&mut data)?;
            if self.cache.len() == CACHED_BLOCKS {
                self.cache.pop_front();
            }
            self.cache.push_back((index, data));
        }
        Ok(&self.cache.back().expect("just pushed").1)
    }
}

impl Ext4Read for SquashfsFile {
    fn read(&mut self, start_byte: u64, dst: &mut [u8]) -> Result<(), BoxedError> {
        let end = start_byte
            .checked_add(dst.len() as u64)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                format!(
                    "read of {} bytes at {start_byte} past the end ({})",
                    dst.len(),
                    self.len
                )
            })?;
        let mut pos = start_byte;
        while pos < end {
            // Readers stop on SIGINT/SIGTERM between blocks (image::inspect reports it).
            crate::sys::cancel::check()?;
            let index = pos / self.block_size;
            let within = (pos - index * self.block_size) as usize;
            let block = self.block(index)?;
            let n = (block.len() - within).min((end - pos) as usize);
            let at = (pos - start_byte) as usize;
            dst[at..at + n].copy_from_slice(&block[within..within + n]);
            pos += n as u64;
        }
        Ok(())
    }
}
