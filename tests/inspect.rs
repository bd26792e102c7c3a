//! `nodeimg inspect` on images made here with the real tools: an rpmdb written by rpm
//! itself from packages built by rpmbuild (one signed with rpmsign), packed as a
//! squashfs liveimg, as an ext4 image and inside a GPT disk. Checked against
//! `rpm -qa`, and run as an unprivileged user.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::node::{node_tree, nodeimg, pack};
use common::run;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// What rpm itself says is installed in `root`, as NEVRA lines.
fn rpm_qa(root: &Path) -> Vec<String> {
    let out = run(Command::new("rpm").arg("--root").arg(root).args([
        "--dbpath",
        "/usr/share/rpm",
        "-qa",
        "--qf",
        "%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\n",
    ]));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// An ext4 filesystem labelled LiveOS made of `root`.
fn mkfs_ext4(root: &Path, image: &Path, size: &str) {
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "LiveOS", "-d"])
        .arg(root)
        .arg(image)
        .arg(size));
}

fn inspect_json(image: &Path) -> (Option<i32>, Value) {
    let out = nodeimg()
        .args(["inspect", "--format", "json"])
        .arg(image)
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), value)
}

fn assert_node_contents(report: &Value, expected_manifest: &[String]) {
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["nvr"], "ovirt-node-ng-4.5.6-0.20261125.0");
    assert_eq!(
        report["os_release"]["symlink_target"],
        "../usr/lib/os-release"
    );
    assert_eq!(report["os_release"]["id"], "centos");
    assert_eq!(report["os_release"]["cpe_name"], "cpe:/o:centos:centos:9");
    assert_eq!(
        report["kernels"],
        serde_json::json!(["vmlinuz-5.14.0-570.el9.x86_64"])
    );
    assert_eq!(report["rpmdb"], "/usr/share/rpm/rpmdb.sqlite");
    assert_eq!(report["placeholder"], "4.5.6-1.el9");
    let manifest: Vec<String> = serde_json::from_value(report["manifest"].clone()).unwrap();
    assert_eq!(manifest, expected_manifest);
    assert!(manifest.contains(&"vdsm-fake-2:4.50.5-1.el9.noarch".to_owned()));
    assert_eq!(
        report["unsigned"],
        serde_json::json!([
            "ovirt-node-ng-image-update-placeholder-4.5.6-1.el9.noarch",
            "vdsm-fake-2:4.50.5-1.el9.noarch"
        ])
    );
}

#[test]
fn squashfs_ext4_and_disk_forms_report_what_rpm_installed() {
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let expected = rpm_qa(&root);
    assert_eq!(expected.len(), 3, "{expected:?}");

    let squashfs = scratch.path().join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &squashfs);
    let (code, report) = inspect_json(&squashfs);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["format"], "squashfs");
    assert_eq!(
        report["squashfs_entries"],
        serde_json::json!(["LiveOS", "LiveOS/rootfs.img"])
    );
    assert_eq!(report["squashfs_compression"], "xz");
    assert_eq!(report["filesystem"]["label"], "LiveOS");
    assert_eq!(report["filesystem"]["size_bytes"], 32 * MIB);
    assert_node_contents(&report, &expected);

    // The same filesystem as a plain ext4 image and inside a GPT disk.
    let ext4 = scratch.path().join("root.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "root", "-d"])
        .arg(&root)
        .arg(&ext4)
        .arg("32M"));
    let (code, report) = inspect_json(&ext4);
    assert_eq!(
        (code, report["format"].as_str()),
        (Some(0), Some("ext4")),
        "{report:#}"
    );
    assert_node_contents(&report, &expected);

    let disk = scratch.path().join("disk.raw");
    fs::File::create(&disk).unwrap().set_len(40 * MIB).unwrap();
    run(Command::new("sgdisk")
        .args([
            "--new=1:2048:+4M",
            "--typecode=1:ef00",
            "--new=2:0:0",
            "--typecode=2:8300",
        ])
        .arg(&disk));
    let table = run(Command::new("sgdisk").args(["-i", "2"]).arg(&disk));
    let first_sector: u64 = String::from_utf8_lossy(&table.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let mut out = fs::OpenOptions::new().write(true).open(&disk).unwrap();
    out.seek(SeekFrom::Start(first_sector * 512)).unwrap();
    out.write_all(&fs::read(&ext4).unwrap()).unwrap();
    drop(out);
    let (code, report) = inspect_json(&disk);
    assert_eq!(
        (code, report["format"].as_str()),
        (Some(0), Some("disk")),
        "{report:#}"
    );
    assert_eq!(report["partition"]["number"], 2);
    assert_node_contents(&report, &expected);

    // --manifest prints exactly the manifest-rpm.
    let out = run(nodeimg().arg("inspect").arg("--manifest").arg(&squashfs));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn an_unprivileged_user_can_inspect() {
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let public = scratch.path().join("public");
    fs::create_dir(&public).unwrap();
    let image = public.join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &image);
    for dir in [scratch.path(), public.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&image, fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["inspect", "--workdir", "/tmp"])
        .arg(&image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("placeholder:  4.5.6-1.el9"), "{text}");
    assert!(text.contains("imgbased would accept this image."), "{text}");
}

#[test]
fn what_imgbased_would_refuse_is_listed_with_status_3() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("bare");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/os-release"), "ID=centos\n").unwrap();
    let image = scratch.path().join("bare.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &image);
    let (code, report) = inspect_json(&image);
    assert_eq!(code, Some(3), "{report:#}");
    let problems = report["problems"].to_string();
    for expected in [
        "/etc/os-release is not a symlink",
        "no /usr/share/imgbase/build/meta/nvr",
        "no kernel (vmlinuz-*) under /boot",
        "no rpmdb",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in {problems}"
        );
    }
    assert!(report["placeholder"].is_null());
    assert!(report["rpmdb"].is_null());

    // Two images in the squashfs: imgbased would pick either.
    let two = scratch.path().join("two");
    fs::create_dir_all(two.join("LiveOS")).unwrap();
    mkfs_ext4(&root, &two.join("LiveOS/rootfs.img"), "8M");
    fs::copy(two.join("LiveOS/rootfs.img"), two.join("LiveOS/other.img")).unwrap();
    let squashfs = scratch.path().join("two.squashfs");
    run(Command::new("mksquashfs").arg(&two).arg(&squashfs).args([
        "-noappend",
        "-quiet",
        "-no-progress",
    ]));
    let (code, report) = inspect_json(&squashfs);
    assert_eq!(code, Some(3));
    let problems = report["problems"].to_string();
    assert!(problems.contains("2 files match */*.img"), "{problems}");
    assert!(
        problems.contains("not exactly LiveOS/rootfs.img"),
        "{problems}"
    );
}

#[test]
fn unreadable_images_fail_clearly() {
    let scratch = tempfile::tempdir().unwrap();
    let fails = |path: &Path, expect: &str| {
        let out = nodeimg().arg("inspect").arg(path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(expect),
            "{}: expected {expect:?} in {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    };

    let noise = scratch.path().join("noise.bin");
    fs::write(&noise, vec![0x42u8; 8192]).unwrap();
    fails(
        &noise,
        "is not a squashfs, an ext4 filesystem image or a partitioned disk image",
    );
    fails(&scratch.path().join("absent.img"), "absent.img");

    // A squashfs cut short (its contents incompressible, so the cut loses data).
    let root = scratch.path().join("tree");
    fs::create_dir_all(root.join("etc")).unwrap();
    let noise: Vec<u8> = (0..4 * MIB as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(root.join("etc/blob"), noise).unwrap();
    let image = scratch.path().join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &image);
    let bytes = fs::read(&image).unwrap();
    let cut = scratch.path().join("cut.liveimg.squashfs");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(&cut, "truncated: the squashfs holds");

    // A squashfs without any */*.img.
    let plain = scratch.path().join("plain.squashfs");
    run(Command::new("mksquashfs").arg(&root).arg(&plain).args([
        "-noappend",
        "-quiet",
        "-no-progress",
    ]));
    fails(&plain, "no */*.img filesystem image in the squashfs");

    // A superblock with a block size squashfs does not have: the error says what is
    // wrong (backhand's error strings), not just "not a readable squashfs: ".
    let mut bytes = fs::read(&plain).unwrap();
    bytes[12..16].copy_from_slice(&7u32.to_le_bytes());
    let bad = scratch.path().join("bad-block-size.squashfs");
    fs::write(&bad, bytes).unwrap();
    fails(
        &bad,
        "not a readable squashfs: corrupted or invalid squashfs image",
    );
    let out = nodeimg().arg("inspect").arg(&bad).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("block_size(0x7) invalid"));
}

#[test]
fn errors_name_the_image_and_what_is_wrong_in_it() {
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let fails = |image: &Path| {
        let out = nodeimg()
            .env("NODEIMG_WORKDIR", &work)
            .arg("inspect")
            .arg(image)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // An rpmdb that is not a database: the error named the deleted scratch copy and
    // said only "has no Packages table".
    let root = node_tree(scratch.path());
    fs::write(
        root.join("usr/share/rpm/rpmdb.sqlite"),
        b"SQLite format 3\0".repeat(512),
    )
    .unwrap();
    let ext4 = scratch.path().join("root.ext4");
    mkfs_ext4(&root, &ext4, "64M");
    let err = fails(&ext4);
    assert!(
        err.contains(&format!(
            "{}: the rpmdb /usr/share/rpm/rpmdb.sqlite",
            ext4.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("not an rpm sqlite database, or a corrupt one"),
        "{err}"
    );
    assert!(
        err.contains("file is not a database") || err.contains("malformed"),
        "sqlite's own reason: {err}"
    );
    assert!(!err.contains(&work.display().to_string()), "{err}");
    assert!(!err.contains("nodeimg-inspect"), "{err}");

    // A disk whose MBR lists no partitions (a hybrid ISO's, say): the error listed
    // "it has: " and nothing.
    let disk = scratch.path().join("empty-table.img");
    fs::File::create(&disk).unwrap().set_len(4 * MIB).unwrap();
    let mut bytes = fs::read(&disk).unwrap();
    bytes[510] = 0x55;
    bytes[511] = 0xAA;
    fs::write(&disk, bytes).unwrap();
    let err = fails(&disk);
    assert!(
        err.contains("holds ext4; it has: no partitions in its table"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn a_small_file_that_claims_gigabytes_is_refused_without_reading_it() {
    // The image is fine for e2fsck: the NVR file is a 2 GiB hole. It was read whole
    // into memory (16 GiB peak, 65 s) and printed as the NVR.
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let nvr = root.join("usr/share/imgbase/build/meta/nvr");
    fs::File::options()
        .write(true)
        .open(&nvr)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let ext4 = scratch.path().join("root.ext4");
    mkfs_ext4(&root, &ext4, "64M");
    let out = nodeimg().arg("inspect").arg(&ext4).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/usr/share/imgbase/build/meta/nvr: its inode claims 2147483648 bytes"),
        "{stderr}"
    );
}

/// Run `nodeimg inspect` with its address space capped at 2 GiB: an allocation sized
/// by the image then aborts at once instead of paging the machine to death.
fn inspect_capped(image: &Path) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = nodeimg();
    cmd.arg("inspect").arg(image);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, 2 << 30, 2 << 30)
                .map_err(std::io::Error::from)
        });
    }
    cmd.output().unwrap()
}

#[test]
fn long_symlinks_are_followed_and_a_lying_one_is_refused_without_reading_it() {
    // A directory reached through a symlink longer than 59 bytes: its target is kept in
    // a data block, not in the inode.
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let real = "/usr/share/imgbase-moved-to-a-directory-whose-name-does-not-fit-in-an-inode";
    fs::rename(
        root.join("usr/share/imgbase"),
        root.join(real.trim_start_matches('/')),
    )
    .unwrap();
    std::os::unix::fs::symlink(real, root.join("usr/share/imgbase")).unwrap();
    let ext4 = scratch.path().join("root.ext4");
    mkfs_ext4(&root, &ext4, "64M");
    let out = inspect_capped(&ext4);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ovirt-node-ng-4.5.6-0.20261125.0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same link claiming a 1 TiB target (the image passes e2fsck's superblock
    // checks): ext4-view read such a target whole while resolving the NVR file's path,
    // and the allocation aborted the process.
    run(Command::new("debugfs")
        .args(["-w", "-R", "sif /usr/share/imgbase size 1099511627776"])
        .arg(&ext4));
    let out = inspect_capped(&ext4);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "/usr/share/imgbase: a symlink whose inode claims a 1099511627776-byte target \
             (at most 4096)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("reading /usr/share/imgbase/build/meta/nvr"),
        "{stderr}"
    );
}

#[test]
fn package_digests_and_signing_keys_agree_with_rpm() {
    let scratch = tempfile::tempdir().unwrap();
    let root = node_tree(scratch.path());
    let squashfs = scratch.path().join("node.liveimg.squashfs");
    pack(&format!("dir:{}", root.display()), &squashfs);
    let (_, report) = inspect_json(&squashfs);
    // rpm's own reading of the same rpmdb: SIGMD5 and the signature's key id.
    let out = run(Command::new("rpm").arg("--root").arg(&root).args([
        "--dbpath",
        "/usr/share/rpm",
        "-qa",
        "--qf",
        "%{NAME} %{SIZE} %{BUILDTIME} %{SIGMD5} %{RSAHEADER:pgpsig}\\n",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let packages = report["packages"].as_array().unwrap();
    assert_eq!(packages.len(), text.lines().count(), "{text}");
    let mut signed = 0;
    for line in text.lines() {
        let mut words = line.splitn(5, ' ');
        let (name, size, buildtime, sigmd5, sig) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
        );
        let package = packages.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(package["size"].to_string(), size, "{name}");
        assert_eq!(package["buildtime"].to_string(), buildtime, "{name}");
        assert_eq!(package["sigmd5"], sigmd5, "{name}");
        match sig.rsplit_once("Key ID ") {
            Some((_, id)) => {
                signed += 1;
                assert_eq!(
                    package["sigkey"],
                    id[id.len() - 8..].to_lowercase(),
                    "{name}"
                );
            }
            None => assert!(package["sigkey"].is_null(), "{name}: {sig}"),
        }
    }
    assert_eq!(signed, 1, "{text}");
}

#[test]
fn sigterm_stops_an_inspection_and_leaves_no_scratch_copy() {
    // A 3 GiB rpmdb (a hole: the filesystem is 64 MiB) takes seconds to copy out.
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    fs::create_dir_all(root.join("usr/share/rpm")).unwrap();
    fs::File::create(root.join("usr/share/rpm/rpmdb.sqlite"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let ext4 = scratch.path().join("root.ext4");
    mkfs_ext4(&root, &ext4, "64M");
    let work = scratch.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let mut child = nodeimg()
        .env("NODEIMG_WORKDIR", &work)
        .arg("inspect")
        .arg(&ext4)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(common::terminate(&mut child), Some(143));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "scratch left in {}",
        work.display()
    );
}
