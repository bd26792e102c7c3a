//! `nodeimg inspect` and `nodeimg liveimg pack`, and the liveimg options `build` shares.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{DEFAULT_WORKDIR, ReportFormat, WORKDIR_ENV};
use crate::{exit, image, liveimg, sys, units};

/// Report what is inside a Node image, without root and without mounting.
///
/// Reads a squashfs liveimg, an ext4 filesystem image, a disk image, or the image
/// inside an update RPM (read in place, without unpacking the package): the layout
/// (exactly LiveOS/rootfs.img, ext4, label LiveOS), the filesystem's size and use,
/// /etc/os-release, the imgbased NVR, the kernels, the installed packages from the
/// rpmdb (the manifest-rpm and the unsigned ones), and the version-release of
/// ovirt-node-ng-image-update-placeholder, which the update RPM takes. Lists what
/// imgbased would refuse.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg inspect ovirt-node-ng-image.liveimg.squashfs
  nodeimg inspect --format json node.liveimg.squashfs | jq -r '.packages[].name'
  nodeimg inspect --manifest node.liveimg.squashfs > node.manifest-rpm

Exit status: 0 when imgbased would accept the image, 3 when it would refuse it (the
reasons are listed), 1 when the image cannot be read.")]
pub struct InspectArgs {
    /// The image: *.liveimg.squashfs, an ext4 image, a raw disk image, or an update RPM.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Output format of the report (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Print only the manifest-rpm: the installed packages, one NEVRA a line, sorted.
    #[arg(long, conflicts_with = "format")]
    pub manifest: bool,

    /// Print a bill of materials instead: SPDX 2.3 or CycloneDX 1.5 JSON, the image
    /// (with its SHA-256) holding one package per installed RPM. SOURCE_DATE_EPOCH
    /// pins its creation time.
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["format", "manifest"])]
    pub sbom: Option<crate::sbom::Format>,

    /// Scratch space for the copy of the rpmdb that sqlite reads.
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,
}

/// Make and examine the Node image (squashfs liveimg).
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Example:
  nodeimg liveimg pack --from disk:lmc/disk.img -o ovirt-node-ng-image.liveimg.squashfs")]
pub enum LiveimgCommand {
    Pack(PackArgs),
}

/// Wrap a root filesystem as a squashfs liveimg holding exactly LiveOS/rootfs.img.
///
/// The root filesystem is an ext4 image (fsimage:PATH, as livemedia-creator
/// --make-fsimage writes it), a partitioned disk image (disk:PATH, or disk:PATH:N
/// for partition N; the ext4 partition is found when there is only one), or an
/// installed tree (dir:PATH, made into ext4 with mkfs.ext4 -d). Images are copied
/// with e2image, used blocks only; the input is never modified. The output appears
/// only when complete and checked. With SOURCE_DATE_EPOCH set, the same input gives
/// a byte-identical image.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg liveimg pack --from fsimage:result/root.img -o ovirt-node-ng-image.liveimg.squashfs
  nodeimg liveimg pack --from disk:result/disk.img:2 --compression zstd -o node.liveimg.squashfs
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \\
    nodeimg liveimg pack --from dir:/var/tmp/node-root --size 5G -o node.liveimg.squashfs")]
pub struct PackArgs {
    /// The root filesystem: fsimage:PATH, disk:PATH[:PARTNUM] or dir:PATH.
    #[arg(long, value_name = "SOURCE")]
    pub from: liveimg::Source,

    /// The squashfs to write (name it *.liveimg.squashfs for koji).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Size of rootfs.img, e.g. 5G or 5120M: the filesystem made from dir:
    /// (default 5G, as upstream's part /), or the size to resize an image's copy to.
    #[arg(long, value_parser = units::parse_size, value_name = "SIZE")]
    pub size: Option<u64>,

    #[command(flatten)]
    pub image: ImageArgs,

    /// Pin timestamps and identifiers to this time (seconds since 1970) for a
    /// reproducible image.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Scratch space for the copy of rootfs.img (sparse: used blocks only).
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,

    /// Replace the output if it exists.
    #[arg(long)]
    pub force: bool,

    /// Format of the summary on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// How the liveimg is made; shared by `liveimg pack` and `build`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Label of rootfs.img; dracut and anaconda look for LiveOS.
    #[arg(long, default_value = liveimg::DEFAULT_LABEL)]
    pub label: String,

    /// squashfs compressor.
    #[arg(long, value_enum, default_value_t = liveimg::Compression::Xz)]
    pub compression: liveimg::Compression,

    /// Compression level (zstd 1-22, gzip 1-9; mksquashfs has none for xz and lz4).
    #[arg(long)]
    pub level: Option<u32>,

    /// xz branch filter for executable code; auto uses x86 for x86_64 images, as lorax does.
    #[arg(long, value_enum, default_value_t = liveimg::Bcj::Auto)]
    pub bcj: liveimg::Bcj,

    /// Architecture of the image (chooses the BCJ filter; names the build's image).
    #[arg(long, default_value = std::env::consts::ARCH)]
    pub arch: String,
}

impl ImageArgs {
    pub(super) fn squashfs(&self) -> liveimg::SquashfsOptions {
        liveimg::SquashfsOptions {
            compression: self.compression,
            level: self.level,
            bcj: self.bcj,
            arch: self.arch.clone(),
        }
    }
}

pub(super) fn inspect_cmd(args: InspectArgs) -> Result<ExitCode> {
    let scratch = sys::inspect_scratch(&args.workdir)?;
    // An update RPM: the image inside it, read in place.
    let (report, embedded) =
        image::inspect_file(&args.image, scratch.path(), image::Reading::default())?;
    if let Some(format) = args.sbom {
        let name = args
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sha256 = match &embedded {
            Some(e) => sys::sha256_range(&args.image, e.offset, e.len)?,
            None => sys::sha256_file(&args.image)?,
        };
        let version = report.placeholder.as_deref().or(report.nvr.as_deref());
        let subject = crate::sbom::Subject {
            name: &name,
            sha256: &sha256,
            version,
            created: sys::source_date_epoch().unwrap_or_else(sys::now),
        };
        let document = crate::sbom::document(format, &subject, &report);
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else if args.manifest {
        for line in report.manifest() {
            println!("{line}");
        }
    } else {
        match args.format {
            ReportFormat::Text => print!("{}", image::render_text(&report)),
            ReportFormat::Json => {
                let mut value = serde_json::to_value(&report)?;
                value["manifest"] = serde_json::json!(report.manifest());
                value["unsigned"] = serde_json::json!(report.unsigned());
                println!("{}", serde_json::to_string_pretty(&value)?);
            }
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::from(exit::SUCCESS)
    } else {
        ExitCode::from(exit::CHECKS_FAILED)
    })
}

pub(super) fn pack_cmd(args: PackArgs) -> Result<ExitCode> {
    let options = liveimg::PackOptions {
        label: args.image.label.clone(),
        size: args.size,
        squashfs: args.image.squashfs(),
        source_date_epoch: args.source_date_epoch,
        workdir: args.workdir,
        overwrite: args.force,
    };
    let report = liveimg::pack(&args.from, &args.output, &options)?;
    match args.format {
        ReportFormat::Text => {
            let part = report
                .partition
                .as_ref()
                .map(|p| format!(" partition {}", p.number))
                .unwrap_or_default();
            println!(
                "{}: {} ({}) from {}{part}: rootfs.img {} with {} used, label {}",
                report.output.display(),
                units::human(report.output_bytes),
                report.squashfs.compression,
                report.source,
                units::human(report.filesystem_bytes),
                units::human(report.filesystem_used_bytes),
                report.label,
            );
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}
