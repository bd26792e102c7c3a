//! livemedia-creator inside a mock chroot, the way koji's image tasks run it: init the
//! chroot, install lorax-lmc-novirt, copy the kickstart in, run livemedia-creator with
//! `--isolation=simple` (systemd-nspawn gives no loop devices, and the fsimage needs
//! one), copy the image and the logs out, and scrub the chroot whatever happened.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::lmc::{self, LmcOptions, LmcResult};
use crate::sys::cmd::Cmd;

/// Where things live inside the chroot.
const BUILDDIR: &str = "/builddir/nodeimg";

pub fn run(config: &str, options: &LmcOptions) -> Result<LmcResult> {
    let mock = |mode: &str| Cmd::new("mock").args(["-r", config, "--quiet", mode]);
    mock("--init").run().context("mock --init")?;
    let outcome = build_in_chroot(config, options, &mock);
    // The chroot goes whatever happened, even after a signal.
    if let Err(err) = mock("--clean").uninterruptible().run() {
        tracing::warn!("cleaning the mock chroot {config}: {err}");
    }
    outcome
}

fn build_in_chroot(
    config: &str,
    options: &LmcOptions,
    mock: &dyn Fn(&str) -> Cmd,
) -> Result<LmcResult> {
    mock("--install")
        .arg("lorax-lmc-novirt")
        .run()
        .context("installing lorax-lmc-novirt in the mock chroot")?;
    let ks = format!("{BUILDDIR}/ks.cfg");
    mock("--copyin")
        .arg(options.kickstart)
        .arg(&ks)
        .run()
        .context("copying the kickstart into the mock chroot")?;
    // mock --copyout creates the directory (it copies a tree to a new path).
    let logs = lmc::log_dir(options.work);
    let ran = Cmd::new("mock")
        .args([
            "-r",
            config,
            "--quiet",
            "--isolation=simple",
            "--chroot",
            "--",
        ])
        .arg("livemedia-creator")
        .args(options.args(&lmc::LmcPaths {
            kickstart: ks.clone().into(),
            resultdir: format!("{BUILDDIR}/result").into(),
            logfile: format!("{BUILDDIR}/logs/livemedia.log").into(),
            tmp: format!("{BUILDDIR}/tmp").into(),
        }))
        .run();
    // The logs come out whether the install worked or not.
    let copied_logs = mock("--copyout")
        .arg(format!("{BUILDDIR}/logs"))
        .arg(&logs)
        .uninterruptible()
        .run();
    if let Err(err) = ran {
        let lines = lmc::error_lines(&logs);
        return Err(if lines.is_empty() {
            anyhow::Error::new(err).context("livemedia-creator failed in the mock chroot")
        } else {
            anyhow::Error::new(err).context(format!(
                "livemedia-creator failed in the mock chroot; the installer said:\n  {}",
                lines.join("\n  ")
            ))
        });
    }
    copied_logs.context("copying the installer's logs out of the mock chroot")?;
    let local: PathBuf = options.work.join(lmc::IMAGE_NAME);
    mock("--copyout")
        .arg(format!("{BUILDDIR}/result/{}", lmc::IMAGE_NAME))
        .arg(&local)
        .run()
        .context("copying the image out of the mock chroot")?;
    anyhow::ensure!(
        Path::new(&local).is_file(),
        "mock copied out no {}",
        local.display()
    );
    Ok(LmcResult { image: local })
}
