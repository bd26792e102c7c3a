//! `nodeimg koji` against a real kojihub: koji's own hub from its source
//! (tests/realkoji/kojienv.py: PostgreSQL, the hub's WSGI application, nodeimg's hub
//! plugin), not a double. What the hub accepts here is what a production hub accepts.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::node::{nodeimg, outdir};
use common::realkoji::{RealKoji, json_out};
use common::terminate;
use serde_json::Value;

fn import(koji: &RealKoji, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--format", "json"];
    args.extend_from_slice(extra);
    koji.koji(&args).arg(out).output().unwrap()
}

const NVR: &str = "ovirt-node-ng-image-update-4.5.6-1.el9";

#[test]
fn the_default_import_is_accepted_by_a_real_hub() {
    let koji = RealKoji::start();
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    koji.admin("createTag", &["node-candidate"]);
    koji.admin(
        "packageListAdd",
        &["node-candidate", "ovirt-node-ng-image-update", "releng"],
    );

    let imported = json_out(&import(&koji, &out, &["--tag", "node-candidate"]));
    // Named after the update RPM's source package: the hub takes an RPM only into the
    // build its SOURCERPM names.
    assert_eq!(imported["nvr"], NVR);
    let id = imported["build_id"].as_i64().unwrap();
    let build = koji.admin("getBuild", &[NVR]);
    assert_eq!(build["id"], id);
    assert_eq!(build["state"], 1, "COMPLETE: {build}");
    assert_eq!(build["owner_name"], "releng");
    assert!(build["extra"]["typeinfo"]["image"].is_object(), "{build}");
    assert!(!out.join("koji-reservation.json").exists());

    let record: Value =
        serde_json::from_str(&fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let images = koji.admin("listArchives", &[&id.to_string(), "--kwarg", "type=image"]);
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    let image = &images[0];
    assert_eq!(
        image["filename"],
        "ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs"
    );
    assert_eq!(image["arch"], "x86_64");
    assert_eq!(image["checksum_type"], 2, "sha256");
    assert_eq!(image["checksum"], record["outputs"][0]["sha256"]);
    let image_type = koji.admin(
        "getArchiveType",
        &["--kwarg", &format!("type_id={}", image["type_id"])],
    );
    assert_eq!(image_type["name"], "liveimg-squashfs", "{image_type}");

    let rpms = koji.admin("listRPMs", &[&id.to_string()]);
    let rpms = rpms.as_array().unwrap();
    assert_eq!(rpms.len(), 1, "{rpms:?}");
    assert_eq!(rpms[0]["nvr"], NVR);
    // The update RPM takes the image's arch.
    assert_eq!(rpms[0]["arch"], "x86_64");
    // koji's copy of the package is the one nodeimg wrote.
    let path = format!(
        "{}/packages/ovirt-node-ng-image-update/4.5.6/1.el9/x86_64/{NVR}.x86_64.rpm",
        koji.field("topdir")
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        fs::read(out.join(format!("{NVR}.x86_64.rpm"))).unwrap()
    );

    let log_dir = format!(
        "{}/packages/ovirt-node-ng-image-update/4.5.6/1.el9/data/logs",
        koji.field("topdir")
    );
    let mut log_names: Vec<String> = fs::read_dir(&log_dir)
        .unwrap_or_else(|e| panic!("{log_dir}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    log_names.sort();
    for name in [
        "build.json",
        "log-nodeimg.log",
        "ovirt-node-ng-image.ks",
        // The bill of materials goes with the build.
        "ovirt-node-ng-image.spdx.json",
    ] {
        assert!(log_names.iter().any(|n| n == name), "{log_names:?}");
    }
    let sbom: Value = serde_json::from_slice(
        &fs::read(format!("{log_dir}/ovirt-node-ng-image.spdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");

    // --tag made koji's tagBuild task (kojid runs it).
    let task = imported["tag_task"].as_i64().unwrap();
    let info = koji.admin("getTaskInfo", &[&task.to_string()]);
    assert_eq!(info["method"], "tagBuild");

    // The same NVR again: the hub refuses it, and nothing is left reserved.
    let again = import(&koji, &out, &[]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert!(!out.join("koji-reservation.json").exists());
}

/// Start an import that pauses right after its reservation; stop the hub for good;
/// interrupt the import: its refund cannot reach the hub either.
fn strand_an_import(koji: &mut RealKoji, out: &Path) -> (i64, String) {
    let reservation = out.join("koji-reservation.json");
    let mut child = koji
        .koji(&["import"])
        .arg(out)
        .env("NODEIMG_PAUSE_AT", "koji.reserved")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reservation.exists() {
        assert!(Instant::now() < deadline, "no reservation was written");
        assert!(child.try_wait().unwrap().is_none(), "import exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300)); // at the pause point
    let mode = fs::metadata(&reservation).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is for the owner only");
    let saved: Value = serde_json::from_str(&fs::read_to_string(&reservation).unwrap()).unwrap();
    let id = saved["build_id"].as_i64().unwrap();
    let token = saved["token"].as_str().unwrap().to_owned();

    koji.control("stop-hub");
    assert_eq!(terminate(&mut child), Some(143));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    for needle in [
        &format!("build {id} ({NVR}) is still reserved"),
        &format!("nodeimg koji import {}", out.display()),
        &format!("nodeimg koji refund {}", out.display()),
    ] {
        assert!(err.contains(needle.as_str()), "{needle:?} in:\n{err}");
    }
    assert!(!err.contains(&token), "the token was printed");
    assert!(reservation.exists(), "the reservation is kept");
    koji.control("start-hub");
    assert_eq!(
        koji.admin("getBuild", &[&id.to_string()])["state"],
        0,
        "BUILDING"
    );
    (id, token)
}

#[test]
fn an_import_whose_hub_went_away_resumes_on_the_next_run() {
    let mut koji = RealKoji::start();
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    let (id, _) = strand_an_import(&mut koji, &out);

    // The next run resumes the reserved build. Its tag does not list the package: the
    // import stands, and the error says what to do about the tag.
    koji.admin("createTag", &["unlisted"]);
    let resumed = import(&koji, &out, &["--tag", "unlisted"]);
    assert_eq!(resumed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        err.contains(&format!(
            "resuming the import of {NVR} into reserved build {id}"
        )) && err.contains(&format!("{NVR} is imported as build {id}"))
            && err.contains("koji add-pkg unlisted ovirt-node-ng-image-update"),
        "{err}"
    );
    assert_eq!(koji.admin("getBuild", &[NVR])["state"], 1, "COMPLETE");
    assert!(!out.join("koji-reservation.json").exists());
}

#[test]
fn a_stranded_reservation_is_released_by_nodeimg_koji_refund() {
    let mut koji = RealKoji::start();
    let scratch = tempfile::tempdir().unwrap();
    let out = outdir(scratch.path());
    let (id, _) = strand_an_import(&mut koji, &out);

    let refunded = koji.koji(&["refund"]).arg(&out).output().unwrap();
    assert!(
        refunded.status.success(),
        "{}",
        String::from_utf8_lossy(&refunded.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&refunded.stdout).trim(),
        format!("{NVR}: build {id} released")
    );
    assert_eq!(
        koji.admin("getBuild", &[&id.to_string()])["state"],
        3,
        "FAILED"
    );
    assert!(!out.join("koji-reservation.json").exists());

    // Nothing left to refund: said so, exit 1.
    let again = koji.koji(&["refund"]).arg(&out).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing is reserved"));

    // The NVR of a FAILED build can be imported again (koji recycles the build's id).
    let imported = json_out(&import(&koji, &out, &[]));
    assert_eq!(imported["build_id"], id);
    assert_eq!(koji.admin("getBuild", &[NVR])["state"], 1);
}

fn node_kickstart(dir: &Path) -> std::path::PathBuf {
    let ks = dir.join("node.ks");
    fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kickstarts/ovirt-node-ng-image.ks"
        ),
        &ks,
    )
    .unwrap();
    ks
}

#[test]
fn koji_node_image_build_creates_its_task_on_a_real_hub() {
    let koji = RealKoji::start();
    koji.node_target();
    let scratch = tempfile::tempdir().unwrap();
    let ks = node_kickstart(scratch.path());
    let ks = ks.to_str().unwrap();

    // With and without --noprogress (koji's global options have no `noprogress`).
    for extra in [&[][..], &["--noprogress"][..]] {
        let mut args = vec!["node-image-build", "--nowait", "--release", "1.el9"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["ovirt-node-ng-image", "4.5.6", "node-target", ks]);
        let out = koji.cli(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{extra:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let task: i64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Created task: "))
            .unwrap_or_else(|| panic!("{stdout}"))
            .parse()
            .unwrap();
        assert!(
            stdout.contains(&format!(
                "Task info: {}/taskinfo?taskID={task}",
                koji.field("hub").replace("/kojihub", "/koji")
            )),
            "{stdout}"
        );
        let info = koji.admin(
            "getTaskInfo",
            &[&task.to_string(), "--kwarg", "request=true"],
        );
        assert_eq!(info["method"], "nodeImageBuild");
        assert_eq!(info["state"], 0, "FREE: no builder has it yet");
        let request = &info["request"];
        assert_eq!(request[3], serde_json::json!(["x86_64"]));
        // The kickstart went up first, to the task's request by its uploaded path.
        let uploaded = request[4].as_str().unwrap();
        assert!(
            uploaded.starts_with("cli-nodeimg/") && uploaded.ends_with("/node.ks"),
            "{uploaded}"
        );
        let on_hub = Path::new(koji.field("topdir")).join("work").join(uploaded);
        assert_eq!(fs::read(on_hub).unwrap(), fs::read(ks).unwrap());
    }

    // Arches outside the build tag are refused by the hub, before any task exists.
    let before = koji.task_count();
    for arch in ["ppc64le", "foo"] {
        let out = koji.cli(&[
            "node-image-build",
            "--nowait",
            "--noprogress",
            "--arch",
            arch,
            "ovirt-node-ng-image",
            "4.5.6",
            "node-target",
            ks,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arch} was accepted");
        assert!(
            err.contains(&format!(
                "arch {arch} is not built by target node-target: its build tag node-build has arches x86_64"
            )),
            "{err}"
        );
    }
    assert_eq!(koji.task_count(), before);
}

/// A Node kickstart for the test distribution (tests/common/repo.rs) whose sources are
/// out of reach, as the internet is from a build farm's builders.
fn offline_node_kickstart(dir: &Path, name: &str, rootpw: &str) -> PathBuf {
    let ks = dir.join(name);
    fs::write(
        &ks,
        format!(
            "#version=RHEL9\n\
             url --url=http://127.0.0.1:9/unreachable/os\n\
             repo --name=ovirt --baseurl=http://127.0.0.1:9/unreachable/ovirt\n\
             lang en_US.UTF-8\nkeyboard us\ntimezone UTC --utc\nselinux --permissive\n\
             {rootpw}\nuser --name=node --lock\nbootloader --location=none\nzerombr\n\
             clearpart --all --initlabel\npart / --size=48 --fstype=ext4 --fsoptions=discard\n\
             poweroff\n\
             %packages --nocore\nfilesystem\nsetup\nbusybox\nnode-base\ntzdata\n\
             ovirt-node-ng-image-update-placeholder\n-ovirt-node-ng-image-update\n%end\n\
             %post --erroronfail\necho \"node post ran\" > /etc/node-post\n%end\n\
             %post --nochroot --erroronfail\n\
             # As the Node's %post installs its release package: from the build's\n\
             # repositories only (--post-repos). The buildroot's dnf is Debian's here:\n\
             # tell its rpm where an EL9 tree keeps the rpmdb.\n\
             export HOME=/tmp/post-home\nmkdir -p $HOME\n\
             echo '%_dbpath /var/lib/rpm' > $HOME/.rpmmacros\n\
             dnf -y --installroot=\"$ANA_INSTALL_PATH\" --releasever=9 \
             --setopt=tsflags=noscripts --setopt=install_weak_deps=False install extra-a\n\
             %end\n"
        ),
    )
    .unwrap();
    ks
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut fs::File::open(path).unwrap(), &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

fn succeeded(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// The test distribution's packages (tests/common/repo.rs), for a build tag.
fn distribution_rpms() -> Vec<PathBuf> {
    let mut rpms: Vec<PathBuf> = fs::read_dir(&common::repo::repos().main)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpm"))
        .collect();
    rpms.sort();
    rpms
}

/// The whole road on a real build farm (the hub under httpd with mod_wsgi, kojira, two
/// kojid hosts): `koji node-image-build` for x86_64 and i686 → one child per arch on
/// the builders → mock buildroots → nodeimg installing from its arch's repository of
/// the build tag → one COMPLETE, tagged build with an image and an update RPM per arch
/// and one source package; a scratch build; a kickstart the Node check refuses;
/// `nodeimg koji import` of a build made on this host from koji's repository, under
/// the same name; kojid's createrepo of the destination tag; real dnf upgrading a
/// deployed Node's placeholder from it to the x86_64 package.
#[test]
fn koji_builds_node_images_with_kojid_and_mock_and_serves_the_update() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let mut rpms = distribution_rpms();
    // The distribution's arch-specific package for i686 too (the same static binary:
    // an x86_64 builder runs i686 builds natively).
    let mut busybox = common::repo::packages::busybox(common::repo::APPLETS).unwrap();
    busybox.arch = "i686".into();
    rpms.push(common::repo::packages::build(&s.join("i686"), &busybox).unwrap());
    let koji = RealKoji::start_with_kojid(&rpms);
    let topurl = koji.field("topurl").to_owned();
    let root = koji.field("root").to_owned();
    let ks = offline_node_kickstart(s, "node.ks", "rootpw --lock");
    let ks = ks.to_str().unwrap();

    // 1. A build for two arches, waited for, with the upload progress bar (no
    //    --noprogress). The build is named after the update package, as
    //    `nodeimg koji import` names its builds (step 4).
    let nvr = "ovirt-node-ng-image-update-4.5.6-1.el9";
    let image_nvr = "ovirt-node-ng-image-4.5.6-1.el9";
    let out = koji.cli(&[
        "node-image-build",
        "--wait",
        "--arch",
        "x86_64",
        "--arch",
        "i686",
        "--release",
        "1.el9",
        "ovirt-node-ng-image",
        "4.5.6",
        "node-target",
        ks,
    ]);
    let text = succeeded(&out);
    assert!(text.contains("completed successfully"), "{text}");
    let build = koji.admin("getBuild", &[nvr]);
    assert_eq!(build["state"], 1, "COMPLETE: {build}");
    let id = build["id"].to_string();
    let images = koji.admin("listArchives", &[&id, "--kwarg", "type=image"]);
    let mut images = images.as_array().unwrap().clone();
    images.sort_by_key(|i| i["arch"].as_str().unwrap().to_owned());
    assert_eq!(images.len(), 2, "{images:?}");
    for (image, arch) in images.iter().zip(["i686", "x86_64"]) {
        assert_eq!(
            image["filename"],
            format!("{image_nvr}.{arch}.liveimg.squashfs")
        );
        assert_eq!(image["arch"], arch);
        assert_eq!(image["type_name"], "liveimg-squashfs");
        assert_eq!(image["checksum_type"], 2, "sha256");
        let stored = Path::new(koji.field("topdir"))
            .join("packages/ovirt-node-ng-image-update/4.5.6/1.el9/images")
            .join(format!("{image_nvr}.{arch}.liveimg.squashfs"));
        assert_eq!(image["checksum"], sha256_of(&stored));
    }
    let image = &images[1];
    let stored = Path::new(koji.field("topdir"))
        .join("packages/ovirt-node-ng-image-update/4.5.6/1.el9/images")
        .join(format!("{image_nvr}.x86_64.liveimg.squashfs"));
    // The image's packages came from koji: they are its components.
    let components = koji.admin(
        "listRPMs",
        &["--kwarg", &format!("imageID={}", image["id"])],
    );
    let mut names: Vec<&str> = components
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    // extra-a is what %post's dnf installed from the build tag's repository.
    assert_eq!(
        names,
        [
            "busybox",
            "extra-a",
            "filesystem",
            "node-base",
            "ovirt-node-ng-image-update-placeholder",
            "setup",
            "tzdata"
        ]
    );
    // The repositories %post saw are not in the image.
    let unpacked = s.join("unpacked");
    common::run(
        Command::new("unsquashfs")
            .args(["-q", "-no-progress", "-d"])
            .arg(&unpacked)
            .arg(&stored),
    );
    let listing = common::run(
        Command::new("debugfs")
            .args(["-R", "ls -p /etc/yum.repos.d"])
            .arg(unpacked.join("LiveOS/rootfs.img")),
    );
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(!listing.contains("nodeimg-build.repo"), "{listing}");
    // An update RPM per arch, each carrying its own arch's image, and one source
    // package.
    let built = koji.admin("listRPMs", &[&id]);
    let mut arches: Vec<(&str, &str)> = built
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["arch"].as_str().unwrap()))
        .collect();
    arches.sort();
    assert_eq!(
        arches,
        [
            ("ovirt-node-ng-image-update", "i686"),
            ("ovirt-node-ng-image-update", "src"),
            ("ovirt-node-ng-image-update", "x86_64"),
        ]
    );
    for arch in ["i686", "x86_64"] {
        let rpm = Path::new(koji.field("topdir")).join(format!(
            "packages/ovirt-node-ng-image-update/4.5.6/1.el9/{arch}/{nvr}.{arch}.rpm"
        ));
        let listing = common::run(Command::new("rpm2cpio").arg(&rpm));
        let image = Path::new(koji.field("topdir")).join(format!(
            "packages/ovirt-node-ng-image-update/4.5.6/1.el9/images/{image_nvr}.{arch}.liveimg.squashfs"
        ));
        let carried = fs::read(&image).unwrap();
        assert!(
            listing
                .stdout
                .windows(carried.len().min(4096))
                .any(|w| w == &carried[..carried.len().min(4096)]),
            "{} does not carry {}",
            rpm.display(),
            image.display()
        );
    }
    // The children: one per arch, which ran where the scheduler put them.
    let children = koji.admin("getTaskChildren", &[&build["task_id"].to_string()]);
    let image_tasks: Vec<&Value> = children
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["method"] == "createNodeImage")
        .collect();
    assert_eq!(image_tasks.len(), 2, "{children}");
    for task in &image_tasks {
        let host = koji.admin("getHost", &[&task["host_id"].to_string()]);
        eprintln!(
            "createNodeImage {} ({}) ran on {}",
            task["id"], task["arch"], host["name"]
        );
    }
    let task_dir_of = |task: &str| {
        Path::new(koji.field("topdir")).join(format!(
            "work/tasks/{}/{task}",
            task.parse::<u64>().unwrap() % 10000
        ))
    };
    // The i686 child installed from the folder koji really serves: i386.
    let i686_child = image_tasks.iter().find(|t| t["arch"] == "i686").unwrap()["id"].to_string();
    let rewritten =
        fs::read_to_string(task_dir_of(&i686_child).join("ovirt-node-ng-image.ks.log")).unwrap();
    assert!(
        rewritten.contains(&format!("url --url={topurl}/repos/node-build/"))
            && rewritten.contains("/i386\n"),
        "{rewritten}"
    );
    // The x86_64 child's output: nodeimg's logs and the kickstart as it was rewritten
    // to install from the build tag's repository.
    let child = image_tasks.iter().find(|t| t["arch"] == "x86_64").unwrap()["id"].to_string();
    let output = koji.admin("listTaskOutput", &[&child]);
    let output: Vec<&str> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in [
        "nodeimg.log",
        "ovirt-node-ng-image.ks.log",
        "build.json.log",
        "ovirt-node-ng-image.spdx.json.log",
        "root.log",
    ] {
        assert!(output.contains(&name), "{name} in {output:?}");
    }
    let rewritten =
        fs::read_to_string(task_dir_of(&child).join("ovirt-node-ng-image.ks.log")).unwrap();
    assert!(
        rewritten.contains("# nodeimg: replaced by --replace-repos: repo --name=ovirt")
            && rewritten.contains("# nodeimg: replaced by --url: url --url=http://127.0.0.1:9/")
            && rewritten.contains(&format!("url --url={topurl}/repos/node-build/")),
        "{rewritten}"
    );
    // The build keeps nodeimg's log and the rewritten kickstart with its image logs
    // (per arch: koji adds the arch for methods other than its own image tasks).
    let build_logs = Path::new(koji.field("topdir"))
        .join("packages/ovirt-node-ng-image-update/4.5.6/1.el9/data/logs/image/x86_64");
    for name in [
        "nodeimg.log",
        "ovirt-node-ng-image.ks.log",
        // The bill of materials goes with the build.
        "ovirt-node-ng-image.spdx.json.log",
    ] {
        assert!(
            build_logs.join(name).is_file(),
            "{name} in {}",
            build_logs.display()
        );
    }
    let tagged = koji.admin("listTagged", &["node-candidate"]);
    assert!(
        tagged.as_array().unwrap().iter().any(|b| b["nvr"] == nvr),
        "{tagged}"
    );
    // The buildroot's mounts (mock's, nodeimg's) are all gone.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "{mounts}");

    // 2. A scratch build: the image is made and kept with the task, no build exists.
    let out = koji.cli(&[
        "node-image-build",
        "--wait",
        "--noprogress",
        "--scratch",
        "--release",
        "2.el9",
        "ovirt-node-ng-image",
        "4.5.6",
        "node-target",
        ks,
    ]);
    succeeded(&out);
    assert!(
        koji.admin("getBuild", &["ovirt-node-ng-image-update-4.5.6-2.el9"])
            .is_null()
    );
    let scratch_dir = Path::new(koji.field("topdir")).join("scratch/releng");
    let kept: Vec<String> = fs::read_dir(&scratch_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", scratch_dir.display()))
        .flat_map(|task| fs::read_dir(task.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.contains(&"ovirt-node-ng-image-4.5.6-2.el9.x86_64.liveimg.squashfs".to_owned()),
        "{kept:?}"
    );

    // 3. A kickstart the Node check refuses: the build FAILS with nodeimg's own error
    //    lines in the task's result, and the reserved build is FAILED.
    let bad = offline_node_kickstart(s, "bad.ks", "rootpw --plaintext secret");
    let out = koji.cli(&[
        "node-image-build",
        "--wait",
        "--noprogress",
        "--release",
        "3.el9",
        "ovirt-node-ng-image",
        "4.5.6",
        "node-target",
        bad.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("nodeimg build failed") && text.contains("ERROR") && text.contains("rootpw"),
        "{text}"
    );
    assert_eq!(
        koji.admin("getBuild", &["ovirt-node-ng-image-update-4.5.6-3.el9"])["state"],
        3,
        "FAILED"
    );

    // 4. A build made on this host from koji's repository, imported with nodeimg's
    //    defaults: COMPLETE, tagged by kojid, its components known to koji.
    let repo = koji.admin("getRepo", &["node-build"]);
    let url = format!("{topurl}/repos/node-build/{}/x86_64", repo["id"]);
    let out_dir = s.join("out");
    let built = nodeimg()
        .env("SOURCE_DATE_EPOCH", "1764115200")
        .args([
            "build",
            "--backend",
            "dnf",
            "--replace-repos",
            "--post-repos",
            "--url",
            &url,
        ])
        .args(["--version", "4.5.6", "--release", "2.el9", "--dnf-cache"])
        .arg(s.join("dnf-cache"))
        .arg("-o")
        .arg(&out_dir)
        .arg(ks)
        .output()
        .unwrap();
    succeeded(&built);
    let imported = json_out(&import(&koji, &out_dir, &["--tag", "node-candidate"]));
    let update_nvr = "ovirt-node-ng-image-update-4.5.6-2.el9";
    assert_eq!(imported["nvr"], update_nvr);
    let cg_build = koji.admin("getBuild", &[update_nvr]);
    assert_eq!(cg_build["state"], 1);
    // One name for a release, whichever way it reached koji.
    assert_eq!(cg_build["package_name"], build["package_name"]);
    assert_eq!(cg_build["package_name"], "ovirt-node-ng-image-update");
    let cg_image = &koji.admin(
        "listArchives",
        &[&imported["build_id"].to_string(), "--kwarg", "type=image"],
    )[0];
    let cg_components = koji.admin(
        "listRPMs",
        &["--kwarg", &format!("imageID={}", cg_image["id"])],
    );
    assert_eq!(
        cg_components.as_array().unwrap().len(),
        7,
        "{cg_components}"
    );
    let task = imported["tag_task"].to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while koji.admin("getTaskInfo", &[&task])["state"] != 2 {
        assert!(Instant::now() < deadline, "tagBuild {task} did not close");
        std::thread::sleep(Duration::from_millis(500));
    }

    // 5. kojid's createrepo of the destination tag serves the update RPM, and real dnf
    //    upgrades a deployed Node's placeholder from it.
    let mut koji = koji;
    koji.control("regen-repo node-candidate");
    let candidate = format!("{topurl}/repos/node-candidate/latest/x86_64");
    let top = s.join("rpmbuild");
    let older = common::node::build_rpm(
        &top,
        "ovirt-node-ng-image-update-placeholder",
        None,
        "4.5.5",
        "1.el9",
    );
    let imgbased = common::node::build_rpm_with(&top, "imgbased", None, "1.2.30", "1", "");
    let shell =
        common::node::build_rpm_with(&top, "shell-stub", None, "1", "1", "Provides: /bin/sh");
    let node_root = s.join("node-root");
    let cache = s.join("node-cache");
    let local: Vec<String> = [&older, &imgbased, &shell]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut install = vec!["install"];
    install.extend(local.iter().map(String::as_str));
    succeeded(&common::node::dnf(&node_root, &cache, &[], &install));
    succeeded(&common::node::dnf(
        &node_root,
        &cache,
        &[&candidate],
        &["upgrade"],
    ));
    let now = common::node::installed(&node_root);
    assert!(now.contains(&update_nvr.to_owned()), "{now:?}");
    assert!(!now.iter().any(|p| p.contains("placeholder")), "{now:?}");
    let arch_of = |root: &Path| {
        let out = common::run(Command::new("rpm").arg("--root").arg(root).args([
            "-q",
            "--qf",
            "%{ARCH}",
            "ovirt-node-ng-image-update",
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(arch_of(&node_root), "x86_64");
}

/// `koji node-image-build --nowait ARGS` for the Node kickstart KS: its task id.
fn start_build(koji: &RealKoji, args: &[&str], ks: &str) -> String {
    let mut all = vec!["node-image-build", "--nowait", "--noprogress"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["ovirt-node-ng-image", "4.5.6", "node-target", ks]);
    let out = koji.cli(&all);
    let text = succeeded(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("Created task: "))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_owned()
}

/// Wait for task ID to end (CLOSED, CANCELED or FAILED); its info.
fn wait_task(koji: &RealKoji, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let info = koji.admin("getTaskInfo", &[id]);
        if [2, 3, 5].contains(&info["state"].as_i64().unwrap()) {
            return info;
        }
        assert!(Instant::now() < deadline, "task {id} did not end: {info}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The createNodeImage children of parent task ID, by arch.
fn image_children(koji: &RealKoji, id: &str) -> Vec<Value> {
    koji.admin("getTaskChildren", &[id])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["method"] == "createNodeImage")
        .cloned()
        .collect()
}

/// The hub's result of a failed task, as text.
fn task_failure(koji: &RealKoji, id: &str) -> String {
    let out = koji
        .koji_as(
            &["call", "getTaskResult", id],
            "admin",
            "admin_password_file",
        )
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Wait until child task ID runs nodeimg (its log streams to the task) and is still
/// open; the host running it.
fn wait_mid_install(koji: &RealKoji, parent: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(child) = image_children(koji, parent).first() {
            let id = child["id"].to_string();
            let output = koji.admin("listTaskOutput", &[&id]);
            let running = output
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "nodeimg.log");
            let info = koji.admin("getTaskInfo", &[&id]);
            assert!(
                info["state"] == 1 || !running,
                "the child ended before the fault: {info}"
            );
            if running {
                let host = koji.admin("getHost", &[&info["host_id"].to_string()]);
                return (id, host["name"].as_str().unwrap().to_owned());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no child of {parent} ran nodeimg"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Nothing of the farm's builds is mounted or attached on this machine.
fn nothing_left_mounted(root: &str) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(root), "{mounts}");
    let loops = common::run(Command::new("losetup").arg("-a"));
    let loops = String::from_utf8_lossy(&loops.stdout);
    assert!(!loops.contains(root), "{loops}");
}

/// A farm's failures, in sequence on one farm (the hub under httpd, kojira, two kojid
/// hosts): two builds of one NVR at once; an optional arch that fails; a required arch
/// that fails; a builder killed (kill -9, with its task, mock and nodeimg) mid-install
/// and restarted; the hub restarted mid-build; an import the hub fails after moving
/// files, then the same NVR again. Every build ends COMPLETE or FAILED,
/// never BUILDING, and nothing stays mounted. Here i686 always fails: its repository
/// lacks the distribution's busybox, which only x86_64 has.
#[test]
fn a_build_farm_survives_failing_arches_dead_builders_and_a_restarted_hub() {
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let rpms = distribution_rpms();
    let mut koji = RealKoji::start_with_kojid(&rpms);
    let root = koji.field("root").to_owned();
    let ks = offline_node_kickstart(s, "node.ks", "rootpw --lock");
    let ks = ks.to_str().unwrap();
    let nvr = |release: &str| format!("ovirt-node-ng-image-update-4.5.6-{release}");
    let minutes = |n: u64| Duration::from_secs(60 * n);

    // 1. The same NVR twice at once: one build reserves it, the other task fails
    //    before any child (so before any image is uploaded).
    let first = start_build(&koji, &["--release", "1"], ks);
    let second = start_build(&koji, &["--release", "1"], ks);
    let ends = [
        wait_task(&koji, &first, minutes(10)),
        wait_task(&koji, &second, minutes(10)),
    ];
    let states: Vec<i64> = ends.iter().map(|t| t["state"].as_i64().unwrap()).collect();
    assert!(
        states.contains(&2) && states.contains(&5),
        "one CLOSED, one FAILED: {ends:?}"
    );
    let refused = if states[0] == 5 { &first } else { &second };
    assert!(image_children(&koji, refused).is_empty());
    let why = task_failure(&koji, refused);
    assert!(
        why.contains("already exists") || why.contains("in progress"),
        "{why}"
    );
    assert_eq!(koji.admin("getBuild", &[&nvr("1")])["state"], 1, "COMPLETE");

    // 2. An optional arch that fails: the build is COMPLETE with the other arch.
    let task = start_build(
        &koji,
        &[
            "--arch",
            "x86_64",
            "--arch",
            "i686",
            "--can-fail",
            "i686",
            "--release",
            "2",
        ],
        ks,
    );
    let info = wait_task(&koji, &task, minutes(10));
    assert_eq!(info["state"], 2, "{}", task_failure(&koji, &task));
    let build = koji.admin("getBuild", &[&nvr("2")]);
    assert_eq!(build["state"], 1, "COMPLETE: {build}");
    let images = koji.admin(
        "listArchives",
        &[&build["id"].to_string(), "--kwarg", "type=image"],
    );
    let arches: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["arch"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["x86_64"]);
    let mut rpm_arches: Vec<String> = koji
        .admin("listRPMs", &[&build["id"].to_string()])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["arch"].as_str().unwrap().to_owned())
        .collect();
    rpm_arches.sort();
    assert_eq!(rpm_arches, ["src", "x86_64"]);
    let failed: Vec<Value> = image_children(&koji, &task)
        .into_iter()
        .filter(|c| c["arch"] == "i686")
        .collect();
    assert_eq!(failed[0]["state"], 5, "the i686 child FAILED: {failed:?}");

    // 3. A required arch that fails: the build is FAILED, the child's error is in the
    //    task's result, and nothing is left BUILDING.
    let task = start_build(
        &koji,
        &["--arch", "x86_64", "--arch", "i686", "--release", "3"],
        ks,
    );
    let info = wait_task(&koji, &task, minutes(10));
    assert_eq!(info["state"], 5, "FAILED: {info}");
    let why = task_failure(&koji, &task);
    assert!(why.contains("nodeimg build failed"), "{why}");
    assert_eq!(koji.admin("getBuild", &[&nvr("3")])["state"], 3, "FAILED");
    let building = koji.admin("listBuilds", &["--kwarg", "state=0"]);
    assert_eq!(building.as_array().unwrap().len(), 0, "{building}");

    // 4. kill -9 of the builder running the install, its task, mock and nodeimg; then
    //    the builder comes back. koji frees the stale task and runs it again.
    let task = start_build(&koji, &["--release", "4"], ks);
    let (child, host) = wait_mid_install(&koji, &task);
    koji.control(&format!("kill-kojid {host}"));
    let survivors = common::run(Command::new("ps").args(["-eo", "args"]));
    let survivors = String::from_utf8_lossy(&survivors.stdout);
    // This farm's paths (the other farm test may run beside it, with the same names).
    let mockdir = format!("{root}/mock/{host}");
    let kojid_conf = format!("{root}/kojid-{host}.conf");
    assert!(
        !survivors
            .lines()
            .any(|l| l.contains(&mockdir) || l.contains(&kojid_conf)),
        "{host}'s processes outlived it:\n{survivors}"
    );
    koji.control(&format!("start-kojid {host}"));
    let info = wait_task(&koji, &task, minutes(15));
    let build = koji.admin("getBuild", &[&nvr("4")]);
    eprintln!(
        "killed {host} while it ran createNodeImage {child}: the parent ended in state {}, \
         the build in state {}",
        info["state"], build["state"]
    );
    assert!(
        build["state"] == 1 || (build["state"] == 3 && info["state"] == 5),
        "COMPLETE, or FAILED with a reason: {build} {info}"
    );
    nothing_left_mounted(&root);

    // 5. The hub (httpd) restarted while a child runs: kojid retries, the build
    //    completes.
    let task = start_build(&koji, &["--release", "5"], ks);
    wait_mid_install(&koji, &task);
    koji.control("stop-hub");
    std::thread::sleep(Duration::from_secs(5));
    koji.control("start-hub");
    let info = wait_task(&koji, &task, minutes(10));
    assert_eq!(info["state"], 2, "{}", task_failure(&koji, &task));
    assert_eq!(koji.admin("getBuild", &[&nvr("5")])["state"], 1, "COMPLETE");

    // 6. An import the hub fails after it has moved files: the image holds a package
    //    koji does not know (%post installs it), so completeImageBuild faults once the
    //    archive is in packages/. The build is FAILED, and the same NVR builds again.
    let stray = s.join("stray.ks");
    let mut text = fs::read_to_string(ks).unwrap();
    text.push_str(
        "%post --nochroot --erroronfail\n\
         export HOME=/tmp/stray-home\nmkdir -p $HOME/SPECS\n\
         printf 'Name: stray\\nVersion: 1\\nRelease: 1\\nSummary: unknown to koji\\nLicense: MIT\\nBuildArch: noarch\\n%%description\\nx\\n%%files\\n' > $HOME/SPECS/stray.spec\n\
         rpmbuild -bb --quiet --define \"_topdir $HOME\" $HOME/SPECS/stray.spec\n\
         echo '%_dbpath /var/lib/rpm' > $HOME/.rpmmacros\n\
         rpm --root \"$ANA_INSTALL_PATH\" -i --nodeps $HOME/RPMS/noarch/stray-1-1.noarch.rpm\n\
         %end\n",
    );
    fs::write(&stray, text).unwrap();
    let task = start_build(&koji, &["--release", "6"], stray.to_str().unwrap());
    let info = wait_task(&koji, &task, minutes(10));
    assert_eq!(info["state"], 5, "FAILED: {info}");
    let why = task_failure(&koji, &task);
    assert!(why.contains("stray"), "the unknown package is named: {why}");
    assert_eq!(koji.admin("getBuild", &[&nvr("6")])["state"], 3, "FAILED");
    let moved = Path::new(koji.field("topdir"))
        .join("packages/ovirt-node-ng-image-update/4.5.6/6/images")
        .join("ovirt-node-ng-image-4.5.6-6.x86_64.liveimg.squashfs");
    assert!(moved.exists(), "koji moved the image before it failed");
    let task = start_build(&koji, &["--release", "6"], ks);
    let info = wait_task(&koji, &task, minutes(10));
    assert_eq!(info["state"], 2, "{}", task_failure(&koji, &task));
    assert_eq!(koji.admin("getBuild", &[&nvr("6")])["state"], 1, "COMPLETE");

    let building = koji.admin("listBuilds", &["--kwarg", "state=0"]);
    assert_eq!(building.as_array().unwrap().len(), 0, "{building}");
    nothing_left_mounted(&root);
}
