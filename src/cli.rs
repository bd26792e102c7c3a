//! Command-line parsing and dispatch. Work happens in the library modules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::{self, LogFormat};
use crate::package::{update, writer};
use crate::{doctor, exit, image, liveimg, sys, units};

/// Where scratch files go unless `--workdir` or `NODEIMG_WORKDIR` say otherwise: on
/// disk (not tmpfs), as livemedia-creator's `--tmp` defaults.
const DEFAULT_WORKDIR: &str = "/var/tmp";
const WORKDIR_ENV: &str = "NODEIMG_WORKDIR";

const ABOUT: &str = "Build oVirt Node images and their update RPMs from a kickstart";

const LONG_ABOUT: &str = "\
nodeimg turns one kickstart into the two deliverables of an oVirt Node release: the
Node image (a squashfs liveimg holding LiveOS/rootfs.img) and the
ovirt-node-ng-image-update RPM that lets `yum update` upgrade a deployed Node.";

#[derive(Debug, Parser)]
#[command(
    name = "nodeimg",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = exit::HELP,
    propagate_version = true,
)]
pub struct Cli {
    /// More output: -v shows debug messages and every line external tools print, -vv traces.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less output: -q shows warnings and errors only, -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,

    /// Format of the log on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, value_name = "FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Build(BuildArgs),
    Doctor(DoctorArgs),
    #[command(subcommand)]
    Liveimg(LiveimgCommand),
    Check(CheckArgs),
    Flatten(FlattenArgs),
    Inspect(InspectArgs),
    #[command(subcommand)]
    Koji(crate::koji::command::KojiCommand),
    /// Internal: write the man pages and shell completions (for packaging).
    #[command(name = "internal-generate", hide = true)]
    InternalGenerate(GenerateArgs),
    /// Internal: run a program in a private mount namespace against an installed tree.
    #[command(name = "internal-sandbox", hide = true)]
    InternalSandbox(crate::install::sandbox::SandboxArgs),
    #[command(subcommand)]
    Rpm(RpmCommand),
}

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
    #[arg(long, value_enum, default_value_t = crate::build::Backend::Auto)]
    pub backend: crate::build::Backend,

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

/// Say whether a kickstart will install unattended and meets the Node's rules.
///
/// Reads the kickstart with its %include and %ksappend files and judges it as
/// pykickstart's ksvalidator does under the chosen syntax version (unknown, removed and
/// deprecated commands, options, each command's rules), then what pykickstart does not
/// see: lines a '#' cuts short, trailing backslashes, plaintext passwords, a %end
/// inside a here-document; which anaconda spokes would stay incomplete (which stops a
/// livemedia-creator build); livemedia-creator's rules for a filesystem image; and with
/// --policy node, the oVirt Node image's rules. Every finding names its file and line.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg check kickstarts/ovirt-node-ng-image.ks --policy node
  nodeimg check --ks-version F42 --format json spin.ks | jq '.findings[] | select(.severity==\"error\")'

Exit status: 0 when there are no errors (and, with --strict, no warnings), 3 when
there are (they are listed), 1 when the kickstart cannot be read at all.")]
pub struct CheckArgs {
    /// The kickstart (several may be given; with --format json they come as an array).
    #[arg(value_name = "KS", required = true)]
    pub kickstarts: Vec<PathBuf>,

    /// Output format of the findings (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Which rules beyond syntax and completeness: generic, or node (the Node image's).
    #[arg(long, value_enum, default_value_t = crate::kickstart::check::Policy::Generic)]
    pub policy: crate::kickstart::check::Policy,

    /// The livemedia-creator build whose rules apply: no-virt (--no-virt
    /// --make-fsimage, as nodeimg runs it), virt, iso, or off (not an lmc build).
    #[arg(long, value_enum, default_value_t = crate::kickstart::check::LmcMode::NoVirt)]
    pub lmc: crate::kickstart::check::LmcMode,

    /// The syntax version: any pykickstart knows, RHEL3 … RHEL11, FC3 … F46, DEVEL.
    /// Default: the file's #version= line, else RHEL9.
    #[arg(long, value_name = "V")]
    pub ks_version: Option<crate::kickstart::version::Version>,

    /// Fail on warnings too (what ksvalidator does).
    #[arg(long)]
    pub strict: bool,
}

/// Write a kickstart with its %include and %ksappend files spliced in place.
///
/// Keeps every line, comment and blank line in order (pykickstart's ksflatten sorts
/// commands, drops comments and adds lines); each spliced region sits between comments
/// naming its file. Includes that the install writes itself (from %pre) stay as they
/// are, marked. A missing include or a cycle is an error.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg flatten kickstarts/ovirt-node-ng-image.ks -o build/node.ks
  nodeimg flatten spin.ks | less")]
pub struct FlattenArgs {
    /// The kickstart.
    #[arg(value_name = "KS")]
    pub kickstart: PathBuf,

    /// Where to write (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Report what is inside a Node image, without root and without mounting.
///
/// Reads a squashfs liveimg, an ext4 filesystem image or a disk image: the layout
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
    /// The image: *.liveimg.squashfs, an ext4 image, or a raw disk image.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Output format of the report (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Print only the manifest-rpm: the installed packages, one NEVRA a line, sorted.
    #[arg(long, conflicts_with = "format")]
    pub manifest: bool,

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

/// Report which tools nodeimg can use on this host and whether a build can run here.
///
/// For every external tool: whether it is on PATH, its version, the feature it
/// enables and what is lost without it. For the host: root, a real loop-device and
/// mount probe (a small ext4 image attached, mounted and written), and free space in
/// the work directory.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg doctor
  nodeimg doctor --workdir /srv/build --format json | jq .problems

Exit status: 0 when a default build can run here, 3 when something it needs is
missing (listed under the report), 1 when the doctor itself failed.")]
pub struct DoctorArgs {
    /// Output format of the report (on stdout).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Where builds will put their temporary files; its free space is checked.
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,
}

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

/// Write ovirt-node-ng-image-update-V-R.noarch.rpm, the package that upgrades a Node.
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

    /// Scratch space for the copy of the image's rpmdb that is read.
    #[arg(long, env = WORKDIR_ENV, default_value = DEFAULT_WORKDIR, value_name = "DIR")]
    pub workdir: PathBuf,
}

impl UpdateArgs {
    /// Check the image and settle the version-release.
    fn resolve(&self) -> Result<update::Update> {
        let scratch = sys::inspect_scratch(&self.workdir)?;
        let given = self.version.as_deref().zip(self.release.as_deref());
        let (version, release) = update::version_release(&self.image, given, scratch.path())?;
        if let Some(product_img) = &self.product_img {
            anyhow::ensure!(
                product_img.is_file(),
                "--product-img {}: no such file",
                product_img.display()
            );
        }
        Ok(update::Update {
            version,
            release,
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
    fn squashfs(&self) -> liveimg::SquashfsOptions {
        liveimg::SquashfsOptions {
            compression: self.compression,
            level: self.level,
            bcj: self.bcj,
            arch: self.arch.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// Parse, set up logging and signals, run, and turn the outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = cli.verbose.min(3) as i8 - cli.quiet.min(3) as i8;
    logging::init(verbosity, cli.log_format);
    if let Err(err) = sys::cancel::install_handlers() {
        tracing::warn!(
            "cannot handle SIGINT/SIGTERM ({err}); an interrupted build may leave mounts behind"
        );
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Build(args) => build_cmd(args),
        Command::Doctor(args) => doctor_cmd(args),
        Command::Liveimg(LiveimgCommand::Pack(args)) => pack_cmd(args),
        Command::Check(args) => check_cmd(args),
        Command::Flatten(args) => flatten_cmd(args),
        Command::Inspect(args) => inspect_cmd(args),
        Command::Rpm(RpmCommand::Update(args)) => rpm_update_cmd(args),
        Command::Rpm(RpmCommand::Placeholder(args)) => rpm_placeholder_cmd(args),
        Command::Rpm(RpmCommand::Spec(args)) => rpm_spec_cmd(args),
        Command::Koji(command) => crate::koji::command::run(command),
        Command::InternalGenerate(args) => generate_cmd(args),
        Command::InternalSandbox(args) => match crate::install::sandbox::enter(args)? {},
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory for the man pages (nodeimg.1, nodeimg-build.1, …).
    #[arg(long, value_name = "DIR")]
    pub man: PathBuf,
    /// Directory for the completions of bash, zsh and fish.
    #[arg(long, value_name = "DIR")]
    pub completions: PathBuf,
}

/// Man pages for nodeimg and each visible subcommand; completions for three shells.
fn generate_cmd(args: GenerateArgs) -> Result<ExitCode> {
    use anyhow::Context;
    use clap::CommandFactory;
    std::fs::create_dir_all(&args.man).context("creating the man page directory")?;
    std::fs::create_dir_all(&args.completions).context("creating the completions directory")?;
    let mut cmd = Cli::command();
    cmd.build();
    fn pages(cmd: &clap::Command, prefix: &str, dir: &std::path::Path) -> Result<()> {
        let name = if prefix.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        let page = clap_mangen::Man::new(cmd.clone().name(name.clone()));
        let mut out = Vec::new();
        page.render(&mut out)?;
        std::fs::write(dir.join(format!("{name}.1")), out)?;
        for sub in cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        {
            pages(sub, &name, dir)?;
        }
        Ok(())
    }
    pages(&cmd, "", &args.man)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "nodeimg", &args.completions)?;
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

fn parse_url(url: &str) -> Result<String> {
    crate::kickstart::rewrite::check_url(url)?;
    Ok(url.to_owned())
}

fn build_cmd(args: BuildArgs) -> Result<ExitCode> {
    let options = crate::build::BuildOptions {
        kickstart: args.kickstart,
        outdir: args.output,
        backend: args.backend,
        from_result: args.from_result,
        mock: args.mock,
        virt: args.virt_iso.map(|iso| crate::install::lmc::Virt {
            iso,
            ram: args.ram,
            vcpus: args.vcpus,
        }),
        name: args.name,
        version: args.version,
        release: args.release,
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
        dnf_cache: args.dnf_cache,
        allow_noverifyssl: args.allow_noverifyssl,
        rewrite: crate::kickstart::rewrite::Rewrite {
            repos: args.repos,
            replace_repos: args.replace_repos,
            url: args.url,
            post_repos: args.post_repos,
        },
    };
    crate::package::writer::validate_name(&options.name)?;
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

fn check_cmd(args: CheckArgs) -> Result<ExitCode> {
    use crate::kickstart::{Rule, check};
    let mut reports = Vec::with_capacity(args.kickstarts.len());
    for kickstart in &args.kickstarts {
        anyhow::ensure!(
            kickstart.is_file(),
            "{}: no such kickstart file",
            kickstart.display()
        );
        let report = check::check(kickstart, args.ks_version, args.policy, args.lmc);
        if let Some(unreadable) = report
            .findings
            .iter()
            // The top file itself (an include that cannot be read is named at its line).
            .find(|f| f.rule == Rule::Unreadable && f.origin.as_ref().is_some_and(|o| o.line == 0))
        {
            anyhow::bail!("{}", unreadable.message);
        }
        reports.push(report);
    }
    match args.format {
        ReportFormat::Text => {
            let mut out = std::io::stdout().lock();
            for report in &reports {
                std::io::Write::write_all(&mut out, check::render_text(report).as_bytes())?;
            }
        }
        ReportFormat::Json if reports.len() == 1 => {
            println!("{}", serde_json::to_string_pretty(&reports[0])?)
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    Ok(if reports.iter().any(|r| r.failed(args.strict)) {
        ExitCode::from(exit::CHECKS_FAILED)
    } else {
        ExitCode::from(exit::SUCCESS)
    })
}

fn flatten_cmd(args: FlattenArgs) -> Result<ExitCode> {
    let text = crate::kickstart::flatten::flatten(&args.kickstart).map_err(|findings| {
        anyhow::anyhow!(
            "cannot flatten {}:\n  {}",
            args.kickstart.display(),
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })?;
    match &args.output {
        None => print!("{text}"),
        Some(target) => {
            let partial = crate::artifacts::PartialFile::new(target, args.force)?;
            std::fs::write(partial.path(), &text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.path().display()))?;
            partial.commit()?;
        }
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

fn rpm_update_cmd(args: RpmUpdateArgs) -> Result<ExitCode> {
    let package = args.update.resolve()?.package()?;
    let info = writer::BuildInfo::from_env(args.build_host.as_deref())?;
    create_output_dir(&args.output)?;
    let written = writer::write(&package, &info, &args.output, args.force)?;
    print_written(&written, args.format)
}

fn rpm_placeholder_cmd(args: RpmPlaceholderArgs) -> Result<ExitCode> {
    let package = update::placeholder(&args.version, &args.release)?;
    let info = writer::BuildInfo::from_env(args.build_host.as_deref())?;
    create_output_dir(&args.output)?;
    let written = writer::write(&package, &info, &args.output, args.force)?;
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

fn rpm_spec_cmd(args: RpmSpecArgs) -> Result<ExitCode> {
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

fn inspect_cmd(args: InspectArgs) -> Result<ExitCode> {
    let scratch = sys::inspect_scratch(&args.workdir)?;
    let report = image::inspect(&args.image, scratch.path())?;
    if args.manifest {
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

fn pack_cmd(args: PackArgs) -> Result<ExitCode> {
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

fn doctor_cmd(args: DoctorArgs) -> Result<ExitCode> {
    let report = doctor::examine(&args.workdir)?;
    match args.format {
        ReportFormat::Text => print!("{}", doctor::render_text(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.build_ready() {
        ExitCode::from(exit::SUCCESS)
    } else {
        ExitCode::from(exit::CHECKS_FAILED)
    })
}
