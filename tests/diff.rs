//! `nodeimg diff` and the SBOMs on images made by the test: real RPMs from rpmbuild
//! (with %changelog entries naming CVEs, an epoch bump, a `~` pre-release, a rebuild
//! at the same EVR), recorded in each image's rpmdb with rpm itself, packed with
//! `nodeimg liveimg pack`. Version order is checked against rpm's own `rpm.vercmp`;
//! the SBOMs against spdx-tools' validator and CycloneDX's published 1.5 schema
//! (cyclonedx-python-lib ships it), both from PyPI.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::node::nodeimg;
use common::run;

/// A package for the images: name, [epoch:]version-release, %changelog, extra preamble.
struct Spec<'a> {
    name: &'a str,
    epoch: Option<u32>,
    version: &'a str,
    release: &'a str,
    changelog: &'a str,
    preamble: &'a str,
    /// Files it installs: path and content.
    files: &'a [(&'a str, &'a str)],
}

fn spec<'a>(name: &'a str, version: &'a str, release: &'a str) -> Spec<'a> {
    Spec {
        name,
        epoch: None,
        version,
        release,
        changelog: "",
        preamble: "",
        files: &[],
    }
}

/// rpmbuild `s` under `top` (its own topdir, so a rebuild does not replace the first).
fn rpmbuild(top: &Path, s: &Spec) -> PathBuf {
    fs::create_dir_all(top).unwrap();
    let file = top.join(format!("{}.spec", s.name));
    let epoch = s.epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    let mut install = String::from("%install\n");
    let mut files = String::new();
    for (path, content) in s.files {
        install.push_str(&format!(
            "mkdir -p $(dirname %{{buildroot}}{path})\nprintf '{content}' > %{{buildroot}}{path}\n"
        ));
        files.push_str(&format!("{path}\n"));
    }
    fs::write(
        &file,
        format!(
            "Name: {}\n{epoch}Version: {}\nRelease: {}\nSummary: diff test package\n\
             License: GPLv2+ and (MIT or BSD)\nBuildArch: noarch\n{}\n%description\ntest\n\
             {install}%files\n{files}%changelog\n{}",
            s.name, s.version, s.release, s.preamble, s.changelog
        ),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg(&file));
    top.join("RPMS/noarch")
        .join(format!("{}-{}-{}.noarch.rpm", s.name, s.version, s.release))
}

/// A Node-shaped tree with `rpms` installed by rpm (no scriptlets) and `unowned` files
/// of no package, packed as a liveimg.
fn image(
    dir: &Path,
    nvr: &str,
    kernel: &str,
    rpms: &[PathBuf],
    unowned: &[(&str, &str)],
) -> PathBuf {
    let root = dir.join("root");
    for d in [
        "etc",
        "usr/lib",
        "boot",
        "usr/share/imgbase/build/meta",
        "var/lib",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join("usr/lib/os-release"),
        "NAME=\"CentOS Stream\"\nID=\"centos\"\nVERSION_ID=\"9\"\nPRETTY_NAME=\"CentOS Stream 9\"\n",
    )
    .unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    fs::write(root.join("boot").join(kernel), "kernel").unwrap();
    fs::write(
        root.join("usr/share/imgbase/build/meta/nvr"),
        format!("{nvr}\n"),
    )
    .unwrap();
    symlink("../../usr/share/rpm", root.join("var/lib/rpm")).unwrap();
    for (path, content) in unowned {
        let file = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, content).unwrap();
    }
    let rpm = || {
        let mut cmd = Command::new("rpm");
        cmd.arg("--root")
            .arg(&root)
            .args(["--dbpath", "/usr/share/rpm"]);
        cmd
    };
    run(rpm().arg("--initdb"));
    run(rpm()
        .args(["-i", "--nodeps", "--noscripts", "--nosignature"])
        .args(rpms));
    let out = dir.join(format!("{nvr}.liveimg.squashfs"));
    common::node::pack(&format!("dir:{}", root.display()), &out);
    out
}

struct Images {
    _scratch: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
}

const OLD_BASH_LOG: &str =
    "* Mon Jan 06 2025 Alice <alice@example.org> - 5.1-1\n- Initial package (CVE-2020-0001)\n";

/// The two images, made once for all the tests here.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let scratch = tempfile::tempdir().unwrap();
        let s = scratch.path();
        let top = s.join("rpmbuild");
        let new_bash_log = format!(
            "* Tue Sep 02 2025 Bob <bob@example.org> - 5.2-1\n- Rebase to 5.2\n\
             - Fix CVE-2024-1234 and cve-2024-5678\n\n{OLD_BASH_LOG}"
        );
        let shared = [
            rpmbuild(&top, &spec("base", "1.0", "1")),
            rpmbuild(&top, &spec("glibc", "2.34", "1")),
        ];
        let mut old_bash = spec("bash", "5.1", "1");
        old_bash.changelog = OLD_BASH_LOG;
        old_bash.files = &[("/usr/bin/bash", "bash 5.1"), ("/etc/bashrc", "same")];
        let mut new_bash = spec("bash", "5.2", "1");
        new_bash.changelog = &new_bash_log;
        new_bash.files = &[("/usr/bin/bash", "bash 5.2!"), ("/etc/bashrc", "same")];
        let mut gone = spec("gone", "1.0", "1");
        gone.files = &[("/usr/share/gone/data", "old")];
        let mut fresh = spec("fresh", "1.0", "1");
        fresh.files = &[("/usr/share/fresh/data", "new")];
        let mut epoch_bump = spec("legacy", "1", "1");
        epoch_bump.epoch = Some(1);
        // The same EVR built again: another header, another SIGMD5.
        let mut rebuild = spec("glibc", "2.34", "1");
        rebuild.preamble = "Vendor: rebuilt";
        let old = [
            rpmbuild(
                &top,
                &spec("ovirt-node-ng-image-update-placeholder", "4.5.5", "1.el9"),
            ),
            rpmbuild(&top, &old_bash),
            rpmbuild(&top, &gone),
            rpmbuild(&top, &spec("legacy", "9", "1")),
            rpmbuild(&top, &spec("pre", "1.0", "1")),
        ];
        let top2 = s.join("rpmbuild-new");
        let new = [
            rpmbuild(
                &top2,
                &spec("ovirt-node-ng-image-update-placeholder", "4.5.6", "1.el9"),
            ),
            rpmbuild(&top2, &new_bash),
            rpmbuild(&top2, &fresh),
            rpmbuild(&top2, &epoch_bump),
            rpmbuild(&top2, &spec("pre", "1.0~rc1", "1")),
        ];
        let rebuilt = rpmbuild(&s.join("rpmbuild-rebuild"), &rebuild);
        let old_rpms: Vec<PathBuf> = shared.iter().chain(&old).cloned().collect();
        let new_rpms: Vec<PathBuf> = [shared[0].clone(), rebuilt]
            .iter()
            .chain(&new)
            .cloned()
            .collect();
        let old = image(
            &s.join("old"),
            "ovirt-node-ng-4.5.5-0.20250901.0",
            "vmlinuz-5.14.0-570.el9.x86_64",
            &old_rpms,
            &[("/etc/unowned.conf", "a"), ("/var/lib/only-old", "x")],
        );
        let new = image(
            &s.join("new"),
            "ovirt-node-ng-4.5.6-0.20251201.0",
            "vmlinuz-5.14.0-580.el9.x86_64",
            &new_rpms,
            &[("/etc/unowned.conf", "bb")],
        );
        Images {
            _scratch: scratch,
            old,
            new,
        }
    })
}

fn diff(format: &str) -> String {
    let i = images();
    let out = run(nodeimg()
        .args(["diff", "--format", format])
        .arg(&i.old)
        .arg(&i.new));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_text_diff_names_every_change() {
    let text = diff("text");
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "imgbased NVR: ovirt-node-ng-4.5.5-0.20250901.0 → ovirt-node-ng-4.5.6-0.20251201.0",
        "placeholder V-R: 4.5.5-1.el9 → 4.5.6-1.el9",
        "kernel added: vmlinuz-5.14.0-580.el9.x86_64",
        "kernel removed: vmlinuz-5.14.0-570.el9.x86_64",
        "packages: 1 added, 1 removed, 3 upgraded, 1 downgraded, 1 rebuilt",
        "  + fresh-1.0-1.noarch",
        "  - gone-1.0-1.noarch",
        "  ↑ bash.noarch 5.1-1 → 5.2-1",
        "      * 2025-09-02 Bob <bob@example.org> - 5.2-1",
        "        - Fix CVE-2024-1234 and cve-2024-5678",
        "  ↑ legacy.noarch 9-1 → 1:1-1",
        "  ↑ ovirt-node-ng-image-update-placeholder.noarch 4.5.5-1.el9 → 4.5.6-1.el9",
        "  ↓ pre.noarch 1.0-1 → 1.0~rc1-1",
        "CVEs: CVE-2024-1234, CVE-2024-5678",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in\n{text}");
    }
    // Only the entry newer than the old package's newest one.
    assert!(!text.contains("Initial package"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  = glibc-2.34-1.noarch rebuilt: sigmd5 ")),
        "{text}"
    );
    assert!(
        !text.contains("base-1.0"),
        "an unchanged package is listed:\n{text}"
    );
}

#[test]
fn the_json_diff_carries_the_same_changes() {
    let json: serde_json::Value = serde_json::from_str(&diff("json")).unwrap();
    let p = &json["packages"];
    let names = |list: &str| -> Vec<String> {
        p[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("added"), ["fresh"]);
    assert_eq!(names("removed"), ["gone"]);
    assert_eq!(
        names("upgraded"),
        ["bash", "legacy", "ovirt-node-ng-image-update-placeholder"]
    );
    assert_eq!(names("downgraded"), ["pre"]);
    assert_eq!(names("rebuilt"), ["glibc"]);
    let bash = &p["upgraded"][0];
    assert_eq!(
        bash["cves"],
        serde_json::json!(["CVE-2024-1234", "CVE-2024-5678"])
    );
    assert_eq!(bash["changelog"].as_array().unwrap().len(), 1);
    assert_ne!(p["rebuilt"][0]["old_sigmd5"], p["rebuilt"][0]["new_sigmd5"]);
    assert_eq!(json["old"]["packages"], 7);
}

#[test]
fn the_markdown_diff_is_a_release_notes_section() {
    let md = diff("markdown");
    for expected in [
        "## Changes in ovirt-node-ng-4.5.6-0.20251201.0\n",
        "| Placeholder V-R | 4.5.5-1.el9 | 4.5.6-1.el9 |\n",
        "### Security fixes\n\n- CVE-2024-1234 (bash 5.2-1)\n- CVE-2024-5678 (bash 5.2-1)\n",
        "### Upgraded (3)\n",
        "| bash.noarch | 5.1-1 | 5.2-1 |\n",
        "| legacy.noarch | 9-1 | 1:1-1 |\n",
        "#### bash 5.2-1\n\n- 2025-09-02 Bob <bob@example.org> - 5.2-1\n  - Rebase to 5.2\n",
        "### Downgraded (1)\n",
        "### Added (1)\n\n- fresh-1.0-1.noarch\n",
        "### Removed (1)\n\n- gone-1.0-1.noarch\n",
        "### Rebuilt at the same version (1)\n\n- glibc-2.34-1.noarch\n",
        "- added vmlinuz-5.14.0-580.el9.x86_64\n",
    ] {
        assert!(md.contains(expected), "no {expected:?} in\n{md}");
    }
}

#[test]
fn an_image_against_itself_has_no_differences_and_exits_0() {
    let i = images();
    let out = run(nodeimg().arg("diff").arg(&i.new).arg(&i.new));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("no differences in packages, kernels or image facts\n"),
        "{text}"
    );
    let missing = nodeimg()
        .arg("diff")
        .arg(&i.new)
        .arg("/nonexistent.squashfs")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.squashfs"));
}

/// rpm's own answer: -1, 0 or 1.
fn rpm_vercmp(a: &str, b: &str) -> i32 {
    let out = run(Command::new("rpm")
        .arg("--eval")
        .arg(format!("%{{lua: print(rpm.vercmp(\"{a}\", \"{b}\"))}}")));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn versions_are_ordered_as_rpm_orders_them() {
    let pairs = [
        ("1.0~rc1", "1.0"),
        ("1.0^git1", "1.0"),
        ("1.0^git1", "1.0.1"),
        ("1.0~rc1~pre", "1.0~rc1"),
        ("1.0a", "1.0"),
        ("1.010", "1.9"),
        ("1.0.0", "1.0"),
        ("2.0_1", "2.0.1"),
        ("5.14.0-570.el9", "5.14.0-580.el9"),
        ("1:1-1", "9-1"),
        ("0:1-1", "1-1"),
        ("abc", "abd"),
        ("1.0", "1.0"),
    ];
    for (a, b) in pairs {
        let ours = rpm_version::rpm_evr_compare(a, b) as i32;
        assert_eq!(ours, rpm_vercmp(a, b), "{a} vs {b}");
    }
}

#[test]
fn inspect_writes_sboms_the_validators_accept() {
    let i = images();
    let dir = tempfile::tempdir().unwrap();
    for (kind, name) in [("spdx", "sbom.spdx.json"), ("cyclonedx", "sbom.cdx.json")] {
        let out = run(nodeimg()
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .args(["inspect", "--sbom", kind])
            .arg(&i.new));
        let file = dir.path().join(name);
        fs::write(&file, &out.stdout).unwrap();
        common::validate_sbom(kind, &file);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = doc.to_string();
        // The image's digest, a purl with its qualifiers, the license as the RPM says it.
        let sha = common::sha256_file(&i.new);
        assert!(text.contains(&sha), "{kind}: no image SHA-256");
        assert!(
            text.contains("pkg:rpm/centos/bash@5.2-1?arch=noarch&distro=centos-9"),
            "{kind}: {text}"
        );
        assert!(text.contains("pkg:rpm/centos/legacy@1-1?arch=noarch&epoch=1&distro=centos-9"));
        assert!(text.contains("GPLv2+ and (MIT or BSD)"), "{kind}");
        assert!(text.contains("bash-5.2-1.src.rpm"), "{kind}");
        assert!(
            text.contains("2025-11-25T00:00:00Z"),
            "{kind}: SOURCE_DATE_EPOCH"
        );
    }
}

/// The text diff without its first two lines (they name what was read).
fn body(text: &str) -> String {
    text.lines().skip(2).collect::<Vec<_>>().join("\n")
}

#[test]
fn update_rpms_are_read_in_place_whoever_wrote_them() {
    use nodeimg::package::{update, writer};
    let i = images();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let expected = body(&diff("text"));
    let mut rpms = Vec::new();
    // nodeimg's writer, in both of rpm's payload layouts (newc, and the stripped
    // headers rpm writes for files of 4 GiB or more).
    for large_files in [false, true] {
        let dir = s.join(format!("large-{large_files}"));
        fs::create_dir_all(&dir).unwrap();
        let package = update::Update {
            version: "4.5.6".into(),
            release: "1.el9".into(),
            arch: "noarch".into(),
            image: i.new.clone(),
            product_img: None,
            imgbased: update::DEFAULT_IMGBASED.into(),
        }
        .package()
        .unwrap();
        let info = writer::BuildInfo {
            build_time: 1_764_028_800,
            build_host: "builder.example.org".into(),
            clamp_mtime: None,
            large_files,
        };
        rpms.push(writer::write(&package, &info, &dir, false).unwrap().path);
    }
    // rpmbuild, from the spec nodeimg renders.
    let specdir = s.join("spec");
    run(nodeimg()
        .args(["rpm", "spec", "--image"])
        .arg(&i.new)
        .arg("-o")
        .arg(&specdir));
    let top = s.join("rpmbuild");
    run(Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_sourcedir {}", i.new.parent().unwrap().display()))
        .arg(specdir.join("ovirt-node-ng-image-update.spec")));
    rpms.push(top.join("RPMS/noarch/ovirt-node-ng-image-update-4.5.6-1.el9.noarch.rpm"));
    for rpm in &rpms {
        let out = run(nodeimg().arg("diff").arg(&i.old).arg(rpm));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(body(&text), expected, "{}", rpm.display());
    }
    // An RPM that carries no image says so.
    let placeholder = common::node::placeholder_rpm(s);
    let out = nodeimg()
        .arg("diff")
        .arg(&i.old)
        .arg(&placeholder)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("carries no /usr/share/ovirt-node-ng-image-update/image/"),
        "{stderr}"
    );
}

#[test]
fn an_outdir_is_read_through_its_build_record() {
    let i = images();
    let scratch = tempfile::tempdir().unwrap();
    let out = common::node::outdir(scratch.path());
    let text = String::from_utf8(run(nodeimg().arg("diff").arg(&i.new).arg(&out)).stdout).unwrap();
    // outdir's image holds the placeholder, vdsm-fake and imgbased-fake only.
    assert!(
        text.contains("  + vdsm-fake-2:4.50.5-1.el9.noarch"),
        "{text}"
    );
    assert!(text.contains("  - bash-5.2-1.noarch"), "{text}");
}

#[test]
fn a_damaged_update_rpm_is_refused_with_a_reason() {
    let i = images();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let rpm = {
        let out = run(nodeimg()
            .args(["-q", "rpm", "update", "--image"])
            .arg(&i.new)
            .arg("-o")
            .arg(s));
        assert!(out.status.success());
        fs::read_dir(s)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "rpm"))
            .unwrap()
    };
    let good = fs::read(&rpm).unwrap();
    let be = |n: u32| n.to_be_bytes();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for cut in [50, 100, 200, 4000, good.len() / 2, good.len() - 10] {
        cases.push(("cut", good[..cut].to_vec()));
    }
    // A signature header claiming 2^32-1 entries, then a main header claiming a
    // gigabyte of data: refused before anything is allocated.
    let mut huge = good.clone();
    huge[96 + 8..96 + 12].copy_from_slice(&be(u32::MAX));
    cases.push(("huge", huge));
    let expected = body(&diff("text"));
    let mut refused = 0;
    for (what, bytes) in cases {
        let bad = s.join("bad.rpm");
        fs::write(&bad, &bytes).unwrap();
        let out = nodeimg()
            .arg("diff")
            .arg(&i.old)
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        match out.status.code() {
            // Damage past the image leaves the image whole: the same diff.
            Some(0) => assert_eq!(body(&String::from_utf8_lossy(&out.stdout)), expected),
            Some(1) => {
                assert!(stderr.contains("bad.rpm"), "{what}: {stderr}");
                refused += 1;
            }
            other => panic!("{what} {}: exit {other:?}: {stderr}", bytes.len()),
        }
    }
    assert!(refused >= 5, "only {refused} damaged RPMs were refused");
}

#[test]
fn files_are_compared_with_the_files_option() {
    let i = images();
    let text =
        String::from_utf8(run(nodeimg().args(["diff", "--files"]).arg(&i.old).arg(&i.new)).stdout)
            .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "  + /usr/share/fresh/data (fresh)",
        "  - /usr/share/gone/data (gone)",
        "  - /var/lib/only-old (no package)",
        "  ~ /usr/bin/bash (bash): size 8 → 9, content",
        "  ~ /etc/unowned.conf (no package): size 1 → 2",
        // The kernels are files no package owns.
        "  + /boot/vmlinuz-5.14.0-580.el9.x86_64 (no package)",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in\n{text}");
    }
    // An unchanged file is not listed; without --files no file is.
    assert!(!text.contains("/etc/bashrc"), "{text}");
    assert!(!diff("text").contains("files:"));
    let json: serde_json::Value = serde_json::from_slice(
        &run(nodeimg()
            .args(["diff", "--files", "--format", "json"])
            .arg(&i.old)
            .arg(&i.new))
        .stdout,
    )
    .unwrap();
    let changed = json["files"]["changed"].as_array().unwrap();
    let bash = changed
        .iter()
        .find(|c| c["path"] == "/usr/bin/bash")
        .unwrap();
    assert_ne!(bash["old"]["digest"], bash["new"]["digest"]);
    assert_eq!(bash["new"]["owner"], "root:root");
    assert_eq!(bash["new"]["mode"], "100644");
}
