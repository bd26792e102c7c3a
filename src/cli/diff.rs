//! `nodeimg diff`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{DEFAULT_WORKDIR, WORKDIR_ENV};
use crate::{diff, exit, sys};

/// How a diff is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Lines for a terminal.
    Text,
    /// A release-notes section.
    Markdown,
    /// The whole diff, for scripts.
    Json,
}

/// Say what changed between two Node images: packages, kernels, os-release, NVR.
///
/// OLD and NEW are images (squashfs liveimg, ext4 image or disk image), update RPMs
/// (the image inside is read in place, without unpacking the package) or build OUTDIRs
/// (their build.json names the image). Both are read without root and without
/// mounting. Packages are matched by name and arch and ordered as rpm orders versions
/// (epoch, then rpmvercmp of version and release, `~` and `^` included): added,
/// removed, upgraded, downgraded, and rebuilt at the same version (another SIGMD5),
/// with the signing key. For each upgrade, the %changelog entries newer than the old
/// package's newest entry, and the CVEs they name. With --files, also the files added,
/// removed and changed.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg diff old/ovirt-node-ng-image-4.5.5-1.el9.x86_64.liveimg.squashfs out/
  nodeimg diff old-out/ new-out/ --format markdown >> RELEASE-NOTES.md
  nodeimg diff a.squashfs b.squashfs --format json | jq '.packages.upgraded[].name'
  nodeimg diff ovirt-node-ng-image-update-4.5.5-1.el9.noarch.rpm out/ --files

Exit status: 0 whether or not the images differ (as rpmdiff's documented mode), 1 when
one cannot be read.")]
pub struct DiffArgs {
    /// The older image, update RPM or OUTDIR.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The newer image, update RPM or OUTDIR.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,

    /// Also files added, removed and changed: size, mode, owner and digest from the
    /// packages' file lists, and size, mode and owner of the files no package owns.
    #[arg(long)]
    pub files: bool,

    /// Scratch space for the copies of the rpmdbs that sqlite reads.
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,
}

pub(super) fn diff_cmd(args: DiffArgs) -> Result<ExitCode> {
    let scratch = sys::inspect_scratch(&args.workdir)?;
    let reading = crate::image::Reading { files: args.files };
    let old = diff::snapshot(&args.old, scratch.path(), reading)?;
    let new = diff::snapshot(&args.new, scratch.path(), reading)?;
    let d = diff::diff(&old, &new, args.files);
    match args.format {
        DiffFormat::Text => print!("{}", diff::render_text(&d)),
        DiffFormat::Markdown => print!("{}", diff::render_markdown(&d)),
        DiffFormat::Json => println!("{}", serde_json::to_string_pretty(&d)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}
