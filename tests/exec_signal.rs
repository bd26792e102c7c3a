//! SIGTERM reaching nodeimg stops the running command and every later one.
//! Its own test binary: the cancellation flag is process-wide and stays set.

mod common;

use std::time::{Duration, Instant};

use common::assert_gone;

use nix::sys::signal::{Signal, raise};
use nodeimg::sys::{Cmd, CmdError, cancel};

#[test]
fn sigterm_stops_the_child_group_and_later_commands() {
    cancel::install_handlers().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let script = format!(
        "trap '' TERM; sleep 60 & echo $$ $! > {}; wait",
        pidfile.display()
    );

    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(400));
        raise(Signal::SIGTERM).unwrap();
    });
    let started = Instant::now();
    let err = Cmd::new("sh").args(["-c", &script]).run().unwrap_err();
    let elapsed = started.elapsed();

    let CmdError::Interrupted { source, .. } = &err else {
        panic!("expected Interrupted, got {err:?}");
    };
    assert_eq!(source.signal, Signal::SIGTERM as i32);
    assert!(err.to_string().contains("interrupted by SIGTERM"), "{err}");
    // The shell ignores SIGTERM, so it only goes at SIGKILL after the grace period.
    assert!(
        elapsed >= Duration::from_secs(4),
        "no grace period: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    for pid in std::fs::read_to_string(&pidfile)
        .unwrap()
        .split_whitespace()
    {
        assert_gone(pid);
    }

    // After the signal nothing new starts, except clean-up steps.
    let refused = Cmd::new("true").run().unwrap_err();
    assert!(refused.interrupted().is_some(), "{refused:?}");
    assert!(cancel::check().is_err());
    Cmd::new("true")
        .uninterruptible()
        .run()
        .expect("clean-up commands still run");
}
