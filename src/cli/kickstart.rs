//! `nodeimg check` and `nodeimg flatten`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::ReportFormat;
use crate::exit;

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

pub(super) fn check_cmd(args: CheckArgs) -> Result<ExitCode> {
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

pub(super) fn flatten_cmd(args: FlattenArgs) -> Result<ExitCode> {
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
