//! `nodeimg build`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::image::ImageArgs;
use super::{DEFAULT_WORKDIR, ReportFormat, WORKDIR_ENV};
use crate::install::{BackendChoice, InstallOptions};
use crate::nevra::VersionRelease;
use crate::package::update;
use crate::{exit, liveimg, units};

/// Build the Node image and its update RPM from a kickstart.
///
/// Checks the kickstart (and stops on errors, before anything is installed), flattens
/// it, installs it, packs the root filesystem as the liveimg, inspects it as imgbased
/// would, and writes the update RPM. OUTDIR receives NAME-V-R.ARCH.liveimg.squashfs, the
/// update RPM, NAME.ks (the flattened kickstart), NAME.manifest-rpm,
/// NAME.unsigned-rpms, build.json (inputs, tool versions, stage timings, outputs) and
/// CHECKSUMS.sha256, only when the whole build succeeded; logs/ holds nodeimg's log
/// either way. V-R default to the placeholder's in the image.
///
/// Installers (--backend): `lmc` runs livemedia-creator --no-virt --make-fsimage on the
/// host, or in a mock chroot with --mock as koji does, or in a VM with --virt-iso;
/// `dnf` installs natively with dnf --installroot into a directory, then applies the
/// kickstart's commands and scripts to the tree (any host with dnf; no anaconda);
/// `auto` takes lmc when livemedia-creator is here, else dnf. --from-result skips the
/// install and takes the root filesystem of an earlier one (an fsimage, a disk image
/// or an installed tree), as livemedia-creator's own image reuse does.
#[derive(Debug, Args)]
#[command(
    disable_version_flag = true,
    after_help = "\
Examples:
  nodeimg build kickstarts/ovirt-node-ng-image.ks -o out/
  nodeimg build node.ks --backend lmc --mock centos-stream+epel-9-x86_64 -o out/
  nodeimg build node.ks --from-result fsimage:lmc/root.img -o out/
  SOURCE_DATE_EPOCH=1764028800 nodeimg build node.ks --from-result dir:/var/tmp/root \\
    --compression zstd -o out/ && (cd out && sha256sum -c CHECKSUMS.sha256)"
)]
pub struct BuildArgs {
    /// The kickstart.
    #[arg(value_name = "KS")]
    pub kickstart: PathBuf,

    /// The artifacts directory.
    #[arg(short, long, value_name = "OUTDIR")]
    pub output: PathBuf,

    /// The installer.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,

    /// Run livemedia-creator in a mock chroot of this configuration (a name under
    /// /etc/mock or a .cfg file), as koji does.
    #[arg(long, value_name = "CONFIG", conflicts_with = "from_result")]
    pub mock: Option<String>,

    /// Install in a VM booted from this boot.iso (livemedia-creator's virt mode, as the
    /// upstream Makefile runs it) instead of --no-virt.
    #[arg(long, value_name = "BOOT.ISO", conflicts_with = "from_result")]
    pub virt_iso: Option<PathBuf>,

    /// The VM's memory in MiB (with --virt-iso).
    #[arg(
        long,
        default_value_t = 4096,
        requires = "virt_iso",
        value_name = "MIB"
    )]
    pub ram: u32,

    /// The VM's CPUs (with --virt-iso).
    #[arg(long, default_value_t = 2, requires = "virt_iso", value_name = "N")]
    pub vcpus: u32,

    /// Skip the install and use an earlier installer result: fsimage:PATH,
    /// disk:PATH[:PARTNUM] or dir:PATH.
    #[arg(long, value_name = "SOURCE")]
    pub from_result: Option<liveimg::Source>,

    /// Base of the artifact names.
    #[arg(long, default_value = "ovirt-node-ng-image")]
    pub name: String,

    /// The version of the image and the update RPM (default: the placeholder's).
    #[arg(long, requires = "release", value_name = "V")]
    pub version: Option<String>,

    /// The release (default: the placeholder's).
    #[arg(long, requires = "version", value_name = "R")]
    pub release: Option<String>,

    /// The kickstart syntax version (default: its #version= line, else RHEL9).
    #[arg(long, value_name = "V")]
    pub ks_version: Option<crate::kickstart::version::Version>,

    /// Which kickstart rules must hold besides syntax and completeness.
    #[arg(long, value_enum, default_value_t = crate::kickstart::check::Policy::Node)]
    pub policy: crate::kickstart::check::Policy,

    #[command(flatten)]
    pub image: ImageArgs,

    /// The lowest imgbased version the update RPM requires.
    #[arg(long, default_value = update::DEFAULT_IMGBASED, value_name = "V")]
    pub imgbased: String,

    /// Pin timestamps for reproducible artifacts.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Scratch space (rootfs.img copies, rpmdb copies).
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,

    /// Keep the installer's work directory after the build.
    #[arg(long)]
    pub keep_workdir: bool,

    /// Replace the artifacts of an earlier build in OUTDIR.
    #[arg(long)]
    pub force: bool,

    /// dnf's package cache (dnf backend); builds share it, one at a time.
    #[arg(
        long,
        env = "NODEIMG_DNF_CACHE",
        default_value = "/var/cache/nodeimg/dnf",
        value_name = "DIR"
    )]
    pub dnf_cache: PathBuf,

    /// Let a kickstart repository's --noverifyssl turn off TLS verification (dnf
    /// backend); without this such a kickstart is refused.
    #[arg(long)]
    pub allow_noverifyssl: bool,

    /// Install from this repository (repeat): it replaces the kickstart's `repo` of the
    /// same name, or is added. A local mirror, an air-gapped site, a koji build tag's
    /// repository.
    #[arg(long = "repo", value_name = "NAME=URL")]
    pub repos: Vec<crate::kickstart::rewrite::RepoOverride>,

    /// Drop every `repo` line of the kickstart: install only from --repo (and --url),
    /// as koji's image tasks do.
    #[arg(long)]
    pub replace_repos: bool,

    /// The installation source (the kickstart's `url` line) to use instead.
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub url: Option<String>,

    /// Let %post's dnf install from the --url and --repo repositories too: they are in
    /// the tree's /etc/yum.repos.d while %post runs, and gone from the image.
    #[arg(long)]
    pub post_repos: bool,

    /// Output format of the summary (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

fn parse_url(url: &str) -> Result<String> {
    crate::kickstart::rewrite::check_url(url)?;
    Ok(url.to_owned())
}

pub(super) fn build_cmd(args: BuildArgs) -> Result<ExitCode> {
    // It names the image file and the update RPM: checked before any work starts.
    crate::nevra::check_arch(&args.image.arch).context("--arch")?;
    let options = crate::build::BuildOptions {
        kickstart: args.kickstart,
        outdir: args.output,
        install: InstallOptions {
            backend: args.backend,
            from_result: args.from_result,
            mock: args.mock,
            virt: args.virt_iso.map(|iso| crate::install::lmc::Virt {
                iso,
                ram: args.ram,
                vcpus: args.vcpus,
            }),
            label: args.image.label.clone(),
            arch: args.image.arch.clone(),
            dnf_cache: args.dnf_cache,
            allow_noverifyssl: args.allow_noverifyssl,
        },
        name: args.name,
        version_release: match (&args.version, &args.release) {
            (Some(version), Some(release)) => Some(VersionRelease::new(version, release)?),
            _ => None,
        },
        arch: args.image.arch.clone(),
        ks_version: args.ks_version,
        policy: args.policy,
        squashfs: args.image.squashfs(),
        label: args.image.label.clone(),
        workdir: args.workdir,
        keep_workdir: args.keep_workdir,
        force: args.force,
        source_date_epoch: args.source_date_epoch,
        imgbased: args.imgbased,
        rewrite: crate::kickstart::rewrite::Rewrite {
            repos: args.repos,
            replace_repos: args.replace_repos,
            url: args.url,
            post_repos: args.post_repos,
        },
    };
    let record = crate::build::build(&options)?;
    match args.format {
        ReportFormat::Text => {
            for output in &record.outputs {
                println!(
                    "{}  {}",
                    units::human(output.bytes),
                    options.outdir.join(&output.file).display()
                );
            }
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&record)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}
