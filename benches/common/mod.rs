//! Measuring helpers shared by the benchmarks.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run under GNU time: wall time and the peak RSS (KiB) of the largest process.
pub fn timed(c: &mut Command) -> (Duration, u64) {
    let (elapsed, peak, _) = run_timed(c, false, false);
    (elapsed, peak)
}

/// As [`timed`], for programs whose exit status reports what they found.
pub fn timed_any_status(c: &mut Command) -> (Duration, u64) {
    let (elapsed, peak, _) = run_timed(c, false, true);
    (elapsed, peak)
}

/// As [`timed`], also the peak RSS of the direct child itself (its VmHWM).
pub fn timed_with_own_peak(c: &mut Command) -> (Duration, u64, u64) {
    run_timed(c, true, false)
}

pub fn run_timed(c: &mut Command, watch: bool, any_status: bool) -> (Duration, u64, u64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let started = Instant::now();
    let mut child = wrapped.stdout(Stdio::null()).spawn().unwrap();
    let mut own = 0;
    // Polling costs up to a period of wall time; only watch when asked to.
    while watch && child.try_wait().unwrap().is_none() {
        own = own.max(vm_hwm_of_children(child.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let elapsed = started.elapsed();
    assert!(any_status || status.success(), "{c:?} failed");
    let peak = fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    (elapsed, peak, own)
}

/// VmHWM (KiB) of the children of `pid` (GNU time's child is the measured program).
pub fn vm_hwm_of_children(pid: u32) -> u64 {
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|child| fs::File::open(format!("/proc/{child}/status")).ok())
        .flat_map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            line.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .max()
        .unwrap_or(0)
}

pub fn du_bytes(path: &Path) -> u64 {
    let out = must(Command::new("du").args(["-sb"]).arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
}

pub fn must(c: &mut Command) -> std::process::Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
