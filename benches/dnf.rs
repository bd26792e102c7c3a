//! The dnf backend's wall time, per stage, and the share spent outside dnf itself.
//!
//! The test distribution of tests/common/repo.rs (packages built with rpmbuild, a
//! createrepo_c repository with comps) and the kickstart that uses every command the
//! backend applies. Measured in one run, fastest of ROUNDS:
//!
//! * `dnf --installroot install` of the same package set with the same settings, run
//!   by hand: what a user would type without nodeimg, and the floor of the install;
//! * `nodeimg build --backend dnf`: the whole build (check → … → update RPM), its
//!   stages from build.json and the install's steps (scripts, packages = the dnf
//!   transaction, configuration, relabel).
//!
//! livemedia-creator, the tool this replaces, needs anaconda and cannot run on Debian,
//! so it is not in the comparison. Run: `cargo bench --bench dnf` (as root, after
//! `scripts/setup.sh`).

mod common;
#[path = "../tests/common/node.rs"]
mod node;
#[path = "../tests/common/repo.rs"]
mod repo;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::{timed, timed_with_own_peak};

const ROUNDS: usize = 3;

/// What tests/common's helpers call `run`.
fn run(c: &mut Command) -> Output {
    common::must(c)
}

fn main() {
    let nodeimg = PathBuf::from(env!("CARGO_BIN_EXE_nodeimg"));
    let repos = repo::repos();
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("node.ks");
    fs::write(&ks, repo::full_kickstart(repos)).unwrap();

    // dnf by hand: the same repositories, options and package set.
    let conf = dir.path().join("dnf.conf");
    fs::write(
        &conf,
        format!(
            "[main]\nreposdir=\ngpgcheck=0\nkeepcache=1\ninstall_weak_deps=0\ntsflags=nodocs\ncachedir=/var/cache/bench-dnf\n\
             [main-repo]\nbaseurl=file://{}\n[second]\nbaseurl=file://{}\n",
            repos.main.display(),
            repos.second.display()
        ),
    )
    .unwrap();
    let home = dir.path().join("home");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let mut dnf_best = (Duration::MAX, 0);
    for round in 0..ROUNDS {
        let root = dir.path().join(format!("dnf-root-{round}"));
        fs::create_dir_all(&root).unwrap();
        let mut cmd = Command::new("dnf");
        cmd.env("HOME", &home)
            .arg("-y")
            .arg("-q")
            .arg("--installroot")
            .arg(&root)
            .arg("--config")
            .arg(&conf)
            .args([
                "--releasever",
                "9",
                "--refresh",
                "--exclude=unwanted",
                "install",
            ])
            .args([
                "@core",
                "@node-env",
                "@node-extras",
                "node-base",
                "from-second",
                "ovirt-node-ng-image-update-placeholder",
            ]);
        let (elapsed, peak) = timed(&mut cmd);
        if elapsed < dnf_best.0 {
            dnf_best = (elapsed, peak);
        }
        let _ = fs::remove_dir_all(&root);
    }

    let mut best: Option<(Duration, u64, u64, serde_json::Value)> = None;
    for round in 0..ROUNDS {
        let out = dir.path().join(format!("out-{round}"));
        let mut cmd = Command::new(&nodeimg);
        cmd.env("NODEIMG_WORKDIR", dir.path())
            .env("SOURCE_DATE_EPOCH", "1764115200")
            .args(["-q", "build", "--backend", "dnf", "--policy", "generic"])
            .arg("--dnf-cache")
            .arg(dir.path().join("cache"))
            .arg("-o")
            .arg(&out)
            .arg(&ks);
        let (elapsed, peak, own) = timed_with_own_peak(&mut cmd);
        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
        if best.as_ref().is_none_or(|b| elapsed < b.0) {
            best = Some((elapsed, peak, own, record));
        }
    }
    let (elapsed, peak, own, record) = best.unwrap();

    println!(
        "dnf backend, test distribution ({} packages), fastest of {ROUNDS}",
        record["packages"].as_array().map_or(0, Vec::len)
    );
    println!(
        "  dnf --installroot by hand: {:>6.2} s  peak RSS {:>4} MiB",
        dnf_best.0.as_secs_f64(),
        dnf_best.1 / 1024
    );
    println!(
        "  nodeimg build (whole):     {:>6.2} s  peak RSS {:>4} MiB (nodeimg itself {} MiB)",
        elapsed.as_secs_f64(),
        peak / 1024,
        own / 1024
    );
    let mut install = 0.0;
    for stage in record["stages"].as_array().unwrap() {
        let seconds = stage["seconds"].as_f64().unwrap();
        if stage["name"] == "install" {
            install = seconds;
        }
        println!(
            "    stage {:<8} {seconds:>6.2} s",
            stage["name"].as_str().unwrap()
        );
    }
    let mut packages = 0.0;
    for step in record["input"]["install"]["timings"].as_array().unwrap() {
        let (name, seconds) = (step[0].as_str().unwrap(), step[1].as_f64().unwrap());
        if name == "packages" {
            packages = seconds;
        }
        println!("      install step {name:<13} {seconds:>6.2} s");
    }
    let total = elapsed.as_secs_f64();
    println!(
        "  share outside dnf: {:.0} % of the install stage, {:.0} % of the whole build",
        100.0 * (install - packages) / install,
        100.0 * (total - packages) / total
    );
    println!(
        "  dnf in nodeimg / dnf by hand: {:.2}x",
        packages / dnf_best.0.as_secs_f64()
    );
}
