//! Packages made in seconds from this host's own files with rpmbuild, and repositories
//! made of them with createrepo_c: the offline Node's distribution
//! (`examples/offline/repo.rs`) and the test suite's (`tests/common/repo.rs`).
//!
//! The tree they install works in a chroot: `busybox` is the host's static busybox
//! repackaged, providing /bin/sh and the usual commands; `node-base` carries a
//! kernel-shaped file in /boot and os-release; `tzdata` the zones a kickstart names.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// One package to build (version 1.0, release 1).
pub struct Pkg {
    pub name: String,
    /// `noarch` or the host's arch.
    pub arch: String,
    /// Preamble lines: Requires, Provides, Recommends…
    pub preamble: String,
    /// Shell lines of %install; `$B` is the buildroot.
    pub install: String,
    /// The %files list.
    pub files: String,
    /// Anything after %files (scriptlets).
    pub scripts: String,
}

/// A package from its parts; see [`Pkg`].
pub fn pkg(
    name: &str,
    arch: &str,
    preamble: &str,
    install: &str,
    files: &str,
    scripts: &str,
) -> Pkg {
    Pkg {
        name: name.to_owned(),
        arch: arch.to_owned(),
        preamble: preamble.to_owned(),
        install: install.to_owned(),
        files: files.to_owned(),
        scripts: scripts.to_owned(),
    }
}

/// Run `cmd`; its stderr in the error when it fails.
fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| {
        format!("running {shown} (is it installed? scripts/setup.sh installs it)")
    })?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Build `p` with rpmbuild under `top`; the path of the .rpm.
pub fn build(top: &Path, p: &Pkg) -> Result<PathBuf> {
    fs::create_dir_all(top).with_context(|| format!("creating {}", top.display()))?;
    let spec = top.join(format!("{}.spec", p.name));
    fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: nodeimg example package {name}\nLicense: MIT\n\
             {arch}AutoReqProv: no\n{preamble}\n%description\nMade by nodeimg's examples/offline/packages.rs.\n\
             %install\nB=%{{buildroot}}\n{install}\n%files\n{files}\n{scripts}\n",
            name = p.name,
            // An arch-specific package takes rpmbuild's --target (below).
            arch = if p.arch == "noarch" { "BuildArch: noarch\n" } else { "" },
            preamble = p.preamble,
            install = p.install,
            files = p.files,
            scripts = p.scripts,
        ),
    )
    .with_context(|| format!("writing {}", spec.display()))?;
    // --target: the host's arch, or another it runs natively (i686 on x86_64).
    let mut rpmbuild = Command::new("rpmbuild");
    rpmbuild.args(["-bb", "--quiet"]);
    if p.arch != "noarch" {
        rpmbuild.args(["--target", &p.arch]);
    }
    run(rpmbuild
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec))?;
    let rpm = top
        .join("RPMS")
        .join(&p.arch)
        .join(format!("{}-1.0-1.{}.rpm", p.name, p.arch));
    ensure!(rpm.is_file(), "rpmbuild made no {}", rpm.display());
    Ok(rpm)
}

/// Make `dir` a repository of the packages in it, with `comps` as its group file.
pub fn createrepo(dir: &Path, comps: Option<&str>) -> Result<()> {
    let mut cmd = Command::new("createrepo_c");
    cmd.arg("--quiet");
    if let Some(comps) = comps {
        // createrepo_c copies it into repodata/; beside the packages it is ignored.
        let file = dir.join("comps.xml");
        fs::write(&file, comps).with_context(|| format!("writing {}", file.display()))?;
        cmd.arg("--groupfile").arg(file);
    }
    run(cmd.arg(dir))
}

/// The host's arch, as rpm names it.
pub fn arch() -> &'static str {
    std::env::consts::ARCH
}

/// The directories of a root tree, /bin and /sbin as links into /usr.
pub fn filesystem() -> Pkg {
    pkg(
        "filesystem",
        "noarch",
        "",
        "for d in etc usr/bin usr/sbin usr/lib var/lib var/log var/cache root home proc sys dev run boot tmp mnt; do mkdir -p $B/$d; done\n\
         chmod 1777 $B/tmp\nln -s usr/bin $B/bin\nln -s usr/sbin $B/sbin",
        "/etc\n/usr\n/var\n/root\n/home\n/proc\n/sys\n/dev\n/run\n/boot\n/tmp\n/mnt\n/bin\n/sbin",
        "",
    )
}

/// The host's static busybox as /usr/bin/busybox with `applets` linked to it; it
/// provides /bin/sh for scriptlets.
pub fn busybox(applets: &str) -> Result<Pkg> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .context(
            "no busybox on this host (Debian: busybox-static; scripts/setup.sh installs it)",
        )?;
    Ok(pkg(
        "busybox",
        arch(),
        "Requires: filesystem\nProvides: /bin/sh",
        &format!(
            "mkdir -p $B/usr/bin\ninstall -m 755 {busybox} $B/usr/bin/busybox\n\
             for a in {applets}; do ln -s busybox \"$B/usr/bin/$a\"; done"
        ),
        "/usr/bin/*",
        "",
    ))
}

/// /etc/passwd, group, shadow and gshadow with root and bin, login.defs and skel.
pub fn setup() -> Pkg {
    pkg(
        "setup",
        "noarch",
        "Requires: filesystem",
        "mkdir -p $B/etc/skel\n\
         printf 'root:x:0:0:root:/root:/bin/sh\\nbin:x:1:1:bin:/bin:/sbin/nologin\\n' > $B/etc/passwd\n\
         printf 'root:x:0:\\nbin:x:1:\\nwheel:x:10:\\n' > $B/etc/group\n\
         printf 'root:*:19000:0:99999:7:::\\nbin:*:19000:0:99999:7:::\\n' > $B/etc/shadow\n\
         printf 'root:::\\nbin:::\\nwheel:::\\n' > $B/etc/gshadow\n\
         printf 'UID_MIN 1000\\nGID_MIN 1000\\n' > $B/etc/login.defs\n\
         echo '# skel' > $B/etc/skel/.profile",
        "%config(noreplace) /etc/passwd\n%config(noreplace) /etc/group\n\
         %attr(0000,root,root) %config(noreplace) /etc/shadow\n\
         %attr(0000,root,root) %config(noreplace) /etc/gshadow\n/etc/login.defs\n/etc/skel",
        "",
    )
}

/// The host's zoneinfo files for `zones` (UTC, Europe/Prague…).
pub fn tzdata(zones: &[&str]) -> Pkg {
    let zoneinfo = "/usr/share/zoneinfo";
    let mut install = String::new();
    for zone in zones {
        install.push_str(&format!(
            "mkdir -p \"$(dirname $B{zoneinfo}/{zone})\"\ncp {zoneinfo}/{zone} $B{zoneinfo}/{zone}\n"
        ));
    }
    pkg("tzdata", "noarch", "", &install, zoneinfo, "")
}

/// What makes a tree a Node's root for imgbased: os-release (a link, as
/// imgbased's postprocess wants) and a kernel-shaped file in /boot; and the
/// imgbased NVR file when `nvr` is given (a real build writes it in %post).
pub fn node_base(nvr: Option<&str>) -> Pkg {
    let mut install = String::from(
        "mkdir -p $B/usr/lib $B/etc $B/boot\n\
         printf 'NAME=\"CentOS Stream\"\\nVERSION=\"9\"\\nID=\"centos\"\\nVERSION_ID=\"9\"\\nPRETTY_NAME=\"CentOS Stream 9\"\\n' > $B/usr/lib/os-release\n\
         ln -s ../usr/lib/os-release $B/etc/os-release\n\
         echo kernel > $B/boot/vmlinuz-5.14.0-570.el9.x86_64\n",
    );
    let mut files =
        String::from("/usr/lib/os-release\n/etc/os-release\n/boot/vmlinuz-5.14.0-570.el9.x86_64");
    if let Some(nvr) = nvr {
        install.push_str(&format!(
            "mkdir -p $B/usr/share/imgbase/build/meta\necho {nvr} > $B/usr/share/imgbase/build/meta/nvr\n"
        ));
        files.push_str("\n/usr/share/imgbase");
    }
    pkg(
        "node-base",
        "noarch",
        "Requires: filesystem",
        &install,
        &files,
        "",
    )
}

/// `imgbased` whose `imgbase` records each call (its arguments, one line) in
/// /var/log/imgbase.calls: what the update RPM's %post asks of a deployed Node.
pub fn imgbased_recorder() -> Pkg {
    pkg(
        "imgbased",
        "noarch",
        "Requires: /bin/sh",
        "mkdir -p $B/usr/sbin\n\
         printf '#!/bin/sh\\n# Records its calls: this is nodeimg'\"'\"'s example imgbased, not the real one.\\necho \"imgbase $*\" >> /var/log/imgbase.calls\\n' > $B/usr/sbin/imgbase\n\
         chmod 755 $B/usr/sbin/imgbase",
        "/usr/sbin/imgbase",
        "",
    )
}
