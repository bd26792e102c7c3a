//! livemedia-creator `--make-fsimage`, `--no-virt` (as koji runs it) or in a VM
//! booted from a boot.iso (as the upstream Makefile runs it): the result is an ext4 filesystem image labelled for the liveimg, sized by the
//! kickstart's `part /`. Its logs (livemedia.log, program.log, anaconda/) are kept; on
//! failure the error lines anaconda and livemedia-creator wrote are shown, and
//! whatever it left mounted or attached under the work directory is released.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Backend, FlatKickstart, RootFs};
use crate::kickstart::check::LmcMode;
use crate::liveimg;
use crate::sys::cmd::{Cmd, CmdError};

/// livemedia-creator as an installer backend: on the host, in a VM, or in a mock chroot.
#[derive(Debug)]
pub struct Lmc {
    pub label: String,
    pub virt: Option<Virt>,
    /// Run it in a mock chroot of this configuration (a name or a .cfg file).
    pub mock: Option<String>,
}

impl Backend for Lmc {
    fn name(&self) -> String {
        match &self.mock {
            Some(config) => format!("lmc in mock {config}"),
            None => "lmc".to_owned(),
        }
    }

    fn lmc_mode(&self) -> LmcMode {
        match self.virt {
            Some(_) => LmcMode::Virt,
            None => LmcMode::NoVirt,
        }
    }

    fn install(&self, ks: &FlatKickstart, work: &Path, logs: &Path) -> Result<RootFs> {
        let options = LmcOptions {
            kickstart: &ks.path,
            work,
            label: &self.label,
            project: "oVirt Node",
            releasever: &ks.releasever,
            virt: self.virt.as_ref(),
        };
        let result = match &self.mock {
            Some(config) => super::mock::run(config, &options),
            None => run(&options),
        };
        // The installer's logs go with the build's, whatever happened.
        copy_logs(&log_dir(work), logs);
        let result = result?;
        Ok(RootFs {
            summary: format!("livemedia-creator made {}", result.image.display()),
            source: liveimg::Source::Fsimage { path: result.image },
            size: None,
            installed: None,
        })
    }
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

/// What the run produced.
#[derive(Debug)]
pub struct LmcResult {
    /// The filesystem image.
    pub image: PathBuf,
}

/// Everything a run needs.
#[derive(Debug)]
pub struct LmcOptions<'a> {
    pub kickstart: &'a Path,
    /// Empty directory for result/, logs/ and tmp/.
    pub work: &'a Path,
    pub label: &'a str,
    pub project: &'a str,
    pub releasever: &'a str,
    /// Install in a VM booted from this boot.iso instead of `--no-virt`, as the upstream
    /// Makefile does.
    pub virt: Option<&'a Virt>,
}

/// livemedia-creator's virt mode: anaconda in a qemu VM.
#[derive(Debug, Clone)]
pub struct Virt {
    pub iso: PathBuf,
    /// MiB.
    pub ram: u32,
    pub vcpus: u32,
}

/// The image's file name in --resultdir.
pub const IMAGE_NAME: &str = "rootfs.img";

/// Where livemedia-creator keeps things, as paths it sees (on the host, or in a chroot).
pub struct LmcPaths {
    pub kickstart: std::ffi::OsString,
    pub resultdir: std::ffi::OsString,
    pub logfile: std::ffi::OsString,
    pub tmp: std::ffi::OsString,
}

impl LmcOptions<'_> {
    /// livemedia-creator's arguments: a filesystem image, `--no-virt` or the VM's boot
    /// ISO and size, nodeimg's label, name, project and release, and where things go.
    pub fn args(&self, paths: &LmcPaths) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["--make-fsimage".into()];
        match self.virt {
            None => args.push("--no-virt".into()),
            Some(virt) => args.extend([
                "--iso".into(),
                virt.iso.clone().into_os_string(),
                "--ram".into(),
                virt.ram.to_string().into(),
                "--vcpus".into(),
                virt.vcpus.to_string().into(),
            ]),
        }
        let pairs = [
            ("--ks", paths.kickstart.clone()),
            ("--fs-label", self.label.into()),
            ("--image-name", IMAGE_NAME.into()),
            ("--project", self.project.into()),
            ("--releasever", self.releasever.into()),
            ("--resultdir", paths.resultdir.clone()),
            ("--logfile", paths.logfile.clone()),
            ("--tmp", paths.tmp.clone()),
        ];
        for (flag, value) in pairs {
            args.push(flag.into());
            args.push(value);
        }
        args
    }
}

/// Where the run's logs go (copied into the build's logs/ by the caller).
pub fn log_dir(work: &Path) -> PathBuf {
    work.join("logs")
}

pub fn run(options: &LmcOptions) -> Result<LmcResult> {
    let result_dir = options.work.join("result");
    let logs = log_dir(options.work);
    let tmp = options.work.join("tmp");
    for dir in [&logs, &tmp] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let cmd = Cmd::new("livemedia-creator").args(options.args(&LmcPaths {
        kickstart: options.kickstart.into(),
        resultdir: result_dir.clone().into(),
        logfile: logs.join("livemedia.log").into(),
        tmp: tmp.into(),
    }));
    let outcome = cmd.run();
    release_leftovers(options.work);
    match outcome {
        Ok(_) => {
            let image = result_dir.join(IMAGE_NAME);
            anyhow::ensure!(
                image.is_file(),
                "livemedia-creator finished but left no {} (see {})",
                image.display(),
                logs.display()
            );
            Ok(LmcResult { image })
        }
        Err(err @ CmdError::Failed { .. }) => {
            let lines = error_lines(&logs);
            if lines.is_empty() {
                Err(err.into())
            } else {
                Err(anyhow::Error::new(err).context(format!(
                    "livemedia-creator failed; the installer said:\n  {}\n(full logs in {})",
                    lines.join("\n  "),
                    logs.display()
                )))
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// The error lines of livemedia.log and anaconda's logs: what explains a failure.
pub fn error_lines(logs: &Path) -> Vec<String> {
    let mut files = vec![logs.join("livemedia.log")];
    if let Ok(entries) = fs::read_dir(logs.join("anaconda")) {
        let mut anaconda: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        anaconda.sort();
        files.extend(anaconda);
    }
    let mut lines = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for line in text.lines() {
            if line.contains("ERROR") || line.contains("Traceback") || line.contains("CRITICAL") {
                lines.push(format!("{name}: {}", line.trim()));
            }
        }
    }
    let skip = lines.len().saturating_sub(20);
    lines.split_off(skip)
}

/// anaconda mounts the target and attaches loop devices under the work directory; a
/// killed run can leave them. Unmount (deepest first) and detach what is ours.
fn release_leftovers(work: &Path) {
    let Ok(work) = work.canonicalize() else {
        return;
    };
    let mut mounts: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&work))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for mount in mounts {
        tracing::warn!(
            "livemedia-creator left {} mounted; unmounting it",
            mount.display()
        );
        let _ = Cmd::new("umount").arg(&mount).uninterruptible().run();
    }
    let Ok(loops) = fs::read_dir("/sys/block") else {
        return;
    };
    for entry in loops.flatten() {
        let backing = entry.path().join("loop/backing_file");
        let Ok(file) = fs::read_to_string(&backing) else {
            continue;
        };
        if Path::new(file.trim()).starts_with(&work) {
            let device = Path::new("/dev").join(entry.file_name());
            tracing::warn!(
                "livemedia-creator left {} attached; detaching it",
                device.display()
            );
            let _ = Cmd::new("losetup")
                .arg("-d")
                .arg(&device)
                .uninterruptible()
                .run();
        }
    }
}
