//! Command-line parsing and dispatch. Work happens in the library modules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::{self, LogFormat};
use crate::{doctor, exit, sys};

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
    Doctor(DoctorArgs),
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
    #[arg(
        long,
        env = "NODEIMG_WORKDIR",
        default_value = "/var/tmp",
        value_name = "DIR"
    )]
    pub workdir: PathBuf,
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
        Command::Doctor(args) => doctor_cmd(args),
    }
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
