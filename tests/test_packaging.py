"""The package as pip builds it: nothing left in the checkout (README's install command), and
the metadata a newcomer or an index reads (license, authors, classifiers, py.typed)."""
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info", "__pycache__", ".jobs",
                              ".hypothesis", ".pytest_cache", "results", "runs", "models")


def test_building_from_a_checkout_leaves_no_build_folder(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src),
                        "-w", str(tmp_path / "dist")], capture_output=True, text=True,
                       timeout=600)
    if p.returncode and any(s in p.stderr for s in ("Could not find a version",
                                                    "No matching distribution",
                                                    "Failed to establish a new connection")):
        pytest.skip(f"pip cannot fetch the build requirements here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    left = sorted(x.name for x in src.iterdir() if x.name == "build" or x.suffix == ".egg-info")
    assert left == [], left
    wheel = next((tmp_path / "dist").glob("hrlf-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "hrlf/py.typed" in names
    for page in ("index.html", "live.js", "live.css"):  # the live page ships in the wheel
        assert f"hrlf/runtime/observe/static/{page}" in names, names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
               for n in names)
    assert "Author: hrlf maintainers" in meta or "Author-email:" in meta
    for line in ("Classifier: License :: OSI Approved :: MIT License",
                 "Classifier: Typing :: Typed",
                 "Project-URL: Paper, https://arxiv.org/abs/2411.02793"):
        assert line in meta


def test_license_file_is_mit():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_model_and_run_folders_are_ignored():
    ignored = (REPO / ".gitignore").read_text().split()
    assert {"runs/", "models/", "build/", "*.egg-info/"} <= set(ignored)
