//! Checking 100 kickstarts: `nodeimg check` against pykickstart's `ksvalidator` (the
//! venv's), whole-process wall time, in one run. The kickstarts are variations of the
//! Node's and of a Fedora-spin-shaped one, a fifth of them broken (unknown commands,
//! bad options, a missing %end), so both tools take their error paths too.
//!
//! * ksvalidator: one process for all 100 files (its fastest use), `-v RHEL9`, and a
//!   process per file (as a build would run it; once, it takes half a minute);
//! * nodeimg: one process for all 100 files, and 100 processes (one per file, as a
//!   build runs it). The loops of a process per file are timed bare (no /usr/bin/time
//!   around each run), their peak RSS taken from one run.
//!
//! Then one kickstart of 100,000 `part` lines (and one of 100,000 `network` lines):
//! a repeated command must cost the same each time, so the check stays linear.
//!
//! Each is run 5 times; the fastest run is reported with the peak RSS. Run:
//! `cargo bench --bench kickstart` (after `scripts/setup.sh`).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::timed_any_status as timed_any;

const ROUNDS: usize = 5;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let ksvalidator = root.join(".venv/bin/ksvalidator");
    assert!(
        ksvalidator.is_file(),
        "{} is missing: run scripts/setup.sh",
        ksvalidator.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let node = fs::read_to_string(root.join("kickstarts/ovirt-node-ng-image.ks")).unwrap();
    let spin = node
        .replace("selinux --enforcing", "selinux --enforcing\nfirewall --enabled --service=mdns\nservices --enabled=NetworkManager --disabled=sshd")
        .replace("%packages --excludedocs", "%packages --excludedocs\n@^workstation-product-environment\n-@dial-up");
    let breakages = [
        "TEXT\n",
        "part /home --size=abc\n",
        "bootloader --location=foo\n",
        "%post\necho unterminated\n",
        "user --groups=wheel\n",
    ];
    let mut files = Vec::new();
    for i in 0..100 {
        let base = if i % 2 == 0 { &node } else { &spin };
        let mut text = base.replace(
            "timezone --utc Etc/UTC",
            &format!("timezone --utc Etc/GMT+{}", i % 12),
        );
        if i % 5 == 0 {
            text.push_str(breakages[(i / 5) % breakages.len()]);
        }
        let path = dir.path().join(format!("ks-{i:03}.ks"));
        fs::write(&path, text).unwrap();
        files.push(path);
    }

    let best =
        |mut make: Box<dyn FnMut() -> (Duration, u64)>| (0..ROUNDS).map(|_| make()).min().unwrap();
    let ksv = best(Box::new(|| {
        timed_any(
            Command::new(&ksvalidator)
                .args(["-v", "RHEL9"])
                .args(&files),
        )
    }));
    // A process per file: the wall time of the bare loop (as a build's shell would
    // run it; /usr/bin/time around each run would cost nodeimg a third of its time),
    // and the peak RSS from one measured run.
    let per_file = |program: &PathBuf| {
        let started = Instant::now();
        for file in &files {
            Command::new(program)
                .args(if program == &nodeimg {
                    &["check", "--ks-version", "RHEL9"][..]
                } else {
                    &["-v", "RHEL9"][..]
                })
                .arg(file)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
        }
        started.elapsed()
    };
    let ksv_each = (
        per_file(&ksvalidator),
        timed_any(
            Command::new(&ksvalidator)
                .args(["-v", "RHEL9"])
                .arg(&files[0]),
        )
        .1,
    );
    let ours_one = best(Box::new(|| {
        timed_any(
            Command::new(&nodeimg)
                .args(["check", "--ks-version", "RHEL9"])
                .args(&files),
        )
    }));
    let ours_each = (
        (0..ROUNDS).map(|_| per_file(&nodeimg)).min().unwrap(),
        timed_any(
            Command::new(&nodeimg)
                .args(["check", "--ks-version", "RHEL9"])
                .arg(&files[0]),
        )
        .1,
    );
    println!(
        "{:<44} {:>10} {:>10}",
        "checking 100 kickstarts", "seconds", "peak RSS"
    );
    for (name, (elapsed, peak)) in [
        ("ksvalidator -v RHEL9 (one process)", ksv),
        ("ksvalidator -v RHEL9 (a process per file)", ksv_each),
        ("nodeimg check (one process)", ours_one),
        ("nodeimg check (a process per file)", ours_each),
    ] {
        println!(
            "{:<44} {:>10.3} {:>6} MiB",
            name,
            elapsed.as_secs_f64(),
            peak / 1024
        );
    }
    println!(
        "ksvalidator / nodeimg: {:.0}x (one process each), {:.0}x (a process per file each)",
        ksv.0.as_secs_f64() / ours_one.0.as_secs_f64(),
        ksv_each.0.as_secs_f64() / ours_each.0.as_secs_f64()
    );

    println!();
    for (name, line) in [
        ("part", "part /p{} --size=10"),
        ("network", "network --device=eth{} --bootproto=dhcp"),
    ] {
        let big = dir.path().join(format!("{name}-100k.ks"));
        let mut text = node.clone();
        for i in 0..100_000 {
            text.push_str(&line.replace("{}", &i.to_string()));
            text.push('\n');
        }
        fs::write(&big, text).unwrap();
        let (elapsed, peak) = (0..ROUNDS)
            .map(|_| {
                timed_any(
                    Command::new(&nodeimg)
                        .args(["check", "--ks-version", "RHEL9"])
                        .arg(&big),
                )
            })
            .min()
            .unwrap();
        println!(
            "{:<44} {:>10.3} {:>6} MiB",
            format!("nodeimg check, 100,000 {name} lines"),
            elapsed.as_secs_f64(),
            peak / 1024
        );
    }
}
