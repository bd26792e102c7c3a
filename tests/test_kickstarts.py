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
