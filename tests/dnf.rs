//! `nodeimg build --backend dnf` with the real dnf, rpm, createrepo_c, systemctl and
//! setfiles against a repository of packages built here (tests/common/repo.rs): what
//! the kickstart asks for is what the image holds, and failures say what went wrong
//! and leave nothing mounted or running.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::node::nodeimg;
use common::repo::{full_kickstart, repos};
use common::run;

/// A minimal kickstart with `extra` lines and `packages` in %packages.
fn small_kickstart(extra: &str, packages: &str, post: &str) -> String {
    format!(
        "#version=RHEL9\nurl --url=file://{}\nrootpw --lock\npart / --size=32\ntimezone UTC --utc\n{extra}\nlang C.UTF-8\nkeyboard us\n%packages\nnode-base\ntzdata\novirt-node-ng-image-update-placeholder\n{packages}\n%end\n{post}\n",
        repos().main.display()
    )
}

struct Build {
    scratch: tempfile::TempDir,
    out: PathBuf,
    output: Output,
}

impl Build {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

fn build_command(scratch: &Path, ks_text: &str, extra: &[&str]) -> Command {
    let ks = scratch.join("node.ks");
    fs::write(&ks, ks_text).unwrap();
    let work = scratch.join("work");
    fs::create_dir_all(&work).unwrap();
    let mut cmd = nodeimg();
    cmd.env("NODEIMG_WORKDIR", &work)
        .env("SOURCE_DATE_EPOCH", "1764115200")
        .args(["build", "--backend", "dnf", "--policy", "generic"])
        .arg("--dnf-cache")
        .arg(scratch.join("cache"))
        .arg("-o")
        .arg(scratch.join("out"))
        .args(extra)
        .arg(&ks);
    cmd
}

fn build(ks_text: &str, extra: &[&str]) -> Build {
    let scratch = tempfile::tempdir().unwrap();
    let output = build_command(scratch.path(), ks_text, extra)
        .output()
        .unwrap();
    let out = scratch.path().join("out");
    Build {
        scratch,
        out,
        output,
    }
}

/// Nothing of the build is mounted and no process runs with its root in the workdir.
fn assert_nothing_left(scratch: &Path) {
    let scratch = scratch.canonicalize().unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = scratch.display().to_string();
    assert!(
        !mounts.contains(&prefix) && !mounts.contains(" /mnt/sysroot "),
        "left mounted:\n{mounts}"
    );
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(root) = fs::read_link(entry.path().join("root")) {
            assert!(
                !root.starts_with(&scratch),
                "process {:?} still runs in {}",
                entry.file_name(),
                root.display()
            );
        }
    }
}

/// The image's root filesystem dumped to a directory (unsquashfs, then debugfs rdump).
fn unpack(out: &Path, into: &Path) -> (PathBuf, PathBuf) {
    let image = fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".liveimg.squashfs"))
        .expect("an image in OUTDIR");
    let squash = into.join("squash");
    run(Command::new("unsquashfs")
        .arg("-q")
        .arg("-no-progress")
        .arg("-d")
        .arg(&squash)
        .arg(&image));
    let rootfs = squash.join("LiveOS/rootfs.img");
    let tree = into.join("tree");
    fs::create_dir_all(&tree).unwrap();
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", tree.display()))
        .arg(&rootfs));
    (rootfs, tree)
}

fn debugfs(rootfs: &Path, request: &str) -> String {
    let out = run(Command::new("debugfs").arg("-R").arg(request).arg(rootfs));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(tree: &Path, path: &str) -> String {
    fs::read_to_string(tree.join(path)).unwrap_or_else(|e| panic!("/{path}: {e}"))
}

#[test]
fn a_dnf_build_installs_and_configures_what_the_kickstart_says() {
    let r = repos();
    let b = build(&full_kickstart(r), &["--format", "json"]);
    assert!(b.output.status.success(), "{}", b.stderr());
    assert_nothing_left(b.scratch.path());
    let record: serde_json::Value = serde_json::from_slice(&b.output.stdout).unwrap();
    assert_eq!(record["input"]["backend"], "dnf");
    assert_eq!(record["version"], "4.5.6");
    let install = &record["input"]["install"];
    assert_eq!(install["bootloader"]["append"], "console=ttyS0");
    assert_eq!(install["scripts"], 4);
    assert_eq!(install["selinux_relabelled"], "targeted");
    let no_effect = install["no_effect"].to_string();
    for name in ["zerombr", "clearpart", "poweroff"] {
        assert!(no_effect.contains(name), "{no_effect}");
    }

    // The artifacts agree with sha256sum and nodeimg inspect's rpmdb reading.
    run(Command::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS.sha256"])
        .current_dir(&b.out));
    let manifest = fs::read_to_string(b.out.join("ovirt-node-ng-image.manifest-rpm")).unwrap();
    let names: Vec<&str> = manifest
        .lines()
        .map(|l| l.rsplitn(3, '-').nth(2).unwrap_or(l))
        .collect();
    for wanted in [
        "filesystem",
        "setup",
        "busybox",
        "node-base",
        "tzdata",
        "test-services",
        "firewalld",
        "authselect",
        "selinux-policy-test",
        "extra-a",
        "from-second",
        "ovirt-node-ng-image-update-placeholder",
    ] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
    // Excluded, a weak dependency with --exclude-weakdeps, an optional group member.
    for unwanted in ["unwanted", "weak-pkg", "extra-b"] {
        assert!(!names.contains(&unwanted), "{unwanted} in {names:?}");
    }
    let logs = b.out.join("logs");
    assert!(read(&logs, "dnf.rpm.log").contains("extra-a"));
    assert!(read(&logs, "ks-script-1.log").contains("pre ran on the host"));

    // nodeimg inspect reads the same packages from the image's rpmdb.
    let image = b
        .out
        .join("ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs");
    let inspected = run(nodeimg().args(["inspect", "--format", "json"]).arg(&image));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["placeholder"], "4.5.6-1.el9");
    assert_eq!(inspected["packages"].as_array().unwrap().len(), names.len());

    let unpacked = tempfile::tempdir().unwrap();
    let (rootfs, tree) = unpack(&b.out, unpacked.path());
    let rpmdb = debugfs(&rootfs, "ls -l /var/lib/rpm");
    assert!(rpmdb.contains("rpmdb.sqlite"), "{rpmdb}");

    // Scriptlets ran with /dev bound; docs left out.
    assert_eq!(read(&tree, "etc/extra-a.post"), "posted\ndev-null-ok\n");
    assert!(!tree.join("usr/share/doc/extra-a/README").exists());
    // %post in the chroot (with /proc), its --log in the tree; --nochroot with the tree
    // at /mnt/sysroot and INSTALL_ROOT.
    assert_eq!(
        read(&tree, "etc/pre-install-ran"),
        "before packages: 0 entries in /usr\n"
    );
    assert_eq!(read(&tree, "etc/post-chroot"), "chroot-ok\n");
    assert_eq!(read(&tree, "etc/post-proc"), "proc-mounted\n");
    assert_eq!(
        read(&tree, "root/post.log"),
        "chroot post: node.example.com\n"
    );
    assert_eq!(
        read(&tree, "etc/post-nochroot"),
        "/mnt/sysroot\nsaw-chroot\n"
    );
    assert!(!tree.join("tmp/ks-script-2").exists());

    // Accounts.
    let shadow = read(&tree, "etc/shadow");
    assert!(shadow.contains("root:!$6$saltsalt$"), "{shadow}");
    // The plaintext password hashed with SHA-512 crypt, locked: glibc's crypt agrees.
    let node = shadow.lines().find(|l| l.starts_with("node:")).unwrap();
    let fields: Vec<&str> = node.split(':').collect();
    assert_eq!(fields[2], "20418", "{node}");
    let hash = fields[1].strip_prefix('!').expect("locked");
    assert!(hash.starts_with("$6$"), "{hash}");
    let verified = run(Command::new("python3").args([
        "-W",
        "ignore",
        "-c",
        "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
        "node-secret",
        hash,
    ]));
    assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "True");
    let passwd = read(&tree, "etc/passwd");
    assert!(
        passwd.contains("node:x:1500:1500:Node admin:/home/node:/bin/bash"),
        "{passwd}"
    );
    let group = read(&tree, "etc/group");
    assert!(group.contains("wheel:x:10:node\n"), "{group}");
    assert!(group.contains("kvm:x:36:node\n"), "{group}");
    assert!(group.contains("node:x:1500:\n"), "{group}");
    assert_eq!(
        read(&tree, "home/node/.ssh/authorized_keys"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITESTKEY test@nodeimg\n"
    );
    assert_eq!(read(&tree, "home/node/.profile"), "# skel\n");
    let keys = debugfs(&rootfs, "stat /home/node/.ssh/authorized_keys");
    assert!(
        keys.contains("User:  1500") && keys.contains("Mode:  0600"),
        "{keys}"
    );
    let shadow_stat = debugfs(&rootfs, "stat /etc/shadow");
    assert!(shadow_stat.contains("Mode:  0000"), "{shadow_stat}");

    // System configuration.
    assert_eq!(read(&tree, "etc/locale.conf"), "LANG=\"en_US.UTF-8\"\n");
    assert_eq!(read(&tree, "etc/vconsole.conf"), "KEYMAP=\"us\"\n");
    assert_eq!(
        fs::read_link(tree.join("etc/localtime")).unwrap(),
        Path::new("../usr/share/zoneinfo/Europe/Prague")
    );
    assert!(read(&tree, "etc/adjtime").ends_with("UTC\n"));
    assert_eq!(read(&tree, "etc/hostname"), "node.example.com\n");
    let eth1 = read(
        &tree,
        "etc/NetworkManager/system-connections/eth1.nmconnection",
    );
    assert!(
        eth1.contains("address1=192.0.2.10/24,192.0.2.1") && eth1.contains("autoconnect=false"),
        "{eth1}"
    );
    assert!(
        tree.join("etc/NetworkManager/system-connections/kickstart.nmconnection")
            .exists()
    );
    let selinux = read(&tree, "etc/selinux/config");
    assert!(selinux.contains("SELINUX=permissive\n") && selinux.contains("SELINUXTYPE=targeted"));
    let label = debugfs(&rootfs, "ea_get /etc/passwd security.selinux");
    assert!(label.contains("system_u:object_r:etc_t:s0"), "{label}");
    assert_eq!(
        read(&tree, "etc/firewall-offline-cmd.calls"),
        "--enabled --service=ssh --port=2222:tcp\n"
    );
    assert_eq!(
        read(&tree, "etc/authselect.calls"),
        "select minimal with-sudo\n"
    );
    // Links with absolute targets: look at the links, not through them.
    let wants = tree.join("etc/systemd/system/multi-user.target.wants");
    let link = |unit: &str| fs::read_link(wants.join(unit)).ok();
    assert_eq!(
        link("node-a.service").as_deref(),
        Some(Path::new("/usr/lib/systemd/system/node-a.service"))
    );
    // Shipped enabled by the package, disabled by the kickstart.
    assert_eq!(link("node-b.service"), None);
    assert_eq!(link("initial-setup.service"), None);
    assert!(read(&tree, "etc/yum.repos.d/second_repo.repo").contains("baseurl=file://"));
    assert_eq!(
        read(&tree, "etc/rpm/macros.image-language-conf"),
        "%_install_langs en\n%_excludedocs 1\n"
    );
    // Nothing of the build host in the image.
    assert!(!tree.join("var/cache/nodeimg-dnf").exists());
    assert!(!tree.join("var/log/dnf.log").exists());
    // (rdump drops the sticky bit: ask the filesystem itself.)
    let tmp = debugfs(&rootfs, "stat /tmp");
    assert!(tmp.contains("Mode:  01777"), "{tmp}");
}

#[test]
fn a_missing_package_fails_with_its_name_unless_ignoremissing() {
    let b = build(&small_kickstart("", "not-in-any-repo", ""), &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    let err = b.stderr();
    assert!(
        err.contains("no repository has not-in-any-repo") && err.contains("--ignoremissing"),
        "{err}"
    );
    assert!(!b.out.join("CHECKSUMS.sha256").exists());
    assert_nothing_left(b.scratch.path());

    let text = small_kickstart("", "not-in-any-repo", "")
        .replace("%packages\n", "%packages --ignoremissing\n");
    let b = build(&text, &[]);
    assert!(b.output.status.success(), "{}", b.stderr());
}

#[test]
fn a_failing_post_with_erroronfail_fails_the_build_with_its_output() {
    let post = "%post --erroronfail\necho 'about to fail: disk quota'\nexit 3\n%end\n%onerror\necho onerror-ran\n%end\n";
    let b = build(&small_kickstart("", "", post), &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    let err = b.stderr();
    assert!(
        err.contains("exit status 3") && err.contains("about to fail: disk quota"),
        "{err}"
    );
    assert!(err.contains("--erroronfail"), "{err}");
    assert!(!b.out.join("CHECKSUMS.sha256").exists());
    let logs: String = fs::read_dir(b.out.join("logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ks-script-"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(logs.contains("onerror-ran"), "{logs}");
    assert_nothing_left(b.scratch.path());

    // An interpreter the tree does not have fails the script before it runs.
    let post = "%post --interpreter=/usr/bin/python3\nprint('never')\n%end\n";
    let b = build(&small_kickstart("", "", post), &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    assert!(
        b.stderr()
            .contains("the interpreter /usr/bin/python3 is not in the tree"),
        "{}",
        b.stderr()
    );

    // Without --erroronfail the failure is a warning and the build goes on.
    let post = "%post\necho 'soft failure'\nexit 3\n%end\n";
    let b = build(&small_kickstart("", "", post), &[]);
    assert!(b.output.status.success(), "{}", b.stderr());
    assert!(b.stderr().contains("soft failure"), "{}", b.stderr());
}

#[test]
fn an_unreachable_repository_is_named_with_its_line() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let text = small_kickstart("repo --name=gone --baseurl=http://127.0.0.1:9/repo", "", "");
    let b = build(&text, &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    let err = b.stderr();
    assert!(
        err.contains("repository 'gone' (")
            && err.contains("node.ks:6")
            && err.contains("is unreachable"),
        "{err}"
    );
    assert_nothing_left(b.scratch.path());
}

#[test]
fn repositories_given_on_the_command_line_replace_the_kickstarts() {
    // The kickstart's source and repository are unreachable (as the internet is from a
    // build farm); --url and --repo point the build at reachable ones instead.
    let text = small_kickstart(
        "repo --name=gone --baseurl=http://127.0.0.1:9/repo",
        "from-second",
        "",
    )
    .replace(
        &format!("url --url=file://{}", repos().main.display()),
        "url --url=http://127.0.0.1:9/os",
    );
    let url = format!("file://{}", repos().main.display());
    let second = format!("second=file://{}", repos().second.display());
    let b = build(
        &text,
        &["--replace-repos", "--url", &url, "--repo", &second],
    );
    assert!(b.output.status.success(), "{}", b.stderr());
    // The kickstart kept in OUTDIR is the one the installer read, and build.json's hash
    // is its hash.
    let ks = fs::read_to_string(b.out.join("ovirt-node-ng-image.ks")).unwrap();
    assert!(
        ks.contains("# nodeimg: replaced by --replace-repos: repo --name=gone")
            && ks.contains("# nodeimg: replaced by --url: url --url=http://127.0.0.1:9/os")
            && ks.contains(&format!("url --url={url}  # nodeimg: added"))
            && ks.contains(&format!(
                "repo --name=second --baseurl=file://{}  # nodeimg: added",
                repos().second.display()
            )),
        "{ks}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(b.out.join("build.json")).unwrap()).unwrap();
    use sha2::Digest as _;
    assert_eq!(
        record["input"]["kickstart_sha256"],
        hex::encode(sha2::Sha256::digest(ks.as_bytes()))
    );
    let manifest = fs::read_to_string(b.out.join("ovirt-node-ng-image.manifest-rpm")).unwrap();
    assert!(manifest.contains("from-second-1.0-1"), "{manifest}");

    // Without --replace-repos a --repo replaces the repo of its name only.
    let b = build(
        &text,
        &["--url", &url, "--repo", "gone=file:///nonexistent/repo"],
    );
    assert_eq!(b.output.status.code(), Some(1));
    assert!(b.stderr().contains("repository 'gone'"), "{}", b.stderr());

    // A URL that would break the kickstart line is refused before anything runs.
    let b = build(&text, &["--repo", "x=http://a/ --install"]);
    assert_eq!(b.output.status.code(), Some(2), "{}", b.stderr());
    assert!(b.stderr().contains("no white space"), "{}", b.stderr());
}

#[test]
fn what_a_directory_install_cannot_do_is_refused_before_dnf_runs() {
    let text = small_kickstart(
        "autopart\nrepo --name=insecure --baseurl=https://example.invalid/ --noverifyssl",
        "",
        "",
    )
    .replace("part / --size=32\n", "");
    let b = build(&text, &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    let err = b.stderr();
    assert!(
        err.contains("`autopart` cannot be honoured by the dnf backend"),
        "{err}"
    );
    assert!(!b.out.join("logs/dnf.log").exists(), "dnf ran");
    assert!(!b.scratch.path().join("cache").exists(), "dnf ran");

    let text = small_kickstart(
        "repo --name=insecure --baseurl=https://example.invalid/ --noverifyssl",
        "",
        "",
    );
    let b = build(&text, &[]);
    assert_eq!(b.output.status.code(), Some(1), "{}", b.stderr());
    assert!(b.stderr().contains("--allow-noverifyssl"), "{}", b.stderr());
}

#[test]
fn builds_sharing_a_cache_take_turns() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    let lock = fs::File::create(cache.join(".nodeimg.lock")).unwrap();
    lock.lock().unwrap();
    let mut child = build_command(scratch.path(), &small_kickstart("", "", ""), &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the build never said it waits for the cache");
        if line.contains("waiting for another build") {
            break;
        }
    }
    // It waits while the lock is held…
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the build did not wait"
    );
    assert!(!scratch.path().join("out/logs/dnf.log").exists());
    // …and goes on once it is released.
    lock.unlock().unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = rx.iter().collect();
    assert!(status.success(), "{rest:#?}");
}

#[test]
fn sigterm_during_post_leaves_no_mount_process_or_artifact() {
    let scratch = tempfile::tempdir().unwrap();
    // A daemon that escapes the script's process group, and a long foreground step.
    let post = "%post\nsetsid sleep 300 </dev/null >/dev/null 2>&1 &\ntouch /etc/post-started\nsleep 300\n%end\n";
    let mut child = build_command(scratch.path(), &small_kickstart("", "", post), &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = scratch.path().join("work");
    let started = || -> Option<PathBuf> {
        fs::read_dir(&work)
            .ok()?
            .flatten()
            .map(|e| e.path().join("tree/etc/post-started"))
            .find(|p| p.exists())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while started().is_none() {
        assert!(Instant::now() < deadline, "%post never started");
        assert!(child.try_wait().unwrap().is_none(), "the build ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(common::terminate(&mut child), Some(143));
    assert_nothing_left(scratch.path());
    assert!(!scratch.path().join("out/CHECKSUMS.sha256").exists());
    // The install's work directory went with the build.
    assert_eq!(fs::read_dir(&work).unwrap().count(), 0);
}
