"""The house rules, read from the source as a structure tool reads it (ast, no imports):

* inside the package every import of hrlf is explicit and relative (``from ..errors import``),
  so path-based tools resolve each one to a file;
* the layers only import downwards: ``kernels`` < ``runtime`` < ``train`` < ``export``, with
  ``errors.py`` and ``version.py`` shared by all (the package root imports ``runtime`` for
  ``hrlf.stream``); the torch reference backend is a plugin in ``train``, not in ``runtime``;
* no import cycle between modules, lazy imports inside functions included.
"""
from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = {"kernels": 0, "runtime": 1, "train": 2, "export": 3}
SHARED = {"hrlf.errors", "hrlf.version"}
#: runs inside Triton's Python stub, never as part of the package (imports no hrlf)
OUTSIDE = {"export/triton_model.py"}


def _modules() -> dict[str, str]:
    mods = {"hrlf": "__init__.py", "hrlf.errors": "errors.py", "hrlf.version": "version.py"}
    for top in LAYERS:
        for dp, dn, fn in os.walk(os.path.join(ROOT, top)):
            dn[:] = [d for d in dn if d != "__pycache__"]
            for f in fn:
                rel = os.path.relpath(os.path.join(dp, f), ROOT)
                if f.endswith(".py") and rel not in OUTSIDE:
                    name = "hrlf." + rel[:-3].replace(os.sep, ".")
                    mods[name.removesuffix(".__init__")] = rel
    return mods


def _imports(name: str, rel: str, mods: dict) -> tuple[set, list]:
    """(modules ``name`` imports, absolute hrlf import statements found)."""
    tree = ast.parse(open(os.path.join(ROOT, rel)).read(), rel)
    pkg = name.split(".") if rel.endswith("__init__.py") else name.split(".")[:-1]
    out, absolute = set(), []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            absolute += [f"{rel}:{n.lineno}" for a in n.names if a.name.split(".")[0] == "hrlf"]
        elif isinstance(n, ast.ImportFrom):
            if n.level == 0:
                if (n.module or "").split(".")[0] == "hrlf":
                    absolute.append(f"{rel}:{n.lineno}")
                continue
            base = ".".join(pkg[:len(pkg) - n.level + 1] + ([n.module] if n.module else []))
            for a in n.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in mods else base)
    return out, absolute


def _graph():
    mods = _modules()
    edges, absolute = {}, []
    for name, rel in mods.items():
        edges[name], found = _imports(name, rel, mods)
        absolute += found
    return mods, edges, absolute


def _layer(name: str):
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_imports_inside_the_package_are_relative():
    _, _, absolute = _graph()
    assert not absolute, f"absolute hrlf imports inside the package: {absolute}"


def test_layers_import_only_downwards():
    mods, edges, _ = _graph()
    assert {"hrlf.kernels.pack", "hrlf.runtime.session", "hrlf.train.torch_backend"} <= set(mods)
    up = [(a, b) for a, deps in edges.items() for b in deps
          if b in mods and b not in SHARED and _layer(a) is not None
          and (_layer(b) is None or _layer(b) > _layer(a))]
    assert not up, f"imports running up the layers: {up}"
    assert edges["hrlf.errors"] <= SHARED and not edges["hrlf.version"]


def test_no_import_cycles():
    mods, edges, _ = _graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v] & set(mods):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in mods:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"
