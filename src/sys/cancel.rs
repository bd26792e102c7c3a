//! Cancellation on SIGINT, SIGTERM and SIGHUP.
//!
//! The signal handler only records which signal arrived. Everything else happens in
//! ordinary code: the command runner notices, stops its child, and returns
//! [`Interrupted`]; the error travels up through `?`, and every guard on the way
//! (mounts, loop devices, temporary directories) undoes itself in `Drop`. Doing the
//! clean-up in normal code instead of in the handler keeps it ordered (inner mounts
//! first) and lets it run external tools such as `umount`.
//!
//! Further signals while clean-up runs are recorded and otherwise ignored, so a
//! second Ctrl-C cannot leave a mount behind.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

/// The signal that requested cancellation, 0 while none has.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Environment variable naming a pause point (see [`pause_point`]).
pub const PAUSE_ENV: &str = "NODEIMG_PAUSE_AT";

/// The step was stopped because the process received a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.signal))]
pub struct Interrupted {
    /// The signal number (for the conventional exit status 128 + signal).
    pub signal: i32,
}

/// Route SIGINT, SIGTERM and SIGHUP to the cancellation flag. Call once, early in `main`.
pub fn install_handlers() -> std::io::Result<()> {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let signo = sig as i32;
        // register_usize stores `signo` into the flag when the signal arrives.
        signal_hook::flag::register_usize(signo, Arc::clone(flag), signo as usize)?;
    }
    Ok(())
}

/// The signal received so far, if any.
pub fn received() -> Option<i32> {
    let signo = RECEIVED.get()?.load(Ordering::SeqCst);
    (signo != 0).then_some(signo as i32)
}

/// `Err(Interrupted)` once a signal has arrived; long loops call this between steps.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(signal) => Err(Interrupted { signal }),
        None => Ok(()),
    }
}

/// A named point where a step can be held for inspection.
///
/// When `NODEIMG_PAUSE_AT` names this point, nodeimg logs that it paused and waits
/// until it receives SIGINT or SIGTERM, then continues with the normal clean-up of an
/// interrupted build. Release engineers use it to look at a mounted tree; the test
/// suite uses it to interrupt a step at a known place.
pub fn pause_point(name: &str) -> Result<(), Interrupted> {
    check()?;
    if std::env::var_os(PAUSE_ENV).is_none_or(|wanted| wanted != name) {
        return Ok(());
    }
    tracing::warn!(
        "paused at {name} (pid {}); send SIGTERM or press Ctrl-C to clean up and exit",
        std::process::id()
    );
    loop {
        check()?;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// "SIGTERM" for 15, and so on.
pub fn signal_name(signo: i32) -> String {
    Signal::try_from(signo)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signo}"))
}
