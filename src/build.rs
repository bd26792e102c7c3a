//! `nodeimg build`: the one place that knows the order of the stages.
//!
//! check the kickstart (stop on errors) → flatten → install → liveimg → inspect →
//! update RPM → the artifacts directory. Everything is made in a staging directory
//! inside OUTDIR and moved into place only when the whole build succeeded, so a
//! failed or interrupted build leaves no finished-looking artifact; its logs are kept
//! under `OUTDIR/logs/` either way.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::kickstart::check::{self, LmcMode, Policy};
use crate::kickstart::version::Version;
use crate::kickstart::{Severity, flatten};
use crate::liveimg::{self, SquashfsOptions};
use crate::package::{update, writer};
use crate::{doctor, image, logging, sys};

/// Which installer makes the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// livemedia-creator when present, else the native dnf installer.
    Auto,
    /// livemedia-creator --no-virt --make-fsimage.
    Lmc,
    /// The native dnf installer.
    Dnf,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub kickstart: PathBuf,
    pub outdir: PathBuf,
    pub backend: Backend,
    /// Skip the install: take the root filesystem from an earlier installer result.
    pub from_result: Option<liveimg::Source>,
    /// Run livemedia-creator in a mock chroot of this configuration (name or .cfg).
    pub mock: Option<String>,
    /// Run livemedia-creator's install in a VM instead of `--no-virt`.
    pub virt: Option<crate::install::lmc::Virt>,
    /// Base of the artifact names.
    pub name: String,
    pub version: Option<String>,
    pub release: Option<String>,
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
    /// dnf's package cache for the dnf backend, shared between builds.
    pub dnf_cache: PathBuf,
    /// Let the kickstart's `--noverifyssl` through (dnf backend).
    pub allow_noverifyssl: bool,
    /// Other repositories or installation source than the kickstart's (`--repo`,
    /// `--replace-repos`, `--url`).
    pub rewrite: crate::kickstart::rewrite::Rewrite,
}

/// The installer a build runs, decided before anything else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installer {
    /// livemedia-creator on the host, or in mock with --mock.
    Lmc,
    Dnf,
    /// --from-result: no install.
    None,
}

fn choose_installer(options: &BuildOptions) -> Result<Installer> {
    if options.from_result.is_some() {
        return Ok(Installer::None);
    }
    // With --mock, livemedia-creator comes from the chroot, not the host.
    let lmc = match &options.mock {
        Some(_) => sys::cmd::which("mock"),
        None => sys::cmd::which("livemedia-creator"),
    };
    let dnf = sys::cmd::which("dnf");
    match (options.backend, lmc, dnf) {
        (Backend::Dnf, _, _) if options.mock.is_some() || options.virt.is_some() => {
            bail!("--mock and --virt-iso run livemedia-creator: they need --backend lmc")
        }
        (Backend::Auto | Backend::Lmc, Some(_), _) => Ok(Installer::Lmc),
        (Backend::Lmc, None, _) if options.mock.is_some() => {
            bail!("--mock needs mock (package mock on Fedora/EL)")
        }
        (Backend::Lmc, None, _) => {
            bail!("livemedia-creator is not installed (package lorax-lmc-novirt on Fedora/EL)")
        }
        (Backend::Auto, None, _) if options.mock.is_some() || options.virt.is_some() => bail!(
            "--mock and --virt-iso run livemedia-creator, which is not here (package {} on Fedora/EL)",
            if options.mock.is_some() {
                "mock"
            } else {
                "lorax-lmc-novirt"
            }
        ),
        (Backend::Auto | Backend::Dnf, _, Some(_)) => Ok(Installer::Dnf),
        (Backend::Dnf, _, None) => {
            bail!("the dnf backend needs dnf (package dnf on Debian and Fedora)")
        }
        (Backend::Auto, None, None) => bail!(
            "no installer here: neither livemedia-creator (package lorax-lmc-novirt on Fedora/EL) \
             nor dnf (package dnf) is installed; or pass --from-result with an installed tree or \
             filesystem image"
        ),
    }
}

#[derive(Debug, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Input {
    pub kickstart: String,
    /// SHA-256 of the flattened kickstart: the one the installer reads.
    pub kickstart_sha256: String,
    pub ks_version: String,
    pub from_result: Option<String>,
    pub backend: String,
    /// The dnf backend's account of the install: commands applied, timings, bootloader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<serde_json::Value>,
    pub options: serde_json::Value,
    pub tools: serde_json::Value,
}

/// build.json.
#[derive(Debug, Serialize)]
pub struct BuildRecord {
    pub nodeimg: &'static str,
    pub name: String,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub nvr: Option<String>,
    pub started: u64,
    pub finished: u64,
    pub input: Input,
    pub stages: Vec<Stage>,
    pub outputs: Vec<Output>,
    pub packages: Vec<String>,
    /// The same packages with what koji records of them (sigmd5, signing key).
    pub rpms: Vec<crate::image::rpmdb::Package>,
}

/// Runs the stages, timing each and saying so.
struct Stages {
    done: Vec<Stage>,
}

impl Stages {
    fn run<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<(T, String)>) -> Result<T> {
        tracing::info!(stage = name, "{name}: started");
        let started = Instant::now();
        let (value, detail) = f().with_context(|| format!("stage {name} failed"))?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            stage = name,
            seconds = format!("{seconds:.1}"),
            "{name}: done in {seconds:.1} s{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        );
        self.done.push(Stage {
            name,
            seconds,
            detail,
        });
        Ok(value)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Build. Returns the record written as build.json.
pub fn build(options: &BuildOptions) -> Result<BuildRecord> {
    let started_at = now();
    fs::create_dir_all(&options.outdir)
        .with_context(|| format!("creating {}", options.outdir.display()))?;
    let earlier = earlier_artifacts(&options.outdir)?;
    if !earlier.is_empty() && !options.force {
        bail!(
            "{} already holds {} (an earlier build?); use another directory or --force to replace them",
            options.outdir.display(),
            earlier.join(", ")
        );
    }
    let logs = options.outdir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("nodeimg.log");
    // A new build starts a new log.
    let _ = fs::remove_file(&log);
    logging::open_build_log(&log)?;
    let result = run(options, started_at);
    if let Err(err) = &result {
        tracing::error!("build failed: {err:#}");
    }
    logging::close_build_log();
    result
}

/// The rules of the livemedia-creator run this build makes (none from a result).
fn lmc_mode(installer: Installer, options: &BuildOptions) -> LmcMode {
    match (installer, &options.virt) {
        (Installer::None | Installer::Dnf, _) => LmcMode::Off,
        (Installer::Lmc, Some(_)) => LmcMode::Virt,
        (Installer::Lmc, None) => LmcMode::NoVirt,
    }
}

/// The `nodeimg check` that applies the rules this build applied.
fn check_command(options: &BuildOptions, lmc: LmcMode) -> String {
    use clap::ValueEnum;
    let name = |value: Option<clap::builder::PossibleValue>| {
        value.map(|v| v.get_name().to_owned()).unwrap_or_default()
    };
    let mut args: Vec<std::ffi::OsString> = vec!["check".into()];
    if options.policy != check::Policy::Generic {
        args.extend([
            "--policy".into(),
            name(options.policy.to_possible_value()).into(),
        ]);
    }
    if lmc != LmcMode::NoVirt {
        args.extend(["--lmc".into(), name(lmc.to_possible_value()).into()]);
    }
    if let Some(version) = options.ks_version {
        args.extend(["--ks-version".into(), version.to_string().into()]);
    }
    args.push(options.kickstart.clone().into_os_string());
    crate::sys::cmd::display_cmdline("nodeimg".as_ref(), &args)
}

fn run(options: &BuildOptions, started_at: u64) -> Result<BuildRecord> {
    let stage_dir = tempfile::Builder::new()
        .prefix(".nodeimg-build-")
        .tempdir_in(&options.outdir)
        .with_context(|| {
            format!(
                "creating a staging directory in {}",
                options.outdir.display()
            )
        })?;
    let staging = stage_dir.path();
    let mut stages = Stages { done: Vec::new() };
    let installer = choose_installer(options)?;

    let report = stages.run("check", || {
        let lmc = lmc_mode(installer, options);
        let report = check::check(&options.kickstart, options.ks_version, options.policy, lmc);
        for finding in report.findings.iter().filter(|f| f.severity >= Severity::Warning) {
            match finding.severity {
                Severity::Error => tracing::error!("{finding}"),
                _ => tracing::warn!("{finding}"),
            }
        }
        if report.errors > 0 {
            bail!(
                "{}: {} error(s) in the kickstart (listed above; `{}` shows them again); nothing was installed",
                options.kickstart.display(),
                report.errors,
                check_command(options, lmc)
            );
        }
        let detail = format!("{} syntax, {} warning(s)", report.version.version, report.warnings);
        Ok((report, detail))
    })?;

    let flat_name = format!("{}.ks", options.name);
    let flat_path = staging.join(&flat_name);
    let flat_sha = stages.run("flatten", || {
        let text = flatten::flatten(&options.kickstart).map_err(|findings| {
            anyhow::anyhow!(
                "{}",
                findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        fs::write(&flat_path, &text).with_context(|| format!("writing {flat_name}"))?;
        Ok((
            hex::encode(Sha256::digest(text.as_bytes())),
            flat_name.clone(),
        ))
    })?;

    // Other repositories than the kickstart's: the installer reads the rewritten
    // kickstart, so that is what is checked again, kept in OUTDIR and hashed.
    let (report, flat_sha) = if options.rewrite.is_empty() {
        (report, flat_sha)
    } else {
        stages.run("repositories", || {
            let text = crate::kickstart::rewrite::rewrite(&flat_path, &options.rewrite)
                .with_context(|| format!("rewriting {}", options.kickstart.display()))?;
            fs::write(&flat_path, &text).with_context(|| format!("writing {flat_name}"))?;
            let version: Version = report
                .version
                .version
                .parse()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let rewritten = check::check(
                &flat_path,
                Some(version),
                options.policy,
                lmc_mode(installer, options),
            );
            let errors: Vec<String> = rewritten
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| f.message.clone())
                .collect();
            ensure!(
                errors.is_empty(),
                "{} with --repo/--url: {}; nothing was installed",
                options.kickstart.display(),
                errors.join("; ")
            );
            let repos: Vec<String> = rewritten
                .model
                .repos
                .iter()
                .map(|r| r.name.clone())
                .collect();
            let detail = format!(
                "installing from {}",
                if repos.is_empty() {
                    "the url only".to_owned()
                } else {
                    repos.join(", ")
                }
            );
            Ok((
                (rewritten, hex::encode(Sha256::digest(text.as_bytes()))),
                detail,
            ))
        })?
    };

    // The installer's work directory: its result is packed from there.
    let work = sys::temp_dir(&options.workdir, "nodeimg-install-")?;
    let mut dnf_record = None;
    let source = stages.run("install", || match installer {
        Installer::None => {
            let source = options
                .from_result
                .clone()
                .context("--from-result without a source")?;
            let detail = format!("skipped: using {source}");
            Ok((source, detail))
        }
        Installer::Lmc => {
            let lmc_options = crate::install::lmc::LmcOptions {
                kickstart: &staging.join(&flat_name),
                work: work.path(),
                label: &options.label,
                project: "oVirt Node",
                releasever: &report.version.releasever,
                virt: options.virt.as_ref(),
            };
            let result = match &options.mock {
                Some(config) => crate::install::mock::run(config, &lmc_options),
                None => crate::install::lmc::run(&lmc_options),
            };
            // The installer's logs go with the build's, whatever happened.
            copy_logs(
                &crate::install::lmc::log_dir(work.path()),
                &options.outdir.join("logs"),
            );
            let result = result?;
            Ok((
                liveimg::Source::Fsimage {
                    path: result.image.clone(),
                },
                format!("livemedia-creator made {}", result.image.display()),
            ))
        }
        Installer::Dnf => {
            let version: Version = report
                .version
                .version
                .parse()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let installed = crate::install::dnf::install(&crate::install::dnf::DnfOptions {
                model: &report.model,
                work: work.path(),
                logs: &options.outdir.join("logs"),
                releasever: &report.version.releasever,
                arch: &options.arch,
                rpmdb: crate::install::dnf::rpmdb_path(version),
                cache: &options.dnf_cache,
                allow_noverifyssl: options.allow_noverifyssl,
            })?;
            let detail = format!(
                "dnf installed into {} ({})",
                installed.tree.display(),
                installed
                    .timings
                    .iter()
                    .map(|(step, s)| format!("{step} {s:.1} s"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let source = liveimg::Source::Dir {
                path: installed.tree.clone(),
            };
            dnf_record = Some(installed);
            Ok((source, detail))
        }
    })?;

    // The root filesystem's size comes from the kickstart's part / (MiB).
    let root_size = report
        .model
        .root()
        .and_then(|p| p.size)
        .filter(|s| *s > 0)
        .map(|mib| mib as u64 * (1 << 20));
    let packed = staging.join("image.liveimg.squashfs");
    let pack_report = stages.run("liveimg", || {
        let pack_options = liveimg::PackOptions {
            label: options.label.clone(),
            size: match source {
                liveimg::Source::Dir { .. } => root_size,
                _ => None,
            },
            squashfs: options.squashfs.clone(),
            source_date_epoch: options.source_date_epoch,
            workdir: options.workdir.clone(),
            overwrite: false,
        };
        let report = liveimg::pack(&source, &packed, &pack_options)?;
        let detail = format!(
            "{} ({})",
            crate::units::human(report.output_bytes),
            report.squashfs.compression
        );
        Ok((report, detail))
    })?;

    let inspection = stages.run("inspect", || {
        let scratch = sys::inspect_scratch(&options.workdir)?;
        let inspection = image::inspect(&packed, scratch.path())?;
        ensure!(
            inspection.problems.is_empty(),
            "imgbased would refuse the image:\n  - {}",
            inspection.problems.join("\n  - ")
        );
        let detail = format!(
            "{} packages, NVR {}",
            inspection.packages.len(),
            inspection.nvr.as_deref().unwrap_or("none")
        );
        Ok((inspection, detail))
    })?;

    let (version, release) = match (&options.version, &options.release) {
        (Some(v), Some(r)) => (v.clone(), r.clone()),
        _ => {
            let vr = inspection.placeholder.as_deref().with_context(|| {
                format!(
                    "the image has no {} installed, so it gives no version-release: install it in %post or pass --version and --release",
                    image::PLACEHOLDER
                )
            })?;
            let (v, r) = vr
                .split_once('-')
                .context("the placeholder's version-release")?;
            (v.to_owned(), r.to_owned())
        }
    };
    writer::validate_evr_part("version", &version)?;
    writer::validate_evr_part("release", &release)?;
    let image_name = format!(
        "{}-{version}-{release}.{}.liveimg.squashfs",
        options.name, options.arch
    );
    fs::rename(&packed, staging.join(&image_name)).context("naming the image")?;

    let written = stages.run("rpm", || {
        let package = update::Update {
            version: version.clone(),
            release: release.clone(),
            image: staging.join(&image_name),
            product_img: None,
            imgbased: options.imgbased.clone(),
        }
        .package()?;
        let mut info = writer::BuildInfo::from_env(None)?;
        if let Some(epoch) = options.source_date_epoch {
            info.build_time = u32::try_from(epoch).unwrap_or(u32::MAX);
            info.clamp_mtime = Some(info.build_time);
        }
        let written = writer::write(&package, &info, staging, false)?;
        let detail = written
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((written, detail))
    })?;

    let manifest_name = format!("{}.manifest-rpm", options.name);
    let unsigned_name = format!("{}.unsigned-rpms", options.name);
    let lines = |list: Vec<String>| list.iter().map(|l| format!("{l}\n")).collect::<String>();
    fs::write(staging.join(&manifest_name), lines(inspection.manifest()))?;
    fs::write(staging.join(&unsigned_name), lines(inspection.unsigned()))?;

    let rpm_name = written
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The RPM writer has already hashed the image (its file digest): no second read.
    let image_sha256 = written
        .file_digests
        .iter()
        .find(|(path, _)| path.ends_with(".squashfs.img"))
        .map(|(_, digest)| digest.clone())
        .context("the update RPM records no digest for the image")?;
    let mut outputs = vec![Output {
        file: image_name.clone(),
        bytes: fs::metadata(staging.join(&image_name))
            .with_context(|| format!("reading {image_name}"))?
            .len(),
        sha256: image_sha256,
    }];
    for file in [&rpm_name, &flat_name, &manifest_name, &unsigned_name] {
        outputs.push(describe(staging, file)?);
    }
    let record = BuildRecord {
        nodeimg: env!("CARGO_PKG_VERSION"),
        name: options.name.clone(),
        version,
        release,
        arch: options.arch.clone(),
        nvr: inspection.nvr.clone(),
        started: started_at,
        finished: now(),
        input: Input {
            kickstart: options.kickstart.display().to_string(),
            kickstart_sha256: flat_sha,
            ks_version: report.version.version.clone(),
            from_result: options.from_result.as_ref().map(ToString::to_string),
            backend: match (installer, &options.mock) {
                (Installer::None, _) => "from-result".to_owned(),
                (Installer::Lmc, Some(config)) => format!("lmc in mock {config}"),
                (Installer::Lmc, None) => "lmc".to_owned(),
                (Installer::Dnf, _) => "dnf".to_owned(),
            },
            install: dnf_record
                .as_ref()
                .map(|i| serde_json::to_value(i).unwrap_or_default()),
            options: serde_json::json!({
                "compression": pack_report.squashfs.compression,
                "level": pack_report.squashfs.level,
                "label": options.label,
                "rootfs_bytes": pack_report.filesystem_bytes,
                "source_date_epoch": options.source_date_epoch,
                "policy": options.policy,
                "imgbased": options.imgbased,
            }),
            tools: tool_versions(),
        },
        stages: stages.done,
        outputs,
        packages: inspection.manifest(),
        rpms: inspection.packages.clone(),
    };
    let record_json = serde_json::to_string_pretty(&record)? + "\n";
    fs::write(staging.join("build.json"), &record_json)?;
    let mut checksums = String::new();
    for output in &record.outputs {
        checksums.push_str(&format!("{}  {}\n", output.sha256, output.file));
    }
    checksums.push_str(&format!(
        "{}  build.json\n",
        hex::encode(Sha256::digest(record_json.as_bytes()))
    ));
    fs::write(staging.join("CHECKSUMS.sha256"), checksums)?;

    // All made: the earlier build's artifacts go first (they could have other names),
    // CHECKSUMS goes in last, so its presence means a whole build.
    for name in earlier_artifacts(&options.outdir)? {
        let path = options.outdir.join(&name);
        fs::remove_file(&path)
            .with_context(|| format!("removing the earlier {}", path.display()))?;
    }
    let mut names: Vec<&str> = record.outputs.iter().map(|o| o.file.as_str()).collect();
    names.push("build.json");
    names.push("CHECKSUMS.sha256");
    for name in names {
        let target = options.outdir.join(name);
        fs::rename(staging.join(name), &target)
            .with_context(|| format!("moving {name} into {}", options.outdir.display()))?;
    }
    if options.keep_workdir {
        let kept = work.keep();
        tracing::info!(
            "--keep-workdir: the installer's work directory is {}",
            kept.display()
        );
    }
    Ok(record)
}

/// What an earlier build left in OUTDIR: every file but logs/ and staging directories.
fn earlier_artifacts(outdir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(outdir).with_context(|| format!("reading {}", outdir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "logs" || name.starts_with(".nodeimg-build-") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            bail!(
                "{} holds a directory {name}; nodeimg only writes files and logs/ there",
                outdir.display()
            );
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Copy an installer's log tree into the build's logs/ (best effort: a log that cannot
/// be copied is named in nodeimg's own log).
fn copy_logs(from: &Path, to: &Path) {
    let Ok(entries) = fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        let path = entry.path();
        let copied = if path.is_dir() {
            fs::create_dir_all(&target).map(|()| copy_logs(&path, &target))
        } else {
            fs::copy(&path, &target).map(|_| ())
        };
        if let Err(err) = copied {
            tracing::warn!("cannot keep the installer log {}: {err}", path.display());
        }
    }
}

fn describe(dir: &Path, file: &str) -> Result<Output> {
    let path = dir.join(file);
    let mut input = fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0;
    loop {
        sys::cancel::check()?;
        let n = input
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Output {
        file: file.to_owned(),
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Versions of the tools a build runs, as `doctor` reads them.
fn tool_versions() -> serde_json::Value {
    let mut tools = serde_json::Map::new();
    for name in [
        "mksquashfs",
        "mkfs.ext4",
        "e2image",
        "e2fsck",
        "rpm",
        "livemedia-creator",
        "dnf",
    ] {
        if let Some(version) = doctor::tool_version(name) {
            tools.insert(name.to_owned(), version.into());
        }
    }
    tools.into()
}
