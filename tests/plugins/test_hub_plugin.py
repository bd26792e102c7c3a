"""The hub plugin: argument validation (JSON schema → ParameterError), permission,
target and arch checks, configuration, task creation and its policy signature."""

from unittest import mock

import koji
import koji.tasks
import pytest

from conftest import load

KS = "git+https://github.com/oVirt/ovirt-node-ng-image.git?kickstarts/node.ks#abc123"


@pytest.fixture
def hub(kojihub, tmp_path):
    module = load("hub")
    module.context = mock.Mock()
    # assertPerm starts with "assert": the mock must be told it is a real name.
    module.context.session = mock.Mock(unsafe=True)
    module.context.session.hasPerm.return_value = False
    module.CONFIG_FILE = str(tmp_path / "missing.conf")
    return module


def call(hub, *args, **kwargs):
    return hub.nodeImageBuild(*args, **kwargs)


def test_a_valid_call_creates_the_task_in_the_image_channel(hub, kojihub):
    opts = {"release": "1.el9", "compression": "zstd", "repo": ["https://mirror.example/el9/"]}
    task = call(hub, "ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64"], KS, opts)
    assert task == 4321
    hub.context.session.assertPerm.assert_called_once_with("image")
    kojihub.get_build_target.assert_called_once_with("node-target", strict=True)
    kojihub.make_task.assert_called_once_with(
        "nodeImageBuild",
        ["ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64"], KS, opts],
        channel="image")


def test_an_uploaded_kickstart_and_no_opts_are_fine(hub, kojihub):
    call(hub, "ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64", "aarch64"],
         "cli-nodeimg/1764115200.123.abcd/node.ks")
    args = kojihub.make_task.call_args[0][1]
    assert args[3] == ["x86_64", "aarch64"] and args[5] == {}


@pytest.mark.parametrize("args, where", [
    (["bad name", "4.5.6", "t", ["x86_64"], KS, {}], "0"),
    (["n", "4.5-6", "t", ["x86_64"], KS, {}], "1"),
    (["n", "4.5.6", "t", [], KS, {}], "3"),
    (["n", "4.5.6", "t", ["X86_64"], KS, {}], "3/0"),
    (["n", "4.5.6", "t", ["x86_64"], "/etc/passwd.ks", {}], "4"),
    (["n", "4.5.6", "t", ["x86_64"], "cli/../../x.ks", {}], "4"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"bogus": 1}], "5"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"repo": ["not a url"]}], "5/repo/0"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"repo": ["http://a/#x"]}], "5/repo/0"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"install_tree_url": "http://a/ b"}],
     "5/install_tree_url"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"compression": "bzip2"}], "5/compression"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"scratch": "yes"}], "5/scratch"),
    (["n", "4.5.6", "t", ["x86_64"], KS, {"release": "1 2"}], "5/release"),
])
def test_bad_arguments_are_parameter_errors_and_create_no_task(hub, kojihub, args, where):
    with pytest.raises(koji.ParameterError) as e:
        call(hub, *args)
    assert "argument %s:" % where in str(e.value)
    kojihub.make_task.assert_not_called()


def test_permission_is_checked_first(hub, kojihub):
    hub.context.session.assertPerm.side_effect = koji.ActionNotAllowed("image permission")
    with pytest.raises(koji.ActionNotAllowed):
        call(hub, "bad name", "4.5.6", "t", ["x86_64"], KS)
    kojihub.make_task.assert_not_called()


def test_unknown_targets_and_arches_are_refused(hub, kojihub):
    kojihub.get_build_target.side_effect = koji.GenericError("No such build target: nope")
    with pytest.raises(koji.GenericError):
        call(hub, "n", "4.5.6", "nope", ["x86_64"], KS)
    kojihub.get_build_target.side_effect = None
    with pytest.raises(koji.ParameterError):
        call(hub, "n", "4.5.6", "t", ["x86_64"], KS, {"optional_arches": ["aarch64"]})
    # A valid arch name the build tag does not build.
    with pytest.raises(koji.ParameterError, match="build tag node-build has arches"):
        call(hub, "n", "4.5.6", "t", ["ppc64le"], KS)
    kojihub.make_task.assert_not_called()


def test_priority_needs_admin_when_raised(hub, kojihub):
    with pytest.raises(koji.ActionNotAllowed):
        call(hub, "n", "4.5.6", "t", ["x86_64"], KS, priority=-5)
    hub.context.session.hasPerm.return_value = True
    call(hub, "n", "4.5.6", "t", ["x86_64"], KS, priority=-5)
    assert kojihub.make_task.call_args[1] == {"channel": "image",
                                              "priority": koji.PRIO_DEFAULT - 5}


def test_configuration_sets_permission_channel_and_priority(hub, kojihub, tmp_path):
    conf = tmp_path / "nodeimg.conf"
    conf.write_text("[nodeimg]\npermission = node-image\nchannel = nodeimg\npriority = 25\n")
    hub.CONFIG_FILE = str(conf)
    call(hub, "n", "4.5.6", "t", ["x86_64"], KS)
    hub.context.session.assertPerm.assert_called_once_with("node-image")
    assert kojihub.make_task.call_args[1] == {"channel": "nodeimg", "priority": 25}


def test_the_shipped_configuration_is_the_default(hub, kojihub):
    import os
    shipped = os.path.join(os.path.dirname(__file__), "..", "..", "plugin", "conf",
                           "hub-nodeimg.conf")
    assert hub.read_config(shipped) == hub.read_config("/nonexistent")


def test_policies_can_read_the_task_arguments(hub):
    params = ["ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64"], KS, {"scratch": True}]
    parsed = koji.tasks.parse_task_params("nodeImageBuild", params)
    assert parsed["target"] == "node-target" and parsed["opts"] == {"scratch": True}
    child = ["n", "4.5.6", "1", "x86_64", {}, 3, {"id": 5}, KS, {}]
    assert koji.tasks.parse_task_params("createNodeImage", child)["arch"] == "x86_64"
