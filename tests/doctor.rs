//! `nodeimg doctor` tells the truth about this host: compared with `command -v`, the
//! tools' own version output, and a real loop-mount probe interrupted by signals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{interrupt, require_root, spawn_until_paused};

use serde_json::Value;

fn nodeimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodeimg"))
}

fn doctor_json(cmd: &mut Command) -> (Option<i32>, Value) {
    let out = cmd.args(["doctor", "--format", "json"]).output().unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn tool<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the report"))
}

/// How each tool prints its version, written down independently of nodeimg's table.
const VERSION_COMMANDS: &[(&str, &[&str])] = &[
    ("livemedia-creator", &["--version"]),
    ("mock", &["--version"]),
    ("dnf", &["--version"]),
    ("rpm", &["--version"]),
    ("rpmbuild", &["--version"]),
    ("createrepo_c", &["--version"]),
    ("mksquashfs", &["-version"]),
    ("unsquashfs", &["-version"]),
    ("mkfs.ext4", &["-V"]),
    ("e2image", &[]),
    ("e2fsck", &["-V"]),
    ("tune2fs", &["-V"]),
    ("resize2fs", &[]),
    ("losetup", &["--version"]),
    ("mount", &["--version"]),
    ("qemu-img", &["--version"]),
    ("systemctl", &["--version"]),
];

/// Tools with no way to ask their version: doctor reports where they are, no version.
const NO_VERSION: &[&str] = &["setfiles"];

#[test]
fn report_matches_command_v_and_the_tools_own_version_output() {
    let (_, report) = doctor_json(&mut nodeimg());
    assert_eq!(
        report["tools"].as_array().unwrap().len(),
        VERSION_COMMANDS.len() + NO_VERSION.len()
    );
    for name in NO_VERSION {
        let entry = tool(&report, name);
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .status()
            .unwrap()
            .success();
        assert_eq!(entry["found"], found, "{name}: {entry}");
        assert!(entry["version"].is_null(), "{name}: {entry}");
    }
    for (name, version_args) in VERSION_COMMANDS {
        let entry = tool(&report, name);
        let lookup = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .unwrap();
        let expected = String::from_utf8_lossy(&lookup.stdout).trim().to_owned();
        if !lookup.status.success() {
            assert_eq!(
                entry["found"], false,
                "{name}: command -v finds nothing, doctor says {entry}"
            );
            assert!(entry["path"].is_null());
            continue;
        }
        assert_eq!(
            entry["found"], true,
            "{name}: command -v finds {expected}, doctor says {entry}"
        );
        assert_eq!(entry["path"], expected.as_str(), "{name}");
        let own = Command::new(name)
            .args(*version_args)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let own = format!(
            "{}{}",
            String::from_utf8_lossy(&own.stdout),
            String::from_utf8_lossy(&own.stderr)
        );
        let version = entry["version"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no version read from {own:?}"));
        let first_line = own.lines().find(|l| l.contains(version));
        assert!(
            first_line.is_some(),
            "{name}: {version:?} is not in its own output {own:?}"
        );
        assert!(
            version.chars().next().unwrap().is_ascii_digit(),
            "{name}: {version}"
        );
    }
}

#[test]
fn the_tools_the_test_suite_installs_are_reported_present() {
    // scripts/setup.sh installs these; a report that misses them is wrong.
    let (_, report) = doctor_json(&mut nodeimg());
    for name in [
        "dnf",
        "rpm",
        "rpmbuild",
        "createrepo_c",
        "mksquashfs",
        "unsquashfs",
        "mkfs.ext4",
        "e2fsck",
        "losetup",
        "mount",
        "systemctl",
        "setfiles",
    ] {
        assert_eq!(tool(&report, name)["found"], true, "{name}");
    }
}

#[test]
fn missing_build_tools_fail_with_status_3_and_say_what_to_install() {
    let bin = tempfile::tempdir().unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v mksquashfs"])
        .output()
        .unwrap();
    let real = PathBuf::from(String::from_utf8_lossy(&real.stdout).trim());
    std::os::unix::fs::symlink(&real, bin.path().join("mksquashfs")).unwrap();

    let (code, report) = doctor_json(nodeimg().env("PATH", bin.path()));
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(tool(&report, "mksquashfs")["found"], true);
    for name in [
        "mkfs.ext4",
        "e2fsck",
        "e2image",
        "tune2fs",
        "unsquashfs",
        "mount",
    ] {
        let entry = tool(&report, name);
        assert_eq!(entry["found"], false, "{entry}");
        let problems = report["problems"].to_string();
        assert!(
            problems.contains(&format!("{name} is missing")),
            "{problems}"
        );
    }
    assert!(
        report["problems"]
            .to_string()
            .contains("no installer backend")
    );
    // A tool in /usr/sbin that is not on PATH is pointed out.
    assert!(
        tool(&report, "mkfs.ext4")["note"]
            .as_str()
            .is_some_and(|n| n.contains("not on PATH")),
        "{report:#}"
    );
    assert_eq!(tool(&report, "e2fsck")["package_deb"], "e2fsprogs");

    let out = nodeimg()
        .env("PATH", bin.path())
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISSING mkfs.ext4"), "{text}");
    assert!(
        text.contains("install: e2fsprogs (Debian/Ubuntu), e2fsprogs (Fedora/EL)"),
        "{text}"
    );
    assert!(text.contains("cannot run on this host"), "{text}");
}

#[test]
fn an_unusable_workdir_is_an_error() {
    let (code, report) = doctor_json(
        nodeimg()
            .args(["--quiet"])
            .env("NODEIMG_WORKDIR", "/nonexistent/nodeimg"),
    );
    assert_eq!(code, Some(3));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "workdir")
        .unwrap();
    assert_eq!(check["status"], "error");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/nodeimg")
    );
}

#[test]
fn root_and_the_loop_mount_probe_are_reported() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let (code, report) = doctor_json(nodeimg().env("NODEIMG_WORKDIR", work.path()));
    let checks = report["checks"].to_string();
    let probe = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "loop-mount")
        .unwrap();
    assert_eq!(probe["status"], "ok", "{checks}");
    assert!(probe["detail"].as_str().unwrap().contains("/dev/loop"));
    assert_eq!(code, Some(0), "{report:#}");
    assert!(leftovers(work.path()).is_empty());
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "scratch files left behind"
    );
}

#[test]
fn sigterm_while_mounted_leaves_no_mount_loop_device_or_file() {
    interrupt_at("doctor.mounted", nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn sigint_while_the_loop_device_is_attached_leaves_nothing() {
    interrupt_at(
        "doctor.loop-attached",
        nix::sys::signal::Signal::SIGINT,
        130,
    );
}

fn interrupt_at(point: &str, signal: nix::sys::signal::Signal, status: i32) {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let (child, rx) = spawn_until_paused(
        nodeimg()
            .args(["-v", "doctor", "--workdir"])
            .arg(work.path()),
        point,
    );

    // The step really holds the resources at this point.
    let held = leftovers(work.path());
    assert!(
        held.iter().any(|l| l.starts_with("loop:")),
        "no loop device while paused: {held:?}"
    );
    if point == "doctor.mounted" {
        assert!(
            held.iter().any(|l| l.starts_with("mount:")),
            "no mount while paused: {held:?}"
        );
    }

    let (code, rest) = interrupt(child, rx, signal);
    assert_eq!(code, Some(status), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("cleaned up and stopped")),
        "{rest:#?}"
    );
    assert_eq!(leftovers(work.path()), Vec::<String>::new());
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "scratch files left behind"
    );
}

/// Mounts and loop devices that refer to anything under `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let loops = Command::new("losetup").arg("-a").output().unwrap();
    assert!(loops.status.success());
    let loops = String::from_utf8_lossy(&loops.stdout).into_owned();
    mounts
        .lines()
        .filter(|l| l.contains(&dir))
        .map(|l| format!("mount: {l}"))
        .chain(
            loops
                .lines()
                .filter(|l| l.contains(&dir))
                .map(|l| format!("loop: {l}")),
        )
        .collect()
}

/// The README's two commands, judged: ready here (the suite runs after set-up, as
/// root), waiting for set-up when tools are missing but a package manager is here, and
/// blocked without root.
#[test]
fn doctor_says_which_readme_commands_this_host_runs() {
    require_root();
    let verdicts = |report: &Value| -> Vec<(String, String)> {
        report["readme"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["command"].as_str().unwrap().to_owned(),
                    c["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (_, report) = doctor_json(&mut nodeimg());
    assert_eq!(
        verdicts(&report),
        [
            (
                "scripts/setup.sh && examples/offline/run.sh".to_owned(),
                "ready".to_owned()
            ),
            (
                "scripts/setup.sh && scripts/test.sh".to_owned(),
                "ready".to_owned()
            ),
        ],
        "{report:#}"
    );

    // A PATH with only a package manager on it: createrepo_c (in /usr/bin) is then
    // missing, and set-up would install it.
    let scratch = tempfile::tempdir().unwrap();
    let apt = scratch.path().join("apt-get");
    std::fs::write(&apt, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&apt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_, report) = doctor_json(nodeimg().env("PATH", scratch.path()));
    for command in report["readme"].as_array().unwrap() {
        assert_eq!(command["verdict"], "after-setup", "{command:#}");
        let missing: Vec<&str> = command["missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert!(missing.contains(&"createrepo_c"), "{command:#}");
    }
    // And with no package manager either, nothing can install them.
    let empty = tempfile::tempdir().unwrap();
    let (_, report) = doctor_json(nodeimg().env("PATH", empty.path()));
    assert_blocked(&report, "neither apt-get nor dnf");

    // Without root nothing of either runs.
    let (_, report) = doctor_json(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_nodeimg")),
    );
    assert_blocked(&report, "root: not running as root");
}

/// Both README commands are blocked, first by `why`.
fn assert_blocked(report: &Value, why: &str) {
    for command in report["readme"].as_array().unwrap() {
        assert_eq!(command["verdict"], "blocked", "{command:#}");
        assert!(
            command["blockers"][0].as_str().unwrap().contains(why),
            "{command:#}"
        );
    }
}
