"""The CLI plugin: `koji node-image-build` argument handling and the hub call it makes."""

import types
from unittest import mock

import pytest

from conftest import load

KS = "git+https://github.com/oVirt/ovirt-node-ng-image.git?kickstarts/node.ks#abc123"


@pytest.fixture
def cli(monkeypatch):
    module = load("cli")
    monkeypatch.setattr(module, "activate_session", mock.Mock())
    monkeypatch.setattr(module, "watch_tasks", mock.Mock(return_value=0))
    monkeypatch.setattr(module, "_running_in_bg", mock.Mock(return_value=False))
    return module


@pytest.fixture
def session():
    s = mock.Mock()
    s.getBuildTarget.return_value = {"name": "node-target"}
    s.nodeImageBuild.return_value = 77
    return s


def goptions():
    # Only attributes koji's global options have (a Mock would answer any name: that
    # hid a read of goptions.noprogress, which the real CLI does not have).
    return types.SimpleNamespace(quiet=False, weburl="https://koji.example/koji",
                                 poll_interval=5, topurl=None)


def test_an_scm_kickstart_goes_to_the_hub_with_the_options(cli, session, capsys):
    rv = cli.handle_node_image_build(goptions(), session, [
        "--arch", "x86_64", "--arch", "aarch64", "--can-fail", "aarch64", "--release", "1.el9",
        "--repo", "https://mirror.example/el9/", "--ksversion", "RHEL9",
        "--compression", "zstd", "--scratch",
        "ovirt-node-ng-image", "4.5.6", "node-target", KS])
    assert rv == 0
    session.nodeImageBuild.assert_called_once_with(
        "ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64", "aarch64"], KS,
        opts={"release": "1.el9", "ksversion": "RHEL9", "compression": "zstd",
              "scratch": True, "repo": ["https://mirror.example/el9/"],
              "optional_arches": ["aarch64"]})
    cli.watch_tasks.assert_called_once()
    assert cli.watch_tasks.call_args[0][1] == [77]
    assert "Created task: 77" in capsys.readouterr().out
    session.uploadWrapper.assert_not_called()


def test_a_local_kickstart_is_uploaded_first(cli, session, tmp_path):
    ks = tmp_path / "node.ks"
    ks.write_text("text\n")
    cli.handle_node_image_build(goptions(), session, [
        "--nowait", "--priority", "-3", "ovirt-node-ng-image", "4.5.6", "node-target", str(ks)])
    path, serverdir = session.uploadWrapper.call_args[0]
    assert path == str(ks) and serverdir.startswith("cli-nodeimg/")
    args, kwargs = session.nodeImageBuild.call_args
    assert args == ("ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64"],
                    serverdir + "/node.ks")
    assert kwargs == {"opts": {}, "priority": -3}
    cli.watch_tasks.assert_not_called()


@pytest.mark.parametrize("args", [
    ["ovirt-node-ng-image", "4.5.6", "node-target"],
    ["ovirt-node-ng-image", "4.5.6", "node-target", "/nonexistent/node.ks"],
    ["--compression", "bzip2", "n", "1", "node-target", KS],
])
def test_bad_command_lines_stop_before_the_hub(cli, session, args):
    with pytest.raises(SystemExit):
        cli.handle_node_image_build(goptions(), session, args)
    session.nodeImageBuild.assert_not_called()


def test_an_unknown_target_is_named(cli, session, capsys):
    session.getBuildTarget.return_value = None
    with pytest.raises(SystemExit):
        cli.handle_node_image_build(goptions(), session, ["n", "1", "nope", KS])
    assert "no such build target: nope" in capsys.readouterr().err
    session.nodeImageBuild.assert_not_called()
