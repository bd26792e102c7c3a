//! The native installer: the kickstart installed into a directory with dnf, then its
//! commands and scripts applied to the tree. No anaconda, no VM; any host with dnf.
//!
//! In anaconda's order: `%pre` → repositories → `%pre-install` → `%packages` (one dnf
//! transaction, `transaction`) → system configuration (`configure`, `accounts`) →
//! `%post` in kickstart order (`scripts`) → SELinux relabel with the tree's own policy.
//! `%onerror` runs when any of it fails. Before anything runs, every command of the
//! kickstart is sorted into "applied", "no effect on a directory" (disk commands,
//! display mode, the final reboot) or "cannot be honoured" — one error lists all of
//! the last kind, so nothing is silently ignored.

pub mod accounts;
pub mod configure;
pub mod repos;
pub mod scripts;
pub mod transaction;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Backend, FlatKickstart, RootFs};
use crate::kickstart::check::LmcMode;
use crate::kickstart::commands::{self, DnfSupport};
use crate::kickstart::model::{Bootloader, Model, ScriptSection};
use crate::kickstart::version::Version;
use crate::sys::cmd::Cmd;

/// Script sections this backend runs.
const SECTIONS: &[ScriptSection] = &[
    ScriptSection::Pre,
    ScriptSection::PreInstall,
    ScriptSection::Post,
    ScriptSection::OnError,
];

/// The rpm database path the target's rpm uses: /usr/lib/sysimage/rpm from Fedora 36
/// and EL10, /var/lib/rpm on EL9.
pub fn rpmdb_path(version: Version) -> &'static str {
    // rpm moved its database in Fedora 36 and EL10.
    if version.is_fedora() && !version.fedora_since(36)
        || !version.is_fedora() && version < Version::rhel(10)
    {
        "/var/lib/rpm"
    } else {
        "/usr/lib/sysimage/rpm"
    }
}

pub struct DnfOptions<'a> {
    pub model: &'a Model,
    /// The installer's work directory: the tree is made in `tree/` below it.
    pub work: &'a Path,
    /// The build's log directory: dnf's logs and the scripts' go there.
    pub logs: &'a Path,
    pub releasever: &'a str,
    /// The target architecture (`--forcearch` when it is not the host's).
    pub arch: &'a str,
    pub rpmdb: &'a str,
    /// dnf's package cache, shared between builds (locked while dnf runs).
    pub cache: &'a Path,
    /// Let a repository's `--noverifyssl` through.
    pub allow_noverifyssl: bool,
    /// The filesystem for the tree (bytes), from the kickstart's `part /`.
    pub root_size: Option<u64>,
}

/// The native installer as a backend.
#[derive(Debug)]
pub struct Dnf {
    /// The target architecture.
    pub arch: String,
    /// dnf's package cache, shared between builds.
    pub cache: PathBuf,
    pub allow_noverifyssl: bool,
}

impl Backend for Dnf {
    fn name(&self) -> String {
        "dnf".to_owned()
    }

    fn lmc_mode(&self) -> LmcMode {
        LmcMode::Off
    }

    fn install(&self, ks: &FlatKickstart, work: &Path, logs: &Path) -> Result<RootFs> {
        let installed = install(&DnfOptions {
            model: &ks.model,
            work,
            logs,
            releasever: &ks.releasever,
            arch: &self.arch,
            rpmdb: rpmdb_path(ks.version),
            cache: &self.cache,
            allow_noverifyssl: self.allow_noverifyssl,
            root_size: ks.root_size(),
        })?;
        let timings: Vec<String> = installed
            .timings
            .iter()
            .map(|(step, s)| format!("{step} {s:.1} s"))
            .collect();
        Ok(RootFs {
            summary: format!(
                "dnf installed into {} ({})",
                installed.tree.display(),
                timings.join(", ")
            ),
            source: crate::liveimg::Source::Dir {
                path: installed.tree.clone(),
            },
            size: ks.root_size(),
            installed: Some(installed),
        })
    }
}

/// What the install made and did.
#[derive(Debug, Serialize, Deserialize)]
pub struct Installed {
    pub tree: PathBuf,
    /// The filesystem for the tree, from `part /`: bytes.
    pub root_size: Option<u64>,
    /// One line per command applied.
    pub applied: Vec<String>,
    /// Commands with nothing to do in a directory install.
    pub no_effect: Vec<String>,
    /// `bootloader`: recorded, nothing installed (the host's bootloader boots a liveimg).
    pub bootloader: Option<Bootloader>,
    pub scripts: usize,
    /// Seconds per step; `packages` is the dnf transaction.
    pub timings: Vec<(String, f64)>,
    pub selinux_relabelled: Option<String>,
}

/// Write a file whole with `mode` (replacing it through a rename).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".nodeimg-")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, contents)
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Whether the tree has `relative` (as itself or through its own links).
pub fn tree_has(tree: &Path, relative: &str) -> bool {
    let path = tree.join(relative.trim_start_matches('/'));
    fs::symlink_metadata(&path).is_ok()
}

/// Run one of the tree's programs chrooted into it.
pub fn run_in_tree(tree: &Path, program: &str, args: &[String]) -> Result<()> {
    let cmd = crate::install::sandbox::Sandbox::new(tree)
        .api_filesystems()?
        .chroot()
        .command(program, args)?
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8");
    let result = cmd.run();
    crate::install::sandbox::kill_processes_in(tree);
    result?;
    Ok(())
}

/// Sort the kickstart's commands: the errors for those this backend cannot honour,
/// and the ones with no effect.
pub fn sort_commands(model: &Model) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut no_effect = Vec::new();
    for (name, origin) in &model.commands {
        match commands::dnf_support(name) {
            DnfSupport::Applied => continue,
            DnfSupport::NoEffect => {
                no_effect.push(format!("{name} ({origin})"));
                continue;
            }
            DnfSupport::Unsupported => {}
        }
        errors.push(format!(
            "{origin}: `{name}` cannot be honoured by the dnf backend (it installs into a directory); remove it or use --backend lmc"
        ));
    }
    for p in model.partitions.iter().chain(&model.logvols) {
        match p.mountpoint.as_str() {
            "/" => {
                if let Some(fs) = p.fstype.as_deref().filter(|f| *f != "ext4") {
                    errors.push(format!(
                        "{}: part / --fstype={fs}: the Node image's root filesystem is ext4",
                        p.origin
                    ));
                }
            }
            "swap" => no_effect.push(format!("part swap ({})", p.origin)),
            other => errors.push(format!(
                "{}: part {other}: a filesystem image holds one filesystem, /",
                p.origin
            )),
        }
    }
    for script in &model.scripts {
        if !SECTIONS.contains(&script.section) {
            errors.push(format!(
                "{}: {} is not run by the dnf backend",
                script.origin, script.section
            ));
        }
    }
    (errors, no_effect)
}

/// Install the kickstart into `work/tree`.
pub fn install(o: &DnfOptions) -> Result<Installed> {
    let model = o.model;
    let (errors, no_effect) = sort_commands(model);
    if !errors.is_empty() {
        bail!(
            "the kickstart asks for what a directory install cannot do:\n  - {}",
            errors.join("\n  - ")
        );
    }
    for line in &no_effect {
        tracing::info!("{line}: nothing to do when installing into a directory");
    }
    let repos = repos::repositories(model, o.allow_noverifyssl)?;
    let packages = model
        .packages
        .as_ref()
        .context("the kickstart has no %packages section: nothing to install")?;
    let request = transaction::Request::from_packages(packages)?;
    let forcearch = (o.arch != std::env::consts::ARCH && o.arch != "noarch").then_some(o.arch);

    let tree = o.work.join("tree");
    fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
    let mut runner = scripts::Runner {
        tree: &tree,
        work: o.work,
        logs: o.logs,
        count: 0,
    };
    let mut timings = Vec::new();
    let result = (|| -> Result<Installed> {
        let mut step = |name: &'static str, started: Instant| {
            timings.push((name.to_owned(), started.elapsed().as_secs_f64()));
        };
        let started = Instant::now();
        let mut scripts = runner.section(&model.scripts, ScriptSection::Pre)?;
        scripts += runner.section(&model.scripts, ScriptSection::PreInstall)?;
        step("pre-scripts", started);

        let started = Instant::now();
        tracing::info!(
            "installing {} with dnf from {} repositor{}",
            request.specs.join(" "),
            repos.len(),
            if repos.len() == 1 { "y" } else { "ies" }
        );
        let result = transaction::run(&transaction::Transaction {
            tree: &tree,
            work: o.work,
            cache: o.cache,
            repos: &repos,
            request: &request,
            releasever: o.releasever,
            forcearch,
            dbpath: o.rpmdb,
        });
        transaction::collect_logs(&tree, o.logs);
        result?;
        step("packages", started);

        let started = Instant::now();
        let applied = configure_tree(&tree, model, &request, &repos)?;
        step("configure", started);

        let started = Instant::now();
        scripts += runner.section(&model.scripts, ScriptSection::Post)?;
        step("post-scripts", started);

        let started = Instant::now();
        let selinux_relabelled = relabel(&tree)?;
        step("relabel", started);

        let bootloader = model.bootloader.clone();
        if bootloader.is_some() {
            tracing::info!("bootloader: recorded in build.json; nothing is installed to a disk");
        }
        Ok(Installed {
            tree: tree.clone(),
            root_size: o.root_size,
            applied,
            no_effect: no_effect.clone(),
            bootloader,
            scripts,
            timings: Vec::new(),
            selinux_relabelled,
        })
    })();
    match result {
        Ok(mut installed) => {
            installed.timings = timings;
            Ok(installed)
        }
        Err(err) => {
            if crate::sys::cancel::received().is_none() {
                for script in model
                    .scripts
                    .iter()
                    .filter(|s| s.section == ScriptSection::OnError)
                {
                    if let Err(e) = runner.run(script) {
                        tracing::warn!("{e:#}");
                    }
                }
            }
            Err(err)
        }
    }
}

/// The system configuration after the packages: the rpm macros the image was built
/// with, `repo --install`, then the kickstart's commands. One line per thing applied.
fn configure_tree(
    tree: &Path,
    model: &Model,
    request: &transaction::Request,
    repos: &[repos::Repository],
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    let macros = request.rpm_macros();
    if !macros.is_empty() {
        // The installed system keeps installing what the image was built with.
        let dir = tree.join("etc/rpm");
        fs::create_dir_all(&dir)?;
        write_file(
            &dir.join("macros.image-language-conf"),
            macros.as_bytes(),
            0o644,
        )?;
        applied.push("rpm macros: /etc/rpm/macros.image-language-conf".to_owned());
    }
    for file in repos::install_into(tree, repos)? {
        applied.push(format!("repo --install: {file}"));
    }
    applied.extend(configure::apply(tree, model)?);
    for line in &applied {
        tracing::info!("{line}");
    }
    Ok(applied)
}

/// Label the tree with its own SELinux policy when it has one and SELinux is not
/// disabled in it: what anaconda's final restorecon does.
fn relabel(tree: &Path) -> Result<Option<String>> {
    let Some(policy) = configure::selinux_policy(tree) else {
        return Ok(None);
    };
    let contexts = tree.join(format!("etc/selinux/{policy}/contexts/files/file_contexts"));
    if !contexts.is_file() {
        tracing::info!("SELinux policy {policy} is not in the tree: nothing to relabel with");
        return Ok(None);
    }
    if crate::sys::cmd::which("setfiles").is_none() {
        bail!(
            "the tree has the SELinux policy {policy}; labelling it needs setfiles on this host (package policycoreutils)"
        );
    }
    let mut cmd = Cmd::new("setfiles").args(["-F", "-r"]).arg(tree);
    for api in ["proc", "sys", "dev", "run"] {
        cmd = cmd.arg("-e").arg(tree.join(api));
    }
    cmd.arg(&contexts).arg(tree).run()?;
    Ok(Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kickstart::check::{LmcMode, Policy, check};

    fn model(text: &str) -> Model {
        let dir = tempfile::tempdir().unwrap();
        let ks = dir.path().join("t.ks");
        fs::write(&ks, text).unwrap();
        check(&ks, None, Policy::Generic, LmcMode::Off).model
    }

    #[test]
    fn commands_are_applied_ignored_or_refused() {
        let m = model(
            "url --url=file:///r\nzerombr\nclearpart --all\npart / --size=4096 --fstype=ext4\npart swap --size=100\npoweroff\ntext\n\
             autopart\npart /var --size=100\niscsiname iqn.2001-04.com.example\n%packages\n%end\n%addon com_redhat_kdump\n%end\n",
        );
        let (errors, no_effect) = sort_commands(&m);
        let all = errors.join("\n");
        assert!(all.contains("`autopart` cannot be honoured"), "{all}");
        assert!(all.contains("`iscsiname` cannot be honoured"), "{all}");
        assert!(all.contains("part /var"), "{all}");
        assert_eq!(errors.len(), 3, "{all}");
        let quiet = no_effect.join("\n");
        for name in ["zerombr", "clearpart", "poweroff", "text", "part swap"] {
            assert!(quiet.contains(name), "{quiet}");
        }
    }

    #[test]
    fn the_rpmdb_follows_the_target() {
        assert_eq!(rpmdb_path(Version::rhel(9)), "/var/lib/rpm");
        assert_eq!(rpmdb_path(Version::rhel(10)), "/usr/lib/sysimage/rpm");
    }
}
