"""What the docs-table modules share: the repository root, JSON loading, number and cell
formatting (``tools/docs_tables.py``, ``tools/docs_bench.py``). Stdlib only."""
from __future__ import annotations

import json
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _load(rel: str) -> dict:
    return json.loads((REPO / rel).read_text())


def _cond(c: str) -> str:
    return c if c == "avg6" else "{" + ",".join(c) + "}"


def _num(x, signed=False) -> str:
    s = f"{x:+.3f}" if signed else f"{x:.3f}"
    return s.replace("-", "−")


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
