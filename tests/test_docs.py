"""The documentation site builds (`mkdocs build --strict`, as CI runs it), its CLI reference
comes from the click commands (every option of every command is on the page), and its
tables come from the committed JSON (no marker is left, the figures are the JSON's)."""
import html
import importlib
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import click
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install 'hrlf[docs]'")
pytest.importorskip("material", reason="the docs extra is not installed: pip install 'hrlf[docs]'")


def _tables():
    spec = importlib.util.spec_from_file_location("docs_tables", REPO / "tools" / "docs_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def _text(site, page):
    return html.unescape((site / page / "index.html").read_text())


def test_every_option_of_every_command_is_in_the_cli_reference(site):
    page = _text(site, "cli")
    commands = _tables().COMMANDS
    for prog, module, attr in commands:
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command), (module, attr)
        assert prog in page
        ctx = click.Context(cmd, info_name=prog)
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts + param.secondary_opts:
                    assert opt in page, f"{prog} {opt} missing from the CLI reference"
    # every console script of the package is documented
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) <= {prog for prog, _, _ in commands}


def test_results_tables_come_from_the_json(site):
    page = _text(site, "results")
    assert "hrlf:" not in page  # every marker was replaced
    mosi = json.loads((REPO / "results" / "mosi.json").read_text())
    p = mosi["stats"]["A"]["paired"]["dropout"]["avg6"]["f1"]
    assert f"{p['mean_diff']:+.3f}".replace("-", "−") in page
    assert f"{mosi['cost']['mosi']['parameters']:,}" in page
    assert f"{mosi['ridge_floor']['lav']['corr']:.3f}" in page


def test_speed_tables_come_from_the_benchmark_json(site):
    bench = lambda name: json.loads((REPO / "bench" / "results" / f"{name}.json").read_text())
    runtime = _text(site, "runtime")
    assert f"{bench('runtime')['backends']['ort_fp32']['p50_ms']:.2f} ms" in runtime
    hub = _text(site, "hub")
    for run in bench("streams")["runs"]:
        if not run.get("skipped"):
            assert f"{run['segments']} ({run['segments_expected']})" in hub
    assert 'href="../benchmarks/#runtime"' in runtime  # quoted JSON links to its figures
    export = _text(site, "export")
    assert f"{bench('export')['latency_cpu']['batch_32']['ort_fp32']['median_ms']:.1f} ms" in export


def test_benchmark_and_extras_pages_come_from_their_sources(site):
    bench = _text(site, "benchmarks")
    for path in (REPO / "bench" / "results").glob("*.json"):
        assert f"bench/results/{path.name}" in bench
    install = _text(site, "install")
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, reqs in extras.items():
        assert f"[{extra}]" in install and all(r in install for r in reqs), extra
        assert _tables().EXTRA_FOR.get(extra), f"say what [{extra}] is for in tools/docs_tables.py"


def test_readme_links_point_at_pages_that_exist():
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "README links into docs/"
    for link in links:
        assert (REPO / link).is_file(), link


def test_the_cli_page_asks_for_every_command():
    page = (REPO / "docs" / "cli.md").read_text()
    for prog, _, _ in _tables().COMMANDS:
        assert f"<!-- hrlf:cli {prog} -->" in page, prog


def test_an_unknown_marker_is_an_error():
    with pytest.raises(ValueError, match="unknown docs table"):
        _tables().expand("<!-- hrlf:nonsense -->")
