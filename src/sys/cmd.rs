//! The one way nodeimg runs an external program.
//!
//! * Arguments are a vector handed to `execve`; there is no shell anywhere.
//! * The command line is logged before it starts; every line the program prints
//!   becomes a `debug` event (target `nodeimg::exec`), so it lands in the build log
//!   and shows on the terminal with `-v`.
//! * A failure names the command line, the exit status and the last lines of stderr.
//! * The child runs in its own process group. On timeout, or when nodeimg receives
//!   SIGINT/SIGTERM, the whole group gets SIGTERM, then SIGKILL after a grace period,
//!   and the run returns an error so that guards up the stack undo their work.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tracing::Level;

use super::cancel;

/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 20;
/// Longest line kept in logs and tails; longer ones are cut (progress bars, binary noise).
const MAX_LINE: usize = 4096;
/// How long a stopped child gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How often the runner looks at the cancellation flag while a child runs.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for the output pipes to close after the child exited. A daemon
/// started by the child may keep them open forever; we do not wait for it.
const DRAIN: Duration = Duration::from_secs(2);

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("`{program}` was not found on PATH ({path}); `nodeimg doctor` lists what provides it")]
    NotFound { program: String, path: String },
    #[error("could not start `{cmdline}`: {source}")]
    Spawn {
        cmdline: String,
        source: std::io::Error,
    },
    #[error("`{cmdline}` failed: {}{}", describe_status(*.status), format_tail(.stderr_tail))]
    Failed {
        cmdline: String,
        status: ExitStatus,
        stderr_tail: Vec<String>,
    },
    #[error("`{cmdline}` did not finish within {}s and was killed{}", .limit.as_secs_f64(), format_tail(.stderr_tail))]
    TimedOut {
        cmdline: String,
        limit: Duration,
        stderr_tail: Vec<String>,
    },
    #[error("`{cmdline}` was stopped: {source}")]
    Interrupted {
        cmdline: String,
        source: cancel::Interrupted,
    },
}

impl CmdError {
    /// The signal that stopped the command, when the run was interrupted.
    pub fn interrupted(&self) -> Option<cancel::Interrupted> {
        match self {
            CmdError::Interrupted { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    /// Everything written to stdout, when [`Cmd::capture`] was set; empty otherwise.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, when [`Cmd::capture`] was set; empty otherwise.
    pub stderr: Vec<u8>,
    /// The last lines of stderr (or of stdout, when stderr was silent).
    pub stderr_tail: Vec<String>,
}

impl Output {
    /// stdout as text, lossily decoded.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Called with every line a command prints (stdout and stderr), as it prints it.
#[derive(Clone)]
pub struct LineObserver(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for LineObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineObserver")
    }
}

/// A command to run: a builder over program, arguments and limits.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    clear_env: bool,
    observer: Option<LineObserver>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    capture: bool,
    check_status: bool,
    interruptible: bool,
    level: Level,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            observer: None,
            cwd: None,
            timeout: None,
            capture: false,
            check_status: true,
            interruptible: true,
            level: Level::INFO,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Do not pass `key` on from nodeimg's own environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// See every output line as it comes (progress reports of long steps).
    pub fn on_line(mut self, observer: impl Fn(&str) + Send + Sync + 'static) -> Cmd {
        self.observer = Some(LineObserver(std::sync::Arc::new(observer)));
        self
    }

    /// Start from an empty environment (then [`Cmd::env`] adds to it).
    pub fn env_clear(mut self) -> Cmd {
        self.clear_env = true;
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Kill the command (and its process group) when it runs longer than `limit`.
    pub fn timeout(mut self, limit: Duration) -> Cmd {
        self.timeout = Some(limit);
        self
    }

    /// Keep stdout and stderr in [`Output`] (they are logged either way).
    pub fn capture(mut self) -> Cmd {
        self.capture = true;
        self
    }

    /// Return the output whatever the exit status (for probes such as `--version`).
    pub fn any_status(mut self) -> Cmd {
        self.check_status = false;
        self
    }

    /// Let the command finish even after SIGINT/SIGTERM. For short steps whose
    /// interruption would leak a resource: `losetup --find --show` attaching a device
    /// we have not yet recorded, or the `umount` of a clean-up. Pair with a timeout.
    pub fn uninterruptible(mut self) -> Cmd {
        self.interruptible = false;
        self
    }

    /// Log the command line at `debug` instead of `info` (for probes and queries).
    pub fn quiet(mut self) -> Cmd {
        self.level = Level::DEBUG;
        self
    }

    /// The command line as a person would type it, for logs and errors.
    pub fn display(&self) -> String {
        display_cmdline(&self.program, &self.args)
    }

    /// Run to completion. Errors when the program is missing, fails (unless
    /// [`Cmd::any_status`]), times out or is interrupted.
    /// The child process as std runs it: arguments, environment, directory, pipes.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: we can stop the whole tree it starts, and a
            // Ctrl-C at the terminal reaches nodeimg alone, which then decides.
            .process_group(0);
        if self.clear_env {
            command.env_clear();
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }

    /// Wait for the child's status; on a timeout or a signal, stop its whole process
    /// group and say why.
    fn wait(
        &self,
        status_rx: &mpsc::Receiver<std::io::Result<ExitStatus>>,
        pgid: Pid,
        name: &str,
        cmdline: &str,
    ) -> (std::io::Result<ExitStatus>, Option<Stop>) {
        let started = Instant::now();
        loop {
            match status_rx.recv_timeout(POLL) {
                Ok(status) => return (status, None),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return (
                        Err(std::io::Error::other("lost the child's exit status")),
                        None,
                    );
                }
            }
            let stop = if self.timeout.is_some_and(|limit| started.elapsed() >= limit) {
                Some(Stop::Timeout)
            } else if self.interruptible {
                cancel::received().map(Stop::Signal)
            } else {
                None
            };
            if let Some(why) = stop {
                tracing::warn!(target: "nodeimg::exec", "stopping `{name}` ({}): {cmdline}", why.describe());
                return (terminate_group(pgid, status_rx), Some(why));
            }
        }
    }

    pub fn run(&self) -> Result<Output, CmdError> {
        let cmdline = self.display();
        let program = resolve(&self.program)?;
        if self.interruptible
            && let Err(source) = cancel::check()
        {
            return Err(CmdError::Interrupted { cmdline, source });
        }
        match self.level {
            Level::DEBUG => tracing::debug!(target: "nodeimg::exec", "$ {cmdline}"),
            _ => tracing::info!(target: "nodeimg::exec", "$ {cmdline}"),
        }

        let mut child = self
            .command(&program)
            .spawn()
            .map_err(|source| CmdError::Spawn {
                cmdline: cmdline.clone(),
                source,
            })?;
        let pgid = Pid::from_raw(child.id() as i32);
        let name = program_name(&self.program);

        let (done_tx, done_rx) = mpsc::channel();
        let stdout = child.stdout.take().map(|pipe| {
            spawn_reader(
                pipe,
                Pipe::Stdout,
                name.clone(),
                self.capture,
                self.observer.clone(),
                done_tx.clone(),
            )
        });
        let stderr = child.stderr.take().map(|pipe| {
            spawn_reader(
                pipe,
                Pipe::Stderr,
                name.clone(),
                self.capture,
                self.observer.clone(),
                done_tx.clone(),
            )
        });
        drop(done_tx);

        let (status_tx, status_rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = status_tx.send(child.wait());
        });

        let (status, stop) = self.wait(&status_rx, pgid, &name, &cmdline);
        let status = status.map_err(|source| CmdError::Spawn {
            cmdline: cmdline.clone(),
            source,
        })?;

        let closed = closed_pipes(&done_rx, &name);
        let join = |pipe: Pipe, reader: Option<thread::JoinHandle<Stream>>| match reader {
            Some(handle) if closed.contains(&pipe) => handle.join().unwrap_or_default(),
            _ => Stream::default(),
        };
        let out = join(Pipe::Stdout, stdout);
        let err = join(Pipe::Stderr, stderr);
        let stderr_tail: Vec<String> = if err.tail.is_empty() {
            out.tail.into()
        } else {
            err.tail.into()
        };

        match stop {
            Some(Stop::Timeout) => Err(CmdError::TimedOut {
                cmdline,
                limit: self.timeout.unwrap_or_default(),
                stderr_tail,
            }),
            Some(Stop::Signal(signal)) => Err(CmdError::Interrupted {
                cmdline,
                source: cancel::Interrupted { signal },
            }),
            None if self.check_status && !status.success() => Err(CmdError::Failed {
                cmdline,
                status,
                stderr_tail,
            }),
            None => Ok(Output {
                status,
                stdout: out.captured,
                stderr: err.captured,
                stderr_tail,
            }),
        }
    }

    /// Run and return stdout as text.
    pub fn output_text(&self) -> Result<String, CmdError> {
        Ok(self.clone().capture().run()?.stdout_text())
    }
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Timeout,
    Signal(i32),
}

impl Stop {
    fn describe(self) -> String {
        match self {
            Stop::Timeout => "time limit reached".to_owned(),
            Stop::Signal(signal) => format!("nodeimg received {}", cancel::signal_name(signal)),
        }
    }
}

/// The pipes that closed: the readers are collected once their pipes close, with no
/// wait on a daemon that inherited them (its reader thread finishes on its own).
fn closed_pipes(done_rx: &mpsc::Receiver<Pipe>, name: &str) -> Vec<Pipe> {
    let deadline = Instant::now() + DRAIN;
    let mut closed = Vec::new();
    while closed.len() < 2 {
        match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(pipe) => closed.push(pipe),
            Err(_) => break,
        }
    }
    if closed.len() < 2 {
        tracing::debug!("`{name}` left its output open (a background process?); not waiting");
    }
    closed
}

/// SIGTERM to the group, SIGKILL after the grace period; returns the leader's status.
fn terminate_group(
    pgid: Pid,
    status_rx: &mpsc::Receiver<std::io::Result<ExitStatus>>,
) -> std::io::Result<ExitStatus> {
    let _ = killpg(pgid, Signal::SIGTERM);
    let status = match status_rx.recv_timeout(KILL_GRACE) {
        Ok(status) => status,
        Err(_) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            status_rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("lost the child's exit status")))
        }
    };
    // Members that ignored SIGTERM or outlived the leader go too.
    let _ = killpg(pgid, Signal::SIGKILL);
    status
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Stream {
    captured: Vec<u8>,
    tail: VecDeque<String>,
}

/// Read a pipe line by line: log each line, keep the tail, capture when asked.
fn spawn_reader(
    pipe: impl Read + Send + 'static,
    which: Pipe,
    name: String,
    capture: bool,
    observer: Option<LineObserver>,
    done: mpsc::Sender<Pipe>,
) -> thread::JoinHandle<Stream> {
    thread::spawn(move || {
        let mut stream = Stream::default();
        let mut reader = BufReader::new(pipe);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match read_line_or_redraw(&mut reader, &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if capture {
                stream.captured.extend_from_slice(&raw);
            }
            let line = String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE)]);
            // A progress bar redraws its line with \r: the observer sees every state,
            // the log and the error tail only finished lines.
            let redraw = line.ends_with('\r');
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                continue;
            }
            if let Some(observer) = &observer {
                (observer.0)(line);
            }
            if redraw {
                continue;
            }
            tracing::debug!(target: "nodeimg::exec", "{name}: {line}");
            if stream.tail.len() == TAIL_LINES {
                stream.tail.pop_front();
            }
            stream.tail.push_back(line.to_owned());
        }
        let _ = done.send(which);
        stream
    })
}

/// Read up to and including the next `\n` or `\r`; returns the bytes read (0 at the end).
fn read_line_or_redraw(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => {
                out.extend_from_slice(&buf[..=end]);
                reader.consume(end + 1);
                return Ok(total + end + 1);
            }
            None => {
                let n = buf.len();
                out.extend_from_slice(buf);
                reader.consume(n);
                total += n;
            }
        }
    }
}

/// Find `program` on PATH (a name with a `/` is used as given).
pub fn resolve(program: &OsStr) -> Result<PathBuf, CmdError> {
    if Path::new(program).components().count() > 1 {
        return Ok(PathBuf::from(program));
    }
    which(program).ok_or_else(|| CmdError::NotFound {
        program: program.to_string_lossy().into_owned(),
        path: std::env::var("PATH").unwrap_or_default(),
    })
}

/// The first executable file named `program` in the directories of PATH, as
/// `command -v` finds it.
pub fn which(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    which_in(program.as_ref(), &std::env::var_os("PATH")?)
}

/// [`which`] over an explicit search path.
pub fn which_in(program: &OsStr, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn program_name(program: &OsStr) -> String {
    Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

/// Quote for display only: nothing here is ever given to a shell.
pub fn display_cmdline(program: &OsStr, args: &[OsString]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(OsString::as_os_str))
        .map(|word| quote_word(&word.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by {}", cancel::signal_name(signal)),
        _ => status.to_string(),
    }
}

fn format_tail(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut text = String::from("\n  last output:");
    for line in tail {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let args: Vec<OsString> = ["-o", "a b", "it's", "", "x=1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            display_cmdline(OsStr::new("mount"), &args),
            r"mount -o 'a b' 'it'\''s' '' x=1"
        );
    }

    #[test]
    fn which_skips_directories_and_non_executables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tool")).unwrap();
        std::fs::write(dir.path().join("plain"), "").unwrap();
        std::fs::write(dir.path().join("run"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir.path().join("run"), mode).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(which_in(OsStr::new("tool"), &path), None);
        assert_eq!(which_in(OsStr::new("plain"), &path), None);
        assert_eq!(
            which_in(OsStr::new("run"), &path),
            Some(dir.path().join("run"))
        );
    }
}
