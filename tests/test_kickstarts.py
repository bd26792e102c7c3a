"""The shipped kickstarts, read by pykickstart itself (the parser anaconda uses).

Checks that they parse without errors or warnings under the version they declare, and
that they keep the rules the Node build relies on (see the kickstart's header).
"""

import pathlib
import subprocess
import sys
import warnings

import pytest
from pykickstart.errors import KickstartParseWarning
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion, versionFromFile

ROOT = pathlib.Path(__file__).resolve().parent.parent
KICKSTARTS = sorted((ROOT / "kickstarts").glob("*.ks"))
NODE_KS = ROOT / "kickstarts" / "ovirt-node-ng-image.ks"


def parse(path):
    version = versionFromFile(str(path))
    handler = makeVersion(version)
    parser = KickstartParser(handler, errorsAreFatal=True, missingIncludeIsFatal=True)
    with warnings.catch_warnings():
        # As ksvalidator does: a deprecated command or option is an error.
        warnings.simplefilter("error", category=KickstartParseWarning)
        parser.readKickstart(str(path))
    return handler


def test_there_are_kickstarts():
    assert NODE_KS in KICKSTARTS


@pytest.mark.parametrize("path", KICKSTARTS, ids=lambda p: p.name)
def test_declares_its_version(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("#version="), f"{path.name}: first line should be #version=..."


@pytest.mark.parametrize("path", KICKSTARTS, ids=lambda p: p.name)
def test_parses_cleanly(path):
    parse(path)


@pytest.mark.parametrize("path", KICKSTARTS, ids=lambda p: p.name)
def test_ksvalidator_accepts_it(path):
    version = path.read_text().splitlines()[0].split("=", 1)[1]
    ksvalidator = pathlib.Path(sys.executable).parent / "ksvalidator"
    result = subprocess.run(
        [str(ksvalidator), "-v", version, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_node_image_has_one_ext4_root_partition_with_discard():
    handler = parse(NODE_KS)
    parts = handler.partition.partitions
    assert [p.mountpoint for p in parts] == ["/"]
    assert parts[0].fstype == "ext4"
    assert "discard" in parts[0].fsopts.split(",")
    assert parts[0].size >= 5120, "upstream grew / to 5 GiB after running out of space"
    assert not handler.autopart.autopart


def test_node_image_suits_livemedia_creator():
    handler = parse(NODE_KS)
    assert handler.method.method == "url", "livemedia-creator --no-virt needs a url source"
    assert handler.network.network, "a url source needs a network line"
    assert handler.displaymode.displayMode is None, "livemedia-creator rejects text/cmdline/graphical"
    # pykickstart records poweroff as the shutdown action.
    from pykickstart.constants import KS_SHUTDOWN

    assert handler.reboot.action == KS_SHUTDOWN


def test_node_image_security_baseline():
    handler = parse(NODE_KS)
    assert handler.rootpw.lock
    users = {u.name: u for u in handler.user.userList}
    assert users["node"].lock, "the node account is unlocked at installation time"
    assert handler.selinux.selinux is not None


def test_node_image_packages():
    handler = parse(NODE_KS)
    packages = handler.packages
    for name in ("dracut-config-generic", "dracut-live"):
        assert name in packages.packageList
    assert "dracut-config-rescue" in packages.excludedList
    assert packages.excludeWeakdeps and packages.excludeDocs


def test_node_image_installs_the_placeholder_but_not_the_update():
    handler = parse(NODE_KS)
    posts = [s for s in handler.scripts if s.type == 1]  # KS_SCRIPT_POST
    assert posts and all(s.errorOnFail for s in posts)
    body = posts[0].script
    assert "ovirt-node-ng-image-update-placeholder" in body
    assert "--exclude ovirt-node-ng-image-update" in body
    last_command = [line for line in body.splitlines() if line.strip()][-2:]
    assert "image-build --postprocess" in " ".join(last_command)


def node_posts():
    from pykickstart.constants import KS_SCRIPT_POST

    return [s.script for s in parse(NODE_KS).scripts if s.type == KS_SCRIPT_POST]


def fragment(script, first, last):
    """The lines of `script` from the one starting with `first` to the one starting
    with `last`, both included."""
    lines = script.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(last))
    return "\n".join(lines[start : end + 1]) + "\n"


def test_node_image_installs_as_upstream_does():
    """As oVirt's ovirt-node-ng-image template (data/ovirt-node-ng-image.j2,
    distro-defs.yml for c9s): no docs and no weak dependencies on the final install,
    and enabling crb may fail."""
    main = node_posts()[0]
    final = fragment(main, "dnf install -y --nogpgcheck --nodocs", "    ovirt-node-ng-image-update-placeholder")
    assert "--setopt=install_weak_deps=False" in final
    assert "--exclude ovirt-node-ng-image-update" in final
    assert "ovirt-release-host-node" in final
    assert "dnf config-manager --set-enabled crb || true\n" in main


def test_the_repository_loop_survives_no_match_and_skips_dependencies(tmp_path):
    loop = fragment(node_posts()[0], "for repo in /etc/yum.repos.d/", "done")
    repos = tmp_path / "yum.repos.d"
    repos.mkdir()
    script = "set -xe\n" + loop.replace("/etc/yum.repos.d", str(repos))
    # Nothing matches: the %post goes on.
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    text = "[ovirt-45]\nmirrorlist=http://mirrors/?repo=ovirt\n#baseurl=http://ovirt/45/\n"
    (repos / "ovirt-45.repo").write_text(text)
    (repos / "ovirt-45-dependencies.repo").write_text(text)
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    assert (repos / "ovirt-45.repo").read_text() == "[ovirt-45]\nbaseurl=http://ovirt/45/\n"
    assert (repos / "ovirt-45-dependencies.repo").read_text() == text


@pytest.mark.parametrize("version, name", [("4.5.6", "ssg-onn45-ds.xml"), ("", "ssg-onnm-ds.xml")])
def test_the_scap_datastream_name_follows_the_release(tmp_path, version, name):
    scap = next(s for s in node_posts() if "ssg-rhel9-ds.xml" in s)
    content = tmp_path / "content"
    content.mkdir()
    fake = tmp_path / "bin"
    fake.mkdir()
    # rpm -q of the image's release package, as the tree would answer it.
    (fake / "rpm").write_text(f"#!/bin/sh\nprintf '%s' '{version}'\n")
    (fake / "rpm").chmod(0o755)
    script = scap.replace("/usr/share/xml/scap/ssg/content", str(content))
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, env=env)
    link = content / name
    assert link.is_symlink() and str(link.readlink()) == "ssg-rhel9-ds.xml"
