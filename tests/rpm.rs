//! `nodeimg rpm`: the update RPM and its placeholder, checked with rpm itself (headers,
//! digests, payload), against rpmbuild building the rendered spec, through the rpm
//! crate, and through real dnf upgrading a placeholder in an installroot.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::node::{build_rpm_with, dnf, installed, node_tree, nodeimg, pack, placeholder_rpm};
use common::run;

const EPOCH: &str = "1764028800";
const UPDATE: &str = "ovirt-node-ng-image-update";
const IMAGE_PATH: &str = "/usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-image-update-4.5.6-1.el9.squashfs.img";

/// A Node liveimg whose placeholder is 4.5.6-1.el9, named as a build names it.
fn node_image(scratch: &Path) -> PathBuf {
    let root = node_tree(scratch);
    let image = scratch.join("ovirt-node-ng-image.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &image);
    image
}

fn rpm_update(image: &Path, out: &Path, extra: &[&str]) -> Output {
    fs::create_dir_all(out).unwrap();
    nodeimg()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["rpm", "update", "--image"])
        .arg(image)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

fn query(rpm: &Path, args: &[&str]) -> String {
    stdout(
        Command::new("rpm")
            .args(["-qp", "--nosignature"])
            .args(args)
            .arg(rpm),
    )
}

/// The parts of a package that must not depend on who built it.
fn identity(rpm: &Path) -> Vec<String> {
    [
        &["--qf", "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{SUMMARY}|%{SOURCERPM}|%{PAYLOADFORMAT}\n"][..],
        &["--requires"],
        &["--provides"],
        &["--obsoletes"],
        &["--conflicts"],
        &["--scripts"],
        &["--qf", "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILESIZES} %{FILEDIGESTS} %{FILEFLAGS:fflags}\n]"],
    ]
    .iter()
    .map(|args| query(rpm, args))
    .collect()
}

#[test]
fn the_update_rpm_is_what_rpm_and_rpmbuild_make_of_the_spec() {
    let scratch = tempfile::tempdir().unwrap();
    let image = node_image(scratch.path());
    let out = scratch.path().join("out");
    let done = rpm_update(&image, &out, &["--format", "json"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    let rpm = out.join(format!("{UPDATE}-4.5.6-1.el9.noarch.rpm"));
    assert_eq!(report["path"], rpm.to_str().unwrap());
    let entries: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    // Every digest rpm knows, checked by rpm.
    let checked = stdout(Command::new("rpm").args(["-Kv", "--nosignature"]).arg(&rpm));
    for line in [
        "Header SHA256 digest: OK",
        "Header SHA1 digest: OK",
        "Payload SHA256 digest: OK",
        "MD5 digest: OK",
    ] {
        assert!(checked.contains(line), "{line} missing from:\n{checked}");
    }
    assert_eq!(
        query(&rpm, &["--qf", "%{SIGMD5}"]),
        report["sigmd5"].as_str().unwrap()
    );

    // The header fields the upstream spec sets and koji reads.
    assert_eq!(
        query(
            &rpm,
            &[
                "--qf",
                "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{SUMMARY}|%{SOURCERPM}|%{BUILDTIME}|%{PAYLOADFORMAT}|%{PAYLOADCOMPRESSOR}|%{FILEDIGESTALGO}|%{SIZE}"
            ]
        ),
        format!(
            "{UPDATE}|(none)|4.5.6|1.el9|noarch|GPL-2.0-only|https://www.ovirt.org/download/node.html|oVirt Node Next Image Update|{UPDATE}-4.5.6-1.el9.src.rpm|{EPOCH}|cpio|(none)|8|{}",
            fs::metadata(&image).unwrap().len()
        )
    );
    let host = query(&rpm, &["--qf", "%{BUILDHOST}"]);
    assert!(!host.is_empty() && host != "(none)");
    assert_eq!(
        query(&rpm, &["--requires"]),
        "/bin/sh\n/bin/sh\nimgbased >= 0.7.2\nrpmlib(CompressedFileNames) <= 3.0.4-1\nrpmlib(FileDigests) <= 4.6.0-1\nrpmlib(PayloadFilesHavePrefix) <= 4.0-1\n"
    );
    assert_eq!(
        query(&rpm, &["--provides"]),
        format!(
            "ovirt-node-ng-image = 4.5.6-1.el9\n{UPDATE} = 4.5.6-1.el9\n{UPDATE}-placeholder = 4.5.6-1.el9\n"
        )
    );
    assert_eq!(
        query(&rpm, &["--obsoletes"]),
        format!("ovirt-node-ng-image < 4.5.6-1.el9\n{UPDATE}-placeholder < 4.5.6-1.el9\n")
    );
    let scripts = query(&rpm, &["--scripts"]);
    assert!(
        scripts.contains("preinstall scriptlet (using /bin/sh):"),
        "{scripts}"
    );
    assert!(scripts.contains("dom_md/metadata"), "{scripts}");
    assert!(
        scripts.contains(&format!("image=\"{IMAGE_PATH}\"")),
        "{scripts}"
    );
    assert!(
        scripts.contains("imgbase --debug update --format liveimg \"$image\""),
        "{scripts}"
    );
    assert!(
        !scripts.contains("postun") && !scripts.contains("posttrans"),
        "{scripts}"
    );
    let listing = query(&rpm, &["-lv"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].starts_with("drwxr-xr-x ")
            && lines[0].ends_with(" /usr/share/ovirt-node-ng-image-update/image"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("-rw-r--r-- ")
            && lines[1].contains("root     root")
            && lines[1].ends_with(IMAGE_PATH),
        "{listing}"
    );
    let digest = stdout(Command::new("sha256sum").arg(&image));
    assert_eq!(
        query(&rpm, &["--qf", "[%{FILEDIGESTS}\n]"]),
        format!("\n{}\n", &digest[..64])
    );

    // The payload gives the image back, byte for byte.
    let unpacked = scratch.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    let cpio = run(Command::new("rpm2cpio").arg(&rpm)).stdout;
    fs::write(scratch.path().join("payload.cpio"), &cpio).unwrap();
    run(Command::new("cpio")
        .args(["-idm", "--quiet", "-F"])
        .arg(scratch.path().join("payload.cpio"))
        .current_dir(&unpacked));
    assert_eq!(
        fs::read(unpacked.join(&IMAGE_PATH[1..])).unwrap(),
        fs::read(&image).unwrap()
    );

    // The rpm crate reads it back and agrees with every digest.
    let package = rpm::Package::open(&rpm).unwrap();
    package.verify_digests().unwrap();
    assert_eq!(package.metadata.get_name().unwrap(), UPDATE);
    assert_eq!(
        package.metadata.get_source_rpm().unwrap(),
        format!("{UPDATE}-4.5.6-1.el9.src.rpm")
    );

    // The same image and SOURCE_DATE_EPOCH give the same bytes.
    let again = scratch.path().join("again");
    assert!(rpm_update(&image, &again, &[]).status.success());
    assert_eq!(
        fs::read(again.join(rpm.file_name().unwrap())).unwrap(),
        fs::read(&rpm).unwrap(),
        "not reproducible"
    );

    // rpmbuild, given the rendered spec, makes the same package. The spec's directory
    // is made when missing (kojid's builder renders it into a new one).
    let specdir = scratch.path().join("spec/new");
    run(nodeimg()
        .args(["rpm", "spec", "--image"])
        .arg(&image)
        .arg("-o")
        .arg(&specdir));
    let top = scratch.path().join("rpmbuild");
    run(Command::new("rpmbuild")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_sourcedir {}", scratch.path().display()))
        .arg(specdir.join(format!("{UPDATE}.spec"))));
    let built = top.join(format!("RPMS/noarch/{UPDATE}-4.5.6-1.el9.noarch.rpm"));
    let ours = identity(&rpm);
    let theirs = identity(&built);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "nodeimg and rpmbuild disagree");
    }
    assert_eq!(
        run(Command::new("rpm2cpio").arg(&built)).stdout,
        cpio,
        "the payloads differ"
    );
    assert_same_headers(&rpm, &built);
}

/// An update RPM for an arch, as the native writer makes it, is what rpmbuild makes of
/// the rendered spec (ExclusiveArch, the ISA provide, an i686 image's conflict with the
/// 64-bit C library).
#[test]
fn an_arch_update_rpm_is_what_rpmbuild_makes_of_the_spec() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let image = node_image(s);
    for arch in ["x86_64", "i686"] {
        let out = s.join(format!("out-{arch}"));
        let done = rpm_update(&image, &out, &["--arch", arch]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let ours = out.join(format!("{UPDATE}-4.5.6-1.el9.{arch}.rpm"));
        run(Command::new("rpm").args(["-K", "--nosignature"]).arg(&ours));
        let specdir = s.join(format!("spec-{arch}"));
        run(nodeimg()
            .args(["rpm", "spec", "--arch", arch, "--image"])
            .arg(&image)
            .arg("-o")
            .arg(&specdir));
        let top = s.join(format!("rpmbuild-{arch}"));
        run(Command::new("rpmbuild")
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .args(["-bb", "--target", arch, "--define"])
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_sourcedir {}", s.display()))
            .arg(specdir.join(format!("{UPDATE}.spec"))));
        let built = top.join(format!("RPMS/{arch}/{UPDATE}-4.5.6-1.el9.{arch}.rpm"));
        assert_same_headers(&ours, &built);
        let conflicts = query(&ours, &["--conflicts"]);
        assert_eq!(
            conflicts.trim(),
            if arch == "i686" { "glibc(x86-64)" } else { "" }
        );
    }
}

/// Every main-header tag of the two packages, compared with the rpm crate. Only what
/// names the builder may differ: BUILDHOST and RPMVERSION, and the tags rpmbuild adds
/// about its own build (PLATFORM, OPTFLAGS, the changelog-less cookie).
fn assert_same_headers(ours: &Path, theirs: &Path) {
    use rpm::IndexTag;
    let builder_tags = [
        IndexTag::RPMTAG_BUILDHOST as u32,
        IndexTag::RPMTAG_RPMVERSION as u32,
        IndexTag::RPMTAG_PLATFORM as u32,
        IndexTag::RPMTAG_OPTFLAGS as u32,
        IndexTag::RPMTAG_COOKIE as u32,
        // The region trailer's offset follows the header's size, which BUILDHOST changes.
        IndexTag::RPMTAG_HEADERIMMUTABLE as u32,
    ];
    let entries = |path: &Path| -> std::collections::BTreeMap<u32, String> {
        rpm::PackageMetadata::open(path)
            .unwrap()
            .header
            .get_all_entries()
            .unwrap()
            .into_iter()
            .filter(|(tag, _)| !builder_tags.contains(tag))
            .map(|(tag, data)| (tag, format!("{data:?}")))
            .collect()
    };
    let ours = entries(ours);
    let theirs = entries(theirs);
    assert!(ours.len() > 45, "only {} tags compared", ours.len());
    let mut differences = Vec::new();
    for tag in ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if ours.get(tag) != theirs.get(tag) {
            differences.push(format!(
                "tag {tag}:\n  nodeimg  {:?}\n  rpmbuild {:?}",
                ours.get(tag),
                theirs.get(tag)
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn a_product_img_and_another_imgbased_go_in_as_asked() {
    let scratch = tempfile::tempdir().unwrap();
    let image = node_image(scratch.path());
    let product = scratch.path().join("product.img");
    fs::write(&product, b"product image bytes").unwrap();
    let out = scratch.path().join("out");
    let done = rpm_update(
        &image,
        &out,
        &[
            "--product-img",
            product.to_str().unwrap(),
            "--imgbased",
            "1.2.24",
            "--version",
            "4.5.7",
            "--release",
            "0.1",
            "--build-host",
            "builder.example.org",
        ],
    );
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // The image says 4.5.6-1.el9: a different V-R is allowed, with a warning.
    assert!(String::from_utf8_lossy(&done.stderr).contains("4.5.6-1.el9"));
    let rpm = out.join(format!("{UPDATE}-4.5.7-0.1.noarch.rpm"));
    assert!(query(&rpm, &["--requires"]).contains("imgbased >= 1.2.24"));
    assert_eq!(
        query(&rpm, &["--qf", "%{BUILDHOST}"]),
        "builder.example.org"
    );
    assert_eq!(
        query(&rpm, &["-l"]),
        "/usr/share/ovirt-node-ng-image-update/image\n/usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-image-update-4.5.7-0.1.squashfs.img\n/usr/share/ovirt-node-ng-image-update/image/product.img\n"
    );
    run(Command::new("rpm").args(["-K", "--nosignature"]).arg(&rpm));
}

#[test]
fn bad_input_is_refused_by_name_and_leaves_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let image = node_image(scratch.path());
    let not_an_image = scratch.path().join("notes.txt");
    fs::write(&not_an_image, "just text, not a liveimg\n".repeat(100)).unwrap();
    let ext4 = scratch.path().join("rootfs.img");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&ext4)
        .arg("8M"));
    let missing = scratch.path().join("missing.squashfs");
    // A liveimg of a tree that is no Node: no NVR, no kernel, no rpmdb.
    let bare_tree = scratch.path().join("bare");
    fs::create_dir_all(bare_tree.join("etc")).unwrap();
    let bare = scratch.path().join("bare.liveimg.squashfs");
    pack(&format!("dir:{}", bare_tree.display()), &bare);

    // A liveimg whose rootfs.img has a symlink claiming a 1 TiB target on the way to
    // the NVR file: `rpm update` inspects first, within the same bounds.
    let hostile = {
        let dir = scratch.path().join("hostile");
        fs::create_dir_all(&dir).unwrap();
        let root = node_tree(&dir);
        let moved = "usr/share/imgbase-moved-to-a-directory-whose-name-does-not-fit-in-an-inode";
        fs::rename(root.join("usr/share/imgbase"), root.join(moved)).unwrap();
        std::os::unix::fs::symlink(format!("/{moved}"), root.join("usr/share/imgbase")).unwrap();
        let live = dir.join("live/LiveOS");
        fs::create_dir_all(&live).unwrap();
        let rootfs = live.join("rootfs.img");
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "LiveOS", "-d"])
            .arg(&root)
            .arg(&rootfs)
            .arg("32M"));
        run(Command::new("debugfs")
            .args(["-w", "-R", "sif /usr/share/imgbase size 1099511627776"])
            .arg(&rootfs));
        let squashfs = dir.join("hostile.liveimg.squashfs");
        run(Command::new("mksquashfs")
            .arg(dir.join("live"))
            .arg(&squashfs)
            .args(["-noappend", "-quiet", "-no-progress"]));
        squashfs
    };

    let cases: Vec<(PathBuf, Vec<&str>, &str)> = vec![
        (
            hostile,
            vec![],
            "/usr/share/imgbase: a symlink whose inode claims a 1099511627776-byte target",
        ),
        (
            image.clone(),
            vec!["--version", "4.5-6", "--release", "1"],
            "version \"4.5-6\" contains '-'",
        ),
        (
            image.clone(),
            vec!["--version", "4.5.6", "--release", "1 el9"],
            "release \"1 el9\" contains ' '",
        ),
        (
            image.clone(),
            vec!["--imgbased", "0.7.2; rm -rf /"],
            "imgbased version",
        ),
        (
            image.clone(),
            vec!["--build-host", "host name"],
            "is not a host name",
        ),
        (bare.clone(), vec![], "imgbased would refuse this image"),
        (
            image.clone(),
            vec!["--product-img", "/nonexistent/product.img"],
            "/nonexistent/product.img",
        ),
        (missing.clone(), vec![], "missing.squashfs"),
        (not_an_image.clone(), vec![], "is not a squashfs"),
        (ext4.clone(), vec![], "not a squashfs liveimg"),
    ];
    for (input, extra, expected) in cases {
        let out = scratch.path().join("out");
        let done = rpm_update(&input, &out, &extra);
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{extra:?}: expected {expected:?} in:\n{stderr}"
        );
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "{extra:?} left a file"
        );
    }
    // --version alone is a usage error.
    let out = scratch.path().join("out");
    let done = rpm_update(&image, &out, &["--version", "4.5.6"]);
    assert_eq!(done.status.code(), Some(2));

    // An existing package is not replaced without --force.
    assert!(rpm_update(&image, &out, &[]).status.success());
    let again = rpm_update(&image, &out, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(rpm_update(&image, &out, &["--force"]).status.success());
}

#[test]
fn every_rpm_subcommand_creates_its_output_directory() {
    // As `nodeimg build -o` does; they refused a missing directory.
    let scratch = tempfile::tempdir().unwrap();
    let image = node_image(scratch.path());
    let made = |args: &[&str], dir: &Path| {
        let done = nodeimg().args(args).arg("-o").arg(dir).output().unwrap();
        assert!(
            done.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1, "{args:?}");
    };
    let image_arg = image.to_str().unwrap();
    made(
        &["rpm", "update", "--image", image_arg],
        &scratch.path().join("new/update"),
    );
    made(
        &["rpm", "spec", "--image", image_arg],
        &scratch.path().join("new/spec"),
    );
    made(
        &[
            "rpm",
            "placeholder",
            "--version",
            "4.5.6",
            "--release",
            "1.el9",
        ],
        &scratch.path().join("new/placeholder"),
    );
}

#[test]
fn the_placeholder_is_an_empty_noarch_package() {
    let scratch = tempfile::tempdir().unwrap();
    let rpm = placeholder_rpm(scratch.path());
    assert_eq!(
        query(
            &rpm,
            &[
                "--qf",
                "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH} %{SIZE} %{SOURCERPM}"
            ]
        ),
        "ovirt-node-ng-image-update-placeholder-4.5.6-1.el9.noarch 0 ovirt-node-ng-image-update-placeholder-4.5.6-1.el9.src.rpm"
    );
    assert_eq!(query(&rpm, &["-l"]), "(contains no files)\n");
    assert_eq!(query(&rpm, &["--scripts"]), "");
    run(Command::new("rpm").args(["-K", "--nosignature"]).arg(&rpm));
}

/// rpmbuild makes a stub package: `imgbased` for the update's Requires, and one that
/// provides /bin/sh for its scriptlets (which dnf is told not to run).
fn stub(top: &Path, name: &str, provides: &str) -> PathBuf {
    build_rpm_with(top, name, None, "1.2.30", "1", provides)
}

/// One createrepo_c repository per call.
fn repo(dir: &Path, rpms: &[&Path]) -> String {
    fs::create_dir_all(dir).unwrap();
    for rpm in rpms {
        fs::copy(rpm, dir.join(rpm.file_name().unwrap())).unwrap();
    }
    run(Command::new("createrepo_c").arg("-q").arg(dir));
    format!("file://{}", dir.display())
}

/// The update RPM takes the image's arch: real dnf gives a Node the package of its own
/// arch, and never another arch's image, whatever its repositories offer (the Node's
/// arch is dnf's --forcearch).
#[test]
fn a_node_only_takes_the_update_of_its_own_arch() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let image = node_image(s);
    let top = s.join("rpmbuild");
    let base = repo(
        &s.join("repo-base"),
        &[
            &stub(&top, "imgbased", ""),
            &stub(&top, "shell-stub", "Provides: /bin/sh"),
            // What glibc.x86_64 and glibc.i686 provide besides their name.
            &stub(&top, "libc-x86-64", "Provides: glibc(x86-64)"),
            &stub(&top, "libc-x86-32", "Provides: glibc(x86-32)"),
        ],
    );
    let node = repo(
        &s.join("repo-node"),
        &[&placeholder_rpm(&s.join("placeholder"))],
    );
    let update = |arch: &str| -> String {
        let out = s.join(format!("out-{arch}"));
        let done = rpm_update(
            &image,
            &out,
            &["--version", "4.5.7", "--release", "1.el9", "--arch", arch],
        );
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let rpm = out.join(format!("{UPDATE}-4.5.7-1.el9.{arch}.rpm"));
        assert_eq!(query(&rpm, &["--qf", "%{ARCH}"]), arch);
        repo(&s.join(format!("repo-{arch}")), &[&rpm])
    };
    let (x86_64, i686) = (update("x86_64"), update("i686"));
    let both = repo(
        &s.join("repo-both"),
        &[
            &s.join(format!("out-x86_64/{UPDATE}-4.5.7-1.el9.x86_64.rpm")),
            &s.join(format!("out-i686/{UPDATE}-4.5.7-1.el9.i686.rpm")),
        ],
    );
    // A deployed Node of ARCH offered REPOS: the arch of the update it ends with, if any.
    let upgrade = |name: &str, arch: &str, repos: &[&str]| -> Option<String> {
        let root = s.join(name);
        let cache = s.join(format!("cache-{name}"));
        let forcearch = ["--forcearch", arch];
        let libc = if arch == "x86_64" {
            "libc-x86-64"
        } else {
            "libc-x86-32"
        };
        let mut install = forcearch.to_vec();
        install.extend([
            "install",
            "ovirt-node-ng-image-update-placeholder",
            "imgbased",
            "shell-stub",
            libc,
        ]);
        let out = dnf(&root, &cache, &[&base, &node], &install);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut all = vec![base.as_str(), node.as_str()];
        all.extend_from_slice(repos);
        let mut args = forcearch.to_vec();
        args.push("upgrade");
        let out = dnf(&root, &cache, &all, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let q = Command::new("rpm")
            .arg("--root")
            .arg(&root)
            .args(["-q", "--qf", "%{ARCH}", UPDATE])
            .output()
            .unwrap();
        q.status
            .success()
            .then(|| String::from_utf8_lossy(&q.stdout).into_owned())
    };
    assert_eq!(upgrade("x", "x86_64", &[&both]).as_deref(), Some("x86_64"));
    assert_eq!(upgrade("i", "i686", &[&both]).as_deref(), Some("i686"));
    assert_eq!(upgrade("i-offered-x", "i686", &[&x86_64]), None);

    // x86_64 takes i686 packages (multilib): an x86_64 Node (its C library provides
    // glibc(x86-64)) offered only the i686 update keeps its placeholder, refused by
    // the solver before anything changes.
    assert_eq!(upgrade("x-offered-i", "x86_64", &[&i686]), None);
    let placeholder = installed(&s.join("x-offered-i"));
    assert!(
        placeholder.contains(&"ovirt-node-ng-image-update-placeholder-4.5.6-1.el9".to_owned()),
        "{placeholder:?}"
    );
}

#[test]
fn dnf_upgrades_the_placeholder_to_the_update_and_the_update_to_the_next() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let image = node_image(s);
    let top = s.join("rpmbuild");
    let base = repo(
        &s.join("repo-base"),
        &[
            &stub(&top, "imgbased", ""),
            &stub(&top, "shell-stub", "Provides: /bin/sh"),
        ],
    );
    let build = |version: &str, release: &str| -> PathBuf {
        let out = s.join(format!("out-{version}-{release}"));
        let done = rpm_update(&image, &out, &["--version", version, "--release", release]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        out.join(format!("{UPDATE}-{version}-{release}.noarch.rpm"))
    };
    let placeholder = placeholder_rpm(&s.join("placeholder"));
    let node = repo(&s.join("repo-node"), &[&placeholder]);
    let root = s.join("root");
    let cache = s.join("cache");
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // A deployed Node: the placeholder, imgbased and a shell.
    ok(dnf(
        &root,
        &cache,
        &[&base, &node],
        &[
            "install",
            "ovirt-node-ng-image-update-placeholder",
            "imgbased",
            "shell-stub",
        ],
    ));
    assert!(
        installed(&root).contains(&"ovirt-node-ng-image-update-placeholder-4.5.6-1.el9".to_owned())
    );

    // An update older than the Node's image is not offered.
    let older = repo(&s.join("repo-older"), &[&build("4.5.5", "1.el9")]);
    ok(dnf(&root, &cache, &[&base, &node, &older], &["upgrade"]));
    assert!(
        installed(&root).contains(&"ovirt-node-ng-image-update-placeholder-4.5.6-1.el9".to_owned())
    );
    assert!(
        !installed(&root)
            .iter()
            .any(|p| p.starts_with(&format!("{UPDATE}-4")))
    );

    // The next image replaces the placeholder through its Obsoletes.
    let next = repo(&s.join("repo-next"), &[&build("4.5.7", "1.el9")]);
    ok(dnf(&root, &cache, &[&base, &node, &next], &["upgrade"]));
    let now = installed(&root);
    assert!(now.contains(&format!("{UPDATE}-4.5.7-1.el9")), "{now:?}");
    assert!(!now.iter().any(|p| p.contains("placeholder")), "{now:?}");
    assert!(
        root.join(
            IMAGE_PATH
                .replace("4.5.6-1.el9", "4.5.7-1.el9")
                .trim_start_matches('/')
        )
        .is_file()
    );

    // And the one after that is an ordinary upgrade of the update package.
    let after = repo(&s.join("repo-after"), &[&build("4.5.8", "1.el9")]);
    ok(dnf(
        &root,
        &cache,
        &[&base, &node, &next, &after],
        &["upgrade"],
    ));
    let now = installed(&root);
    assert!(now.contains(&format!("{UPDATE}-4.5.8-1.el9")), "{now:?}");
    assert!(!now.contains(&format!("{UPDATE}-4.5.7-1.el9")), "{now:?}");
    let installed_image = root.join(
        IMAGE_PATH
            .replace("4.5.6-1.el9", "4.5.8-1.el9")
            .trim_start_matches('/'),
    );
    assert_eq!(
        fs::read(installed_image).unwrap(),
        fs::read(&image).unwrap()
    );
    assert!(
        !root
            .join(
                IMAGE_PATH
                    .replace("4.5.6-1.el9", "4.5.7-1.el9")
                    .trim_start_matches('/')
            )
            .exists()
    );
}

/// The layout rpm uses for images of 4 GiB and more (64-bit sizes, stripped cpio
/// headers), reached without writing 4 GiB: rpm verifies and installs it.
#[test]
fn the_large_file_layout_is_one_rpm_installs() {
    use nodeimg::package::{update, writer};
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let image = s.join("image.squashfs");
    let content: Vec<u8> = (0..3_000_003u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&image, &content).unwrap();
    let product = s.join("product.img");
    fs::write(&product, b"odd-sized product").unwrap();
    let package = update::Update {
        version: "4.5.6".into(),
        release: "1.el9".into(),
        arch: "noarch".into(),
        image: image.clone(),
        product_img: Some(product.clone()),
        imgbased: update::DEFAULT_IMGBASED.into(),
    }
    .package()
    .unwrap();
    let info = writer::BuildInfo {
        build_time: 1_764_028_800,
        build_host: "builder.example.org".into(),
        clamp_mtime: Some(1_764_028_800),
        large_files: true,
    };
    let written = writer::write(&package, &info, s, false).unwrap();
    let rpm = written.path;
    let checked = stdout(Command::new("rpm").args(["-Kv", "--nosignature"]).arg(&rpm));
    assert!(
        checked.contains("MD5 digest: OK") && checked.contains("Payload SHA256 digest: OK"),
        "{checked}"
    );
    assert_eq!(
        query(
            &rpm,
            &["--qf", "%{LONGSIZE} [%{LONGFILESIZES} ]%{BUILDHOST}"]
        ),
        "3000020 0 3000003 17 builder.example.org"
    );
    assert!(query(&rpm, &["--requires"]).contains("rpmlib(LargeFiles) <= 4.12.0-1"));
    // rpm2cpio refuses this layout ("use rpm2archive"); the rpm crate shows the payload.
    let package = rpm::Package::open(&rpm).unwrap();
    package.verify_digests().unwrap();
    assert!(
        package.payload.starts_with(b"07070X00000000"),
        "not a stripped archive"
    );

    let root = s.join("root");
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--noscripts",
            "--nosignature",
        ])
        .arg(&rpm));
    let image_dir = root.join("usr/share/ovirt-node-ng-image-update/image");
    assert_eq!(
        fs::read(image_dir.join("ovirt-node-ng-image-update-4.5.6-1.el9.squashfs.img")).unwrap(),
        content
    );
    assert_eq!(
        fs::read(image_dir.join("product.img")).unwrap(),
        b"odd-sized product"
    );
    let verify = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-V",
            "--nodeps",
            "--nomtime",
            UPDATE,
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "rpm -V: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// SIGTERM while the package is half made: exit 143, nothing left in the output
/// directory, not even the partial file.
#[test]
fn an_interrupted_write_leaves_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let image = node_image(scratch.path());
    let out = scratch.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut cmd = nodeimg();
    cmd.args(["rpm", "update", "--image"])
        .arg(&image)
        .arg("-o")
        .arg(&out);
    let (child, rx) = common::spawn_until_paused(&mut cmd, "rpm.payload-written");
    let partial = out.join(format!("{UPDATE}-4.5.6-1.el9.noarch.rpm.partial"));
    assert!(partial.is_file(), "the payload should be on its way");
    let (code, stderr) = common::interrupt(child, rx, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(143), "{stderr:#?}");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "{stderr:#?}");
}

/// The `%post` as rpm would run it, against the real image with real loop mounts;
/// only `imgbase` and `lsof` (which cannot run here) are stand-ins that record how they
/// were called. The installed image path is pointed at the test's image.
#[test]
fn the_post_scriptlet_mounts_the_image_and_runs_its_imgbased() {
    common::require_root();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let root = node_tree(s);
    fs::create_dir_all(root.join("usr/lib/python3.9/site-packages/imgbased")).unwrap();
    fs::create_dir_all(root.join("usr/lib/python3.12/site-packages/imgbased")).unwrap();
    let image = s.join("ovirt-node-ng-image.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &image);
    let out = s.join("out");
    assert!(rpm_update(&image, &out, &[]).status.success());
    let rpm = out.join(format!("{UPDATE}-4.5.6-1.el9.noarch.rpm"));
    let post = query(&rpm, &["--qf", "%{POSTIN}"]);
    assert!(post.contains(&format!("image=\"{IMAGE_PATH}\"")));
    let post = post.replace(IMAGE_PATH, image.to_str().unwrap());

    let bin = s.join("bin");
    fs::create_dir(&bin).unwrap();
    let log = s.join("calls.log");
    let stub = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = bin.join(name);
        fs::write(
            &path,
            format!("#!/bin/sh\n# Stands in for {name}, which cannot run on Debian.\n{body}\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub(
        "imgbase",
        &format!(
            "{{ echo \"imgbase $*\"; echo \"PYTHONPATH=$PYTHONPATH\"; echo \"RPM=$IMGBASED_IMAGE_UPDATE_RPM\"; \
             findmnt -n -o SOURCE,FSTYPE --target \"$(dirname \"${{PYTHONPATH%%:*}}\")\"; }} >> {}\nexit \"${{IMGBASE_EXIT:-0}}\"",
            log.display()
        ),
    );
    stub(
        "lsof",
        "echo p$2; echo n/var/cache/dnf/r1/packages/ovirt-node-ng-image-update-4.5.6-1.el9.noarch.rpm",
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let run_post = |exit: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(&post)
            .env("PATH", &path)
            .env_remove("PYTHONPATH")
            .env("IMGBASE_EXIT", exit)
            .output()
            .unwrap()
    };
    let done = run_post("0");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let calls = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "imgbase --debug update --format liveimg {}",
            image.display()
        )
    );
    // The newest Python's imgbased inside the mounted image comes first.
    assert!(
        lines[1].starts_with("PYTHONPATH=/")
            && lines[1].ends_with("/usr/lib/python3.12/site-packages"),
        "{calls}"
    );
    assert_eq!(
        lines[2],
        "RPM=/var/cache/dnf/r1/packages/ovirt-node-ng-image-update-4.5.6-1.el9.noarch.rpm"
    );
    // findmnt lists the squashfs and, mounted over it, rootfs.img.
    let mounted = |fstype: &str| {
        lines[3..]
            .iter()
            .any(|l| l.starts_with("/dev/loop") && l.ends_with(fstype))
    };
    assert!(
        mounted("squashfs") && mounted("ext4"),
        "the image and its rootfs.img were not both mounted: {calls}"
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(image.to_str().unwrap()),
        "mounts left behind"
    );

    // A failing imgbase fails the scriptlet, and still nothing stays mounted.
    fs::remove_file(&log).unwrap();
    let failed = run_post("1");
    assert!(!failed.status.success());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = fs::read_to_string(&log).unwrap();
    let pythonpath = mnt
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("PYTHONPATH=");
    let mnt_dir = pythonpath.split("/usr/lib/").next().unwrap();
    assert!(!mounts.contains(mnt_dir), "{mnt_dir} still mounted");
    assert!(!Path::new(mnt_dir).exists(), "{mnt_dir} left behind");
}

/// What koji does with a package, done by koji's own code (the koji library from
/// PyPI, on rpm's Python bindings): the sanity check, the header fields its import
/// records, the sigmd5 it stores as payloadhash, the source package name it parses,
/// and ripping and splicing signature headers. Then rpmsign signs the package in
/// place, in the space the writer reserved, and koji finds the signing key.
#[test]
fn koji_reads_and_rpmsign_signs_it_like_any_package() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let image = node_image(s);
    let out = s.join("out");
    let done = rpm_update(&image, &out, &["--format", "json"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    let rpm = out.join(format!("{UPDATE}-4.5.6-1.el9.noarch.rpm"));

    const KOJI: &str = r#"
import json, sys, koji
path = sys.argv[1]
koji.check_rpm_file(path)
hdr = koji.get_rpm_header(path)
info = koji.get_header_fields(hdr, ['name', 'version', 'release', 'epoch', 'arch',
                                    'sourcepackage', 'sourcerpm', 'buildtime', 'size'])
info['payloadhash'] = koji.hex_string(koji.get_header_field(hdr, 'sigmd5'))
info['srpm'] = koji.parse_NVRA(info['sourcerpm'])
sighdr = koji.rip_rpm_sighdr(path)
info['key'] = koji.get_sighdr_key(sighdr)
copy = koji.splice_rpm_sighdr(sighdr, path)
info['splice_identical'] = open(copy, 'rb').read() == open(path, 'rb').read()
print(json.dumps(info))
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let koji = |rpm: &Path| -> serde_json::Value {
        let out = Command::new(python)
            .args(["-c", KOJI])
            .arg(rpm)
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e}; run scripts/setup.sh"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let info = koji(&rpm);
    assert_eq!(info["name"], UPDATE);
    assert_eq!(info["version"], "4.5.6");
    assert_eq!(info["release"], "1.el9");
    assert_eq!(info["epoch"], serde_json::Value::Null);
    assert_eq!(info["arch"], "noarch");
    assert_eq!(info["sourcepackage"], serde_json::Value::Null);
    assert_eq!(info["buildtime"], EPOCH.parse::<u64>().unwrap());
    assert_eq!(info["payloadhash"], report["sigmd5"]);
    assert_eq!(info["srpm"]["name"], UPDATE);
    assert_eq!(info["srpm"]["version"], "4.5.6");
    assert_eq!(info["srpm"]["release"], "1.el9");
    assert_eq!(info["srpm"]["arch"], "src");
    assert_eq!(info["key"], serde_json::Value::Null);
    assert_eq!(info["splice_identical"], true);

    // Signing goes into the reserved space: same size, no rewrite of the payload.
    let size = fs::metadata(&rpm).unwrap().len();
    common::node::sign(&rpm, &s.join("signer"));
    assert_eq!(
        fs::metadata(&rpm).unwrap().len(),
        size,
        "rpmsign had to rewrite the package"
    );
    let signed = koji(&rpm);
    let key = signed["key"].as_str().expect("koji finds no signing key");
    assert_eq!(key.len(), 8, "{key}");
    assert_eq!(
        signed["payloadhash"], report["sigmd5"],
        "signing changed the sigmd5"
    );
    let checked = stdout(Command::new("rpm").args(["-Kv", "--nosignature"]).arg(&rpm));
    assert!(checked.contains("MD5 digest: OK"), "{checked}");
}
