//! The command runner against real programs: status, output, tails, timeouts.

mod common;

use std::time::{Duration, Instant};

use common::assert_gone;

use nodeimg::sys::{Cmd, CmdError};

#[test]
fn captures_stdout_and_stderr_exactly() {
    let out = Cmd::new("sh")
        .args(["-c", "printf 'a\\nb'; printf 'warn\\n' >&2"])
        .capture()
        .run()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"a\nb");
    assert_eq!(out.stderr, b"warn\n");
    assert_eq!(out.stderr_tail, vec!["warn".to_owned()]);
}

#[test]
fn arguments_reach_the_program_verbatim_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let hostile = format!(
        "$(touch {}); `touch {}` * ; | &",
        marker.display(),
        marker.display()
    );
    let out = Cmd::new("printf")
        .args(["%s", &hostile])
        .output_text()
        .unwrap();
    assert_eq!(out, hostile);
    assert!(!marker.exists(), "an argument was interpreted by a shell");
}

#[test]
fn failure_names_the_command_status_and_stderr_tail() {
    let script = "for i in $(seq 1 30); do echo line$i >&2; done; exit 7";
    let err = Cmd::new("sh").args(["-c", script]).run().unwrap_err();
    let CmdError::Failed {
        status,
        stderr_tail,
        ..
    } = &err
    else {
        panic!("expected Failed, got {err:?}");
    };
    assert_eq!(status.code(), Some(7));
    assert_eq!(stderr_tail.len(), 20, "the tail keeps the last 20 lines");
    assert_eq!(stderr_tail.first().map(String::as_str), Some("line11"));
    assert_eq!(stderr_tail.last().map(String::as_str), Some("line30"));
    let text = err.to_string();
    assert!(text.contains("`sh -c 'for i in"), "{text}");
    assert!(text.contains("exit status 7"), "{text}");
    assert!(text.contains("line30"), "{text}");
    assert!(!text.contains("line10\n"), "{text}");
}

#[test]
fn stdout_tail_is_used_when_stderr_is_silent() {
    // mksquashfs and friends print their errors on stdout.
    let err = Cmd::new("sh")
        .args(["-c", "echo 'FATAL ERROR: no space'; exit 1"])
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("FATAL ERROR: no space"), "{err}");
}

#[test]
fn any_status_returns_the_output_of_a_failing_probe() {
    let out = Cmd::new("sh")
        .args(["-c", "echo v1.2 >&2; exit 1"])
        .capture()
        .any_status()
        .run()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr, b"v1.2\n");
}

#[test]
fn a_missing_program_is_reported_by_name() {
    let err = Cmd::new("nodeimg-no-such-tool").run().unwrap_err();
    assert!(matches!(err, CmdError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("`nodeimg-no-such-tool` was not found on PATH"),
        "{err}"
    );
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    // The grandchild would outlive a plain kill of the direct child.
    let script = format!("sleep 60 & echo $$ $! > {}; wait", pidfile.display());
    let started = Instant::now();
    let err = Cmd::new("sh")
        .args(["-c", &script])
        .timeout(Duration::from_millis(500))
        .run()
        .unwrap_err();
    assert!(matches!(err, CmdError::TimedOut { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not finish within 0.5s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    for pid in std::fs::read_to_string(&pidfile)
        .unwrap()
        .split_whitespace()
    {
        assert_gone(pid);
    }
}

#[test]
fn a_background_process_holding_the_pipes_does_not_hang_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; echo started", pidfile.display());
    let started = Instant::now();
    let out = Cmd::new("sh")
        .args(["-c", &script])
        .capture()
        .run()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the daemon"
    );
    assert!(out.status.success());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
