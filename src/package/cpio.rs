//! The cpio framing of an RPM payload, as rpm 4.12 and later write it.
//!
//! Packages whose files all fit in 32 bits use SVR4 "newc" headers (`070701`) with
//! `./`-prefixed names. A package with a file of 4 GiB or more carries its sizes in
//! `LONGFILESIZES` and rpm then writes every entry with the "stripped" header
//! (`07070X` and the file's index in the header arrays): all metadata comes from the
//! RPM header. Both end with a newc `TRAILER!!!` entry. (rpm's lib/cpio.c.)

/// Length of a newc header before the name.
const NEWC_LEN: usize = 110;

/// What one payload entry needs for its header.
#[derive(Debug, Clone)]
pub struct EntryHeader<'a> {
    /// The name in the archive: `./` and the absolute path without its leading `/`.
    pub name: &'a str,
    pub ino: u32,
    pub mode: u32,
    pub mtime: u32,
    pub size: u64,
}

/// Pad `len` up to a multiple of four.
pub fn pad4(len: u64) -> u64 {
    (4 - len % 4) % 4
}

/// A newc header, its name and the padding that aligns the data that follows.
/// `size` must fit in 32 bits (the caller chooses stripped headers otherwise).
pub fn newc_header(entry: &EntryHeader) -> Vec<u8> {
    debug_assert!(entry.size <= u64::from(u32::MAX));
    let namesize = entry.name.len() + 1;
    let fields: [u64; 13] = [
        u64::from(entry.ino),
        u64::from(entry.mode),
        0, // uid: owners live in the RPM header
        0, // gid
        1, // nlink
        u64::from(entry.mtime),
        entry.size,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        namesize as u64,
        0, // check
    ];
    let mut out = Vec::with_capacity(NEWC_LEN + namesize + 3);
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(entry.name.as_bytes());
    out.push(0);
    out.resize(out.len() + pad4(out.len() as u64) as usize, 0);
    out
}

/// A stripped header: magic, the index of the file in the header's file arrays, padding.
pub fn stripped_header(index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(b"07070X");
    out.extend_from_slice(format!("{index:08x}").as_bytes());
    out.resize(out.len() + pad4(out.len() as u64) as usize, 0);
    out
}

/// The archive's end.
pub fn trailer() -> Vec<u8> {
    newc_header(&EntryHeader {
        name: "TRAILER!!!",
        ino: 0,
        mode: 0,
        mtime: 0,
        size: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_fields_are_eight_hex_digits_and_the_name_is_padded() {
        let header = newc_header(&EntryHeader {
            name: "./usr/a",
            ino: 2,
            mode: 0o100644,
            mtime: 1_700_000_000,
            size: 5,
        });
        let text = String::from_utf8_lossy(&header);
        assert!(text.starts_with("07070100000002000081a4"));
        assert_eq!(&header[46..54], b"6553f100");
        assert_eq!(&header[54..62], b"00000005");
        // 110 + "./usr/a\0" (8) = 118, padded to 120.
        assert_eq!(header.len(), 120);
        assert_eq!(&header[110..118], b"./usr/a\0");
    }

    #[test]
    fn trailer_is_124_bytes_like_rpms() {
        let trailer = trailer();
        assert_eq!(trailer.len(), 124);
        assert_eq!(&trailer[38..46], b"00000001");
    }

    #[test]
    fn stripped_header_is_sixteen_bytes() {
        assert_eq!(stripped_header(1), b"07070X00000001\0\0");
    }
}
