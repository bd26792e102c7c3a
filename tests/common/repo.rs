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
use std::sync::OnceLock;

use super::node::{PLACEHOLDER, placeholder_rpm};

/// The package and repository builder the offline example uses too.
#[path = "../../examples/offline/packages.rs"]
pub mod packages;
use packages::{Pkg, pkg};

fn build(top: &Path, p: &Pkg) -> PathBuf {
    packages::build(top, p).unwrap()
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

/// What the tree's busybox answers to.
pub const APPLETS: &str =
    "sh cat echo ls mkdir touch id grep test [ ln rm chmod stat readlink cut head wc sleep env";

/// Build the repositories once per test binary.
pub fn repos() -> &'static Repos {
    static REPOS: OnceLock<Repos> = OnceLock::new();
    REPOS.get_or_init(|| {
        // Kept for the test binary's life (every test reads it), under target/tmp and
        // named after the binary: the next run of the same binary replaces it, so
        // nothing accumulates in /tmp.
        let binary = std::env::current_exe().unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "nodeimg-test-repo-{}",
            binary.file_stem().unwrap().to_string_lossy()
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        make(&dir)
    })
}

fn make(dir: &Path) -> Repos {
    let top = dir.join("rpmbuild");
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
    let policy_install = "mkdir -p $B/etc/selinux/targeted/contexts/files\n\
        printf 'SELINUX=enforcing\\nSELINUXTYPE=targeted\\n' > $B/etc/selinux/config\n\
        printf '/.*\\tsystem_u:object_r:default_t:s0\\n/etc(/.*)?\\tsystem_u:object_r:etc_t:s0\\n' > $B/etc/selinux/targeted/contexts/files/file_contexts";
    let extra_a_post = "%post\necho posted > /etc/extra-a.post\n# /dev is bound into the tree for scriptlets\necho ok > /dev/null && echo dev-null-ok >> /etc/extra-a.post";
    let pkgs = [
        packages::filesystem(),
        packages::busybox(APPLETS).unwrap(),
        packages::setup(),
        packages::node_base(Some("ovirt-node-ng-4.5.6-0.20261126.0")),
        packages::tzdata(&["Europe/Prague", "UTC"]),
        pkg(
            "test-services",
            "noarch",
            "",
            &services_install,
            "/usr/lib/systemd/system/*.service\n/etc/systemd/system/multi-user.target.wants/*",
            "",
        ),
        pkg(
            "firewalld",
            "noarch",
            "Requires: /bin/sh",
            &firewalld_install,
            "/usr/bin/firewall-offline-cmd",
            "",
        ),
        pkg(
            "authselect",
            "noarch",
            "Requires: /bin/sh",
            &authselect_install,
            "/usr/bin/authselect",
            "",
        ),
        pkg(
            "selinux-policy-test",
            "noarch",
            "",
            policy_install,
            "%config(noreplace) /etc/selinux/config\n/etc/selinux/targeted",
            "",
        ),
        pkg(
            "extra-a",
            "noarch",
            "Recommends: weak-pkg\nRequires(post): /bin/sh",
            "mkdir -p $B/etc $B/usr/share/doc/extra-a\necho a > $B/etc/extra-a\necho doc > $B/usr/share/doc/extra-a/README",
            "/etc/extra-a\n%doc /usr/share/doc/extra-a/README",
            extra_a_post,
        ),
        pkg(
            "weak-pkg",
            "noarch",
            "",
            "mkdir -p $B/etc\necho w > $B/etc/weak-pkg",
            "/etc/weak-pkg",
            "",
        ),
        pkg(
            "unwanted",
            "noarch",
            "",
            "mkdir -p $B/etc\necho u > $B/etc/unwanted",
            "/etc/unwanted",
            "",
        ),
        pkg(
            "extra-b",
            "noarch",
            "",
            "mkdir -p $B/etc\necho b > $B/etc/extra-b",
            "/etc/extra-b",
            "",
        ),
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
    packages::createrepo(&main, Some(COMPS)).unwrap();

    let second = dir.join("second");
    fs::create_dir_all(&second).unwrap();
    let rpm = build(
        &top,
        &pkg(
            "from-second",
            "noarch",
            "",
            "mkdir -p $B/etc\necho second > $B/etc/from-second",
            "/etc/from-second",
            "",
        ),
    );
    fs::copy(&rpm, second.join(rpm.file_name().unwrap())).unwrap();
    packages::createrepo(&second, None).unwrap();
    Repos { main, second }
}
