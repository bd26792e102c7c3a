# koji builder plugin: the nodeImageBuild parent task and its createNodeImage children.
#
# The parent reserves the build (host.initImageBuild) under the release's one name,
# ovirt-node-ng-image-update-V-R (the update package's, as `nodeimg koji import`
# names it), starts one createNodeImage task per arch, waits, and imports the results
# with host.completeImageBuild: per arch the image (NAME-V-R.ARCH.liveimg.squashfs,
# archive type liveimg-squashfs, with its arch), the packages inside it (rpmlist,
# from the image's rpmdb), the logs, and the update RPM of that arch; with them one
# source package (rpmresults, imported as koji's wrapper-RPM results are). A build
# has one source package: with several arches, the first arch's is the build's, and
# the parent gathers it and every arch's update RPM into its own task directory,
# which is where the hub imports one rpmresults from.
# A failing child fails the build (host.failBuild); a tagBuild task follows unless
# skip_tag or scratch.
#
# Each child runs nodeimg in a mock buildroot of the build tag made by kojid's
# BuildRoot, with the install group of /etc/kojid/plugins/nodeimg.conf (default
# livemedia-build, plus nodeimg and rpm-build): fetches the kickstart (SCM checkout or
# the file the CLI uploaded), runs `nodeimg build --backend lmc` in the chroot while
# streaming nodeimg's log to the task, writes the update RPM's source package with
# `nodeimg rpm spec` and `rpmbuild -bs`, and uploads everything with kojid's own
# uploader (the task's session never enters the chroot).
#
# Enable with `plugins = nodeimg` in /etc/kojid/kojid.conf.

import configparser
import json
import os
import threading

import koji
import koji.daemon
import koji.tasks
import koji.util

from __main__ import BaseBuildTask, BuildImageTask, BuildRoot, SCM

CONFIG_FILE = "/etc/kojid/plugins/nodeimg.conf"
DEFAULTS = {
    "install_group": "livemedia-build",
    "packages": "nodeimg rpm-build",
    "nodeimg": "/usr/bin/nodeimg",
    "backend": "lmc",
    "log_interval": "5",
}
BACKENDS = ("lmc", "dnf")
# One name for a Node release, whichever way it reaches koji: the update package's
# (nodeimg's UPDATE_NAME; `nodeimg koji import` names its builds after it too).
RELEASE_NAME = "ovirt-node-ng-image-update"


def read_config(path=None):
    parser = configparser.ConfigParser()
    parser.read_dict({"nodeimg": DEFAULTS})
    parser.read(path or CONFIG_FILE)
    section = parser["nodeimg"]
    backend = section.get("backend").strip()
    if backend not in BACKENDS:
        raise koji.GenericError("%s: backend = %s: one of %s"
                                % (path or CONFIG_FILE, backend, ", ".join(BACKENDS)))
    return {
        "install_group": section.get("install_group").strip(),
        "packages": section.get("packages").split(),
        "nodeimg": section.get("nodeimg").strip(),
        "backend": backend,
        "log_interval": float(section.get("log_interval")),
    }


def repo_options(opts, repo_info, target_info, arch, topurl):
    """nodeimg's options that make a build install from koji, as kojid's image tasks
    rewrite a kickstart (ImageTask.prepareKickstart): the kickstart's `repo` lines give
    way to the task's --repo URLs or else to the build tag's repository for this arch
    (at topurl). The installation source (`url`) is the task's install_tree_url, else
    the first of those repositories: a build farm's builders reach koji, not the
    internet, so nothing of the kickstart's own sources is left to reach. `%post`'s dnf
    sees the same repositories while `%post` runs (--post-repos)."""
    user_repos = list(dict.fromkeys(opts.get("repo") or []))
    if user_repos:
        urls = [(("koji-override-%d" % i), url) for i, url in enumerate(user_repos)]
    else:
        path_info = koji.PathInfo(topdir=topurl)
        tag_name = target_info["build_tag_name"]
        # koji names a repository's arch folders by canonArch (i686 → i386).
        url = "%s/%s" % (path_info.repo(repo_info["id"], tag_name), koji.canonArch(arch))
        urls = [("koji-%s-%d" % (tag_name, repo_info["id"]), url)]
    args = ["--replace-repos", "--post-repos"]
    install_tree = opts.get("install_tree_url")
    if not install_tree:
        install_tree = urls.pop(0)[1]
    args += ["--url", install_tree]
    for name, url in urls:
        args += ["--repo", "%s=%s" % (name, url)]
    return args


def error_lines(log_path, limit=20):
    """nodeimg's own ERROR lines from its log, for the task's failure message."""
    try:
        with open(log_path, errors="replace") as f:
            lines = [line.rstrip() for line in f if "ERROR" in line]
    except OSError:
        return []
    return lines[-limit:]


def split_scm_kickstart(url):
    """`git+https://host/repo.git?dir/node.ks#ref` → (the SCM URL of the directory,
    `git+https://host/repo.git?dir#ref`, and the file name, `node.ks`)."""
    base, hash_, ref = url.partition("#")
    if not hash_ or not ref:
        raise koji.BuildError("kickstart URL %s: an SCM URL needs #ref" % url)
    repo, _, path = base.partition("?")
    if not path.endswith(".ks"):
        raise koji.BuildError("kickstart URL %s: the path after ? must name a .ks file" % url)
    directory, ks_file = os.path.split(path)
    scm_url = "%s?%s#%s" % (repo, directory, ref) if directory else "%s#%s" % (repo, ref)
    return scm_url, ks_file


class NodeImageBuildTask(BuildImageTask):
    Methods = ["nodeImageBuild"]
    _taskWeight = 1.0

    def handler(self, name, version, target, arches, ks, opts=None):
        opts = opts or {}
        target_info = self.session.getBuildTarget(target, strict=True)
        build_tag = target_info["build_tag"]
        repo_info = self.getRepo(build_tag)
        tag_arches = (self.session.getBuildConfig(build_tag)["arches"] or "").split()
        canon = [koji.canonArch(a) for a in tag_arches]
        for arch in arches:
            if koji.canonArch(arch) not in canon:
                raise koji.BuildError("arch %s is not in build tag %s (%s)"
                                      % (arch, target_info["build_tag_name"], " ".join(tag_arches)))
        release = opts.get("release") or self.session.getNextRelease(
            {"name": RELEASE_NAME, "version": version})
        scratch = bool(opts.get("scratch"))
        bld_info = None
        if not scratch:
            bld_info = self.initImageBuild(RELEASE_NAME, version, release, target_info, opts)
        try:
            children = {}
            for arch in arches:
                children[arch] = self.session.host.subtask(
                    method="createNodeImage",
                    arglist=[name, version, release, arch, target_info, build_tag, repo_info,
                             ks, opts],
                    label=arch, parent=self.id, arch=arch)
            canfail = [children[a] for a in opts.get("optional_arches", []) if a in children]
            self.logger.debug("waiting for createNodeImage tasks %r", children)
            results = self.wait(list(children.values()), all=True, failany=True,
                                canfail=canfail)
            imgdata = {}
            for arch in arches:
                result = results[children[arch]]
                if isinstance(result, dict) and "faultCode" in result:
                    self.logger.warning("optional arch %s (task %s) failed: %s", arch,
                                        children[arch], result.get("faultString"))
                    continue
                imgdata[str(children[arch])] = result
            if not imgdata:
                raise koji.BuildError("no arch produced an image")
            self.gather_rpm_results(list(imgdata.values()))
            if scratch:
                self.session.host.moveImageBuildToScratch(self.id, imgdata)
            else:
                self.session.host.completeImageBuild(self.id, bld_info["id"], imgdata)
        except (SystemExit, koji.tasks.ServerExit, KeyboardInterrupt):
            raise
        except Exception:
            if bld_info:
                self.session.host.failBuild(self.id, bld_info["id"])
            raise
        if not scratch and not opts.get("skip_tag"):
            tag_task = self.session.host.subtask(
                method="tagBuild",
                arglist=[target_info["dest_tag"], bld_info["id"], False, None, True],
                label="tag", parent=self.id, arch="noarch")
            self.wait(tag_task)
        return {"build_id": bld_info["id"] if bld_info else None,
                "images": sorted(f for r in imgdata.values() for f in r["files"])}

    def gather_rpm_results(self, results):
        """One rpmresults for the build: a build has one source package, and the hub
        imports each rpmresults' source package and RPMs from the one task directory
        it names. With one arch, the child's stands. With several, the first arch's
        source package and every arch's update RPM are uploaded into this task's
        directory, and the first arch's result carries them (RESULTS in arch order)."""
        if len(results) < 2:
            return
        first = results[0]["rpmresults"]
        gathered = dict(first, task_id=self.id, rpms=[], logs=[])
        for result in results:
            rpm_results = result.pop("rpmresults")
            task_dir = koji.pathinfo.taskrelpath(rpm_results["task_id"])
            for rpm in rpm_results["rpms"]:
                self.uploadFile(self.localPath("work/%s/%s" % (task_dir, rpm)))
                gathered["rpms"].append(rpm)
        task_dir = koji.pathinfo.taskrelpath(first["task_id"])
        self.uploadFile(self.localPath("work/%s/%s" % (task_dir, first["srpm"])))
        results[0]["rpmresults"] = gathered


class LogStreamer(threading.Thread):
    """Upload a growing log file to the task every few seconds, as kojid streams
    mock's logs (koji.daemon.incremental_upload), and once more at the end."""

    def __init__(self, session, path, upload_dir, name, interval, logger):
        super().__init__(daemon=True)
        self.session, self.path, self.upload_dir = session, path, upload_dir
        self.name, self.interval, self.logger = name, interval, logger
        self.done = threading.Event()
        self.fd = None

    def upload(self):
        if self.fd is None:
            if not os.path.exists(self.path):
                return
            self.fd = open(self.path, "rb")
        koji.daemon.incremental_upload(self.session, self.name, self.fd, self.upload_dir,
                                       logger=self.logger)

    def run(self):
        while not self.done.wait(self.interval):
            self.upload()

    def stop(self):
        self.done.set()
        self.join()
        self.upload()
        if self.fd:
            self.fd.close()


class NodeImageCreateTask(BaseBuildTask):
    Methods = ["createNodeImage"]
    _taskWeight = 2.0

    OUTDIR = "nodeimg-out"
    SRPMDIR = "nodeimg-srpm"
    IMGDATA = "nodeimg-imgdata.json"

    def fetch_kickstart(self, ks, tmpdir, build_tag, scratch=False):
        """The kickstart into the chroot's tmpdir: an SCM checkout (allowed_scms and the
        SCM policy apply) or the file the CLI uploaded. Returns its path in tmpdir."""
        if "://" in ks:
            scm_url, ks_file = split_scm_kickstart(ks)
            scm = SCM(scm_url)
            scm.assert_allowed(allowed=self.options.allowed_scms, session=self.session,
                               by_config=self.options.allowed_scms_use_config,
                               by_policy=self.options.allowed_scms_use_policy,
                               policy_data={"user_id": self.taskinfo["owner"],
                                            "channel": self.session.getChannel(
                                                self.taskinfo["channel_id"], strict=True)["name"],
                                            "scratch": scratch})
            logfile = os.path.join(self.workdir, "checkout.log")
            self.run_callbacks("preSCMCheckout", scminfo=scm.get_info(), build_tag=build_tag,
                               scratch=scratch)
            checkout = scm.checkout(os.path.join(tmpdir, "scm"), self.session,
                                    self.getUploadDir(), logfile)
            self.run_callbacks("postSCMCheckout", scminfo=scm.get_info(), build_tag=build_tag,
                               scratch=scratch, srcdir=checkout)
            path = os.path.join(checkout, ks_file)
            if not os.path.isfile(path):
                raise koji.BuildError("no kickstart %s in the checkout of %s" % (ks_file, scm_url))
            return os.path.relpath(path, tmpdir)
        local = self.localPath("work/%s" % ks)
        name = os.path.basename(ks)
        with open(local, "rb") as src, open(os.path.join(tmpdir, name), "wb") as dst:
            dst.write(src.read())
        return name

    def nodeimg_command(self, config, name, version, release, arch, ks_within, out_within, opts,
                        repo_args=()):
        cmd = [config["nodeimg"], "build", "--backend", config["backend"], "--name", name,
               "--version", version, "--release", release, "--arch", arch,
               "--policy", "node", "-o", out_within] + list(repo_args)
        if opts.get("ksversion"):
            cmd += ["--ks-version", opts["ksversion"]]
        if opts.get("compression"):
            cmd += ["--compression", opts["compression"]]
        return cmd + [ks_within]

    def handler(self, name, version, release, arch, target_info, build_tag, repo_info, ks,
                opts=None):
        opts = opts or {}
        config = read_config()
        # livemedia-creator attaches loop devices: /dev must be the host's.
        broot = BuildRoot(self.session, self.options, build_tag, arch, self.id,
                          install_group=config["install_group"], setup_dns=True,
                          repo_id=repo_info["id"], bind_opts={"dirs": {"/dev": "/dev"}})
        broot.workdir = self.workdir
        broot.init()
        if config["packages"]:
            rv = broot.mock(["--install"] + config["packages"])
            if rv:
                raise koji.BuildrootError("installing %s failed; see root.log"
                                          % " ".join(config["packages"]))
        tmpdir = broot.tmpdir()
        within = broot.tmpdir(within=True)
        # kojid's own image tasks make it too: mock does not.
        koji.ensuredir(tmpdir)
        ks_name = self.fetch_kickstart(ks, tmpdir, build_tag, bool(opts.get("scratch")))
        self.uploadFile(os.path.join(tmpdir, ks_name))

        out = os.path.join(tmpdir, self.OUTDIR)
        out_within = os.path.join(within, self.OUTDIR)
        repo_args = repo_options(opts, repo_info, target_info, arch, self.options.topurl)
        cmd = self.nodeimg_command(config, name, version, release, arch,
                                   os.path.join(within, ks_name), out_within, opts, repo_args)
        streamer = LogStreamer(self.session, os.path.join(out, "logs", "nodeimg.log"),
                               self.getUploadDir(), "nodeimg.log", config["log_interval"],
                               self.logger)
        streamer.start()
        try:
            rv = broot.mock(["--cwd", within, "--chroot", "--"] + cmd)
        finally:
            streamer.stop()
        logs = ["nodeimg.log"]
        logdir = os.path.join(out, "logs")
        if os.path.isdir(logdir):
            for log in sorted(os.listdir(logdir)):
                if log == "nodeimg.log" or not os.path.isfile(os.path.join(logdir, log)):
                    continue
                remote = log if log.endswith(".log") else log + ".log"
                self.uploadFile(os.path.join(logdir, log), remoteName=remote)
                logs.append(remote)
        if rv:
            errors = error_lines(os.path.join(logdir, "nodeimg.log"))
            raise koji.LiveMediaError(
                "nodeimg build failed (%s)%s\nsee nodeimg.log, mock_output.log and root.log"
                % (koji.util.parseStatus(rv, "nodeimg"),
                   "".join("\n  " + line for line in errors)))

        # What the build made, as nodeimg reads its own record (build.json's format
        # is nodeimg's business, not this plugin's).
        imgdata_within = os.path.join(within, self.IMGDATA)
        rv = broot.mock(["--cwd", within, "--chroot", "--", config["nodeimg"], "koji",
                         "imgdata", out_within, "-o", imgdata_within])
        if rv:
            raise koji.BuildError("nodeimg koji imgdata failed (%s)"
                                  % koji.util.parseStatus(rv, "nodeimg"))
        with open(os.path.join(tmpdir, self.IMGDATA)) as f:
            imgdata = json.load(f)
        image = imgdata["files"]
        rpms = [imgdata["update_rpm"]]
        for extra in imgdata["extra_files"]:
            remote = extra + ".log"
            self.uploadFile(os.path.join(out, extra), remoteName=remote)
            logs.append(remote)
        self.uploadFile(os.path.join(out, image[0]))

        # The update RPM as koji's wrapper-RPM results: the package and its source
        # package, built from the same spec nodeimg wrote the package from.
        srpm_within = os.path.join(within, self.SRPMDIR)
        spec_cmd = [config["nodeimg"], "rpm", "spec", "--image",
                    os.path.join(out_within, image[0]), "--version", version,
                    "--release", release, "--arch", imgdata["arch"], "-o", srpm_within]
        rpmbuild = ["rpmbuild", "-bs", "--define", "_sourcedir %s" % out_within,
                    "--define", "_srcrpmdir %s" % srpm_within,
                    os.path.join(srpm_within, "ovirt-node-ng-image-update.spec")]
        for step in (spec_cmd, rpmbuild):
            rv = broot.mock(["--cwd", within, "--chroot", "--"] + step)
            if rv:
                raise koji.BuildError("%s failed (%s)" % (step[0], koji.util.parseStatus(rv, step[0])))
        srpmdir = os.path.join(tmpdir, self.SRPMDIR)
        srpms = [f for f in os.listdir(srpmdir) if f.endswith(".src.rpm")]
        if len(srpms) != 1:
            raise koji.BuildError("rpmbuild -bs made %s" % srpms)
        self.uploadFile(os.path.join(srpmdir, srpms[0]))
        self.uploadFile(os.path.join(out, rpms[0]))

        scratch = bool(opts.get("scratch"))
        rpmlist = []
        if not scratch:
            # What importImageInternal resolves (get_rpm) or, for the RPMs that
            # markExternalRPMs finds in external repositories, records.
            rpmlist = imgdata["rpmlist"]
            broot.markExternalRPMs(rpmlist)
        broot.expire()
        return {
            "arch": arch,
            "files": image,
            "rootdev": None,
            "task_id": self.id,
            "logs": logs,
            "name": name,
            "version": version,
            "release": release,
            "rpmlist": rpmlist,
            # importImage hands this to _import_wrapper, which reads the packages from
            # the task directory of rpmresults' task_id.
            "rpmresults": {
                "task_id": self.id,
                "buildroot_id": broot.id,
                "srpm": srpms[0],
                "rpms": rpms,
                "logs": [],
                "source": {"url": ks, "source": ks},
            },
        }
