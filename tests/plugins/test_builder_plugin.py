"""The builder plugin with kojid's classes injected into `__main__`, as koji's kiwi
plugin tests do (kojid is not on PyPI): the parent task's host calls and the
completeImageBuild payload, the child's exact mock and nodeimg command lines, its
uploads and its result.

kojid's BuildRoot, BaseBuildTask, BuildImageTask and SCM are stood in for here by small
recording classes with the methods the plugin uses (kojid runs only on Fedora/EL
builders); the task base class is koji's own BaseTaskHandler from the koji package.
"""

import json
import os
import subprocess
import sys
from unittest import mock

import koji
import koji.tasks
import pytest

from conftest import load

KS_UPLOADED = "cli-nodeimg/1764115200.1.abcd/node.ks"
TOP = os.path.join(os.path.dirname(__file__), "..", "..")
RECORD = os.path.join(TOP, "tests", "fixtures", "build-format1.json")
# `cargo test` builds it before pytest runs (scripts/test.sh).
NODEIMG = os.path.join(TOP, "target", "debug", "nodeimg")


class FakeBuildRoot:
    """Records what kojid's BuildRoot is asked; `mock(...)` plays nodeimg's part by
    writing what the real command would leave in the chroot's tmpdir."""

    instances = []

    def __init__(self, session, options, tag, arch, task_id, **kwargs):
        self.args = (tag, arch, task_id)
        self.kwargs = kwargs
        self.mock_calls = []
        self.id = 88
        self.tmp = os.path.join(options.workdir, "chroot_tmpdir")
        os.makedirs(self.tmp, exist_ok=True)
        self.expired = False
        self.exit = {}
        FakeBuildRoot.instances.append(self)

    def init(self):
        pass

    def tmpdir(self, within=False):
        return "/chroot_tmpdir" if within else self.tmp

    def mock(self, args):
        self.mock_calls.append(args)
        if "--chroot" in args:
            cmd = args[args.index("--") + 1:]
            name = os.path.basename(cmd[0])
            if name == "nodeimg" and cmd[1] == "build":
                self.fake_build(cmd)
            elif name == "nodeimg" and cmd[1:3] == ["koji", "imgdata"]:
                # The real nodeimg reads the record the fake build left.
                subprocess.run([NODEIMG, "koji", "imgdata", self.host(cmd[3]),
                                "-o", self.host(cmd[cmd.index("-o") + 1])], check=True)
            elif name == "nodeimg" and cmd[1:3] == ["rpm", "spec"]:
                out = self.host(cmd[cmd.index("-o") + 1])
                os.makedirs(out, exist_ok=True)
                open(os.path.join(out, "ovirt-node-ng-image-update.spec"), "w").close()
            elif name == "rpmbuild":
                out = self.host(cmd[cmd.index("--define", 4) + 1].split(" ", 1)[1])
                open(os.path.join(out, "ovirt-node-ng-image-update-4.5.6-1.el9.src.rpm"), "w").close()
            return self.exit.get(name, 0)
        return 0

    def host(self, within):
        return os.path.join(self.tmp, os.path.relpath(within, "/chroot_tmpdir"))

    def fake_build(self, cmd):
        out = self.host(cmd[cmd.index("-o") + 1])
        os.makedirs(os.path.join(out, "logs"), exist_ok=True)
        with open(os.path.join(out, "logs", "nodeimg.log"), "w") as f:
            f.write("INFO build: done\n")
        with open(os.path.join(out, "logs", "livemedia.log"), "w") as f:
            f.write("lmc\n")
        arch = cmd[cmd.index("--arch") + 1]
        files = ["ovirt-node-ng-image-4.5.6-1.el9.%s.liveimg.squashfs" % arch,
                 "ovirt-node-ng-image-update-4.5.6-1.el9.%s.rpm" % arch,
                 "ovirt-node-ng-image.ks", "ovirt-node-ng-image.manifest-rpm"]
        kinds = ["image", "update-rpm", "kickstart", "manifest-rpm"]
        for name in files:
            open(os.path.join(out, name), "w").close()
        # A real record of an earlier build, made to list what this fake made.
        with open(RECORD) as f:
            record = json.load(f)
        record.update({"format": 2, "arch": arch,
                       "outputs": [{"file": f, "kind": k, "bytes": 0, "sha256": "0" * 64}
                                   for f, k in zip(files, kinds)],
                       "rpms": [{"name": "bash", "epoch": None, "version": "5.1.8",
                                 "release": "9.el9", "arch": arch, "sigmd5": "ab" * 16,
                                 "sigkey": "8483c65d", "signed": True, "size": 7_000_000,
                                 "buildtime": 1764000000}]})
        with open(os.path.join(out, "build.json"), "w") as f:
            json.dump(record, f)

    def markExternalRPMs(self, rpmlist):
        self.marked = list(rpmlist)

    def expire(self):
        self.expired = True


class FakeBaseBuildTask(koji.tasks.BaseTaskHandler):
    Methods = []


class FakeBuildImageTask(FakeBaseBuildTask):
    def initImageBuild(self, name, version, release, target_info, opts):
        # kojid's: the package config checks, then host.initImageBuild.
        return self.session.host.initImageBuild(
            self.id, dict(name=name, version=version, release=release, epoch=0))


@pytest.fixture
def builder(monkeypatch):
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "BuildRoot", FakeBuildRoot, raising=False)
    monkeypatch.setattr(main, "BaseBuildTask", FakeBaseBuildTask, raising=False)
    monkeypatch.setattr(main, "BuildImageTask", FakeBuildImageTask, raising=False)
    monkeypatch.setattr(main, "SCM", mock.Mock(), raising=False)
    FakeBuildRoot.instances = []
    module = load("builder")
    module.CONFIG_FILE = "/nonexistent"
    return module


@pytest.fixture
def options(tmp_path):
    topdir = tmp_path / "topdir"
    ks = topdir / "work" / KS_UPLOADED
    ks.parent.mkdir(parents=True)
    ks.write_text("#version=RHEL9\n")
    return mock.Mock(workdir=str(tmp_path / "work"), topdir=str(topdir), topurl=None)


def child_session():
    """A task session whose rawUpload answers as the hub does (koji.daemon's
    incremental upload checks size and adler32)."""
    import zlib
    session = mock.Mock()
    session.rawUpload.side_effect = lambda data, offset, path, name, overwrite=False: {
        "size": len(data), "hexdigest": "%08x" % (zlib.adler32(data) & 0xffffffff)}
    return session


def child_params(arch="x86_64", opts=None):
    return ["ovirt-node-ng-image", "4.5.6", "1.el9", arch,
            {"build_tag": 3, "build_tag_name": "node-build"}, 3, {"id": 55},
            KS_UPLOADED, opts or {}]


def test_the_child_runs_nodeimg_in_the_buildroot_and_returns_imgdata(builder, options):
    session = child_session()
    task = builder.NodeImageCreateTask(201, "createNodeImage", child_params(), session, options)
    os.makedirs(task.workdir, exist_ok=True)
    result = task.handler(*child_params(opts={"compression": "zstd", "ksversion": "RHEL9"}))

    broot = FakeBuildRoot.instances[0]
    assert broot.args == (3, "x86_64", 201)
    assert broot.kwargs == {"install_group": "livemedia-build", "setup_dns": True,
                            "repo_id": 55, "bind_opts": {"dirs": {"/dev": "/dev"}}}
    assert broot.mock_calls == [
        ["--install", "nodeimg", "rpm-build"],
        ["--cwd", "/chroot_tmpdir", "--chroot", "--", "/usr/bin/nodeimg", "build",
         "--backend", "lmc", "--name", "ovirt-node-ng-image", "--version", "4.5.6",
         "--release", "1.el9", "--arch", "x86_64", "--policy", "node",
         "-o", "/chroot_tmpdir/nodeimg-out",
         # installs from the build tag's repository (at topurl), not the kickstart's
         "--replace-repos", "--post-repos", "--url", "/mnt/koji/repos/node-build/55/x86_64",
         "--ks-version", "RHEL9",
         "--compression", "zstd", "/chroot_tmpdir/node.ks"],
        ["--cwd", "/chroot_tmpdir", "--chroot", "--", "/usr/bin/nodeimg", "koji", "imgdata",
         "/chroot_tmpdir/nodeimg-out", "-o", "/chroot_tmpdir/nodeimg-imgdata.json"],
        ["--cwd", "/chroot_tmpdir", "--chroot", "--", "/usr/bin/nodeimg", "rpm", "spec",
         "--image",
         "/chroot_tmpdir/nodeimg-out/ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs",
         "--version", "4.5.6", "--release", "1.el9", "--arch", "x86_64",
         "-o", "/chroot_tmpdir/nodeimg-srpm"],
        ["--cwd", "/chroot_tmpdir", "--chroot", "--", "rpmbuild", "-bs",
         "--define", "_sourcedir /chroot_tmpdir/nodeimg-out",
         "--define", "_srcrpmdir /chroot_tmpdir/nodeimg-srpm",
         "/chroot_tmpdir/nodeimg-srpm/ovirt-node-ng-image-update.spec"],
    ]
    uploads = [(os.path.basename(c[0][0]), c[0][2]) for c in session.uploadWrapper.call_args_list]
    upload_dir = "tasks/201/201"
    assert all(c[0][1] == upload_dir for c in session.uploadWrapper.call_args_list)
    names = [u[0] for u in uploads]
    assert names[0] == "node.ks"
    assert names[1:] == ["livemedia.log", "ovirt-node-ng-image.ks",
                         "ovirt-node-ng-image.manifest-rpm", "build.json",
                         "ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs",
                         "ovirt-node-ng-image-update-4.5.6-1.el9.src.rpm",
                         "ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm"]
    # nodeimg.log went up through the log streamer (incremental rawUpload).
    streamed = [c for c in session.rawUpload.call_args_list if c[0][3] == "nodeimg.log"]
    assert streamed and streamed[0][0][2] == upload_dir
    assert result == {
        "arch": "x86_64",
        "files": ["ovirt-node-ng-image-4.5.6-1.el9.x86_64.liveimg.squashfs"],
        "rootdev": None,
        "task_id": 201,
        "logs": ["nodeimg.log", "livemedia.log", "ovirt-node-ng-image.ks.log",
                 "ovirt-node-ng-image.manifest-rpm.log", "build.json.log"],
        "name": "ovirt-node-ng-image",
        "version": "4.5.6",
        "release": "1.el9",
        "rpmlist": [{"name": "bash", "version": "5.1.8", "release": "9.el9", "epoch": None,
                     "arch": "x86_64", "payloadhash": "ab" * 16, "size": 7_000_000,
                     "buildtime": 1764000000}],
        "rpmresults": {"task_id": 201, "buildroot_id": 88,
                       "srpm": "ovirt-node-ng-image-update-4.5.6-1.el9.src.rpm",
                       "rpms": ["ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm"],
                       "logs": [], "source": {"url": KS_UPLOADED, "source": KS_UPLOADED}},
    }
    assert broot.marked == result["rpmlist"] and broot.expired


def test_a_failing_nodeimg_fails_the_child_after_uploading_its_logs(builder, options):
    session = child_session()
    task = builder.NodeImageCreateTask(202, "createNodeImage", child_params(), session, options)
    os.makedirs(task.workdir, exist_ok=True)
    original = FakeBuildRoot.mock

    def failing(self, args):
        rv = original(self, args)
        return 1 if "build" in args else rv
    with mock.patch.object(FakeBuildRoot, "mock", failing):
        with pytest.raises(koji.LiveMediaError) as e:
            task.handler(*child_params())
    assert "nodeimg build failed" in str(e.value)
    uploaded = [os.path.basename(c[0][0]) for c in session.uploadWrapper.call_args_list]
    assert "livemedia.log" in uploaded
    assert not any(u.endswith(".liveimg.squashfs") for u in uploaded)


def test_scm_kickstart_urls_split_into_checkout_and_file(builder):
    assert builder.split_scm_kickstart(
        "git+https://h/repo.git?kickstarts/node.ks#abc") == (
        "git+https://h/repo.git?kickstarts#abc", "node.ks")
    assert builder.split_scm_kickstart("git+https://h/repo.git?node.ks#abc") == (
        "git+https://h/repo.git#abc", "node.ks")
    with pytest.raises(koji.BuildError):
        builder.split_scm_kickstart("git+https://h/repo.git?node.ks")


def parent(builder, session, options, opts=None):
    params = ["ovirt-node-ng-image", "4.5.6", "node-target", ["x86_64", "aarch64"],
              KS_UPLOADED, opts or {}]
    task = builder.NodeImageBuildTask(100, "nodeImageBuild", params, session, options)
    task.getRepo = mock.Mock(return_value={"id": 55})
    return task, params


@pytest.fixture
def parent_session():
    session = mock.Mock()
    session.getBuildTarget.return_value = {"build_tag": 3, "build_tag_name": "node-build",
                                           "dest_tag": 4, "dest_tag_name": "node-candidate"}
    session.getBuildConfig.return_value = {"arches": "x86_64 aarch64"}
    session.getNextRelease.return_value = "2.el9"
    session.host.initImageBuild.return_value = {"id": 500}
    session.host.subtask.side_effect = [1001, 1002, 1003]
    return session


def test_the_parent_reserves_runs_children_imports_and_tags(builder, options, parent_session):
    task, params = parent(builder, parent_session, options)
    def rpm_results(task_id, arch):
        return {"task_id": task_id, "buildroot_id": task_id + 10, "srpm": "u-1-2.src.rpm",
                "rpms": ["u-1-2.%s.rpm" % arch], "logs": [], "source": {}}
    imgdata = {1001: {"arch": "x86_64", "files": ["a.x86_64.liveimg.squashfs"],
                      "rpmresults": rpm_results(1001, "x86_64")},
               1002: {"arch": "aarch64", "files": ["a.aarch64.liveimg.squashfs"],
                      "rpmresults": rpm_results(1002, "aarch64")}}
    task.wait = mock.Mock(side_effect=[imgdata, {1003: None}])
    task.localPath = lambda relpath: "/local/" + relpath
    task.uploadFile = mock.Mock()
    result = task.handler(*params)
    # The build is named after the update package, as `nodeimg koji import` names it.
    parent_session.getNextRelease.assert_called_once_with(
        {"name": "ovirt-node-ng-image-update", "version": "4.5.6"})
    parent_session.host.initImageBuild.assert_called_once_with(
        100, {"name": "ovirt-node-ng-image-update", "version": "4.5.6", "release": "2.el9",
              "epoch": 0})
    # One source package for the build: the first arch's, gathered with every arch's
    # update RPM into the parent's task directory, which the first arch's result names.
    assert [c[0][0] for c in task.uploadFile.call_args_list] == [
        "/local/work/tasks/1001/1001/u-1-2.x86_64.rpm",
        "/local/work/tasks/1002/1002/u-1-2.aarch64.rpm",
        "/local/work/tasks/1001/1001/u-1-2.src.rpm"]
    assert imgdata[1001]["rpmresults"] == {
        "task_id": 100, "buildroot_id": 1011, "srpm": "u-1-2.src.rpm",
        "rpms": ["u-1-2.x86_64.rpm", "u-1-2.aarch64.rpm"], "logs": [], "source": {}}
    assert "rpmresults" not in imgdata[1002]
    calls = parent_session.host.subtask.call_args_list
    assert [c[1]["method"] for c in calls] == ["createNodeImage", "createNodeImage", "tagBuild"]
    assert calls[0][1]["arglist"] == ["ovirt-node-ng-image", "4.5.6", "2.el9", "x86_64",
                                      parent_session.getBuildTarget.return_value, 3,
                                      {"id": 55}, KS_UPLOADED, {}]
    assert (calls[1][1]["arch"], calls[1][1]["label"]) == ("aarch64", "aarch64")
    assert calls[2][1]["arglist"] == [4, 500, False, None, True]
    assert task.wait.call_args_list[0] == mock.call([1001, 1002], all=True, failany=True,
                                                   canfail=[])
    parent_session.host.completeImageBuild.assert_called_once_with(
        100, 500, {"1001": imgdata[1001], "1002": imgdata[1002]})
    parent_session.host.failBuild.assert_not_called()
    assert result == {"build_id": 500, "images": ["a.aarch64.liveimg.squashfs",
                                                  "a.x86_64.liveimg.squashfs"]}


def test_a_failing_child_fails_the_build_and_nothing_is_imported(builder, options,
                                                                 parent_session):
    task, params = parent(builder, parent_session, options)
    task.wait = mock.Mock(side_effect=koji.LiveMediaError("nodeimg build failed"))
    with pytest.raises(koji.LiveMediaError):
        task.handler(*params)
    parent_session.host.failBuild.assert_called_once_with(100, 500)
    parent_session.host.completeImageBuild.assert_not_called()
    assert len(parent_session.host.subtask.call_args_list) == 2  # no tagBuild


def test_scratch_builds_reserve_nothing_and_are_not_tagged(builder, options, parent_session):
    task, params = parent(builder, parent_session, options, {"scratch": True,
                                                             "optional_arches": ["aarch64"]})
    failed = {"faultCode": 1022, "faultString": "aarch64 failed"}
    task.wait = mock.Mock(return_value={1001: {"files": ["a.liveimg.squashfs"]}, 1002: failed})
    task.handler(*params)
    parent_session.host.initImageBuild.assert_not_called()
    assert task.wait.call_args[1]["canfail"] == [1002]
    parent_session.host.moveImageBuildToScratch.assert_called_once_with(
        100, {"1001": {"files": ["a.liveimg.squashfs"]}})
    assert len(parent_session.host.subtask.call_args_list) == 2


def test_arches_outside_the_build_tag_are_refused(builder, options, parent_session):
    parent_session.getBuildConfig.return_value = {"arches": "x86_64"}
    task, params = parent(builder, parent_session, options)
    with pytest.raises(koji.BuildError) as e:
        task.handler(*params)
    assert "aarch64" in str(e.value)
    parent_session.host.initImageBuild.assert_not_called()


def test_an_scm_kickstart_is_checked_out_as_policy_allows(builder, options, tmp_path):
    import __main__
    checkout = tmp_path / "work" / "chroot_tmpdir" / "scm" / "repo" / "kickstarts"
    scm = mock.Mock(unsafe=True)  # assert_allowed is SCM's own method
    scm.checkout.side_effect = lambda d, *a: (checkout.mkdir(parents=True),
                                              (checkout / "node.ks").write_text("x"),
                                              str(checkout))[2]
    __main__.SCM.return_value = scm
    session = child_session()
    session.getChannel.return_value = {"name": "image"}
    url = "git+https://git.example/repo.git?kickstarts/node.ks#abc123"
    params = child_params(opts={"scratch": True})
    params[7] = url
    task = builder.NodeImageCreateTask(203, "createNodeImage", params, session, options)
    task.taskinfo = {"owner": 9, "channel_id": 2}
    task.run_callbacks = mock.Mock()
    os.makedirs(task.workdir, exist_ok=True)
    task.handler(*params)
    __main__.SCM.assert_called_once_with("git+https://git.example/repo.git?kickstarts#abc123")
    policy = scm.assert_allowed.call_args[1]["policy_data"]
    assert policy == {"user_id": 9, "channel": "image", "scratch": True}
    build = FakeBuildRoot.instances[0].mock_calls[1]
    assert build[-1] == "/chroot_tmpdir/scm/repo/kickstarts/node.ks"
    assert [c[0][0] for c in task.run_callbacks.call_args_list] == ["preSCMCheckout",
                                                                   "postSCMCheckout"]


def test_builds_install_from_koji_not_from_the_kickstarts_sources(builder):
    target = {"build_tag_name": "node-build"}
    repo = {"id": 7}
    top = "http://koji.example/kojifiles"
    # By default: the build tag's repository for the arch is the installation source.
    assert builder.repo_options({}, repo, target, "x86_64", top) == [
        "--replace-repos", "--post-repos", "--url", top + "/repos/node-build/7/x86_64"]
    # The task's --repo URLs instead (duplicates once), the first as the source.
    assert builder.repo_options({"repo": ["http://a/", "http://b/", "http://a/"]}, repo,
                                target, "x86_64", top) == [
        "--replace-repos", "--post-repos", "--url", "http://a/", "--repo", "koji-override-1=http://b/"]
    # install_tree_url is the source; every repository stays a repository.
    assert builder.repo_options({"install_tree_url": "http://tree/"}, repo, target,
                                "aarch64", top) == [
        "--replace-repos", "--post-repos", "--url", "http://tree/",
        "--repo", "koji-node-build-7=" + top + "/repos/node-build/7/aarch64"]


def test_the_backend_comes_from_the_configuration_and_is_checked(builder, tmp_path):
    conf = tmp_path / "nodeimg.conf"
    conf.write_text("[nodeimg]\nbackend = dnf\n")
    assert builder.read_config(str(conf))["backend"] == "dnf"
    assert builder.read_config(str(tmp_path / "missing.conf"))["backend"] == "lmc"
    conf.write_text("[nodeimg]\nbackend = anaconda\n")
    with pytest.raises(koji.GenericError, match="backend = anaconda"):
        builder.read_config(str(conf))


def test_nodeimg_error_lines_go_into_the_failure(builder, tmp_path):
    log = tmp_path / "nodeimg.log"
    log.write_text("x INFO fine\nx ERROR node.ks:8: rootpw must be --lock\nx WARN meh\n")
    assert builder.error_lines(str(log)) == ["x ERROR node.ks:8: rootpw must be --lock"]
    assert builder.error_lines(str(tmp_path / "missing.log")) == []
