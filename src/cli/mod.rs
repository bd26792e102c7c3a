//! The command line: clap types and dispatch only, one file per command family
//! (`build`, `kickstart`, `image`, `rpm`, `koji`, `doctor`); the work happens in the
//! library modules, which take plain values and types that implement `FromStr`.

mod build;
mod diff;
mod doctor;
mod image;
mod kickstart;
mod koji;
mod output;
mod rpm;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::logging::{self, LogFormat};
use crate::{exit, sys};
pub use output::ReportFormat;

/// Where scratch files go unless `--workdir` or `NODEIMG_WORKDIR` say otherwise: on
/// disk (not tmpfs), as livemedia-creator's `--tmp` defaults.
pub(crate) const DEFAULT_WORKDIR: &str = "/var/tmp";
pub(crate) const WORKDIR_ENV: &str = "NODEIMG_WORKDIR";

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
    Build(build::BuildArgs),
    Doctor(doctor::DoctorArgs),
    #[command(subcommand)]
    Liveimg(image::LiveimgCommand),
    Check(kickstart::CheckArgs),
    Flatten(kickstart::FlattenArgs),
    Inspect(image::InspectArgs),
    Diff(diff::DiffArgs),
    #[command(subcommand)]
    Koji(koji::KojiCommand),
    /// Internal: write the man pages and shell completions (for packaging).
    #[command(name = "internal-generate", hide = true)]
    InternalGenerate(GenerateArgs),
    /// Internal: run a program in a private mount namespace against an installed tree.
    #[command(name = "internal-sandbox", hide = true)]
    InternalSandbox(crate::install::sandbox::SandboxArgs),
    #[command(subcommand)]
    Rpm(rpm::RpmCommand),
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
        Command::Build(args) => build::build_cmd(args),
        Command::Doctor(args) => doctor::doctor_cmd(args),
        Command::Liveimg(image::LiveimgCommand::Pack(args)) => image::pack_cmd(args),
        Command::Check(args) => kickstart::check_cmd(args),
        Command::Flatten(args) => kickstart::flatten_cmd(args),
        Command::Inspect(args) => image::inspect_cmd(args),
        Command::Diff(args) => diff::diff_cmd(args),
        Command::Rpm(rpm::RpmCommand::Update(args)) => rpm::rpm_update_cmd(args),
        Command::Rpm(rpm::RpmCommand::Placeholder(args)) => rpm::rpm_placeholder_cmd(args),
        Command::Rpm(rpm::RpmCommand::Spec(args)) => rpm::rpm_spec_cmd(args),
        Command::Koji(command) => koji::run(command),
        Command::InternalGenerate(args) => generate_cmd(args),
        Command::InternalSandbox(args) => match crate::install::sandbox::enter(args)? {},
    }
}

#[derive(Debug, clap::Args)]
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
