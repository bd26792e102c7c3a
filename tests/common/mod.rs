//! Helpers shared by the integration tests.

use std::path::Path;
use std::time::{Duration, Instant};

/// Wait until a process is gone: /proc no longer lists it, or lists it as a zombie.
/// Panics when it still runs after five seconds.
pub fn assert_gone(pid: &str) {
    let stat = Path::new("/proc").join(pid).join("stat");
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(text) = std::fs::read_to_string(&stat) {
        // The state follows the command name, which is in parentheses.
        if text
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
