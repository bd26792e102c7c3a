"""Loading nodeimg's koji plugins the way koji's own plugin tests do: by file path
(importlib), with what koji does not ship on PyPI (the hub's `kojihub` module, kojid's
classes in `__main__`) injected first, as koji's kiwi plugin tests inject kojid's."""

import importlib.util
import os
import sys
import types
from unittest import mock

import pytest

PLUGINS = os.path.join(os.path.dirname(__file__), "..", "..", "plugin")


def load(kind, name="nodeimg"):
    path = os.path.join(PLUGINS, kind, name + ".py")
    spec = importlib.util.spec_from_file_location("_nodeimg_%s_plugin" % kind, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kojihub(monkeypatch):
    """A stand-in for the hub's `kojihub` module (not on PyPI): the calls a hub plugin
    makes, as mocks."""
    fake = types.ModuleType("kojihub")
    fake.make_task = mock.Mock(return_value=4321)
    fake.get_build_target = mock.Mock(return_value={"id": 1, "name": "node-target",
                                                    "build_tag": 7})
    fake.get_tag = mock.Mock(return_value={"id": 7, "name": "node-build",
                                           "arches": "x86_64 aarch64"})
    monkeypatch.setitem(sys.modules, "kojihub", fake)
    return fake
