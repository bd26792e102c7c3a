//! `nodeimg build`: the one place that knows the order of the stages.
//!
//! check the kickstart (stop on errors) → flatten (and rewrite its sources) → install
//! → liveimg → inspect → name → update RPM → manifests → build.json. Each stage is a
//! function of the build's [`Ctx`] and the previous stage's typed output. Everything is
//! made in a [`Staging`] directory inside OUTDIR and moved into place only when the
//! whole build succeeded, so a failed or interrupted build leaves no finished-looking
//! artifact; its logs are kept under `OUTDIR/logs/` either way.

mod image;
mod kickstart;
mod package;
pub mod record;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::artifacts::Staging;
use crate::install::{self, InstallOptions};
use crate::kickstart::check::Policy;
use crate::kickstart::rewrite::Rewrite;
use crate::kickstart::version::Version;
use crate::liveimg::SquashfsOptions;
use crate::nevra::VersionRelease;
use crate::{logging, sys};
pub use record::{BuildRecord, Output, OutputKind};

/// Everything a build is told.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub kickstart: PathBuf,
    pub outdir: PathBuf,
    /// Which installer, and how it runs.
    pub install: InstallOptions,
    /// Base of the artifact names.
    pub name: String,
    /// The update's version-release (default: the placeholder's in the image).
    pub version_release: Option<VersionRelease>,
    pub arch: String,
    pub ks_version: Option<Version>,
    pub policy: Policy,
    pub squashfs: SquashfsOptions,
    pub label: String,
    pub workdir: PathBuf,
    pub keep_workdir: bool,
    /// Build into an OUTDIR that holds an earlier build's artifacts (they are replaced).
    pub force: bool,
    pub source_date_epoch: Option<u64>,
    pub imgbased: String,
    /// Other repositories or installation source than the kickstart's (`--repo`,
    /// `--replace-repos`, `--url`).
    pub rewrite: Rewrite,
}

/// What every stage may read: the options, where artifacts are staged, where logs go.
pub struct Ctx<'a> {
    pub options: &'a BuildOptions,
    pub staging: &'a Staging,
    pub logs: PathBuf,
}

/// A stage's output says in one line what it made, for the log and build.json.
pub trait Summary {
    fn summary(&self) -> String;
}

/// Runs the stages, timing each and saying so.
#[derive(Default)]
struct Timer {
    done: Vec<record::Stage>,
}

impl Timer {
    fn run<T: Summary>(&mut self, name: &str, stage: impl FnOnce() -> Result<T>) -> Result<T> {
        tracing::info!(stage = name, "{name}: started");
        let started = Instant::now();
        let value = stage().with_context(|| format!("stage {name} failed"))?;
        let seconds = started.elapsed().as_secs_f64();
        let detail = value.summary();
        tracing::info!(
            stage = name,
            seconds = format!("{seconds:.1}"),
            "{name}: done in {seconds:.1} s{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        );
        self.done.push(record::Stage {
            name: name.to_owned(),
            seconds,
            detail,
        });
        Ok(value)
    }
}

/// Build. Returns the record written as build.json.
pub fn build(options: &BuildOptions) -> Result<BuildRecord> {
    // What the library joins into file names and headers is checked here, not only
    // by the command line.
    crate::nevra::check_name(&options.name)?;
    let started = sys::now();
    let staging = Staging::new(&options.outdir, options.force)?;
    let logs = options.outdir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("nodeimg.log");
    // A new build starts a new log.
    let _ = fs::remove_file(&log);
    logging::open_build_log(&log)?;
    let ctx = Ctx {
        options,
        staging: &staging,
        logs,
    };
    let result = run(&ctx, started).and_then(|(record, json)| {
        staging.commit(&record.checksummed(), (record::FILE_NAME, &json))?;
        Ok(record)
    });
    if let Err(err) = &result {
        tracing::error!("build failed: {err:#}");
    }
    logging::close_build_log();
    result
}

/// The stages in order; what they made is staged, not yet in OUTDIR.
fn run(ctx: &Ctx, started: u64) -> Result<(BuildRecord, String)> {
    let options = ctx.options;
    let mut timer = Timer::default();
    let backend = install::choose(&options.install)?;

    let report = timer.run("check", || kickstart::check(ctx, backend.lmc_mode()))?;
    let flat = timer.run("flatten", || kickstart::flatten(ctx))?;
    let ks = if options.rewrite.is_empty() {
        kickstart::as_installed(report, flat)?
    } else {
        timer.run("repositories", || {
            kickstart::rewrite(ctx, report, flat, backend.lmc_mode())
        })?
    };

    // The installer's work directory: its result is packed from there.
    let work = sys::temp_dir(&options.workdir, "nodeimg-install-")?;
    let rootfs = timer.run("install", || backend.install(&ks, work.path(), &ctx.logs))?;
    let packed = timer.run("liveimg", || image::pack(ctx, &rootfs))?;
    let inspection = timer.run("inspect", || image::inspect(ctx, &packed))?;
    let named = image::name(ctx, &packed, &inspection)?;
    let rpm = timer.run("rpm", || package::update_rpm(ctx, &named))?;
    let manifests = package::manifests(ctx, &inspection)?;
    let sbom = timer.run("sbom", || package::sbom(ctx, &named, &rpm, &inspection))?;

    let outputs = package::outputs(ctx, &named, &rpm, &ks, &manifests, &sbom)?;
    let record = package::record(package::RecordParts {
        ctx,
        started,
        backend: backend.name(),
        ks: &ks,
        installed: rootfs.installed,
        packed: &packed,
        inspection: &inspection,
        vr: named.vr.clone(),
        stages: timer.done,
        outputs,
    });
    let json = record.to_json()?;
    if options.keep_workdir {
        let kept = work.keep();
        tracing::info!(
            "--keep-workdir: the installer's work directory is {}",
            kept.display()
        );
    }
    Ok((record, json))
}

impl BuildRecord {
    /// The outputs as CHECKSUMS.sha256 lists them (name, SHA-256).
    fn checksummed(&self) -> Vec<(&str, &str)> {
        self.outputs
            .iter()
            .map(|o| (o.file.as_str(), o.sha256.as_str()))
            .collect()
    }
}
