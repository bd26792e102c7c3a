//! `nodeimg doctor`: what this host can do, and what a build here would lack.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::sys::{self, Cmd, LoopDevice, LoopOptions, Mount, cancel};
use crate::units::human;

/// Below this much free space the default 5 GiB root filesystem cannot even be created.
const MIN_FREE: u64 = 6 << 30;
/// A default build holds the installed tree, rootfs.img, the squashfs and the RPM at once.
const COMFORTABLE_FREE: u64 = 16 << 30;
/// A `--version` that takes longer than this is treated as broken.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// What a tool means to the default build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    /// The default build cannot run without it.
    Build,
    /// An installer backend: the default build needs at least one.
    Backend,
    /// A feature is lost without it; the default build runs.
    Optional,
}

/// An external tool nodeimg can use.
#[derive(Debug)]
pub struct Tool {
    pub name: &'static str,
    /// Arguments that make it print its version (on stdout or stderr).
    pub version_args: &'static [&'static str],
    pub need: Need,
    /// Whether build.json records its version (the tools that shape the artifacts).
    pub recorded: bool,
    /// The nodeimg feature it enables.
    pub enables: &'static str,
    /// What is lost without it.
    pub without: &'static str,
    /// Package that provides it: Debian/Ubuntu, Fedora/EL.
    pub packages: (&'static str, &'static str),
}

/// Every external tool nodeimg runs, in pipeline order.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "livemedia-creator",
        // lmc_parser has only -V for its version.
        version_args: &["-V"],
        need: Need::Backend,
        recorded: true,
        enables: "installer backend `lmc`: anaconda installs the kickstart, as upstream oVirt Node and koji do",
        without: "builds use the native dnf backend",
        packages: ("(not packaged)", "lorax-lmc-novirt"),
    },
    Tool {
        name: "mock",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "`--mock CONFIG`: livemedia-creator in a mock chroot, as koji builders run it",
        without: "livemedia-creator runs on this host only",
        packages: ("(not packaged)", "mock"),
    },
    Tool {
        name: "dnf",
        version_args: &["--version"],
        need: Need::Backend,
        recorded: true,
        enables: "installer backend `dnf`: installs the kickstart into a directory, no anaconda or VM",
        without: "builds need livemedia-creator",
        packages: ("dnf", "dnf"),
    },
    Tool {
        name: "rpm",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: true,
        enables: "checks written RPMs with rpm itself (signatures, digests, queries)",
        without: "update RPMs are not cross-checked by rpm after writing",
        packages: ("rpm", "rpm"),
    },
    Tool {
        name: "rpmbuild",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "builds the update RPM from spec/ as koji's wrapper-RPM task would",
        without: "only nodeimg's own RPM writer is available",
        packages: ("rpm", "rpm-build"),
    },
    Tool {
        name: "createrepo_c",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "publishes built RPMs as a yum repository (update tests, local mirrors)",
        without: "no repository metadata is written",
        packages: ("createrepo-c", "createrepo_c"),
    },
    Tool {
        name: "mksquashfs",
        version_args: &["-version"],
        need: Need::Build,
        recorded: true,
        enables: "writes the liveimg squashfs around LiveOS/rootfs.img",
        without: "no Node image can be written",
        packages: ("squashfs-tools", "squashfs-tools"),
    },
    Tool {
        name: "unsquashfs",
        version_args: &["-version"],
        need: Need::Build,
        recorded: false,
        enables: "checks that a written squashfs holds exactly LiveOS/rootfs.img",
        without: "written images cannot be verified",
        packages: ("squashfs-tools", "squashfs-tools"),
    },
    Tool {
        name: "mkfs.ext4",
        version_args: &["-V"],
        need: Need::Build,
        recorded: true,
        enables: "creates LiveOS/rootfs.img (label LiveOS) from an installed tree",
        without: "no root filesystem can be made from a tree",
        packages: ("e2fsprogs", "e2fsprogs"),
    },
    Tool {
        name: "e2image",
        // e2image has no version option; without arguments it prints its version
        // with the usage text.
        version_args: &[],
        need: Need::Build,
        recorded: true,
        enables: "copies the root filesystem out of a filesystem or disk image, used blocks only",
        without: "filesystem and disk images cannot be packed",
        packages: ("e2fsprogs", "e2fsprogs"),
    },
    Tool {
        name: "e2fsck",
        version_args: &["-V"],
        need: Need::Build,
        recorded: true,
        enables: "checks rootfs.img and zeroes its free blocks so they compress to nothing",
        without: "root filesystems cannot be checked before packing",
        packages: ("e2fsprogs", "e2fsprogs"),
    },
    Tool {
        name: "tune2fs",
        version_args: &["-V"],
        need: Need::Build,
        recorded: false,
        enables: "gives rootfs.img the label LiveOS that dracut and anaconda look for",
        without: "images with another label cannot be packed",
        packages: ("e2fsprogs", "e2fsprogs"),
    },
    Tool {
        name: "resize2fs",
        // Like e2image: the version comes with the usage text.
        version_args: &[],
        need: Need::Optional,
        recorded: false,
        enables: "`liveimg pack --size` on filesystem and disk images",
        without: "packed images keep the size of their filesystem",
        packages: ("e2fsprogs", "e2fsprogs"),
    },
    Tool {
        name: "losetup",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "attaches disk and filesystem images (lmc backend, disk images)",
        without: "images cannot be attached; the loop probe below is skipped",
        packages: ("mount", "util-linux"),
    },
    Tool {
        name: "mount",
        version_args: &["--version"],
        need: Need::Build,
        recorded: false,
        enables: "mounts /proc, /sys, /dev and images for installs and %post chroots",
        without: "no install can run",
        packages: ("mount", "util-linux"),
    },
    Tool {
        name: "qemu-img",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "reads qcow2 disk images (`--make-disk --qcow2` results)",
        without: "only raw disk images are accepted",
        packages: ("qemu-utils", "qemu-img"),
    },
    Tool {
        name: "systemctl",
        version_args: &["--version"],
        need: Need::Optional,
        recorded: false,
        enables: "dnf backend: the kickstart's `services` and `firstboot` (systemctl --root on the tree)",
        without: "dnf builds of kickstarts with services or firstboot lines fail",
        packages: ("systemd", "systemd"),
    },
    Tool {
        name: "setfiles",
        // No version option: see NO_VERSION_OPTION.
        version_args: &[],
        need: Need::Optional,
        recorded: false,
        enables: "dnf backend: SELinux labels from the tree's own policy",
        without: "dnf builds of trees with an SELinux policy fail (they would boot unlabelled)",
        packages: ("policycoreutils", "policycoreutils"),
    },
];

/// Tools with no way to ask their version (setfiles prints its usage for anything).
const NO_VERSION_OPTION: &[&str] = &["setfiles"];

/// Directories outside a user's PATH where system tools often live.
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin"];

#[derive(Debug, Serialize)]
pub struct ToolReport {
    pub name: &'static str,
    pub found: bool,
    pub path: Option<PathBuf>,
    pub version: Option<String>,
    pub need: Need,
    pub enables: &'static str,
    pub without: &'static str,
    pub package_deb: &'static str,
    pub package_rpm: &'static str,
    /// Something worth knowing: a tool off PATH, a version that could not be read.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Error,
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub nodeimg_version: &'static str,
    pub workdir: PathBuf,
    pub tools: Vec<ToolReport>,
    pub checks: Vec<Check>,
    /// What stops a default `nodeimg build` on this host; empty when it can run.
    pub problems: Vec<String>,
    /// The README's two commands: whether this host runs them, and why not.
    pub readme: Vec<ReadmeCommand>,
}

/// One of the README's two commands, judged on this host.
#[derive(Debug, Serialize)]
pub struct ReadmeCommand {
    pub command: &'static str,
    pub what: &'static str,
    pub verdict: Verdict,
    /// Programs it needs that are not here; `scripts/setup.sh` installs them.
    pub missing: Vec<String>,
    /// What set-up cannot fix: not root, no loop devices, no package manager.
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything is here.
    Ready,
    /// `scripts/setup.sh` (part of the command) installs what is missing.
    AfterSetup,
    /// It cannot run on this host.
    Blocked,
}

/// What the README's main job (offline) needs beyond the tools of a default build.
const MAIN_JOB_NEEDS: &[&str] = &[
    "cargo",
    "busybox",
    "unshare",
    "createrepo_c",
    "rpmbuild",
    "dnf",
];
/// What the tests need besides: Python, signing, partitioning, qcow2, and PostgreSQL
/// for the real kojihub (Debian's wrapper, or initdb on PATH).
const TEST_NEEDS: &[&str] = &[
    "python3",
    "gpg",
    "sgdisk",
    "sfdisk",
    "debugfs",
    "qemu-img",
    "pg_ctlcluster|initdb",
];

/// The README's two commands, what each does, and what each needs.
fn readme_commands() -> [(&'static str, &'static str, Vec<&'static str>); 2] {
    [
        (
            "scripts/setup.sh && examples/offline/run.sh",
            "the main job: build, inspect and upgrade the offline Node into out/",
            MAIN_JOB_NEEDS.to_vec(),
        ),
        (
            "scripts/setup.sh && scripts/test.sh",
            "the tests: formatting, lints, Rust and Python tests, a real koji",
            [MAIN_JOB_NEEDS, TEST_NEEDS].concat(),
        ),
    ]
}

/// Judge the README's commands from the tools and host checks already examined.
fn judge_readme(tools: &[ToolReport], checks: &[Check]) -> Vec<ReadmeCommand> {
    // rustup installs cargo under ~/.cargo/bin, which setup.sh adds to PATH itself.
    let cargo_bin = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin"));
    let found = |name: &str| {
        tools.iter().any(|t| t.name == name && t.found)
            || crate::sys::cmd::which(name).is_some()
            || SBIN_DIRS
                .iter()
                .map(Path::new)
                .chain(cargo_bin.as_deref())
                .any(|dir| dir.join(name).is_file())
    };
    let package_manager = found("apt-get") || found("dnf");
    let mut base_missing: Vec<String> = tools
        .iter()
        .filter(|t| t.need == Need::Build && !t.found)
        .map(|t| t.name.to_owned())
        .collect();
    base_missing.sort();
    let mut blockers: Vec<String> = checks
        .iter()
        .filter(|c| c.status == Status::Error && c.name != "workdir")
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if let Some(workdir) = checks
        .iter()
        .find(|c| c.name == "workdir" && c.status == Status::Error)
    {
        blockers.push(format!("workdir: {}", workdir.detail));
    }
    readme_commands()
        .into_iter()
        .map(|(command, what, needs)| {
            let mut missing = base_missing.clone();
            missing.extend(
                needs
                    .iter()
                    .filter(|n| !n.split('|').any(found))
                    .map(|n| n.split('|').next().unwrap_or(n).to_owned()),
            );
            missing.sort();
            missing.dedup();
            let mut blockers = blockers.clone();
            if !missing.is_empty() && !package_manager {
                blockers.push(
                    "neither apt-get nor dnf is here: scripts/setup.sh cannot install what is missing"
                        .to_owned(),
                );
            }
            let verdict = match (blockers.is_empty(), missing.is_empty()) {
                (false, _) => Verdict::Blocked,
                (true, false) => Verdict::AfterSetup,
                (true, true) => Verdict::Ready,
            };
            ReadmeCommand {
                command,
                what,
                verdict,
                missing,
                blockers,
            }
        })
        .collect()
}

impl Report {
    pub fn build_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Look at the host. Slow parts: one `--version` per tool and a loop-mount probe.
pub fn examine(workdir: &Path) -> Result<Report> {
    let tools: Vec<ToolReport> = TOOLS.iter().map(examine_tool).collect();
    cancel::check()?;
    let root = sys::is_root();
    let have = |name: &str| tools.iter().any(|t| t.name == name && t.found);
    let checks = vec![
        check_root(root),
        check_loop_mount(
            workdir,
            root,
            have("losetup") && have("mount") && have("mkfs.ext4"),
        )?,
        check_workdir(workdir),
    ];

    let mut problems = Vec::new();
    for tool in tools.iter().filter(|t| t.need == Need::Build && !t.found) {
        problems.push(format!("{} is missing: {}", tool.name, tool.without));
    }
    if !tools.iter().any(|t| t.need == Need::Backend && t.found) {
        problems.push(
            "no installer backend: install dnf (or livemedia-creator on Fedora/EL)".to_owned(),
        );
    }
    for check in checks.iter().filter(|c| c.status == Status::Error) {
        problems.push(format!("{}: {}", check.name, check.detail));
    }
    let readme = judge_readme(&tools, &checks);
    Ok(Report {
        nodeimg_version: env!("CARGO_PKG_VERSION"),
        workdir: workdir.to_owned(),
        tools,
        checks,
        problems,
        readme,
    })
}

/// The version of one of the tools in [`TOOLS`], when it is installed and says one.
pub fn tool_version(name: &str) -> Option<String> {
    TOOLS
        .iter()
        .find(|t| t.name == name)
        .and_then(|tool| examine_tool(tool).version)
}

fn examine_tool(tool: &Tool) -> ToolReport {
    let mut report = ToolReport {
        name: tool.name,
        found: false,
        path: None,
        version: None,
        need: tool.need,
        enables: tool.enables,
        without: tool.without,
        package_deb: tool.packages.0,
        package_rpm: tool.packages.1,
        note: None,
    };
    let Some(path) = sys::cmd::which(tool.name) else {
        report.note = SBIN_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(tool.name))
            .find(|candidate| sys::cmd::is_executable(candidate))
            .map(|found| {
                format!(
                    "{} exists but its directory is not on PATH",
                    found.display()
                )
            });
        return report;
    };
    report.found = true;
    if NO_VERSION_OPTION.contains(&tool.name) {
        report.path = Some(path);
        return report;
    }
    let probe = Cmd::new(&path)
        .args(tool.version_args)
        .env("LC_ALL", "C")
        .capture()
        .any_status()
        .quiet()
        .timeout(VERSION_TIMEOUT)
        .run();
    match probe {
        Ok(out) => {
            let text = [out.stdout, out.stderr].concat();
            report.version = parse_version(&String::from_utf8_lossy(&text));
            if report.version.is_none() {
                report.note = Some(format!(
                    "no version in the output of `{}`",
                    Cmd::new(&path).args(tool.version_args).display()
                ));
            }
        }
        Err(err) => report.note = Some(format!("could not ask for its version: {err}")),
    }
    report.path = Some(path);
    report
}

/// The first version-like word: digits and dots, with a release suffix allowed
/// (`4.18.0`, `34.9.22-1.el9`, `1.47.0`), punctuation around it dropped.
pub fn parse_version(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| "()[],;:".contains(c)))
        .map(|word| word.strip_prefix('v').unwrap_or(word))
        .find(|word| {
            let numeric: &str = word.split(['-', '+', '~']).next().unwrap_or_default();
            let mut parts = numeric.split('.');
            let leading_ok = parts
                .next()
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            let rest: Vec<&str> = parts.collect();
            leading_ok
                && !rest.is_empty()
                && rest.iter().all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c))
        })
        .map(str::to_owned)
}

fn check_root(root: bool) -> Check {
    if root {
        Check {
            name: "root",
            status: Status::Ok,
            detail: "running as root".to_owned(),
        }
    } else {
        Check {
            name: "root",
            status: Status::Error,
            detail: "not running as root: installs, chroots, mounts and loop devices need root (inspecting images does not)".to_owned(),
        }
    }
}

/// Attach a small ext4 image to a loop device, mount it, write and read a file.
/// This is what livemedia-creator and image inspection do, on a small scale.
fn check_loop_mount(workdir: &Path, root: bool, tools_present: bool) -> Result<Check> {
    let name = "loop-mount";
    if !root {
        return Ok(Check {
            name,
            status: Status::Skipped,
            detail: "needs root".to_owned(),
        });
    }
    if !tools_present {
        return Ok(Check {
            name,
            status: Status::Skipped,
            detail: "needs losetup, mount and mkfs.ext4".to_owned(),
        });
    }
    match probe_loop_mount(workdir) {
        Ok(device) => Ok(Check {
            name,
            status: Status::Ok,
            detail: format!("attached, mounted and wrote a probe filesystem on {device}"),
        }),
        // An interruption is not a finding about the host: stop the doctor.
        Err(err) if crate::exit::interruption(&err).is_some() => Err(err),
        Err(err) => Ok(Check {
            name,
            status: Status::Error,
            detail: format!("loop devices or mounts do not work here: {err:#}"),
        }),
    }
}

fn probe_loop_mount(workdir: &Path) -> Result<String> {
    // Drop order matters: `mount` goes first, then `device`, then `scratch`.
    let scratch = sys::temp_dir(workdir, ".nodeimg-doctor-")?;
    let image = scratch.path().join("probe.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(8 << 20))
        .with_context(|| format!("creating {}", image.display()))?;
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "nodeimg-probe"])
        .arg(&image)
        .quiet()
        .run()?;
    let device = LoopDevice::attach(&image, LoopOptions::default())?;
    cancel::pause_point("doctor.loop-attached")?;
    let target = scratch.path().join("mnt");
    std::fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?;
    let mount = Mount::new(device.path(), &target, Some("ext4"), &[])?;
    let probe = mount.target().join("written-by-nodeimg");
    std::fs::write(&probe, b"ok").with_context(|| format!("writing {}", probe.display()))?;
    let back = std::fs::read(&probe).with_context(|| format!("reading {}", probe.display()))?;
    anyhow::ensure!(
        back == b"ok",
        "{} read back different bytes",
        probe.display()
    );
    cancel::pause_point("doctor.mounted")?;
    let device_name = device.path().display().to_string();
    mount.unmount()?;
    device.detach()?;
    Ok(device_name)
}

fn check_workdir(workdir: &Path) -> Check {
    let name = "workdir";
    let stat = match nix::sys::statvfs::statvfs(workdir) {
        Ok(stat) => stat,
        Err(err) => {
            return Check {
                name,
                status: Status::Error,
                detail: format!(
                    "{}: {err}; create it or choose another with --workdir",
                    workdir.display()
                ),
            };
        }
    };
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let (status, verdict) = if free < MIN_FREE {
        (
            Status::Error,
            format!(
                "too little for a build (at least {} needed)",
                human(MIN_FREE)
            ),
        )
    } else if free < COMFORTABLE_FREE {
        (
            Status::Warn,
            format!(
                "tight for a default build ({} recommended)",
                human(COMFORTABLE_FREE)
            ),
        )
    } else {
        (Status::Ok, "enough for a default build".to_owned())
    };
    Check {
        name,
        status,
        detail: format!("{}: {} free, {verdict}", workdir.display(), human(free)),
    }
}

/// The report for people.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let width = TOOLS.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "nodeimg {} on this host\n\nTools",
        report.nodeimg_version
    );
    for tool in &report.tools {
        let (mark, found) = match (&tool.path, tool.need) {
            (Some(path), _) => (
                "ok",
                format!(
                    "{} {}",
                    tool.version.as_deref().unwrap_or("(version unknown)"),
                    path.display()
                ),
            ),
            (None, Need::Build) => ("MISSING", format!("needed: {}", tool.without)),
            (None, _) => ("absent", format!("without it {}", tool.without)),
        };
        let _ = writeln!(out, "  {mark:<8}{:<width$}  {found}", tool.name);
        let _ = writeln!(out, "  {:<8}{:<width$}  {}", "", "", tool.enables);
        if tool.path.is_none() {
            let _ = writeln!(
                out,
                "  {:<8}{:<width$}  install: {} (Debian/Ubuntu), {} (Fedora/EL)",
                "", "", tool.package_deb, tool.package_rpm
            );
        }
        if let Some(note) = &tool.note {
            let _ = writeln!(out, "  {:<8}{:<width$}  note: {note}", "", "");
        }
    }
    let _ = writeln!(out, "\nHost");
    for check in &report.checks {
        let mark = match check.status {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Error => "ERROR",
            Status::Skipped => "skipped",
        };
        let _ = writeln!(out, "  {mark:<8}{:<width$}  {}", check.name, check.detail);
    }
    if report.build_ready() {
        let _ = writeln!(out, "\nA default `nodeimg build` can run on this host.");
    } else {
        let _ = writeln!(out, "\nA default `nodeimg build` cannot run on this host:");
        for problem in &report.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    let _ = writeln!(out, "\nThe README's commands");
    for readme in &report.readme {
        let verdict = match readme.verdict {
            Verdict::Ready => "runs on this host".to_owned(),
            Verdict::AfterSetup => format!(
                "runs once scripts/setup.sh (its first step) installs {}",
                readme.missing.join(", ")
            ),
            Verdict::Blocked => format!("cannot run here: {}", readme.blockers.join("; ")),
        };
        let _ = writeln!(out, "  {}\n    {}: {verdict}", readme.command, readme.what);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_from_real_tool_output() {
        let cases = [
            ("RPM version 4.18.0\n", "4.18.0"),
            (
                "Version: 0.17.3 (Features: DeltaRPM LegacyWeakdeps )\n",
                "0.17.3",
            ),
            (
                "mksquashfs version 4.5.1 (2022/03/17)\ncopyright (C) 2022",
                "4.5.1",
            ),
            (
                "mke2fs 1.47.0 (5-Feb-2023)\n\tUsing EXT2FS Library version 1.47.0\n",
                "1.47.0",
            ),
            (
                "qemu-img version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)",
                "10.0.2",
            ),
            ("livemedia-creator 34.9.22-1.el9\n", "34.9.22-1.el9"),
            ("losetup from util-linux 2.38.1\n", "2.38.1"),
            ("4.14.0\n  Installed: dnf-0:4.14.0-3.noarch", "4.14.0"),
            ("mock 5.6", "5.6"),
            ("v1.2", "1.2"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_version(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn no_version_in_plain_words_or_dates() {
        for text in [
            "usage: tool [options]",
            "built 2022/03/17",
            "",
            "1 file",
            "3.",
            ".5",
        ] {
            assert_eq!(parse_version(text), None, "{text:?}");
        }
    }
}
