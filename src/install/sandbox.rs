//! Running a program against an installed tree without leaving anything behind.
//!
//! rpm scriptlets and `%post` scripts need /proc, /sys, /dev and /run inside the tree;
//! dnf needs our shared cache bound in; `%post --nochroot` needs the tree at
//! /mnt/sysroot, as anaconda has it. All of that happens in a private mount namespace
//! that belongs to the program: when it and its children are gone, the kernel drops
//! every mount with the namespace. Nothing to unmount after success, failure, SIGTERM
//! or SIGKILL, and nothing shows in the host's mount table meanwhile.
//!
//! nodeimg re-executes itself (`nodeimg internal-sandbox …`, hidden from `--help`) to
//! enter the namespace, mount, chroot and exec the program: no unsafe pre-exec code,
//! no shell.
//!
//! Inside a chroot (nodeimg in a mock buildroot, as koji's builders run it) `/` is not
//! a mount point and cannot be made private, so mounts made in the new namespace would
//! propagate to the host's when its `/` is shared (systemd makes it so). There the
//! helper keeps running: it mounts, runs the program as its child (another
//! `internal-sandbox` that only chroots and execs), and unmounts everything when the
//! child ends, whatever it ended with; SIGINT, SIGTERM and SIGHUP reach the child (its
//! process group) and the helper waits for it before it unmounts.
//!
//! Processes that outlive a chrooted program (a daemon started by a scriptlet) are
//! found by their root directory and killed, as mock and anaconda do.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::sys::cmd::Cmd;

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "internal-sandbox";

/// The API filesystems bound into a tree, as anaconda and mock provide them.
const API_FILESYSTEMS: [&str; 4] = ["/proc", "/sys", "/dev", "/run"];

/// How to run a program against `tree`.
#[derive(Debug, Clone)]
pub struct Sandbox {
    tree: PathBuf,
    api: bool,
    binds: Vec<(PathBuf, PathBuf)>,
    chroot: bool,
    merge_output: bool,
}

impl Sandbox {
    pub fn new(tree: &Path) -> Sandbox {
        Sandbox {
            tree: tree.to_owned(),
            api: false,
            binds: Vec::new(),
            chroot: false,
            merge_output: false,
        }
    }

    /// Bind /proc, /sys, /dev and /run into the tree (creating the mount points).
    pub fn api_filesystems(mut self) -> Result<Sandbox> {
        for dir in API_FILESYSTEMS {
            mount_point(&self.tree.join(&dir[1..]), true)?;
        }
        self.api = true;
        Ok(self)
    }

    /// Bind `source` over `target` (an absolute path as the namespace sees it before any
    /// chroot; it must exist and not be a symbolic link).
    pub fn bind(mut self, source: &Path, target: &Path) -> Sandbox {
        self.binds.push((source.to_owned(), target.to_owned()));
        self
    }

    /// Run the program with the tree as its root directory.
    pub fn chroot(mut self) -> Sandbox {
        self.chroot = true;
        self
    }

    /// Send the program's stderr to its stdout: one log in the order it was written.
    pub fn merge_output(mut self) -> Sandbox {
        self.merge_output = true;
        self
    }

    /// The command that runs `program args…` in the sandbox.
    pub fn command<I, S>(&self, program: &str, args: I) -> Result<Cmd>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let exe = std::env::current_exe().context("finding nodeimg's own executable")?;
        let mut cmd = Cmd::new(exe).arg(SUBCOMMAND).arg("--tree").arg(&self.tree);
        if self.api {
            cmd = cmd.arg("--api");
        }
        for (source, target) in &self.binds {
            let mut spec = source.as_os_str().to_owned();
            spec.push("=");
            spec.push(target);
            cmd = cmd.arg("--bind").arg(spec);
        }
        if self.chroot {
            cmd = cmd.arg("--chroot");
        }
        if self.merge_output {
            cmd = cmd.arg("--merge-output");
        }
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        Ok(cmd.arg("--").arg(program).args(args))
    }
}

/// Make sure `path` exists as a directory (or file) that is not a symbolic link: a link
/// would send a bind mount somewhere outside the tree.
pub fn mount_point(path: &Path, dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "{} is a symbolic link; nodeimg mounts nothing over a link (it could point out of the tree)",
            path.display()
        ),
        Ok(meta) if meta.is_dir() == dir => Ok(()),
        Ok(_) => bail!(
            "{} is not a {}",
            path.display(),
            if dir { "directory" } else { "file" }
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => if dir {
            fs::create_dir_all(path)
        } else {
            fs::write(path, b"")
        }
        .with_context(|| format!("creating {}", path.display())),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Arguments of the hidden subcommand.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    #[arg(long)]
    pub tree: PathBuf,
    #[arg(long)]
    pub api: bool,
    /// SOURCE=TARGET
    #[arg(long)]
    pub bind: Vec<OsString>,
    #[arg(long)]
    pub chroot: bool,
    /// Already in the namespace with everything mounted: only chroot and exec.
    #[arg(long)]
    pub in_namespace: bool,
    #[arg(long)]
    pub merge_output: bool,
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

/// In the re-executed nodeimg: enter a private mount namespace, mount, chroot, exec.
/// Returns only on failure.
pub fn enter(args: SandboxArgs) -> Result<std::convert::Infallible> {
    if args.in_namespace {
        return chroot_and_exec(&args);
    }
    // Before unshare: afterwards /proc/self/exe no longer resolves against a chroot's
    // root (the executable's mount belongs to the old namespace).
    let exe = std::env::current_exe().context("finding nodeimg's own executable")?;
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS): a private mount namespace")?;
    // Nothing mounted below propagates back to the host.
    let private = match mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        Ok(()) => true,
        // `/` is not a mount point: we are in a chroot (a mock buildroot).
        Err(nix::errno::Errno::EINVAL) => false,
        Err(err) => return Err(err).context("making / private in the new mount namespace"),
    };
    let mut mounted: Vec<PathBuf> = Vec::new();
    let mut bind = |source: &Path, target: &Path| -> Result<()> {
        let meta = fs::symlink_metadata(target)
            .with_context(|| format!("mount point {}", target.display()))?;
        if meta.file_type().is_symlink() {
            bail!("mount point {} is a symbolic link", target.display());
        }
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("binding {} to {}", source.display(), target.display()))?;
        mounted.push(target.to_owned());
        Ok(())
    };
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    if args.api {
        for dir in API_FILESYSTEMS {
            pairs.push((PathBuf::from(dir), args.tree.join(&dir[1..])));
        }
    }
    for spec in &args.bind {
        let text = spec.to_string_lossy();
        let (source, target) = text
            .split_once('=')
            .with_context(|| format!("--bind {text}: expected SOURCE=TARGET"))?;
        pairs.push((PathBuf::from(source), PathBuf::from(target)));
    }
    for (source, target) in &pairs {
        if let Err(err) = bind(source, target) {
            // Only matters in a chroot, where they would outlive this namespace.
            unmount_all(&mounted);
            return Err(err);
        }
    }
    if !private {
        return run_then_unmount(&args, &exe, mounted);
    }
    chroot_and_exec(&args)
}

/// Undo `mounted` (innermost last in the list, so in reverse), lazily: a process that
/// still holds one cannot keep the others.
fn unmount_all(mounted: &[PathBuf]) {
    for target in mounted.iter().rev() {
        if let Err(err) = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("nodeimg: unmounting {}: {err}", target.display());
        }
    }
}

/// The chroot fallback: the program runs as a child of this helper, which unmounts
/// what it mounted when the child ends.
fn run_then_unmount(
    args: &SandboxArgs,
    exe: &Path,
    mounted: Vec<PathBuf>,
) -> Result<std::convert::Infallible> {
    // A signal for the build reaches the child through the process group; this
    // helper only notes it and waits, so that it still unmounts.
    let noted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&noted))
            .context("installing signal handlers")?;
    }
    let mut child = std::process::Command::new(exe);
    child
        .arg(SUBCOMMAND)
        .arg("--in-namespace")
        .arg("--tree")
        .arg(&args.tree);
    if args.chroot {
        child.arg("--chroot");
    }
    if args.merge_output {
        child.arg("--merge-output");
    }
    child.arg("--").args(&args.command);
    let status = child.status();
    unmount_all(&mounted);
    let status = status.with_context(|| format!("running {} {SUBCOMMAND}", exe.display()))?;
    use std::os::unix::process::ExitStatusExt as _;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    std::process::exit(code)
}

fn chroot_and_exec(args: &SandboxArgs) -> Result<std::convert::Infallible> {
    if args.chroot {
        nix::unistd::chroot(&args.tree)
            .with_context(|| format!("chroot {}", args.tree.display()))?;
        std::env::set_current_dir("/").context("chdir / in the chroot")?;
    }
    if args.merge_output {
        nix::unistd::dup2_stderr(std::io::stdout()).context("sending stderr to stdout")?;
    }
    let (program, rest) = args.command.split_first().context("no program to run")?;
    let err = std::process::Command::new(program).args(rest).exec();
    Err(err).with_context(|| format!("running {}", program.to_string_lossy()))
}

/// Kill every process whose root directory is `tree` (daemons a scriptlet or `%post`
/// started in the chroot) and wait for them to go. Returns how many there were.
pub fn kill_processes_in(tree: &Path) -> usize {
    let Ok(tree) = tree.canonicalize() else {
        return 0;
    };
    let inside = || -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|root| root == tree))
            .collect()
    };
    let pids = inside();
    for pid in &pids {
        tracing::warn!(
            "killing process {pid} ({}) left running in {}",
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim(),
            tree.display()
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.is_empty() && !inside().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    pids.len()
}
