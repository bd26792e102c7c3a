//! `nodeimg doctor`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{DEFAULT_WORKDIR, ReportFormat, WORKDIR_ENV};
use crate::{doctor, exit};

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

pub(super) fn doctor_cmd(args: DoctorArgs) -> Result<ExitCode> {
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
