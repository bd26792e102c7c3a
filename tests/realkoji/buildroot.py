"""Synthetic buildroot packages for the real-koji tests.

No EL or Fedora packages can be had offline, so the build tag's buildroot is made of
RPMs that wrap this host's own files: the programs a Node build runs in the mock
chroot (nodeimg's dnf backend: python3 and dnf; e2fsprogs, squashfs-tools; rpmbuild for
the update RPM's SRPM; the shell tools and shadow-utils mock itself runs in the chroot),
every shared library their ELF files need (per ldd), and the merged-/usr links. They are
built with the real rpmbuild, imported into koji, and installed by mock with the real
dnf, exactly as a build farm's packages would be.

The arch-specific packages are built once for each arch asked for (`rpmbuild
--target`): an x86_64 host's files serve its i686 buildroot too, as an x86_64 builder
runs i686 builds natively.

    python buildroot.py OUTDIR NODEIMG-BINARY   → OUTDIR/*.rpm
"""

import os
import re
import shutil
import subprocess
import sys

ARCH = os.uname().machine

# What the buildroot runs, by program name (resolved on PATH).
PROGRAMS = [
    # shells and core tools (mock's chroot setup and scripts)
    "bash", "sh", "dash", "cat", "cp", "mv", "rm", "ln", "ls", "mkdir", "rmdir", "chmod",
    "chown", "touch", "echo", "env", "id", "install", "readlink", "realpath", "dirname",
    "basename", "head", "tail", "sort", "uniq", "wc", "tr", "cut", "sed", "grep", "find",
    "xargs", "stat", "date", "sleep", "true", "false", "test", "uname", "tar", "gzip",
    "xz", "zstd", "cpio", "mktemp", "sync", "mount", "umount", "unshare", "getent",
    # shadow-utils: mock makes its build user in the chroot
    "useradd", "userdel", "usermod", "groupadd", "groupdel",
    # rpm and rpmbuild (the update RPM's SRPM)
    "rpm", "rpmbuild", "rpm2cpio", "rpmkeys",
    # what nodeimg runs
    "python3", "dnf", "mkfs.ext4", "mke2fs", "e2fsck", "e2image", "tune2fs", "resize2fs",
    "dumpe2fs", "debugfs", "mksquashfs", "unsquashfs", "systemctl", "setfiles", "losetup",
]

# Whole trees (Python, dnf and rpm's data).
TREES = [
    "/usr/lib/python3.11",
    "/usr/lib/python3/dist-packages/dnf",
    "/usr/lib/python3/dist-packages/dnfpluginscore",
    "/usr/lib/python3/dist-packages/hawkey",
    "/usr/lib/python3/dist-packages/libdnf",
    "/usr/lib/python3/dist-packages/librepo",
    "/usr/lib/python3/dist-packages/libcomps",
    "/usr/lib/python3/dist-packages/rpm",
    "/usr/lib/python3/dist-packages/gpg",
    "/usr/lib/rpm",
    "/etc/rpm",
    "/etc/dnf",
    "/usr/lib/%s-linux-gnu/rpm-plugins" % ARCH,
    "/etc/pam.d",
    "/usr/lib/%s-linux-gnu/security" % ARCH,
    "/etc/security",
    "/usr/share/zoneinfo/UTC",
    "/usr/share/zoneinfo/Etc",
    "/etc/default/useradd",
    "/etc/login.defs",
    "/etc/python3.11",
]

SKIP = re.compile(r"(/__pycache__/|/test/|/tests/|/idlelib/|/tkinter/|/turtledemo/|/ensurepip/)")


def real_parent(path):
    """The path with its directories resolved (/lib/x → /usr/lib/x), the name kept."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def with_links(path, into):
    """PATH and, while it is a symlink, what it points to."""
    seen = 0
    while seen < 20:
        path = real_parent(path)
        into.add(path)
        if not os.path.islink(path):
            return
        path = os.path.join(os.path.dirname(path), os.readlink(path))
        seen += 1


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def libraries(path):
    run = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    for line in run.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            yield m.group(1)


def host_files(programs=PROGRAMS, trees=TREES):
    files = set()
    for name in programs:
        # The system's programs, not a developer's (pyenv shims, a venv).
        path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path:
            with_links(path, files)
    for tree in trees:
        if os.path.isfile(tree) or os.path.islink(tree):
            with_links(tree, files)
            continue
        for root, dirs, names in os.walk(tree):
            for n in names:
                p = os.path.join(root, n)
                if not SKIP.search(p + "/"):
                    files.add(p)
            # directory symlinks are kept as links
            for d in list(dirs):
                p = os.path.join(root, d)
                if os.path.islink(p):
                    files.add(p)
    # the shared libraries of everything, to a fixed point
    todo = [f for f in files if not os.path.islink(f) and is_elf(f)]
    done = set()
    while todo:
        f = todo.pop()
        if f in done:
            continue
        done.add(f)
        for lib in libraries(f):
            before = set(files)
            with_links(lib, files)
            todo.extend(p for p in files - before if not os.path.islink(p) and is_elf(p))
    return sorted(p for p in files if os.path.lexists(p) and not os.path.isdir(p)
                  and usable(p))


def usable(path):
    return re.fullmatch(r"[A-Za-z0-9_./+@,:=-]+", path) is not None and not path.startswith(
        ("/proc", "/sys", "/dev", "/home", "/root", "/tmp", "/var/tmp"))


def rpmbuild(top, name, preamble, install, files, version="1.0", release="1", arch=ARCH):
    """A package built by rpmbuild for ARCH (unless noarch) with no scripts."""
    os.makedirs(os.path.join(top, "SPECS"), exist_ok=True)
    filelist = os.path.join(top, "%s.files" % name)
    with open(filelist, "w") as f:
        f.write("".join("%s\n" % p for p in files))
    spec = os.path.join(top, "SPECS", "%s.spec" % name)
    with open(spec, "w") as f:
        f.write("Name: %s\nVersion: %s\nRelease: %s\nSummary: buildroot package made from this "
                "host's files for the real-koji tests\nLicense: various\nAutoReqProv: no\n%s\n"
                "%%description\nHost files wrapped for a test buildroot.\n"
                "%%install\n%s\n%%files -f %s\n"
                % (name, version, release, preamble, install, filelist))
    if "BuildArch: noarch" in preamble:
        arch = "noarch"
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--nodeps", "--target", arch,
                    "--define", "_topdir %s" % top,
                    "--define", "_binary_payload w2.gzdio",
                    "--define", "__os_install_post %{nil}",
                    "--define", "debug_package %{nil}",
                    "--define", "_build_id_links none",
                    "--define", "_buildhost nodeimg-tests",
                    spec], check=True, stdout=sys.stderr)
    return os.path.join(top, "RPMS", arch, "%s-%s-%s.%s.rpm" % (name, version, release, arch))


def copy_install(paths):
    """%install lines that copy host paths (links as links) into the buildroot."""
    listing = "\n".join(paths)
    return ("while read -r p; do mkdir -p \"%%{buildroot}$(dirname \"$p\")\"; "
            "cp -a \"$p\" \"%%{buildroot}$p\"; done <<'NODEIMG_EOF'\n%s\nNODEIMG_EOF" % listing)


def make(out, nodeimg_binary, nodeimg_version, arches=(ARCH,)):
    top = os.path.join(out, "rpmbuild")
    rpms = []
    # The merged-/usr layout and a minimal account database for mock's build user.
    fs_install = "\n".join([
        "cd %{buildroot}",
        "mkdir -p usr/bin usr/sbin usr/lib usr/lib64 etc var/tmp tmp root run proc sys dev",
        "ln -s usr/bin bin", "ln -s usr/sbin sbin", "ln -s usr/lib lib", "ln -s usr/lib64 lib64",
        "printf 'root:x:0:0:root:/root:/bin/bash\\n' > etc/passwd",
        "printf 'root:x:0:\\n' > etc/group",
        "printf 'root:*:19000:0:99999:7:::\\n' > etc/shadow",
        "printf 'root:::\\n' > etc/gshadow",
    ])
    fs_files = ["/bin", "/sbin", "/lib", "/lib64", "/usr/bin", "/usr/sbin", "/usr/lib",
                "/usr/lib64", "%config(noreplace) /etc/passwd", "%config(noreplace) /etc/group",
                "%config(noreplace) /etc/shadow", "%config(noreplace) /etc/gshadow",
                "%dir /etc", "%dir /var", "%dir /var/tmp", "%dir /tmp", "%dir /root",
                "%dir /run", "%dir /proc", "%dir /sys", "%dir /dev"]
    rpms.append(rpmbuild(top, "br-filesystem", "BuildArch: noarch", fs_install,
                         fs_files))
    files = [p for p in host_files() if p not in ("/etc/passwd", "/etc/group",
                                                   "/etc/shadow", "/etc/gshadow")]
    # nodeimg itself, the binary under test.
    nodeimg_install = "install -D -m 0755 %s %%{buildroot}/usr/bin/nodeimg" % nodeimg_binary
    for arch in arches:
        rpms.append(rpmbuild(top, "br-host",
                             "Requires: br-filesystem\nProvides: rpm-build\nProvides: /bin/sh",
                             copy_install(files), files, arch=arch))
        rpms.append(rpmbuild(top, "nodeimg", "Requires: br-host", nodeimg_install,
                             ["/usr/bin/nodeimg"], version=nodeimg_version, arch=arch))
    return rpms


if __name__ == "__main__":
    for rpm in make(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "0.1.0"):
        print(rpm)
