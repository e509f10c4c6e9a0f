"""mkdocs hooks (mkdocs.yml ``hooks:``): the pages that are generated, not typed.

* ``index.md``: README.md, its ``docs/…`` links pointed inside the site;
* ``cli.md`` (committed: its mkdocs-click blocks render the click commands' help);
* ``reports/*.md``: the reports ``python -m hrlf.train.reproduce`` and ``hrlf.train.heads``
  write next to their JSON in ``results/``, with their plots;
* every ``<!-- hrlf:TABLE ARGS -->`` marker in a page: a table from the committed JSON
  (``docs_tables.expand``); every `bench/results/NAME.json` a page quotes links to that
  file's generated section of ``benchmarks.md``.
"""
from __future__ import annotations

import pathlib
import re
import sys

from mkdocs.structure.files import File

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import docs_tables  # noqa: E402  (a sibling of this file, not a package)

REPO = docs_tables.REPO
REPORTS = ("mosi", "synthetic", "heads")


def _add(files, config, path: str, content) -> None:
    files.append(File.generated(config, path, content=content))


def _index() -> str:
    text = (REPO / "README.md").read_text()
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files, config):
    _add(files, config, "index.md", _index())
    for name in REPORTS:
        _add(files, config, f"reports/{name}.md", (REPO / "results" / f"{name}.md").read_text())
    for png in sorted((REPO / "results").glob("*.png")):
        _add(files, config, f"reports/{png.name}", png.read_bytes())
    return files


BENCH_REF = re.compile(r"(?<![\[`])`([^`\n]*bench/results/(\w+)\.json[^`\n]*)`(?!`)")


def _link_benchmarks(markdown: str, src_uri: str) -> str:
    """Each `bench/results/NAME.json` quoted in a page links to its generated section."""
    if src_uri == "benchmarks.md":
        return markdown
    up = "../" * src_uri.count("/")

    def one(m):
        if not (REPO / "bench" / "results" / f"{m.group(2)}.json").is_file():
            return m.group(0)
        return f"[{m.group(0)}]({up}benchmarks.md#{m.group(2)})"
    return BENCH_REF.sub(one, markdown)


def on_page_markdown(markdown, page, config, files):
    return _link_benchmarks(docs_tables.expand(markdown), page.file.src_uri)
