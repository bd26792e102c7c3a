//! A Node-like root tree made with the real tools, for tests that need a Node image.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::run;

pub const PLACEHOLDER: &str = "ovirt-node-ng-image-update-placeholder";

pub fn nodeimg() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodeimg"));
    cmd.env("NODEIMG_WORKDIR", std::env::temp_dir());
    cmd
}

/// Build an empty noarch package with rpmbuild; returns the .rpm path.
pub fn build_rpm(
    top: &Path,
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
) -> PathBuf {
    build_rpm_with(top, name, epoch, version, release, "")
}

/// The same, with extra preamble lines (`Provides: /bin/sh`, …).
pub fn build_rpm_with(
    top: &Path,
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    preamble: &str,
) -> PathBuf {
    fs::create_dir_all(top).unwrap();
    let spec = top.join(format!("{name}.spec"));
    let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    fs::write(
        &spec,
        format!(
            "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: test package\nLicense: MIT\nBuildArch: noarch\n{preamble}\n%description\ntest\n%files\n"
        ),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    top.join("RPMS/noarch")
        .join(format!("{name}-{version}-{release}.noarch.rpm"))
}

/// `nodeimg rpm placeholder` 4.5.6-1.el9 into `dir`; returns the .rpm path.
pub fn placeholder_rpm(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    run(nodeimg()
        .args([
            "rpm",
            "placeholder",
            "--version",
            "4.5.6",
            "--release",
            "1.el9",
            "-o",
        ])
        .arg(dir));
    dir.join("ovirt-node-ng-image-update-placeholder-4.5.6-1.el9.noarch.rpm")
}

/// Sign a package with a throw-away key.
pub fn sign(rpm: &Path, scratch: &Path) {
    let home = scratch.join("gnupg");
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    run(Command::new("gpg").env("GNUPGHOME", &home).args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "nodeimg test <test@localhost>",
        "rsa2048",
        "sign",
        "never",
    ]));
    // Debian's rpm looks for gpg2 by default.
    let gpg = run(Command::new("sh").args(["-c", "command -v gpg"]));
    let gpg = String::from_utf8_lossy(&gpg.stdout).trim().to_owned();
    run(Command::new("rpmsign")
        .env("GNUPGHOME", &home)
        .args(["--define", "_gpg_name nodeimg test", "--define"])
        .arg(format!("__gpg {gpg}"))
        .arg("--addsign")
        .arg(rpm));
}

/// A Node-like root tree with an rpmdb under /usr/share/rpm written by rpm.
pub fn node_tree(scratch: &Path) -> PathBuf {
    node_tree_with(scratch, "4.5.6", "1.el9")
}

/// The same, with the placeholder at `version`-`release`.
pub fn node_tree_with(scratch: &Path, version: &str, release: &str) -> PathBuf {
    let root = scratch.join("root");
    for dir in [
        "etc",
        "usr/lib",
        "boot",
        "usr/share/imgbase/build/meta",
        "var/lib",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(
        root.join("usr/lib/os-release"),
        "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nVERSION_ID=\"9\"\nPRETTY_NAME=\"CentOS Stream 9\"\nCPE_NAME=\"cpe:/o:centos:centos:9\"\n",
    )
    .unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    fs::write(root.join("boot/vmlinuz-5.14.0-570.el9.x86_64"), "kernel").unwrap();
    fs::write(root.join("boot/vmlinuz-0-rescue-abc"), "rescue").unwrap();
    fs::write(
        root.join("usr/share/imgbase/build/meta/nvr"),
        "ovirt-node-ng-4.5.6-0.20261125.0\n",
    )
    .unwrap();
    symlink("../../usr/share/rpm", root.join("var/lib/rpm")).unwrap();

    let top = scratch.join("rpmbuild");
    let packages = [
        build_rpm(&top, PLACEHOLDER, None, version, release),
        build_rpm(&top, "vdsm-fake", Some(2), "4.50.5", "1.el9"),
        build_rpm(&top, "imgbased-fake", None, "1.2.30", "0.1.el9"),
    ];
    sign(&packages[2], scratch);
    let rpm = |args: &[&str]| {
        let mut cmd = Command::new("rpm");
        cmd.arg("--root")
            .arg(&root)
            .args(["--dbpath", "/usr/share/rpm"])
            .args(args);
        cmd
    };
    run(&mut rpm(&["--initdb"]));
    run(rpm(&["-i", "--justdb", "--nodeps", "--nosignature"]).args(&packages));
    root
}

/// Pack a tree or image into a 32 MiB-rootfs liveimg with nodeimg.
pub fn pack(source: &str, out: &Path) {
    run(nodeimg()
        .args([
            "-q", "liveimg", "pack", "--force", "--size", "32M", "--from", source, "-o",
        ])
        .arg(out));
}

/// A build's OUTDIR made by nodeimg from a Node-like tree.
pub fn outdir(scratch: &Path) -> PathBuf {
    let root = node_tree(scratch);
    let out = scratch.join("out");
    run(nodeimg()
        .env("SOURCE_DATE_EPOCH", "1764115200")
        .args([
            "build",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/kickstarts/ovirt-node-ng-image.ks"
            ),
            "--compression",
            "zstd",
            "--from-result",
        ])
        .arg(format!("dir:{}", root.display()))
        .arg("-o")
        .arg(&out));
    out
}

/// dnf against `root` with only the given repositories, scriptlets off.
pub fn dnf(root: &Path, cache: &Path, repos: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new("dnf");
    cmd.args([
        "-y",
        "--releasever=9",
        "--nogpgcheck",
        "--setopt=reposdir=/nonexistent",
    ])
    .args([
        "--setopt=tsflags=noscripts",
        "--setopt=install_weak_deps=False",
    ])
    .arg(format!("--installroot={}", root.display()))
    .arg(format!("--setopt=cachedir={}", cache.display()));
    for (i, url) in repos.iter().enumerate() {
        cmd.arg(format!("--repofrompath=r{i},{url}"));
    }
    cmd.args(args).output().unwrap()
}

pub fn installed(root: &Path) -> Vec<String> {
    let out = run(Command::new("rpm").arg("--root").arg(root).args([
        "-qa",
        "--qf",
        "%{NAME}-%{VERSION}-%{RELEASE}\n",
    ]));
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}
