//! A small distribution made with the real tools for the dnf backend's tests:
//! packages built by rpmbuild, a repository by createrepo_c with a comps file.
//!
//! The tree it installs works in a chroot: `busybox` is Debian's static busybox
//! repackaged, providing /bin/sh and the usual commands. Two programs inside the tree
//! are recorders written for these tests, not stand-ins for host tools: the
//! `firewalld` and `authselect` packages ship a /usr/bin/firewall-offline-cmd and
//! /usr/bin/authselect that append their arguments to a file, so a test sees exactly
//! how nodeimg called them in the chroot (the real ones need Python and a real
//! distribution inside the tree).

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::node::{PLACEHOLDER, placeholder_rpm};
use super::run;

/// One package to build.
struct Pkg<'a> {
    name: &'a str,
    /// `noarch` or the host's arch.
    arch: &'a str,
    /// Preamble lines: Requires, Provides, Recommends…
    preamble: &'a str,
    /// Shell lines of %install; `$B` is the buildroot.
    install: &'a str,
    files: &'a str,
    /// Anything after %files (scriptlets).
    scripts: &'a str,
}

fn build(top: &Path, p: &Pkg) -> PathBuf {
    fs::create_dir_all(top).unwrap();
    let spec = top.join(format!("{}.spec", p.name));
    fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: nodeimg test package {name}\nLicense: MIT\n\
             BuildArch: {arch}\nAutoReqProv: no\n{preamble}\n%description\ntest\n\
             %install\nB=%{{buildroot}}\n{install}\n%files\n{files}\n{scripts}\n",
            name = p.name,
            arch = p.arch,
            preamble = p.preamble,
            install = p.install,
            files = p.files,
            scripts = p.scripts,
        ),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    top.join("RPMS")
        .join(p.arch)
        .join(format!("{}-1.0-1.{}.rpm", p.name, p.arch))
}

const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id><name>Core</name><description>The smallest system</description>
    <default>true</default><uservisible>false</uservisible>
    <packagelist>
      <packagereq type="mandatory">filesystem</packagereq>
      <packagereq type="mandatory">setup</packagereq>
      <packagereq type="mandatory">busybox</packagereq>
    </packagelist>
  </group>
  <group>
    <id>node-extras</id><name>Node extras</name><description>Extras</description>
    <default>false</default><uservisible>true</uservisible>
    <packagelist>
      <packagereq type="default">extra-a</packagereq>
      <packagereq type="default">unwanted</packagereq>
      <packagereq type="optional">extra-b</packagereq>
    </packagelist>
  </group>
  <group>
    <id>node-system</id><name>Node system</name><description>System services</description>
    <default>false</default><uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">tzdata</packagereq>
      <packagereq type="mandatory">test-services</packagereq>
      <packagereq type="mandatory">firewalld</packagereq>
      <packagereq type="mandatory">authselect</packagereq>
      <packagereq type="mandatory">selinux-policy-test</packagereq>
    </packagelist>
  </group>
  <environment>
    <id>node-env</id><name>Node environment</name><description>Node</description>
    <display_order>1</display_order>
    <grouplist><groupid>node-system</groupid></grouplist>
  </environment>
</comps>
"#;

/// A kickstart using every command the dnf backend applies.
pub fn full_kickstart(repos: &Repos) -> String {
    format!(
        r#"#version=RHEL9
url --url=file://{main}
repo --name="second repo" --baseurl=file://{second} --install
lang en_US.UTF-8
keyboard --vckeymap=us
timezone Europe/Prague --utc
network --bootproto=dhcp --device=link --activate --hostname=node.example.com
network --bootproto=static --device=eth1 --ip=192.0.2.10 --netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.53 --onboot=no
firewall --enabled --service=ssh --port=2222:tcp
selinux --permissive
authselect select minimal with-sudo
rootpw --lock --iscrypted $6$saltsalt$2Xk0zS5Yb3c1nIX0WYdAkNG1dPZyQp2b1T1u8yOvOv6lB3gpVn0y2DqfHc8pLZ7R4rJm8B5C2V6ZkqM1hN0aR.
group --name=kvm --gid=36
user --name=node --lock --groups=wheel,kvm --uid=1500 --gecos="Node admin" --password=node-secret --plaintext
sshkey --username=node "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITESTKEY test@nodeimg"
services --enabled=node-a --disabled=node-b
firstboot --disable
bootloader --location=none --append="console=ttyS0"
zerombr
clearpart --all
part / --size=64 --fstype=ext4
poweroff

%pre
echo "pre ran on the host"
%end

%pre-install
mkdir -p "$INSTALL_ROOT/etc"
echo "before packages: $(ls /mnt/sysroot/usr 2>/dev/null | wc -l) entries in /usr" > "$INSTALL_ROOT/etc/pre-install-ran"
%end

%packages --exclude-weakdeps --excludedocs --inst-langs=en
@^node-env
@node-extras
node-base
from-second
ovirt-node-ng-image-update-placeholder
-unwanted
%end

%post --erroronfail --log=/root/post.log
echo "chroot post: $(cat /etc/hostname)"
test -e /proc/self/status && echo proc-mounted > /etc/post-proc
echo chroot-ok > /etc/post-chroot
%end

%post --nochroot --interpreter=/bin/sh
echo "$INSTALL_ROOT" > /mnt/sysroot/etc/post-nochroot
test -f "$INSTALL_ROOT/etc/post-chroot" && echo saw-chroot >> /mnt/sysroot/etc/post-nochroot
%end
"#,
        main = repos.main.display(),
        second = repos.second.display()
    )
}

/// The repositories: `main` (everything) and `second` (one package, for `repo`).
pub struct Repos {
    pub main: PathBuf,
    pub second: PathBuf,
}

/// Build the repositories once per test binary.
pub fn repos() -> &'static Repos {
    static REPOS: OnceLock<Repos> = OnceLock::new();
    REPOS.get_or_init(|| {
        // Kept for the test binary's life: every test reads it.
        let dir = tempfile::Builder::new()
            .prefix("nodeimg-test-repo-")
            .tempdir()
            .unwrap()
            .keep();
        make(&dir)
    })
}

fn make(dir: &Path) -> Repos {
    let top = dir.join("rpmbuild");
    let arch = std::env::consts::ARCH;
    let busybox = super::run(Command::new("sh").args(["-c", "command -v busybox"]));
    let busybox = String::from_utf8_lossy(&busybox.stdout).trim().to_owned();
    assert!(
        !busybox.is_empty(),
        "busybox is needed (Debian package busybox-static; scripts/setup.sh installs it)"
    );
    let applets =
        "sh cat echo ls mkdir touch id grep test [ ln rm chmod stat readlink cut head wc sleep env";
    let busybox_install = format!(
        "mkdir -p $B/usr/bin\ninstall -m 755 {busybox} $B/usr/bin/busybox\n\
         for a in {applets}; do ln -s busybox \"$B/usr/bin/$a\"; done"
    );
    let zoneinfo = "/usr/share/zoneinfo";
    let tz_install = format!(
        "mkdir -p $B{zoneinfo}/Europe\ncp {zoneinfo}/Europe/Prague $B{zoneinfo}/Europe/Prague\ncp {zoneinfo}/UTC $B{zoneinfo}/UTC"
    );
    let unit = |name: &str| {
        format!(
            "cat > $B/usr/lib/systemd/system/{name}.service <<'EOF'\n[Unit]\nDescription={name}\n[Service]\nExecStart=/usr/bin/sleep 1\n[Install]\nWantedBy=multi-user.target\nEOF\n"
        )
    };
    let services_install = format!(
        "mkdir -p $B/usr/lib/systemd/system $B/etc/systemd/system/multi-user.target.wants\n{}{}{}\
         ln -s /usr/lib/systemd/system/node-b.service $B/etc/systemd/system/multi-user.target.wants/node-b.service\n\
         ln -s /usr/lib/systemd/system/initial-setup.service $B/etc/systemd/system/multi-user.target.wants/initial-setup.service",
        unit("node-a"),
        unit("node-b"),
        unit("initial-setup")
    );
    let recorder = |tool: &str, log: &str| {
        format!(
            "mkdir -p $B/usr/bin\nprintf '#!/bin/sh\\n# test recorder: appends its arguments\\necho \"$*\" >> {log}\\n' > $B/usr/bin/{tool}\nchmod 755 $B/usr/bin/{tool}"
        )
    };
    let firewalld_install = recorder("firewall-offline-cmd", "/etc/firewall-offline-cmd.calls");
    let authselect_install = recorder("authselect", "/etc/authselect.calls");
    let setup_install = "mkdir -p $B/etc/skel\n\
        printf 'root:x:0:0:root:/root:/bin/sh\\nbin:x:1:1:bin:/bin:/sbin/nologin\\n' > $B/etc/passwd\n\
        printf 'root:x:0:\\nbin:x:1:\\nwheel:x:10:\\n' > $B/etc/group\n\
        printf 'root:*:19000:0:99999:7:::\\nbin:*:19000:0:99999:7:::\\n' > $B/etc/shadow\n\
        printf 'root:::\\nbin:::\\nwheel:::\\n' > $B/etc/gshadow\n\
        printf 'UID_MIN 1000\\nGID_MIN 1000\\n' > $B/etc/login.defs\n\
        echo '# skel' > $B/etc/skel/.profile";
    let base_install = "mkdir -p $B/usr/lib $B/etc $B/boot $B/usr/share/imgbase/build/meta\n\
        printf 'NAME=\"CentOS Stream\"\\nVERSION=\"9\"\\nID=\"centos\"\\nVERSION_ID=\"9\"\\nPRETTY_NAME=\"CentOS Stream 9\"\\n' > $B/usr/lib/os-release\n\
        ln -s ../usr/lib/os-release $B/etc/os-release\n\
        echo kernel > $B/boot/vmlinuz-5.14.0-570.el9.x86_64\n\
        echo ovirt-node-ng-4.5.6-0.20261126.0 > $B/usr/share/imgbase/build/meta/nvr";
    let policy_install = "mkdir -p $B/etc/selinux/targeted/contexts/files\n\
        printf 'SELINUX=enforcing\\nSELINUXTYPE=targeted\\n' > $B/etc/selinux/config\n\
        printf '/.*\\tsystem_u:object_r:default_t:s0\\n/etc(/.*)?\\tsystem_u:object_r:etc_t:s0\\n' > $B/etc/selinux/targeted/contexts/files/file_contexts";
    let extra_a_post = "%post\necho posted > /etc/extra-a.post\n# /dev is bound into the tree for scriptlets\necho ok > /dev/null && echo dev-null-ok >> /etc/extra-a.post";
    let filesystem_install = "for d in etc usr/bin usr/sbin usr/lib var/lib var/log var/cache root home proc sys dev run boot tmp; do mkdir -p $B/$d; done\n\
        chmod 1777 $B/tmp\nln -s usr/bin $B/bin\nln -s usr/sbin $B/sbin";
    let pkgs = [
        Pkg {
            name: "filesystem",
            arch: "noarch",
            preamble: "",
            install: filesystem_install,
            files: "/etc\n/usr\n/var\n/root\n/home\n/proc\n/sys\n/dev\n/run\n/boot\n/tmp\n/bin\n/sbin",
            scripts: "",
        },
        Pkg {
            name: "busybox",
            arch,
            preamble: "Requires: filesystem\nProvides: /bin/sh",
            install: &busybox_install,
            files: "/usr/bin/*",
            scripts: "",
        },
        Pkg {
            name: "setup",
            arch: "noarch",
            preamble: "Requires: filesystem",
            install: setup_install,
            files: "%config(noreplace) /etc/passwd\n%config(noreplace) /etc/group\n%attr(0000,root,root) %config(noreplace) /etc/shadow\n%attr(0000,root,root) %config(noreplace) /etc/gshadow\n/etc/login.defs\n/etc/skel",
            scripts: "",
        },
        Pkg {
            name: "node-base",
            arch: "noarch",
            preamble: "Requires: filesystem",
            install: base_install,
            files: "/usr/lib/os-release\n/etc/os-release\n/boot/vmlinuz-5.14.0-570.el9.x86_64\n/usr/share/imgbase",
            scripts: "",
        },
        Pkg {
            name: "tzdata",
            arch: "noarch",
            preamble: "",
            install: &tz_install,
            files: "/usr/share/zoneinfo",
            scripts: "",
        },
        Pkg {
            name: "test-services",
            arch: "noarch",
            preamble: "",
            install: &services_install,
            files: "/usr/lib/systemd/system/*.service\n/etc/systemd/system/multi-user.target.wants/*",
            scripts: "",
        },
        Pkg {
            name: "firewalld",
            arch: "noarch",
            preamble: "Requires: /bin/sh",
            install: &firewalld_install,
            files: "/usr/bin/firewall-offline-cmd",
            scripts: "",
        },
        Pkg {
            name: "authselect",
            arch: "noarch",
            preamble: "Requires: /bin/sh",
            install: &authselect_install,
            files: "/usr/bin/authselect",
            scripts: "",
        },
        Pkg {
            name: "selinux-policy-test",
            arch: "noarch",
            preamble: "",
            install: policy_install,
            files: "%config(noreplace) /etc/selinux/config\n/etc/selinux/targeted",
            scripts: "",
        },
        Pkg {
            name: "extra-a",
            arch: "noarch",
            preamble: "Recommends: weak-pkg\nRequires(post): /bin/sh",
            install: "mkdir -p $B/etc $B/usr/share/doc/extra-a\necho a > $B/etc/extra-a\necho doc > $B/usr/share/doc/extra-a/README",
            files: "/etc/extra-a\n%doc /usr/share/doc/extra-a/README",
            scripts: extra_a_post,
        },
        Pkg {
            name: "weak-pkg",
            arch: "noarch",
            preamble: "",
            install: "mkdir -p $B/etc\necho w > $B/etc/weak-pkg",
            files: "/etc/weak-pkg",
            scripts: "",
        },
        Pkg {
            name: "unwanted",
            arch: "noarch",
            preamble: "",
            install: "mkdir -p $B/etc\necho u > $B/etc/unwanted",
            files: "/etc/unwanted",
            scripts: "",
        },
        Pkg {
            name: "extra-b",
            arch: "noarch",
            preamble: "",
            install: "mkdir -p $B/etc\necho b > $B/etc/extra-b",
            files: "/etc/extra-b",
            scripts: "",
        },
    ];
    let main = dir.join("main");
    fs::create_dir_all(&main).unwrap();
    for p in &pkgs {
        let rpm = build(&top, p);
        fs::copy(&rpm, main.join(rpm.file_name().unwrap())).unwrap();
    }
    let placeholder = placeholder_rpm(&dir.join("placeholder"));
    fs::copy(&placeholder, main.join(placeholder.file_name().unwrap())).unwrap();
    assert!(placeholder.to_string_lossy().contains(PLACEHOLDER));
    let comps = dir.join("comps.xml");
    fs::write(&comps, COMPS).unwrap();
    run(Command::new("createrepo_c")
        .arg("--quiet")
        .arg("--groupfile")
        .arg(&comps)
        .arg(&main));

    let second = dir.join("second");
    fs::create_dir_all(&second).unwrap();
    let rpm = build(
        &top,
        &Pkg {
            name: "from-second",
            arch: "noarch",
            preamble: "",
            install: "mkdir -p $B/etc\necho second > $B/etc/from-second",
            files: "/etc/from-second",
            scripts: "",
        },
    );
    fs::copy(&rpm, second.join(rpm.file_name().unwrap())).unwrap();
    run(Command::new("createrepo_c").arg("--quiet").arg(&second));
    Repos { main, second }
}
