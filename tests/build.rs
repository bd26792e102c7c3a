//! `nodeimg build` from an earlier installer result (a Node-like tree made with rpm):
//! the artifacts directory agrees with `sha256sum -c`, `nodeimg inspect` and rpm; a
//! kickstart with errors stops the build before anything is made; an interrupted build
//! leaves logs and nothing that looks finished.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::node::{node_tree, nodeimg};
use common::run;

const NODE_KS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/kickstarts/ovirt-node-ng-image.ks"
);

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_build_from_an_installed_tree_gives_the_release_artifacts() {
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let out = scratch.path().join("out");
    let done = run(nodeimg()
        .env("SOURCE_DATE_EPOCH", "1764028800")
        .args([
            "build",
            NODE_KS,
            "--compression",
            "zstd",
            "--format",
            "json",
            "--from-result",
        ])
        .arg(format!("dir:{}", root.display()))
        .arg("-o")
        .arg(&out));
    let record: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        entries(&out),
        [
            "CHECKSUMS.sha256",
            "build.json",
            "logs",
            "ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs",
            "ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm",
            "ovirt-node-ng-image.ks",
            "ovirt-node-ng-image.manifest-rpm",
            "ovirt-node-ng-image.spdx.json",
            "ovirt-node-ng-image.unsigned-rpms",
        ]
    );
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS.sha256"])
        .current_dir(&out));
    // The bill of materials is listed, checksummed and valid SPDX.
    common::validate_sbom("spdx", &out.join("ovirt-node-ng-image.spdx.json"));
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "check", "flatten", "install", "liveimg", "inspect", "rpm", "sbom"
        ]
    );
    assert_eq!(record["input"]["backend"], "from-result");
    assert_eq!(record["nvr"], "ovirt-node-ng-4.5.6-0.20261125.0");
    assert!(
        record["input"]["tools"]["mksquashfs"].is_string(),
        "{record:#}"
    );
    // part / --size=5120 sized the root filesystem.
    assert_eq!(record["input"]["options"]["rootfs_bytes"], 5120u64 << 20);
    let build_json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    assert_eq!(build_json, record);

    let image = out.join("ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs");
    let inspected = run(nodeimg().args(["inspect", "--manifest"]).arg(&image));
    assert_eq!(
        String::from_utf8_lossy(&inspected.stdout),
        fs::read_to_string(out.join("ovirt-node-ng-image.manifest-rpm")).unwrap()
    );
    let listing = run(Command::new("unsquashfs").arg("-l").arg(&image));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("squashfs-root/LiveOS/rootfs.img"),
        "{listing}"
    );
    let rpm = out.join("ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm");
    run(Command::new("rpm").args(["-K", "--nosignature"]).arg(&rpm));
    let digest = run(Command::new("rpm")
        .args(["-qp", "--qf", "[%{FILEDIGESTS}\n]"])
        .arg(&rpm));
    let image_sha = record["outputs"][0]["sha256"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&digest.stdout).contains(image_sha));
    let log = fs::read_to_string(out.join("logs/nodeimg.log")).unwrap();
    assert!(log.contains("rpm: done in"), "{log}");

    // A second build into the same directory: refused, then with --force it replaces
    // the earlier artifacts, whose names differ.
    let again = |extra: &[&str]| {
        nodeimg()
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .args([
                "build",
                NODE_KS,
                "--compression",
                "zstd",
                "--version",
                "4.5.7",
                "--release",
                "1.el9",
                "--from-result",
            ])
            .arg(format!("dir:{}", root.display()))
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = again(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(image.is_file(), "the earlier build was touched");
    assert!(again(&["--force"]).status.success());
    let now = entries(&out);
    assert!(
        now.contains(&"ovirt-node-ng-image-4.5.7-1.el9.x86_64.liveimg.squashfs".to_owned()),
        "{now:?}"
    );
    assert!(!image.exists(), "{now:?}");
    assert_eq!(now.len(), 9, "{now:?}");
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS.sha256"])
        .current_dir(&out));
}

#[test]
fn a_kickstart_with_errors_never_starts_the_build() {
    let scratch = tempfile::tempdir().unwrap();
    let ks = scratch.path().join("bad.ks");
    fs::write(
        &ks,
        fs::read_to_string(NODE_KS)
            .unwrap()
            .replace("selinux --enforcing", "selinux --enforcing --bogus"),
    )
    .unwrap();
    let out = scratch.path().join("out");
    let done = nodeimg()
        .args(["build"])
        .arg(&ks)
        .args(["--from-result", "dir:/nonexistent", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("unrecognized arguments: --bogus"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was installed"), "{stderr}");
    assert_eq!(entries(&out), ["logs"]);
    assert!(
        fs::read_to_string(out.join("logs/nodeimg.log"))
            .unwrap()
            .contains("--bogus")
    );
}

#[test]
fn the_check_a_failed_build_suggests_finds_the_same_errors() {
    // Only the Node policy (the build's default) refuses this kickstart: a plain
    // `nodeimg check FILE` (generic policy) passes it.
    let scratch = tempfile::tempdir().unwrap();
    let ks = scratch.path().join("unlocked.ks");
    fs::write(
        &ks,
        fs::read_to_string(NODE_KS)
            .unwrap()
            .replace("user --name=node --lock", "user --name=node"),
    )
    .unwrap();
    let plain = nodeimg().arg("check").arg(&ks).output().unwrap();
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");

    let done = nodeimg()
        .args(["build"])
        .arg(&ks)
        .args(["--from-result", "dir:/nonexistent", "-o"])
        .arg(scratch.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&done.stderr);
    let suggested = stderr
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command suggested: {stderr}"));
    assert!(
        suggested.starts_with("nodeimg check --policy node"),
        "{suggested}"
    );
    let words: Vec<&str> = suggested.split_whitespace().collect();
    let again = nodeimg().args(&words[1..]).output().unwrap();
    let shown = String::from_utf8_lossy(&again.stdout);
    // 3: the kickstart has errors (1 would be a failure to read it).
    assert_eq!(again.status.code(), Some(3), "{suggested}: {shown}");
    assert!(
        shown.contains("the Node has a locked user node: user --name=node --lock"),
        "{suggested}: {shown}"
    );
    assert!(
        stderr.contains("the Node has a locked user node"),
        "{stderr}"
    );
}

#[test]
fn without_an_installer_the_build_says_what_to_install() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    // A PATH with neither livemedia-creator nor dnf on it.
    let empty = scratch.path().join("bin");
    fs::create_dir_all(&empty).unwrap();
    let done = nodeimg()
        .env("PATH", &empty)
        .args(["build", NODE_KS, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("lorax-lmc-novirt")
            && stderr.contains("package dnf")
            && stderr.contains("--from-result"),
        "{stderr}"
    );
    assert_eq!(entries(&out), ["logs"]);

    // Asked for, a missing backend is named alone.
    let done = nodeimg()
        .env("PATH", &empty)
        .args(["build", "--backend", "dnf", NODE_KS, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("the dnf backend needs dnf"), "{stderr}");
}

#[test]
fn an_interrupted_build_leaves_logs_and_nothing_finished() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    for (point, stage) in [
        ("liveimg.before-squashfs", "liveimg"),
        ("rpm.payload-written", "rpm"),
    ] {
        let out = scratch.path().join(stage);
        let mut cmd = nodeimg();
        cmd.args(["build", NODE_KS, "--compression", "zstd", "--from-result"])
            .arg(format!("dir:{}", root.display()))
            .arg("-o")
            .arg(&out);
        let (child, rx) = common::spawn_until_paused(&mut cmd, point);
        let (code, stderr) = common::interrupt(child, rx, nix::sys::signal::Signal::SIGTERM);
        assert_eq!(code, Some(143), "{stderr:#?}");
        assert_eq!(entries(&out), ["logs"], "{point}: {stderr:#?}");
        let log = fs::read_to_string(out.join("logs/nodeimg.log")).unwrap();
        assert!(log.contains(&format!("{stage}: started")), "{log}");
        assert!(log.contains("interrupted"), "{log}");
    }
}

/// PATH with the livemedia-creator stand-in first.
fn standin_path() -> String {
    format!(
        "{}:{}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/standins"),
        std::env::var("PATH").unwrap()
    )
}

#[test]
fn a_build_through_livemedia_creator_keeps_its_logs() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let tree = node_tree(scratch.path());
    let out = scratch.path().join("out");
    let done = run(nodeimg()
        .env("PATH", standin_path())
        .env("NODEIMG_STANDIN_TREE", &tree)
        .env("NODEIMG_WORKDIR", scratch.path())
        .args([
            "build",
            NODE_KS,
            "--compression",
            "zstd",
            "--format",
            "json",
            "-o",
        ])
        .arg(&out));
    let record: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    // The backend that ran (auto chose it).
    assert_eq!(record["input"]["backend"], "lmc");
    assert!(
        record["stages"][2]["detail"]
            .as_str()
            .unwrap()
            .contains("livemedia-creator made")
    );
    // livemedia-creator sizes the image as 2 MiB plus part / (mkfs.ext4 may drop a
    // last block group that small).
    let rootfs = record["input"]["options"]["rootfs_bytes"].as_u64().unwrap();
    assert!(
        (5120u64 << 20..=5122u64 << 20).contains(&rootfs),
        "{rootfs}"
    );
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS.sha256"])
        .current_dir(&out));
    for log in [
        "logs/nodeimg.log",
        "logs/livemedia.log",
        "logs/program.log",
        "logs/anaconda/anaconda.log",
    ] {
        assert!(out.join(log).is_file(), "{log} missing");
    }
    // The stand-in was given the flattened kickstart and nodeimg's settings.
    let anaconda = fs::read_to_string(out.join("logs/anaconda/anaconda.log")).unwrap();
    assert!(anaconda.contains("ovirt-node-ng-image.ks"), "{anaconda}");
    let leftovers: Vec<_> = fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nodeimg-"))
        .collect();
    assert!(leftovers.is_empty(), "work directories left: {leftovers:?}");
}

#[test]
fn an_installer_failure_shows_the_installers_own_error_lines() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let tree = node_tree(scratch.path());
    let out = scratch.path().join("out");
    let done = nodeimg()
        .env("PATH", standin_path())
        .env("NODEIMG_STANDIN_TREE", &tree)
        .env("NODEIMG_STANDIN_FAIL", "1")
        .args(["build", NODE_KS, "--backend", "lmc", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains(
            "anaconda.log: ERROR anaconda: packaging: Missed: NoSuchPackage: not-a-package"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("livemedia.log: ERROR livemedia-creator: Install failed"),
        "{stderr}"
    );
    assert_eq!(entries(&out), ["logs"]);
    assert!(out.join("logs/anaconda/anaconda.log").is_file());
}

#[test]
fn sigterm_during_the_install_stops_the_installer_and_leaves_no_artifact() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let tree = node_tree(scratch.path());
    let out = scratch.path().join("out");
    let work = scratch.path().join("work");
    fs::create_dir(&work).unwrap();
    let mut child = nodeimg()
        .env("PATH", standin_path())
        .env("NODEIMG_STANDIN_TREE", &tree)
        .env("NODEIMG_STANDIN_SLEEP", "60")
        .env("NODEIMG_WORKDIR", &work)
        .args(["build", NODE_KS, "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the installer runs.
    let started = std::time::Instant::now();
    let running = loop {
        let log = fs::read_dir(&work)
            .unwrap()
            .filter_map(|e| fs::read_to_string(e.unwrap().path().join("logs/livemedia.log")).ok())
            .find(|text| text.contains("Running anaconda"));
        if log.is_some() {
            break true;
        }
        if started.elapsed().as_secs() > 60 {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(running, "the installer never started");
    assert_eq!(common::terminate(&mut child), Some(143));
    assert_eq!(entries(&out), ["logs"]);
    // No stand-in process survives.
    let survivors: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read(e.unwrap().path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("livemedia-creator") && c.contains(work.to_str().unwrap()))
        .collect();
    assert!(survivors.is_empty(), "{survivors:?}");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "the work directory was left behind"
    );
}

#[test]
fn a_build_in_a_mock_chroot_runs_livemedia_creator_as_koji_does() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let tree = node_tree(s);
    let state = s.join("mock");
    let config = s.join("ovirt-node-el9.cfg");
    fs::write(&config, "config_opts['root'] = 'ovirt-node-el9'\n").unwrap();
    let build = |out: &Path, fail: bool| {
        let mut cmd = nodeimg();
        cmd.env("PATH", standin_path())
            .env("NODEIMG_STANDIN_TREE", &tree)
            .env("NODEIMG_STANDIN_MOCK_DIR", &state)
            .args(["build", NODE_KS, "--compression", "zstd", "--mock"])
            .arg(&config)
            .arg("-o")
            .arg(out);
        if fail {
            cmd.env("NODEIMG_STANDIN_FAIL", "1");
        }
        cmd.output().unwrap()
    };
    let out = s.join("out");
    let done = build(&out, false);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS.sha256"])
        .current_dir(&out));
    assert!(out.join("logs/livemedia.log").is_file());
    assert!(out.join("logs/anaconda/anaconda.log").is_file());
    let calls = fs::read_to_string(state.join("calls.log")).unwrap();
    let modes: Vec<&str> = calls
        .lines()
        .map(|l| {
            l.split_whitespace()
                .find(|w| {
                    [
                        "--init",
                        "--install",
                        "--copyin",
                        "--chroot",
                        "--copyout",
                        "--clean",
                    ]
                    .contains(w)
                })
                .unwrap_or(l)
        })
        .collect();
    assert_eq!(
        modes,
        [
            "--init",
            "--install",
            "--copyin",
            "--chroot",
            "--copyout",
            "--copyout",
            "--clean"
        ],
        "{calls}"
    );
    assert!(
        calls.contains("--isolation=simple --chroot -- livemedia-creator --make-fsimage --no-virt"),
        "{calls}"
    );
    assert!(calls.contains("--install lorax-lmc-novirt"), "{calls}");
    assert!(
        !state.join("ovirt-node-el9").exists(),
        "the chroot was left behind"
    );

    // A failing install: anaconda's lines come out of the chroot, the chroot goes.
    let failed_out = s.join("failed");
    let failed = build(&failed_out, true);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("NoSuchPackage: not-a-package"), "{stderr}");
    assert_eq!(entries(&failed_out), ["logs"]);
    assert!(
        !state.join("ovirt-node-el9").exists(),
        "the chroot was left behind"
    );
}

#[test]
fn a_virt_mode_build_boots_the_given_iso() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = node_tree(scratch.path());
    let iso = scratch.path().join("boot.iso");
    fs::write(&iso, b"not really an ISO").unwrap();
    let out = scratch.path().join("out");
    run(nodeimg()
        .env("PATH", standin_path())
        .env("NODEIMG_STANDIN_TREE", &tree)
        .args([
            "build",
            NODE_KS,
            "--compression",
            "zstd",
            "--ram",
            "6144",
            "--virt-iso",
        ])
        .arg(&iso)
        .arg("-o")
        .arg(&out));
    let log = fs::read_to_string(out.join("logs/nodeimg.log")).unwrap();
    let cmdline = log
        .lines()
        .find(|l| l.contains("livemedia-creator --make-fsimage"))
        .unwrap_or_else(|| panic!("no livemedia-creator command line in {log}"));
    assert!(
        cmdline.contains(&format!("--iso {} --ram 6144 --vcpus 2", iso.display())),
        "{cmdline}"
    );
    assert!(!cmdline.contains("--no-virt"), "{cmdline}");
    // Virt mode needs a shutdown at the end: the check says so before anything runs.
    let ks = scratch.path().join("reboot.ks");
    fs::write(
        &ks,
        fs::read_to_string(NODE_KS)
            .unwrap()
            .replace("poweroff", "reboot"),
    )
    .unwrap();
    let refused = nodeimg()
        .env("PATH", standin_path())
        .args(["build", "--policy", "generic"])
        .arg(&ks)
        .arg("--virt-iso")
        .arg(&iso)
        .arg("-o")
        .arg(scratch.path().join("out2"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must include shutdown"));
}
