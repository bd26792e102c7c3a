//! Exit statuses, the same for every subcommand.

use std::process::ExitCode;

use crate::sys::{CmdError, Interrupted};

/// The command did what it was asked.
pub const SUCCESS: u8 = 0;
/// The command failed (the message says why).
pub const FAILURE: u8 = 1;
/// The command line was wrong (clap's own status for usage errors).
pub const USAGE: u8 = 2;
/// The command ran, and its checks found errors (`doctor`, kickstart checks).
pub const CHECKS_FAILED: u8 = 3;

/// The text `--help` shows; keep it in step with the constants above.
pub const HELP: &str = "\
Exit status:
  0      success
  1      failure (the error message names the file, command or step)
  2      usage error (unknown option, missing argument)
  3      checks ran and found errors (doctor, inspect, kickstart checks)
  128+N  stopped by signal N after cleaning up (130 for Ctrl-C, 143 for SIGTERM)";

/// The signal behind an error, if the run was interrupted anywhere down the chain.
pub fn interruption(err: &anyhow::Error) -> Option<Interrupted> {
    err.chain().find_map(|cause| {
        cause.downcast_ref::<Interrupted>().copied().or_else(|| {
            cause
                .downcast_ref::<CmdError>()
                .and_then(CmdError::interrupted)
        })
    })
}

/// Print an error chain the way a person reads it, and choose the exit status.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(interrupted) = interruption(err) {
        eprintln!("nodeimg: {interrupted}; cleaned up and stopped");
        // What the step that was interrupted had to say about it (a build left
        // reserved, say), outermost first.
        for cause in err.chain().take_while(|cause| {
            cause.downcast_ref::<Interrupted>().is_none()
                && cause.downcast_ref::<CmdError>().is_none()
        }) {
            eprintln!("  {cause}");
        }
        return ExitCode::from(128u8.saturating_add(interrupted.signal as u8));
    }
    let mut causes = err.chain();
    if let Some(first) = causes.next() {
        eprintln!("error: {first}");
    }
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(FAILURE)
}
