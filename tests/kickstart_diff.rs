//! `nodeimg check` against pykickstart's `ksvalidator -v RHEL9` (the venv's) on
//! kickstarts of our own, shaped like real ones (anaconda's kickstart-tests minimum, an
//! EL cloud image, a Fedora live spin, an LVM server, the Node's) and broken in the
//! ways real ones are: both must accept and reject the same files, and where
//! ksvalidator names lines, nodeimg's first syntax finding must be on the earliest.

use std::path::{Path, PathBuf};
use std::process::Command;

const KSVALIDATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/ksvalidator");
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

/// Run the venv's Python with `args` (TMPDIR a scratch directory: pykickstart leaves
/// files there); its stdout, once it has succeeded.
fn python(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(PYTHON)
        .env("TMPDIR", tmp.path())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}; run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const MINIMAL: &str = "\
shutdown
network --bootproto=dhcp
bootloader --timeout=1
zerombr
clearpart --all
autopart
keyboard us
lang en
timezone America/New_York
rootpw testcase
url --url http://mirror.example.org/fedora/
%packages
%end
";

const CLOUD: &str = r#"# EL9 cloud image
text
reboot
url --url=https://mirror.example.org/9-stream/BaseOS/x86_64/os/
repo --name=AppStream --baseurl=https://mirror.example.org/9-stream/AppStream/x86_64/os/
lang en_US.UTF-8
keyboard --vckeymap=us --xlayouts='us'
timezone UTC --utc
network --bootproto=dhcp --device=link --activate --onboot=on
firewall --disabled
selinux --enforcing
services --enabled=sshd,NetworkManager,cloud-init --disabled=kdump,rhsmcertd
rootpw --iscrypted --lock locked
bootloader --location=mbr --timeout=1 --append="console=tty0 console=ttyS0,115200n8 no_timer_check net.ifnames=0"
zerombr
clearpart --all --initlabel
part / --fstype=xfs --size=8000
eula --agreed
firstboot --disabled

%packages --inst-langs=en --excludedocs
@core
cloud-init
cloud-utils-growpart
-iwl*firmware
-dracut-config-rescue
%end

%post --erroronfail --log=/root/ks-post.log
cat > /etc/cloud/cloud.cfg.d/00_local.cfg << 'EOF'
datasource_list: [ NoCloud, ConfigDrive, None ]
EOF
rm -f /etc/udev/rules.d/70*
%end
"#;

const SPIN: &str = r#"# Fedora-style live spin (RHEL9 syntax)
lang en_US.UTF-8
keyboard us
timezone US/Eastern
selinux --enforcing
firewall --enabled --service=mdns
xconfig --startxonboot
zerombr
clearpart --all
part / --size 5120 --fstype ext4
services --enabled=NetworkManager,ModemManager --disabled=sshd
network --bootproto=dhcp --device=link --activate
rootpw --lock --iscrypted locked
shutdown
url --mirrorlist=https://mirrors.example.org/mirrorlist?repo=fedora-40&arch=$basearch
repo --name=updates --mirrorlist=https://mirrors.example.org/mirrorlist?repo=updates-released-f40&arch=$basearch --cost=50

%packages
@^workstation-product-environment
@anaconda-tools --optional
anaconda
dracut-live
-@dial-up
-gnome-boxes # not on live media
%end

%post
systemctl enable livesys.service
cat >> /etc/fstab << EOF
vartmp   /var/tmp    tmpfs   defaults   0  0
EOF
%end

%post --nochroot
cp $INSTALL_ROOT/usr/share/licenses/*-release/* $LIVE_ROOT/
%end
"#;

const SERVER: &str = r#"#version=RHEL9
cmdline
url --url="http://mirror.example.org/9/BaseOS/x86_64/os/"
lang en_GB.UTF-8 --addsupport=de_DE.UTF-8
keyboard --xlayouts='gb','de'
timezone Europe/London --utc
timesource --ntp-server=ntp.example.org
network --bootproto=static --device=eth0 --ip=10.0.0.5 --netmask=255.255.255.0 --gateway=10.0.0.1 --nameserver=10.0.0.1 --hostname=srv.example.org --noipv6
authselect select sssd with-mkhomedir
rootpw --iscrypted $6$rounds=4096$salt$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL
user --name=admin --groups=wheel --gecos="Ops O'Neil" --iscrypted --password=$6$x$y --uid=1001 --gid=1001
group --name=ops --gid=2000
sshkey --username=admin "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@example.org"
ignoredisk --only-use=vda
zerombr
clearpart --all --initlabel --drives=vda
reqpart --add-boot
part pv.01 --size=1 --grow --ondisk=vda
volgroup vg_root pv.01
logvol / --vgname=vg_root --name=root --size=10240 --fstype=xfs
logvol swap --vgname=vg_root --name=swap --recommended
logging --host=loghost.example.org --port=514
poweroff

%pre-install --interpreter=/usr/bin/bash
echo "pre-install" > /tmp/pre-install.log
%end

%packages --ignoremissing --exclude-weakdeps --timeout=30 --retries=5
@^minimal-environment
@standard --nodefaults
vim-enhanced
%end

%onerror
echo failed > /dev/console
%end

%post --interpreter=/usr/bin/python3 --nochroot
print("done")
%end

%addon com_redhat_kdump --enable --reserve-mb='auto'
%end

%anaconda
pwpolicy root --minlen=6 --minquality=1 --notstrict --nochanges --notempty
%end
"#;

const LIVEIMG: &str = "\
liveimg --url=file:///run/install/repo/ovirt-node-ng-image.squashfs.img --checksum=0123abcd
timezone --utc Etc/UTC
zerombr
clearpart --all --initlabel
bootloader --location=mbr --boot-drive=sda
reqpart --add-boot
part pv.01 --size=42000 --grow
volgroup HostVG pv.01 --reserved-percent=20
logvol swap --vgname=HostVG --name=swap --fstype=swap --recommended
logvol none --vgname=HostVG --name=HostPool --thinpool --size=40000 --grow
logvol / --vgname=HostVG --name=root --thin --fstype=ext4 --poolname=HostPool --fsoptions=\"defaults,discard\" --size=6000 --grow
rootpw --plaintext ovirt
reboot
%post --erroronfail
imgbase layout --init
%end
";

/// (name, text): the corpus.
fn corpus() -> Vec<(String, String)> {
    let node = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kickstarts/ovirt-node-ng-image.ks"
    ))
    .unwrap();
    let mut out: Vec<(String, String)> = vec![
        ("node".into(), node),
        // Shaped like real ones of their era (EL5 to EL8, Fedora 35), written here.
        (
            "el5-lvm-server".into(),
            include_str!("kickstarts/el5-lvm-server.ks").into(),
        ),
        (
            "el6-minimal".into(),
            include_str!("kickstarts/el6-minimal.ks").into(),
        ),
        (
            "el7-anaconda".into(),
            include_str!("kickstarts/el7-anaconda.ks").into(),
        ),
        (
            "el8-minimal".into(),
            include_str!("kickstarts/el8-minimal.ks").into(),
        ),
        (
            "f35-cloud".into(),
            include_str!("kickstarts/f35-cloud.ks").into(),
        ),
        ("minimal".into(), MINIMAL.into()),
        ("cloud".into(), CLOUD.into()),
        ("spin".into(), SPIN.into()),
        ("server".into(), SERVER.into()),
        ("liveimg".into(), LIVEIMG.into()),
    ];
    // Broken ones: the minimal kickstart with one line added at the end, or changed.
    let append: &[(&str, &str)] = &[
        ("unknown-command", "TEXT"),
        ("misspelled-command", "bootlodaer --timeout=1"),
        ("removed-install", "install"),
        ("removed-device", "device eth0"),
        ("deprecated-autostep", "autostep"),
        ("deprecated-method", "method"),
        ("deprecated-btrfs", "btrfs / --data=0 btrfs.01"),
        ("auth-warns", "auth --enableshadow --passalgo=sha512"),
        ("bad-option", "selinux --bogus"),
        ("bad-int", "user --name=a --uid=abc"),
        ("bad-choice", "firstboot --enable --reconfig --bogus"),
        ("bad-bootproto", "network --bootproto=magic --device=eth1"),
        ("missing-required-user", "user --groups=wheel"),
        ("missing-required-repo", "repo --baseurl=http://x/"),
        ("flag-with-value", "firewall --ssh=yes"),
        ("missing-value", "group --name=ops --gid"),
        ("extra-positional", "zerombr --foo"),
        ("timezone-bare", "timezone"),
        ("timezone-two", "timezone Europe/Paris Europe/Berlin"),
        ("rootpw-bare", "rootpw"),
        ("rootpw-two", "rootpw a b"),
        ("keyboard-bare", "keyboard"),
        ("keyboard-two", "keyboard us de"),
        ("services-bare", "services"),
        (
            "url-two-sources",
            "url --url=http://a/ --mirrorlist=http://b/",
        ),
        ("autopart-then-part", "part / --size=100"),
        ("autopart-then-mount", "mount /dev/vda1 /"),
        ("autopart-then-reqpart", "reqpart"),
        ("duplicate-user", "user --name=a\nuser --name=a"),
        (
            "duplicate-repo",
            "repo --name=r --baseurl=http://a/\nrepo --name=r --baseurl=http://b/",
        ),
        ("tz-isutc", "timezone UTC --isUtc"),
        ("tz-nontp", "timezone UTC --nontp"),
        ("tz-ntpservers", "timezone UTC --ntpservers=a,b"),
        (
            "repo-ignoregroups",
            "repo --name=x --baseurl=http://x/ --ignoregroups=true",
        ),
        ("logging-level", "logging --level=debug"),
        ("pre-nochroot", "%pre --nochroot\necho\n%end"),
        ("traceback", "%traceback\necho\n%end"),
        ("certificate-no-filename", "%certificate\nPEM\n%end"),
        ("lang-bare", "lang"),
        ("sshkey-no-key", "sshkey --username=root"),
        ("volgroup-bare", "volgroup"),
        ("autopart-btrfs", "autopart --type=btrfs"),
        ("bootloader-location", "bootloader --location=foo"),
        ("part-size-abc", "part /home --size=abc"),
        ("unknown-section", "%postinstall\necho\n%end"),
        ("section-case", "%Packages\n%end"),
        ("post-without-end", "%post\necho hi"),
        ("post-then-packages", "%post\necho hi\n%packages\n%end"),
        ("unterminated-quote", "user --name=a --gecos=\"Bob"),
        (
            "continuation",
            "network --bootproto=static \\\n--ip=10.0.0.2",
        ),
        ("heredoc-end", "%post\ncat > /x << EOF\n%end\nEOF\n%end"),
        ("end-alone", "%end"),
        ("ksappend-missing", "%ksappend nowhere.ks"),
        (
            "ostreesetup-ftp",
            "ostreesetup --osname=fedora --url=ftp://x/repo --ref=fedora/x86_64",
        ),
        (
            "ostreesetup-https",
            "ostreesetup --osname=fedora --url=https://x/repo --ref=fedora/x86_64 --nogpg",
        ),
        (
            "ostreesetup-no-ref",
            "ostreesetup --osname=fedora --url=file:///repo",
        ),
    ];
    for (name, line) in append {
        out.push((name.to_string(), format!("{MINIMAL}{line}\n")));
    }
    let change: &[(&str, &str, &str)] = &[
        (
            "packages-instlangs",
            "%packages\n",
            "%packages --instLangs=en\n",
        ),
        (
            "packages-excludeweakdeps",
            "%packages\n",
            "%packages --excludeWeakdeps\n",
        ),
        ("packages-nobase", "%packages\n", "%packages --nobase\n"),
        (
            "packages-ignorebroken",
            "%packages\n",
            "%packages --ignorebroken\n",
        ),
        (
            "packages-default-nocore",
            "%packages\n",
            "%packages --default --nocore\n",
        ),
        (
            "packages-group-both",
            "%packages\n",
            "%packages\n@core --nodefaults --optional\n",
        ),
        (
            "packages-good",
            "%packages\n",
            "%packages --nocore\n@core --nodefaults\n@^minimal-environment\n-@dial-up\nvim # editor\n-nano\n",
        ),
        (
            "abbreviated-option",
            "bootloader --timeout=1",
            "bootloader --time=1",
        ),
        (
            "quoted-append",
            "bootloader --timeout=1",
            "bootloader --timeout=1 --append=\"console=ttyS0 quiet\"",
        ),
        (
            "hash-in-password",
            "rootpw testcase",
            "rootpw --plaintext pa#ss",
        ),
        (
            "part-instead",
            "autopart",
            "part / --size=5120 --fstype=ext4 --fsoptions=discard",
        ),
        ("tabs-and-crlf", "lang en\n", "lang\ten\r\n"),
        // Python's str.splitlines() breaks: the line numbers after them, and the break
        // kept in the line for shlex (an unknown `zerombr\f`, an `%end\f` that ends
        // nothing).
        ("form-feed-break", "zerombr\n", "zerombr\x0c"),
        ("vertical-tab-break", "zerombr\n", "zerombr\x0b"),
        ("file-separator-break", "zerombr\n", "zerombr\x1c"),
        ("next-line-break", "zerombr\n", "zerombr\u{85}"),
        ("line-separator-break", "zerombr\n", "zerombr\u{2028}"),
        ("paragraph-separator-break", "zerombr\n", "zerombr\u{2029}"),
        (
            "form-feed-after-end",
            "%packages\n%end\n",
            "%packages\n%end\x0c",
        ),
        (
            "cr-before-bad-option",
            "zerombr\n",
            "zerombr\rselinux --bogus\r",
        ),
        ("separators-only-line", "zerombr\n", "zerombr\n\x1c\x1d \n"),
    ];
    for (name, from, to) in change {
        assert!(MINIMAL.contains(from), "{name}");
        out.push((name.to_string(), MINIMAL.replacen(from, to, 1)));
    }
    out.push(("cr-only".into(), MINIMAL.replace('\n', "\r")));
    out.push(("crlf-only".into(), MINIMAL.replace('\n', "\r\n")));
    out.push((
        "cr-only-bad-option".into(),
        format!("{MINIMAL}selinux --bogus\n").replace('\n', "\r"),
    ));
    out.push(("empty".into(), String::new()));
    out.push(("whitespace-only".into(), " \n\t\r\n\x0b\x0c\n".into()));
    out.push(("comment-only".into(), "# nothing\n".into()));
    out
}

struct Verdict {
    accepted: bool,
    line: Option<usize>,
    /// Every line nodeimg's syntax findings name (empty for ksvalidator's verdicts).
    lines: Vec<usize>,
    text: String,
}

/// The earliest "line N" ksvalidator's output names.
fn first_named_line(text: &str) -> Option<usize> {
    text.split("line ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        })
        .min()
}

fn ksvalidator(path: &Path) -> Verdict {
    // ksvalidator leaves its preprocessed copy (mkstemp "-ks.cfg") behind on failure.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(KSVALIDATOR)
        .env("TMPDIR", tmp.path())
        .args(["-v", "RHEL9"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{KSVALIDATOR}: {e}; run scripts/setup.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // ksvalidator prints command errors (stderr) and the structural error that stops it
    // (stdout) in no useful order: take the earliest line it names.
    Verdict {
        accepted: out.status.success(),
        line: first_named_line(&text),
        lines: Vec::new(),
        text,
    }
}

/// A check report's syntax findings (what ksvalidator judges), info left out.
fn syntax_findings(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["group"] == "syntax" && f["severity"] != "info")
        .collect()
}

fn nodeimg(path: &Path) -> Verdict {
    let out = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["check", "--format", "json", "--ks-version", "RHEL9"])
        .arg(path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let syntax = syntax_findings(&report);
    Verdict {
        accepted: syntax.is_empty(),
        line: syntax
            .first()
            .and_then(|f| f["origin"]["line"].as_u64())
            .map(|l| l as usize),
        lines: Vec::new(),
        text: serde_json::to_string_pretty(&syntax).unwrap(),
    }
}

#[test]
fn nodeimg_and_ksvalidator_agree() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus();
    assert!(corpus.len() >= 60, "{} kickstarts", corpus.len());
    let mut rejected = 0;
    let mut disagreements = Vec::new();
    for (name, text) in &corpus {
        let path: PathBuf = dir.path().join(format!("{name}.ks"));
        std::fs::write(&path, text).unwrap();
        let theirs = ksvalidator(&path);
        let ours = nodeimg(&path);
        if !theirs.accepted {
            rejected += 1;
        }
        let same_line = match (theirs.line, ours.line) {
            (Some(t), Some(o)) => t == o,
            _ => true,
        };
        if theirs.accepted != ours.accepted || !same_line {
            disagreements.push(format!(
                "{name}: ksvalidator {} (line {:?}), nodeimg {} (line {:?})\n--- ksvalidator:\n{}\n--- nodeimg:\n{}",
                if theirs.accepted { "accepts" } else { "rejects" },
                theirs.line,
                if ours.accepted { "accepts" } else { "rejects" },
                ours.line,
                theirs.text.trim(),
                ours.text
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));
    // The corpus exercises both verdicts.
    assert!(
        rejected >= 40 && rejected <= corpus.len() - 8,
        "{rejected} rejected"
    );
}

/// ksvalidator's own `main()` for every version and file, in one Python process:
/// `{version: [[rc, output], …]}`. (ksvalidator prints some errors only after its last
/// file, so one process per version cannot say which file they belong to, and a
/// process per file and version would take twenty minutes.)
fn ksvalidator_all(versions: &[String], paths: &[PathBuf]) -> serde_json::Value {
    const DRIVER: &str = r#"
import contextlib, importlib.machinery, importlib.util, io, json, sys
loader = importlib.machinery.SourceFileLoader("ksvalidator", sys.argv[1])
spec = importlib.util.spec_from_loader("ksvalidator", loader)
ksvalidator = importlib.util.module_from_spec(spec)
loader.exec_module(ksvalidator)
versions, files = sys.argv[2].split(","), sys.argv[3:]
out = {}
for version in versions:
    results = []
    for path in files:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            rc, messages = ksvalidator.main(["-v", version, path])
        results.append([rc, buf.getvalue() + "\n".join(messages)])
    out[version] = results
json.dump(out, sys.stdout)
"#;
    let versions = versions.join(",");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-c".as_ref(),
        DRIVER.as_ref(),
        KSVALIDATOR.as_ref(),
        versions.as_ref(),
    ];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    serde_json::from_slice(&python(&args)).unwrap()
}

fn ksvalidator_verdict(result: &serde_json::Value) -> Verdict {
    let text = result[1].as_str().unwrap().to_owned();
    let body = text
        .split_once("Checking kickstart file")
        .map_or(text.as_str(), |(_, b)| b);
    let body = body.split_once('\n').map_or("", |(_, b)| b);
    Verdict {
        accepted: result[0].as_u64() == Some(0),
        line: first_named_line(body),
        lines: Vec::new(),
        text: body.to_owned(),
    }
}

fn nodeimg_batch(version: &str, paths: &[PathBuf]) -> Vec<Verdict> {
    let out = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args([
            "check",
            "--format",
            "json",
            "--lmc",
            "off",
            "--ks-version",
            version,
        ])
        .args(paths)
        .output()
        .unwrap();
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    reports
        .iter()
        .map(|report| {
            let syntax = syntax_findings(report);
            let lines: Vec<usize> = syntax
                .iter()
                .filter_map(|f| f["origin"]["line"].as_u64())
                .filter(|&l| l > 0)
                .map(|l| l as usize)
                .collect();
            Verdict {
                accepted: syntax.is_empty(),
                line: lines.iter().min().copied(),
                lines,
                text: serde_json::to_string_pretty(&syntax).unwrap(),
            }
        })
        .collect()
}

/// The corpus under every version pykickstart knows: the same verdicts, and the first
/// line ksvalidator names among nodeimg's.
#[test]
fn nodeimg_and_ksvalidator_agree_under_every_version() {
    use nodeimg::kickstart::version::Version;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, text) in corpus() {
        let path = dir.path().join(format!("{name}.ks"));
        // The corpus's own version line would override --ks-version.
        let text = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("#version=") => rest.to_owned(),
            _ => text,
        };
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let only = std::env::var("NODEIMG_KS_VERSIONS").ok();
    let versions: Vec<String> = Version::all()
        .map(|v| v.to_string())
        .filter(|v| only.as_deref().is_none_or(|o| o.split(',').any(|w| w == v)))
        .collect();
    let all = ksvalidator_all(&versions, &paths);
    let mut disagreements = Vec::new();
    let mut rejected = 0;
    for version in &versions {
        let theirs: Vec<Verdict> = all[version]
            .as_array()
            .unwrap()
            .iter()
            .map(ksvalidator_verdict)
            .collect();
        let ours = nodeimg_batch(version, &paths);
        for ((path, t), o) in paths.iter().zip(&theirs).zip(&ours) {
            rejected += usize::from(!t.accepted);
            // The first line ksvalidator names is one nodeimg names too (ksvalidator
            // prints some findings, deprecations among them, without a line).
            let same_line = t.line.is_none_or(|line| o.lines.contains(&line));
            if t.accepted != o.accepted || !same_line {
                disagreements.push(format!(
                    "{version} {}: ksvalidator {} (line {:?}), nodeimg {} (line {:?})\n--- ksvalidator:\n{}\n--- nodeimg:\n{}",
                    path.file_name().unwrap().to_string_lossy(),
                    if t.accepted { "accepts" } else { "rejects" },
                    t.line,
                    if o.accepted { "accepts" } else { "rejects" },
                    o.line,
                    t.text.trim(),
                    o.text
                ));
            }
        }
    }
    assert!(rejected > 0);
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}

/// Bytes that are not UTF-8: pykickstart rejects the whole file; nodeimg says so once,
/// at the line of the first bad byte, and nothing else.
#[test]
fn a_file_that_is_not_utf8_is_one_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.ks");
    let mut bytes = MINIMAL.replace("zerombr\n", "zerombr\x0c").into_bytes();
    bytes.extend_from_slice(b"user --name=a --gecos=\"Jos\xe9\"\n");
    std::fs::write(&path, &bytes).unwrap();
    let theirs = ksvalidator(&path);
    assert!(!theirs.accepted, "{}", theirs.text);
    let out = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args(["check", "--format", "json", "--lmc", "off"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["rule"], "not-utf8", "{report:#}");
    // Line 4 ends with a form feed instead of a newline: the bad byte is on line 14
    // by Python's count, as it would be by a newline count.
    assert_eq!(findings[0]["origin"]["line"], 14, "{report:#}");
    assert!(
        findings[0]["message"].as_str().unwrap().contains("(0xe9)"),
        "{report:#}"
    );
}

/// The command table and the typed commands' options, for every version pykickstart
/// knows, against pykickstart's own handlers (introspected from the venv); and the
/// compiled-in table is what `scripts/kickstart-handlers.py` makes of them today.
#[test]
fn commands_and_options_match_pykickstart_handlers() {
    use nodeimg::kickstart::options::{Spec, spec_notation};
    use nodeimg::kickstart::version::{Status, Version, command_status};

    let script = r#"
import json, sys
from pykickstart.version import makeVersion, versionMap
from pykickstart.base import DeprecatedCommand, KickstartCommand, RemovedCommand
out = {}
for v in sys.argv[1:]:
    h = makeVersion(versionMap[v])
    cmds = {}
    for name, obj in h.commands.items():
        # A name mapped to the bare base class fails any use ("parse() not
        # implemented"): removed, in effect.
        if isinstance(obj, RemovedCommand) or type(obj).parse is KickstartCommand.parse:
            cmds[name] = {"status": "removed"}
        elif isinstance(obj, DeprecatedCommand):
            cmds[name] = {"status": "deprecated"}
        else:
            opts = []
            for a in obj._getParser()._actions:
                opts.extend(o for o in a.option_strings if o not in ("-h", "--help"))
            cmds[name] = {"status": "known", "options": sorted(opts)}
    out[v] = cmds
json.dump(out, sys.stdout)
"#;
    let generated =
        python(&[concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kickstart-handlers.py").as_ref()]);
    assert!(
        generated
            == std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/kickstart/handlers.txt"
            ))
            .unwrap(),
        "src/kickstart/handlers.txt is not what pykickstart says today: regenerate it with \
         .venv/bin/python scripts/kickstart-handlers.py > src/kickstart/handlers.txt"
    );

    let versions: Vec<String> = Version::all().map(|v| v.to_string()).collect();
    assert_eq!(versions.len(), 53, "{versions:?}");
    let mut args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), script.as_ref()];
    args.extend(versions.iter().map(std::ffi::OsStr::new));
    let out = python(&args);
    let handlers: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let mut wrong = Vec::new();
    for version in Version::all() {
        let commands = handlers[version.to_string()].as_object().unwrap();
        for (name, info) in commands {
            let theirs = info["status"].as_str().unwrap();
            let ours = match command_status(version, name) {
                Status::Known => "known",
                Status::Deprecated => "deprecated",
                Status::Removed => "removed",
                Status::Unknown => "unknown",
            };
            if ours != theirs {
                wrong.push(format!(
                    "{version} {name}: pykickstart {theirs}, nodeimg {ours}"
                ));
            }
            if let Some(notation) = spec_notation(version, name) {
                let mut ours = Spec::parse(&notation).option_names();
                ours.sort();
                let theirs: Vec<String> =
                    serde_json::from_value(info["options"].clone()).unwrap_or_default();
                if ours != theirs {
                    wrong.push(format!(
                        "{version} {name} options:\n  pykickstart {theirs:?}\n  nodeimg     {ours:?}"
                    ));
                }
            }
        }
        // Nothing we know is unknown to pykickstart.
        for name in [
            "text",
            "part",
            "rootpw",
            "bootc",
            "rdp",
            "stratisfs",
            "rhsm",
        ] {
            if command_status(version, name) != Status::Unknown && !commands.contains_key(name) {
                wrong.push(format!(
                    "{version} {name}: nodeimg knows it, pykickstart does not"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
