# koji hub plugin: the nodeImageBuild method.
#
# `koji node-image-build` calls it; it checks every argument, the caller's permission,
# the target and the arches, and creates the parent task that the builder plugin
# (plugin/builder/nodeimg.py) runs. All image work is done by nodeimg on the builders.
#
# Configuration: /etc/koji-hub/plugins/nodeimg.conf ([nodeimg] permission, channel,
# priority). Enable with `Plugins = nodeimg` in /etc/koji-hub/hub.conf.

import configparser

import jsonschema
import koji
import koji.tasks
from koji.context import context
from koji.plugin import export

import kojihub

CONFIG_FILE = "/etc/koji-hub/plugins/nodeimg.conf"
DEFAULTS = {"permission": "image", "channel": "image", "priority": ""}

# The task's arguments, named for policies (policy_data_from_task_args).
koji.tasks.LEGACY_SIGNATURES["nodeImageBuild"] = [
    [["name", "version", "target", "arches", "ks", "opts"], None, None, (None,)]
]
koji.tasks.LEGACY_SIGNATURES["createNodeImage"] = [
    [["name", "version", "release", "arch", "target_info", "build_tag", "repo_info",
      "ks", "opts"], None, None, (None,)]
]

NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
# A URL nodeimg puts into a kickstart line as one word (nodeimg checks it again).
URL = r"^(https?|ftp|file)://[^\s\"'#\\]+$"
# Version and release as rpm takes them: no '-', no white space.
EVR = r"^[A-Za-z0-9._+~^]+$"

# [name, version, target, arches, ks, opts]
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "array",
    "minItems": 6,
    "maxItems": 6,
    "items": [
        {"type": "string", "pattern": NAME, "maxLength": 200},
        {"type": "string", "pattern": EVR, "maxLength": 100},
        {"type": "string", "minLength": 1, "maxLength": 200},
        {"type": "array", "minItems": 1, "uniqueItems": True,
         "items": {"type": "string", "pattern": r"^[a-z0-9_]+$"}},
        {
            # An SCM URL (git+https://host/repo.git?path/node.ks#ref) or a path the
            # CLI uploaded the kickstart to (cli-nodeimg/<unique>/node.ks).
            "type": "string",
            "minLength": 1,
            "maxLength": 1000,
            "pattern": r"^([a-z+]+://\S+|[A-Za-z0-9._/-]+\.ks)$",
            "not": {"pattern": r"(^/|\.\./)"},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "release": {"type": "string", "pattern": EVR, "maxLength": 100},
                "scratch": {"type": "boolean"},
                "skip_tag": {"type": "boolean"},
                "repo": {"type": "array",
                         "items": {"type": "string", "pattern": URL, "maxLength": 2048}},
                "install_tree_url": {"type": "string", "pattern": URL, "maxLength": 2048},
                "ksversion": {"type": "string", "pattern": r"^(F4[0-6]|RHEL9|RHEL10)$"},
                "compression": {"enum": ["xz", "zstd", "gzip", "lz4"]},
                "optional_arches": {"type": "array",
                                    "items": {"type": "string", "pattern": r"^[a-z0-9_]+$"}},
            },
        },
    ],
}


def read_config(path=None):
    parser = configparser.ConfigParser()
    parser.read_dict({"nodeimg": DEFAULTS})
    parser.read(path or CONFIG_FILE)
    section = parser["nodeimg"]
    priority = section.get("priority", "").strip()
    return {
        "permission": section.get("permission").strip(),
        "channel": section.get("channel").strip(),
        "priority": int(priority) if priority else None,
    }


@export
def nodeImageBuild(name, version, target, arches, ks, opts=None, priority=None):
    """Build an oVirt Node image and its update RPM with nodeimg (one task per arch)."""
    config = read_config()
    context.session.assertPerm(config["permission"])
    if opts is None:
        opts = {}
    args = [name, version, target, arches, ks, opts]
    try:
        jsonschema.validate(args, SCHEMA)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise koji.ParameterError("nodeImageBuild argument %s: %s" % (where or "list", e.message))
    target_info = kojihub.get_build_target(target, strict=True)
    arches = koji.parse_arches(" ".join(arches), to_list=True, strict=True)
    # parse_arches checks only the names: the build tag must have each arch, or the
    # task would fail later on a builder.
    build_tag = kojihub.get_tag(target_info["build_tag"], strict=True)
    tag_arches = (build_tag["arches"] or "").split()
    canon = set(koji.canonArch(a) for a in tag_arches)
    for arch in arches:
        if koji.canonArch(arch) not in canon:
            raise koji.ParameterError(
                "arch %s is not built by target %s: its build tag %s has arches %s"
                % (arch, target, build_tag["name"], " ".join(tag_arches) or "(none)"))
    for optional in opts.get("optional_arches", []):
        if optional not in arches:
            raise koji.ParameterError("optional arch %s is not one of %s" % (optional, arches))
    task_opts = {"channel": config["channel"]}
    if priority:
        priority = int(priority)
        if priority < 0 and not context.session.hasPerm("admin"):
            raise koji.ActionNotAllowed("only admins may create high-priority tasks")
        task_opts["priority"] = koji.PRIO_DEFAULT + priority
    elif config["priority"] is not None:
        task_opts["priority"] = config["priority"]
    return kojihub.make_task("nodeImageBuild", [name, version, target, arches, ks, opts],
                             **task_opts)
