//! The kickstart stages: check it (stop on errors, before anything is installed),
//! flatten it into the staging directory, and, with `--repo`/`--url`, rewrite its
//! sources and check the result again: the installer reads what is kept and hashed.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use super::{Ctx, Summary};
use crate::install::{FlatKickstart, RootFs};
use crate::kickstart::check::{self, LmcMode, Policy, Report};
use crate::kickstart::{Severity, flatten as flat};

impl Summary for Report {
    fn summary(&self) -> String {
        format!(
            "{} syntax, {} warning(s)",
            self.version.version, self.warnings
        )
    }
}

/// The flattened kickstart, staged as NAME.ks.
pub struct Flattened {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

impl Summary for Flattened {
    fn summary(&self) -> String {
        self.name.clone()
    }
}

impl Summary for FlatKickstart {
    fn summary(&self) -> String {
        let repos: Vec<&str> = self.model.repos.iter().map(|r| r.name.as_str()).collect();
        format!(
            "installing from {}",
            if repos.is_empty() {
                "the url only".to_owned()
            } else {
                repos.join(", ")
            }
        )
    }
}

impl Summary for RootFs {
    fn summary(&self) -> String {
        self.summary.clone()
    }
}

/// Check the kickstart under the rules of the installer that will read it.
pub fn check(ctx: &Ctx, lmc: LmcMode) -> Result<Report> {
    let o = ctx.options;
    let report = check::check(&o.kickstart, o.ks_version, o.policy, lmc);
    for finding in report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
    {
        match finding.severity {
            Severity::Error => tracing::error!("{finding}"),
            _ => tracing::warn!("{finding}"),
        }
    }
    if report.errors > 0 {
        bail!(
            "{}: {} error(s) in the kickstart (listed above; `{}` shows them again); nothing was installed",
            o.kickstart.display(),
            report.errors,
            check_command(ctx, lmc)
        );
    }
    Ok(report)
}

/// The `nodeimg check` that applies the rules this build applied.
fn check_command(ctx: &Ctx, lmc: LmcMode) -> String {
    use clap::ValueEnum;
    let o = ctx.options;
    let name = |value: Option<clap::builder::PossibleValue>| {
        value.map(|v| v.get_name().to_owned()).unwrap_or_default()
    };
    let mut args: Vec<std::ffi::OsString> = vec!["check".into()];
    if o.policy != Policy::Generic {
        args.extend(["--policy".into(), name(o.policy.to_possible_value()).into()]);
    }
    if lmc != LmcMode::NoVirt {
        args.extend(["--lmc".into(), name(lmc.to_possible_value()).into()]);
    }
    if let Some(version) = o.ks_version {
        args.extend(["--ks-version".into(), version.to_string().into()]);
    }
    args.push(o.kickstart.clone().into_os_string());
    crate::sys::cmd::display_cmdline("nodeimg".as_ref(), &args)
}

/// Splice the includes into one kickstart, staged as NAME.ks.
pub fn flatten(ctx: &Ctx) -> Result<Flattened> {
    let o = ctx.options;
    let text = flat::flatten(&o.kickstart).map_err(|findings| {
        let all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", all.join("; "))
    })?;
    let name = format!("{}.ks", o.name);
    let path = ctx.staging.path(&name);
    fs::write(&path, &text).with_context(|| format!("writing {name}"))?;
    Ok(Flattened {
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        name,
        path,
    })
}

/// The flattened kickstart as the installer reads it, when nothing is rewritten.
pub fn as_installed(report: Report, flat: Flattened) -> Result<FlatKickstart> {
    Ok(FlatKickstart {
        path: flat.path,
        sha256: flat.sha256,
        version: parse_version(&report)?,
        releasever: report.version.releasever,
        model: report.model,
    })
}

/// Other repositories than the kickstart's: rewrite the staged kickstart, then check
/// it again under the same version and rules.
pub fn rewrite(ctx: &Ctx, report: Report, flat: Flattened, lmc: LmcMode) -> Result<FlatKickstart> {
    let o = ctx.options;
    let text = crate::kickstart::rewrite::rewrite(&flat.path, &o.rewrite)
        .with_context(|| format!("rewriting {}", o.kickstart.display()))?;
    fs::write(&flat.path, &text).with_context(|| format!("writing {}", flat.name))?;
    let version = parse_version(&report)?;
    let rewritten = check::check(&flat.path, Some(version), o.policy, lmc);
    let errors: Vec<&str> = rewritten
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.as_str())
        .collect();
    ensure!(
        errors.is_empty(),
        "{} with --repo/--url: {}; nothing was installed",
        o.kickstart.display(),
        errors.join("; ")
    );
    Ok(FlatKickstart {
        path: flat.path,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        version,
        releasever: rewritten.version.releasever,
        model: rewritten.model,
    })
}

/// The syntax version the check settled on, as a type.
fn parse_version(report: &Report) -> Result<crate::kickstart::version::Version> {
    report
        .version
        .version
        .parse()
        .map_err(|e: String| anyhow::anyhow!("{e}"))
}
