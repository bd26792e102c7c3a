//! `nodeimg rpm update | placeholder | spec`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{DEFAULT_WORKDIR, ReportFormat, WORKDIR_ENV};
use crate::nevra::VersionRelease;
use crate::package::{update, writer};
use crate::{exit, sys, units};

/// Write the update RPM and its placeholder, or the spec that builds the update RPM.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Example:
  nodeimg rpm update --image ovirt-node-ng-image.liveimg.squashfs -o out/
  nodeimg rpm placeholder --version 4.5.6 --release 1.el9 -o out/
  nodeimg rpm spec --image ovirt-node-ng-image.liveimg.squashfs -o out/")]
pub enum RpmCommand {
    Update(RpmUpdateArgs),
    Placeholder(RpmPlaceholderArgs),
    Spec(RpmSpecArgs),
}

/// Write ovirt-node-ng-image-update-V-R.ARCH.rpm, the package that upgrades a Node.
///
/// The package carries the image at
/// /usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-image-update-V-R.squashfs.img,
/// obsoletes and provides ovirt-node-ng-image-update-placeholder and
/// ovirt-node-ng-image, requires imgbased, refuses to upgrade over local storage
/// domains (%pre) and hands the image to `imgbase update` (%post), as the upstream spec
/// does. V-R default to the placeholder's, read from the image. The image is streamed
/// once into an uncompressed payload; memory use does not grow with its size. With
/// SOURCE_DATE_EPOCH set, the same image gives a byte-identical package.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
#[command(after_help = "\
Example:
  nodeimg rpm update --image ovirt-node-ng-image.liveimg.squashfs -o out/
  SOURCE_DATE_EPOCH=1764028800 nodeimg rpm update --image node.liveimg.squashfs \\
    --version 4.5.6 --release 1.el9 --product-img product.img -o out/")]
pub struct RpmUpdateArgs {
    #[command(flatten)]
    pub update: UpdateArgs,

    #[command(flatten)]
    pub written: WrittenArgs,
}

/// Where a package goes and how it is reported; shared by `rpm update` and
/// `rpm placeholder`.
#[derive(Debug, Args)]
pub struct WrittenArgs {
    /// Directory to write the package to.
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub output: PathBuf,

    /// Replace a package of the same name already in DIR.
    #[arg(long)]
    pub force: bool,

    /// The BUILDHOST to record (default: this host's name); with SOURCE_DATE_EPOCH,
    /// makes packages built on different hosts identical.
    #[arg(long, value_name = "NAME")]
    pub build_host: Option<String>,

    /// Output format of the summary (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// What the update package is made of; shared by `rpm update` and `rpm spec`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The Node image: a squashfs liveimg.
    #[arg(long, value_name = "IMAGE")]
    pub image: PathBuf,

    /// The package version (default: the placeholder's in the image).
    #[arg(long, requires = "release", value_name = "V")]
    pub version: Option<String>,

    /// The package release (default: the placeholder's in the image).
    #[arg(long, requires = "version", value_name = "R")]
    pub release: Option<String>,

    /// An installer product.img to ship beside the image.
    #[arg(long, value_name = "FILE")]
    pub product_img: Option<PathBuf>,

    /// The lowest imgbased version the package requires.
    #[arg(long, default_value = update::DEFAULT_IMGBASED, value_name = "V")]
    pub imgbased: String,

    /// The package's architecture: the image's (default: the arch its arch-specific
    /// packages share; noarch when it has none). A Node of another arch cannot
    /// install it.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,

    /// Scratch space for the copy of the image's rpmdb that is read.
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,
}

impl UpdateArgs {
    /// Check the image and settle the version-release.
    fn resolve(&self) -> Result<update::Update> {
        let scratch = sys::inspect_scratch(&self.workdir)?;
        let given = match (&self.version, &self.release) {
            (Some(version), Some(release)) => Some(VersionRelease::new(version, release)?),
            _ => None,
        };
        let inspection = crate::image::inspect(&self.image, scratch.path())?;
        let vr = update::version_release(&self.image, &inspection, given)?;
        if let Some(product_img) = &self.product_img {
            anyhow::ensure!(
                product_img.is_file(),
                "--product-img {}: no such file",
                product_img.display()
            );
        }
        let arch = match &self.arch {
            Some(arch) => arch.clone(),
            None => update::image_arch(&inspection),
        };
        Ok(update::Update {
            version: vr.version,
            release: vr.release,
            arch,
            image: self.image.clone(),
            product_img: self.product_img.clone(),
            imgbased: self.imgbased.clone(),
        })
    }
}

/// Write the empty ovirt-node-ng-image-update-placeholder package.
///
/// Every Node image has it installed (ovirt-release-host-node ships it); the update
/// package obsoletes it. For tests and for bootstrapping a test Node.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
#[command(after_help = "\
Example:
  nodeimg rpm placeholder --version 4.5.6 --release 1.el9 -o repo/")]
pub struct RpmPlaceholderArgs {
    /// The package version: the V of the update packages that are to replace it.
    #[arg(long, value_name = "V")]
    pub version: String,

    /// The package release, dist tag included (e.g. 1.el9).
    #[arg(long, value_name = "R")]
    pub release: String,

    #[command(flatten)]
    pub written: WrittenArgs,
}

/// Render the spec that builds the same update package with rpmbuild.
///
/// Writes DIR/ovirt-node-ng-image-update.spec; rpmbuild finds the image (and
/// product.img) by file name in its _sourcedir.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
#[command(after_help = "\
Example:
  nodeimg rpm spec --image build/ovirt-node-ng-image.liveimg.squashfs -o build/
  rpmbuild -bb --define \"_sourcedir $PWD/build\" build/ovirt-node-ng-image-update.spec")]
pub struct RpmSpecArgs {
    #[command(flatten)]
    pub update: UpdateArgs,

    /// Directory to write the spec to.
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub output: PathBuf,

    /// Replace a spec already in DIR.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn rpm_update_cmd(args: RpmUpdateArgs) -> Result<ExitCode> {
    let package = args.update.resolve()?.package()?;
    write_package(&package, &args.written)
}

pub(super) fn rpm_placeholder_cmd(args: RpmPlaceholderArgs) -> Result<ExitCode> {
    let package = update::placeholder(&args.version, &args.release)?;
    write_package(&package, &args.written)
}

/// Write `package` where `args` say, and report it.
fn write_package(package: &writer::PackageSpec, args: &WrittenArgs) -> Result<ExitCode> {
    let info = writer::BuildInfo::from_env(args.build_host.as_deref())?;
    create_output_dir(&args.output)?;
    let written = writer::write(package, &info, &args.output, args.force)?;
    print_written(&written, args.format)
}

/// OUTDIR is made when missing, as `nodeimg build -o` makes it; once the inputs are
/// known to be good, so a refused run leaves nothing new behind.
fn create_output_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("creating the output directory {}: {e}", dir.display()))
}

fn print_written(written: &writer::Written, format: ReportFormat) -> Result<ExitCode> {
    match format {
        ReportFormat::Text => println!(
            "{}: {}, sigmd5 {}",
            written.path.display(),
            units::human(written.size),
            written.sigmd5
        ),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(written)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

pub(super) fn rpm_spec_cmd(args: RpmSpecArgs) -> Result<ExitCode> {
    let spec = args.update.resolve()?.spec()?;
    create_output_dir(&args.output)?;
    let target = args.output.join(format!("{}.spec", update::UPDATE_NAME));
    let partial = crate::artifacts::PartialFile::new(&target, args.force)?;
    std::fs::write(partial.path(), spec)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.path().display()))?;
    let path = partial.commit()?;
    println!("{}", path.display());
    Ok(ExitCode::from(exit::SUCCESS))
}
