"""The build backend: setuptools, building in a temporary folder.

Installing from a checkout (``pip install .``, ``pip install -e .``) with plain setuptools
leaves ``build/`` and ``hrlf.egg-info/`` in it. Here every build hook runs with
``DIST_EXTRA_CONFIG`` naming a temporary config that moves setuptools' ``build_base`` and
``egg_base`` into a temporary folder, removed when the hook returns; everything else is
``setuptools.build_meta`` unchanged.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

from setuptools import build_meta as _setuptools

_HOOKS = ("build_wheel", "build_sdist", "build_editable", "prepare_metadata_for_build_wheel",
          "prepare_metadata_for_build_editable", "get_requires_for_build_wheel",
          "get_requires_for_build_sdist", "get_requires_for_build_editable")


@contextlib.contextmanager
def _outside_the_checkout():
    with tempfile.TemporaryDirectory(prefix="hrlf-build-") as tmp:
        cfg = os.path.join(tmp, "setup.cfg")
        with open(cfg, "w") as f:
            f.write(f"[build]\nbuild_base = {tmp}/build\n[egg_info]\negg_base = {tmp}\n")
        old = os.environ.get("DIST_EXTRA_CONFIG")
        os.environ["DIST_EXTRA_CONFIG"] = cfg
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("DIST_EXTRA_CONFIG", None)
            else:
                os.environ["DIST_EXTRA_CONFIG"] = old


def _hook(name: str):
    inner = getattr(_setuptools, name)

    def hook(*args, **kwargs):
        with _outside_the_checkout():
            return inner(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = inner.__doc__
    return hook


for _name in _HOOKS:
    if hasattr(_setuptools, _name):
        globals()[_name] = _hook(_name)
