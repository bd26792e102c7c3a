//! The mksquashfs command line for a liveimg.

use std::ffi::OsString;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Memory mksquashfs may use for its caches; without a cap it takes a quarter of RAM.
const MKSQUASHFS_MEM: &str = "256M";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// xz, as lorax and upstream oVirt Node use: smallest, slowest.
    Xz,
    /// zstd: nearly as small, much faster to write and read.
    Zstd,
    /// lz4: fastest, largest.
    Lz4,
    /// gzip: mksquashfs's default, for old kernels.
    Gzip,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Compression {
    /// The name mksquashfs knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Gzip => "gzip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Bcj {
    /// The image architecture's filter with xz (x86 on x86_64 and i686), none otherwise.
    Auto,
    X86,
    None,
}

/// How to compress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SquashfsOptions {
    pub compression: Compression,
    pub level: Option<u32>,
    pub bcj: Bcj,
    /// The image's architecture (for `Bcj::Auto`), e.g. `x86_64`.
    pub arch: String,
}

impl SquashfsOptions {
    /// The compressor arguments, or an error naming the option that does not fit.
    pub fn compressor_args(&self) -> Result<Vec<OsString>> {
        let mut args: Vec<OsString> = vec!["-comp".into()];
        let name = self.compression.name();
        args.push(name.into());
        let level_range = match self.compression {
            Compression::Zstd => Some(1..=22),
            Compression::Gzip => Some(1..=9),
            Compression::Xz | Compression::Lz4 => None,
        };
        match (self.level, level_range) {
            (Some(level), Some(range)) if range.contains(&level) => {
                args.extend(["-Xcompression-level".into(), level.to_string().into()]);
            }
            (Some(level), Some(range)) => bail!(
                "--level {level} is out of range for {name}: {}..={}",
                range.start(),
                range.end()
            ),
            (Some(_), None) => {
                bail!("--level does not apply to {name} (mksquashfs has no levels for it)")
            }
            (None, _) => {}
        }
        let bcj = match (self.bcj, self.compression) {
            (Bcj::None, _) => None,
            (Bcj::X86, Compression::Xz) => Some("x86"),
            (Bcj::X86, _) => {
                bail!("--bcj x86 needs --compression xz (BCJ filters are an xz feature)")
            }
            (Bcj::Auto, Compression::Xz) => match self.arch.as_str() {
                "x86_64" | "i686" | "i386" => Some("x86"),
                _ => None,
            },
            (Bcj::Auto, _) => None,
        };
        if let Some(filter) = bcj {
            args.extend(["-Xbcj".into(), filter.into()]);
        }
        Ok(args)
    }

    /// Everything after `mksquashfs SOURCE DEST`.
    pub fn args(&self, source_date_epoch: Option<u64>) -> Result<Vec<OsString>> {
        let mut args = self.compressor_args()?;
        for fixed in [
            "-noappend",
            "-all-root",
            "-no-xattrs",
            "-mem",
            MKSQUASHFS_MEM,
        ] {
            args.push(fixed.into());
        }
        if let Some(epoch) = source_date_epoch {
            for flag in ["-mkfs-time", "-all-time"] {
                args.extend([flag.into(), epoch.to_string().into()]);
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(compression: Compression, level: Option<u32>, bcj: Bcj, arch: &str) -> SquashfsOptions {
        SquashfsOptions {
            compression,
            level,
            bcj,
            arch: arch.to_owned(),
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn xz_gets_bcj_x86_on_x86_64_as_lorax_does() {
        let args = strings(
            opts(Compression::Xz, None, Bcj::Auto, "x86_64")
                .compressor_args()
                .unwrap(),
        );
        assert_eq!(args, ["-comp", "xz", "-Xbcj", "x86"]);
        let args = strings(
            opts(Compression::Xz, None, Bcj::Auto, "aarch64")
                .compressor_args()
                .unwrap(),
        );
        assert_eq!(args, ["-comp", "xz"]);
    }

    #[test]
    fn levels_are_checked_against_the_compressor() {
        let args = strings(
            opts(Compression::Zstd, Some(19), Bcj::Auto, "x86_64")
                .compressor_args()
                .unwrap(),
        );
        assert_eq!(args, ["-comp", "zstd", "-Xcompression-level", "19"]);
        let err = opts(Compression::Gzip, Some(12), Bcj::Auto, "x86_64")
            .compressor_args()
            .unwrap_err();
        assert!(
            err.to_string().contains("out of range for gzip: 1..=9"),
            "{err}"
        );
        let err = opts(Compression::Xz, Some(6), Bcj::Auto, "x86_64")
            .compressor_args()
            .unwrap_err();
        assert!(err.to_string().contains("does not apply to xz"), "{err}");
        let err = opts(Compression::Zstd, None, Bcj::X86, "x86_64")
            .compressor_args()
            .unwrap_err();
        assert!(err.to_string().contains("needs --compression xz"), "{err}");
    }

    #[test]
    fn timestamps_are_pinned_only_with_an_epoch() {
        let o = opts(Compression::Lz4, None, Bcj::None, "x86_64");
        assert!(!strings(o.args(None).unwrap()).contains(&"-mkfs-time".to_owned()));
        let args = strings(o.args(Some(1700000000)).unwrap());
        let at = args.iter().position(|a| a == "-all-time").unwrap();
        assert_eq!(args[at + 1], "1700000000");
    }
}
