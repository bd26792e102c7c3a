#!/usr/bin/env python3
"""Write src/kickstart/handlers.txt: what each kickstart version pykickstart knows
says about its commands, read from pykickstart's own handlers.

    .venv/bin/python scripts/kickstart-handlers.py > src/kickstart/handlers.txt

For every version (`ksvalidator -l`): each command's status (known, deprecated or
removed) and, for the commands and sections nodeimg types (TYPED below), their
options and positionals in nodeimg's spec notation (src/kickstart/options.rs):
`<name>`, `<name?>`, `<name*>` positionals; `--a|--b` a flag; `--a=` a value,
`--a=?` an optional value, `--a=int`, `--a=bool`, `--a={x,y}` typed ones; a trailing
`!` required, `~` deprecated. The table test (tests/kickstart_diff.rs) regenerates
this from the venv's pykickstart and compares.
"""

import sys
import warnings

import pykickstart
from pykickstart.base import DeprecatedCommand, KickstartCommand, RemovedCommand
from pykickstart.errors import KickstartDeprecationWarning
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion, versionMap

# The commands whose options nodeimg checks and reads into its model.
TYPED = sorted(
    """url repo liveimg lang keyboard timezone timesource network firewall selinux
    authselect rootpw user group sshkey services firstboot bootloader zerombr skipx
    clearpart ignoredisk part partition autopart reqpart volgroup logvol text cmdline
    graphical reboot poweroff shutdown halt eula logging ostreesetup""".split()
)
SECTIONS = ["%packages", "%pre", "%pre-install", "%post", "%traceback", "%onerror"]
# Commands whose parse() takes the rest of the line itself, not through the parser.
RAW = {"authselect": "<options*>"}


def kind(action):
    """The value part of an option's notation."""
    if action.nargs == 0:
        return None
    if action.choices is not None:
        return "={" + ",".join(str(c) for c in action.choices) + "}"
    if action.nargs == "?":
        return "=?"
    type_name = getattr(action.type, "__name__", "")
    if action.type is int:
        return "=int"
    if type_name == "ksboolean":
        return "=bool"
    return "="


def warns(probe):
    """Whether `probe()` makes pykickstart warn of a deprecation, as ksvalidator
    (which then rejects the file) would see; whatever else it raises is beside the
    point."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            probe()
        except Exception:  # noqa: BLE001 - a parse error is not a deprecation
            pass
    return any(issubclass(w.category, KickstartDeprecationWarning) for w in seen)


def placeholder(action):
    if action.choices is not None:
        return str(list(action.choices)[0])
    if action.type is int:
        return "1"
    if getattr(action.type, "__name__", "") == "ksboolean":
        return "on"
    return "x"


def command_probe(handler, parser, command, extra):
    """A line of `command` with its required positionals and options and `extra`,
    read by `parser` into `handler` with that command's state reset first."""
    words = [command]
    for action in handler.commands[command]._getParser()._actions:
        if not action.option_strings and action.required:
            words.append("/x" if action.dest in ("mntpoint", "mountpoint") else "x")
        elif action.option_strings and action.required:
            words.append(f"{action.option_strings[0]}={placeholder(action)}")
    words.extend(extra)

    def probe():
        handler.resetCommand(command)
        parser.readKickstartFromString(" ".join(words) + "\n")

    return probe


def section_probe(parser, header):
    def probe():
        parser.readKickstartFromString(f"{header}\n%end\n")

    return probe


def notation(parser, option_warns=lambda action: False):
    words = []
    for action in parser._actions:
        names = [o for o in action.option_strings if o not in ("-h", "--help")]
        if not action.option_strings:
            arity = {None: "", 1: "", "?": "?", "*": "*", "+": "*"}[action.nargs]
            words.append(f"<{action.dest}{arity}>")
            continue
        if not names:
            continue
        word = "|".join(names)
        value = kind(action)
        if value is not None:
            word += value
        if action.required:
            word += "!"
        if getattr(action, "deprecated", False) or option_warns(action):
            word += "~"
        words.append(word)
    return " ".join(words)


def main():
    specs = {}

    def spec_id(text):
        return specs.setdefault(text, len(specs))

    lines = []
    for name, number in sorted(versionMap.items(), key=lambda kv: (kv[1], kv[0])):
        handler = makeVersion(number)
        reader = KickstartParser(makeVersion(number), errorsAreFatal=True)
        entries = []
        for command in sorted(handler.commands):
            obj = handler.commands[command]
            if isinstance(obj, RemovedCommand):
                entries.append(f"{command}:r::")
                continue
            # Commands this one may not follow, with every name of each (part and
            # partition are one command).
            conflicts = sorted(
                {
                    name
                    for other in getattr(obj, "conflictingCommands", [])
                    if other in handler.commands
                    for name, same in handler.commands.items()
                    if same is handler.commands[other]
                }
            )
            if isinstance(obj, DeprecatedCommand):
                status = "d"
            elif type(obj).parse is KickstartCommand.parse:
                # A handler that maps the name to the bare base class: any use fails
                # ("parse() not implemented"), as for a removed command.
                status = "r"
            elif warns(command_probe(reader.handler, reader, command, [])):
                # Known, but its parse() warns of a deprecation (ksvalidator rejects).
                status = "w"
            else:
                status = "k"
            if command in TYPED and status in "kw":
                bare = warns(command_probe(reader.handler, reader, command, []))

                def option_warns(action, command=command, bare=bare):
                    if bare or not action.option_strings:
                        return False
                    value = "" if action.nargs == 0 else "=" + placeholder(action)
                    extra = [action.option_strings[0] + value]
                    return warns(command_probe(reader.handler, reader, command, extra))

                text = RAW.get(command) or notation(obj._getParser(), option_warns)
                entries.append(f"{command}:{status}:{spec_id(text)}:{','.join(conflicts)}")
            else:
                entries.append(f"{command}:{status}::{','.join(conflicts)}")
        sections = KickstartParser(handler)._sections
        for section in SECTIONS:
            if section in sections:
                status = "w" if warns(section_probe(reader, section)) else "k"

                def option_warns(action, section=section):
                    if not action.option_strings:
                        return False
                    value = "" if action.nargs == 0 else "=" + placeholder(action)
                    return warns(section_probe(reader, f"{section} {action.option_strings[0]}{value}"))

                text = notation(sections[section]._getParser(), option_warns)
                entries.append(f"{section}:{status}:{spec_id(text)}:")
        lines.append(f"version {name} {number} " + " ".join(entries))

    out = sys.stdout
    out.write(
        "# Generated by scripts/kickstart-handlers.py from pykickstart "
        f"{pykickstart.__version__ if hasattr(pykickstart, '__version__') else ''}".rstrip()
        + ": do not edit.\n"
    )
    out.write("# spec ID NOTATION; version NAME NUMBER COMMAND:STATUS:SPEC:CONFLICTS... (k known,\n")
    out.write("# w known but its parse warns of a deprecation, d deprecated, r removed; the\n")
    out.write("# spec of a typed command or section; the commands it may not follow).\n")
    for text, number in specs.items():
        out.write(f"spec {number} {text}\n")
    for line in lines:
        out.write(line + "\n")


if __name__ == "__main__":
    main()
