# koji CLI plugin: `koji node-image-build`.
#
# Installed into koji_cli_plugins/; calls the hub's nodeImageBuild (plugin/hub) and
# watches the task as `koji spin-livemedia` does.

import os

import koji
from koji.plugin import export_cli
from koji_cli.lib import (
    OptionParser,
    _progress_callback,
    _running_in_bg,
    activate_session,
    get_usage_str,
    unique_path,
    watch_tasks,
)

COMPRESSIONS = ("xz", "zstd", "gzip", "lz4")


@export_cli
def handle_node_image_build(goptions, session, args):
    "[build] Build an oVirt Node image and its update RPM with nodeimg"
    usage = "usage: %prog node-image-build [options] <name> <version> <target> <kickstart>"
    usage += "\n\nThe kickstart is an SCM URL (git+https://…?path/node.ks#ref) or a local file,"
    usage += "\nwhich is uploaded first."
    parser = OptionParser(usage=get_usage_str(usage))
    parser.add_option("--arch", action="append", dest="arches", default=[],
                      help="an architecture to build for (repeat); default: x86_64")
    parser.add_option("--release", help="the release (default: koji picks the next one)")
    parser.add_option("--scratch", action="store_true", help="a scratch build")
    parser.add_option("--nowait", action="store_false", dest="wait", default=None,
                      help="do not wait for the task")
    parser.add_option("--wait", action="store_true", help="wait for the task, even in the background")
    parser.add_option("--repo", action="append", default=[],
                      help="install from this repository URL instead of the build tag's (repeat)")
    parser.add_option("--install-tree-url", metavar="URL",
                      help="the installation source (kickstart `url`); default: the first "
                           "--repo, else the build tag's repository")
    parser.add_option("--ksversion", help="the kickstart syntax (F40…F46, RHEL9, RHEL10)")
    parser.add_option("--compression", choices=COMPRESSIONS,
                      help="squashfs compression (%s)" % ", ".join(COMPRESSIONS))
    parser.add_option("--skip-tag", action="store_true", help="do not tag the build")
    parser.add_option("--can-fail", action="append", dest="optional_arches", default=[],
                      metavar="ARCH", help="the build succeeds even if this arch fails")
    parser.add_option("--priority", type="int", help="task priority (negative: admins only)")
    parser.add_option("--noprogress", action="store_true", help="no upload progress bar")
    options, args = parser.parse_args(args)
    if len(args) != 4:
        parser.error("expected <name> <version> <target> <kickstart>")
    name, version, target, ks = args
    activate_session(session, goptions)

    if not session.getBuildTarget(target):
        parser.error("no such build target: %s" % target)
    arches = options.arches or ["x86_64"]
    opts = {}
    for key in ("release", "ksversion", "compression", "install_tree_url"):
        value = getattr(options, key)
        if value:
            opts[key] = value
    if options.scratch:
        opts["scratch"] = True
    if options.skip_tag:
        opts["skip_tag"] = True
    if options.repo:
        opts["repo"] = options.repo
    if options.optional_arches:
        opts["optional_arches"] = options.optional_arches

    if "://" not in ks:
        if not os.path.isfile(ks):
            parser.error("no such kickstart: %s" % ks)
        serverdir = unique_path("cli-nodeimg")
        # As koji's own commands: no bar in the background, with --noprogress (the
        # command's option: koji's global options have none) or --quiet.
        quiet = _running_in_bg() or options.noprogress or goptions.quiet
        callback = None if quiet else _progress_callback
        session.uploadWrapper(ks, serverdir, callback=callback)
        if callback:
            print("")
        ks = "%s/%s" % (serverdir, os.path.basename(ks))

    kwargs = {"opts": opts}
    if options.priority is not None:
        kwargs["priority"] = options.priority
    task_id = session.nodeImageBuild(name, version, target, arches, ks, **kwargs)
    if not goptions.quiet:
        print("Created task: %d" % task_id)
        print("Task info: %s/taskinfo?taskID=%s" % (goptions.weburl, task_id))
    if options.wait or (options.wait is None and not _running_in_bg()):
        session.logout()
        return watch_tasks(session, [task_id], quiet=goptions.quiet,
                           poll_interval=goptions.poll_interval, topurl=goptions.topurl)
    return None
