//! The kickstart's scripts, where and how anaconda runs them.
//!
//! - `%pre` on the host, before anything is installed;
//! - `%pre-install` and `%post --nochroot` on the host with the tree at /mnt/sysroot
//!   (`INSTALL_ROOT` and `ANA_INSTALL_PATH` say so), bound in the script's own mount
//!   namespace so concurrent builds never see each other's tree;
//! - `%post` chrooted into the tree with /proc, /sys, /dev, /run and the host's
//!   resolv.conf bound in;
//! - `%onerror` on the host when the install fails.
//!
//! Each script's output (stdout and stderr in the order written) goes to
//! `logs/ks-script-N.log`, and to its `--log` file. `--erroronfail` makes a failure
//! fail the build with the script's last lines; otherwise it is a warning, as in
//! anaconda.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::tree_has;
use crate::install::sandbox::{self, Sandbox};
use crate::kickstart::model::Script;
use crate::kickstart::model::ScriptSection;

/// Where the tree is for `--nochroot` scripts, as in anaconda.
pub const SYSROOT: &str = "/mnt/sysroot";

/// Where and how a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the host (`%pre`, `%onerror`).
    Host,
    /// On the host with the tree at /mnt/sysroot.
    Sysroot,
    /// In a chroot of the tree.
    Chroot,
}

fn place(script: &Script) -> Place {
    match script.section {
        ScriptSection::Post if !script.nochroot => Place::Chroot,
        ScriptSection::Post | ScriptSection::PreInstall => Place::Sysroot,
        _ => Place::Host,
    }
}

/// Runs scripts, numbering their logs across the build.
pub struct Runner<'a> {
    pub tree: &'a Path,
    pub work: &'a Path,
    pub logs: &'a Path,
    pub count: usize,
}

impl Runner<'_> {
    /// Run every script of `section`, in order.
    pub fn section(
        &mut self,
        scripts: &[crate::kickstart::model::Script],
        section: ScriptSection,
    ) -> Result<usize> {
        let mut ran = 0;
        for script in scripts.iter().filter(|s| s.section == section) {
            self.run(script)?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Run one script.
    pub fn run(&mut self, script: &Script) -> Result<()> {
        self.count += 1;
        let n = self.count;
        let place = place(script);
        let what = format!(
            "{}{} ({})",
            script.section,
            if script.nochroot { " --nochroot" } else { "" },
            script.origin
        );
        let interpreter = script.interpreter.as_deref().unwrap_or("/bin/sh");
        ensure!(
            interpreter.starts_with('/') && !interpreter.contains(['\n', '\0']),
            "{what}: --interpreter {interpreter} must be an absolute path"
        );
        let name = format!("ks-script-{n}");
        let (file, file_arg) = self.script_file(script, place, &name, &what, interpreter)?;
        tracing::info!("running {what}: {interpreter}, log logs/{name}.log");
        let (sandbox, resolv_placeholder) = self.sandbox(place)?;
        let mut cmd = sandbox
            .command(interpreter, [file_arg])?
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .capture()
            .any_status();
        if place == Place::Sysroot {
            cmd = cmd
                .env("INSTALL_ROOT", SYSROOT)
                .env("ANA_INSTALL_PATH", SYSROOT);
        }
        if place != Place::Chroot {
            cmd = cmd.current_dir(self.work);
        }
        let result = cmd.run();
        if place == Place::Chroot {
            sandbox::kill_processes_in(self.tree);
        }
        let _ = fs::remove_file(&file);
        if let Some(placeholder) = resolv_placeholder {
            let _ = fs::remove_file(placeholder);
        }
        let output = result?;
        self.judge(script, place, (&what, &name, interpreter), &output)
    }

    /// Write the body where the interpreter reads it: inside the tree for a chroot.
    /// The file, and its path as the script sees it.
    fn script_file(
        &self,
        script: &Script,
        place: Place,
        name: &str,
        what: &str,
        interpreter: &str,
    ) -> Result<(PathBuf, String)> {
        let (file, file_arg) = match place {
            Place::Chroot => {
                ensure!(
                    tree_has(self.tree, interpreter.trim_start_matches('/')),
                    "{what}: the interpreter {interpreter} is not in the tree (is it in %packages?)"
                );
                let tmp = self.tree.join("tmp");
                if !tmp.exists() {
                    fs::create_dir_all(&tmp)?;
                    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))?;
                }
                (tmp.join(name), format!("/tmp/{name}"))
            }
            _ => {
                let file = self.work.join(name);
                let arg = file.display().to_string();
                (file, arg)
            }
        };
        super::write_file(&file, script.body.as_bytes(), 0o700)?;
        Ok((file, file_arg))
    }

    /// The sandbox a script of `place` runs in, and the empty resolv.conf made in the
    /// tree to bind the host's over (removed after the script).
    fn sandbox(&self, place: Place) -> Result<(Sandbox, Option<PathBuf>)> {
        let mut resolv_placeholder = None;
        let sandbox = match place {
            Place::Host => Sandbox::new(self.tree).merge_output(),
            Place::Sysroot => {
                sandbox::mount_point(Path::new(SYSROOT), true)?;
                Sandbox::new(self.tree)
                    .api_filesystems()?
                    .bind(self.tree, Path::new(SYSROOT))
                    .merge_output()
            }
            Place::Chroot => {
                let mut sandbox = Sandbox::new(self.tree)
                    .api_filesystems()?
                    .chroot()
                    .merge_output();
                // Name resolution in the chroot: the host's resolv.conf over the
                // tree's (never over a link, which would point at the host's files).
                let host = Path::new("/etc/resolv.conf");
                let inside = self.tree.join("etc/resolv.conf");
                if host.is_file() && self.tree.join("etc").is_dir() {
                    let existed = fs::symlink_metadata(&inside).is_ok();
                    if sandbox::mount_point(&inside, false).is_ok() {
                        if !existed {
                            resolv_placeholder = Some(inside.clone());
                        }
                        sandbox = sandbox.bind(host, &inside);
                    }
                }
                sandbox
            }
        };
        Ok((sandbox, resolv_placeholder))
    }

    /// Keep the script's output as its log (and where `--log` says), then judge its
    /// status: a failure stops the install only with `--erroronfail`.
    fn judge(
        &self,
        script: &Script,
        place: Place,
        (what, name, interpreter): (&str, &str, &str),
        output: &crate::sys::cmd::Output,
    ) -> Result<()> {
        let status = output.status;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let log = self.logs.join(format!("{name}.log"));
        fs::write(
            &log,
            format!(
                "# {what}, interpreter {interpreter}: {}\n{text}",
                describe(status)
            ),
        )
        .with_context(|| format!("writing {}", log.display()))?;
        if let Some(path) = &script.log {
            self.write_script_log(place, path, &text)
                .with_context(|| format!("{what}: --log={path}"))?;
        }
        if status.success() {
            return Ok(());
        }
        let tail: Vec<&str> = text.lines().rev().take(20).collect::<Vec<_>>();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let shown = if tail.is_empty() {
            "(no output)".to_owned()
        } else {
            tail.join("\n    ")
        };
        if script.erroronfail {
            bail!(
                "{what} failed ({}) and has --erroronfail; its output (logs/{name}.log):\n    {shown}",
                describe(status)
            );
        }
        tracing::warn!(
            "{what} failed ({}); going on, as it has no --erroronfail. Its output:\n    {shown}",
            describe(status)
        );
        Ok(())
    }

    /// `--log=PATH`: inside the tree for a chrooted script; on the host otherwise, where
    /// /mnt/sysroot/… means the tree.
    fn write_script_log(&self, place: Place, path: &str, text: &str) -> Result<()> {
        ensure!(
            path.starts_with('/') && !path.split('/').any(|c| c == ".."),
            "the log must be an absolute path without `..`"
        );
        let target: PathBuf = match place {
            Place::Chroot => self.tree.join(path.trim_start_matches('/')),
            _ => match path.strip_prefix(SYSROOT) {
                Some(rest) => self.tree.join(rest.trim_start_matches('/')),
                None => PathBuf::from(path),
            },
        };
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)?;
        file.write_all(text.as_bytes())?;
        Ok(())
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by {}", crate::sys::cancel::signal_name(sig)),
        _ => "no exit status".to_owned(),
    }
}
