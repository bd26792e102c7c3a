"""scripts/build-rpms.sh with Debian's rpmbuild: the SRPM and four RPMs, their file
lists and configuration files, and the packaged nodeimg runs."""

import os
import re
import subprocess

import pytest

TOP = os.path.join(os.path.dirname(__file__), "..")


def rpm_query(path, *args):
    return subprocess.run(["rpm", "-qp", *args, path], check=True, capture_output=True,
                          text=True).stdout.split("\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rpmbuild")
    subprocess.run([os.path.join(TOP, "scripts", "build-rpms.sh"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def version():
    with open(os.path.join(TOP, "Cargo.toml")) as f:
        return re.search(r'^version = "(.*)"', f.read(), re.M).group(1)


def test_the_spec_version_is_cargos():
    with open(os.path.join(TOP, "spec", "nodeimg.spec")) as f:
        assert re.search(r"^%global crate_version (\S+)", f.read(), re.M).group(1) == version()


def test_the_packages_and_their_files(built):
    v = version()
    rpms = {name: os.path.join(built, "RPMS", arch, "%s-%s-1.%s.rpm" % (name, v, arch))
            for name, arch in [("nodeimg", os.uname().machine), ("koji-nodeimg-hub", "noarch"),
                               ("koji-nodeimg-builder", "noarch"),
                               ("koji-nodeimg-cli", "noarch")]}
    assert sorted(os.listdir(os.path.join(built, "SRPMS"))) == ["nodeimg-%s-1.src.rpm" % v]
    files = {name: [f for f in rpm_query(path, "-l") if f] for name, path in rpms.items()}
    main = files["nodeimg"]
    assert "/usr/bin/nodeimg" in main
    assert "/usr/share/man/man1/nodeimg.1" in main
    assert "/usr/share/man/man1/nodeimg-build.1" in main
    assert "/usr/share/man/man1/nodeimg-koji-import.1" in main
    assert not any("internal" in f for f in main)
    for completion in ["/usr/share/bash-completion/completions/nodeimg",
                       "/usr/share/zsh/site-functions/_nodeimg",
                       "/usr/share/fish/vendor_completions.d/nodeimg.fish"]:
        assert completion in main
    assert files["koji-nodeimg-hub"] == ["/etc/koji-hub/plugins/nodeimg.conf",
                                         "/usr/lib/koji-hub-plugins/nodeimg.py"]
    assert files["koji-nodeimg-builder"] == ["/etc/kojid/plugins/nodeimg.conf",
                                             "/usr/lib/koji-builder-plugins/nodeimg.py"]
    assert len(files["koji-nodeimg-cli"]) == 1
    assert files["koji-nodeimg-cli"][0].endswith("/site-packages/koji_cli_plugins/nodeimg.py")
    # Configuration survives upgrades.
    for name, conf in [("koji-nodeimg-hub", "/etc/koji-hub/plugins/nodeimg.conf"),
                       ("koji-nodeimg-builder", "/etc/kojid/plugins/nodeimg.conf")]:
        assert [c for c in rpm_query(rpms[name], "-c") if c] == [conf]
        flags = rpm_query(rpms[name], "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]")
        assert "%s cn" % conf in flags
    requires = rpm_query(rpms["koji-nodeimg-hub"], "-R")
    assert "koji-hub" in requires and "python3-jsonschema" in requires


def test_the_packaged_nodeimg_runs(built, tmp_path):
    v = version()
    rpm = os.path.join(built, "RPMS", os.uname().machine,
                       "nodeimg-%s-1.%s.rpm" % (v, os.uname().machine))
    cpio = subprocess.run(["rpm2cpio", rpm], check=True, capture_output=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "usr/bin/nodeimg"), "--version"], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "nodeimg %s" % v


def test_the_srpm_builds_offline(built):
    v = version()
    srpm = os.path.join(built, "SRPMS", "nodeimg-%s-1.src.rpm" % v)
    contents = [f for f in rpm_query(srpm, "-l") if f]
    assert sorted(contents) == ["nodeimg-%s.tar.gz" % v, "nodeimg.spec"]
    listing = subprocess.run(["tar", "-tzf", os.path.join(built, "SOURCES",
                                                          "nodeimg-%s.tar.gz" % v)],
                             check=True, capture_output=True, text=True).stdout.split("\n")
    prefix = "nodeimg-%s/" % v
    assert prefix + ".cargo/config.toml" in listing
    assert any(f.startswith(prefix + "vendor/dxr/") for f in listing)
    assert prefix + "Cargo.lock" in listing
    assert not any(f.startswith(prefix + "target/") for f in listing)
