"""Usage mistakes on every hrlf CLI: one ERROR line naming the option, exit status 2."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hrlf.export.cli import main as export_main
from hrlf.runtime.cli import main as run_main
from hrlf.train.cli import eval_main, train_main
from tests.conftest import one_line_error

CASES = [
    ("hrlf-train", train_main, ["--out", "r", "--threads", "0"],
     "'--threads': 0 is not in the range x>=1"),
    ("hrlf-train", train_main, ["--out", "r", "--epochs", "0"],
     "'--epochs': 0 is not in the range x>=1"),
    ("hrlf-train", train_main, ["--epochs", "3"], "Missing option '--out'"),
    ("hrlf-eval", eval_main, [], "Missing argument 'RUN_DIR"),
    ("hrlf-export", export_main, ["--bogus"], "No such option '--bogus'"),
    ("hrlf-run", run_main, ["--max-batch", "x"], "'--max-batch': 'x' is not a valid integer"),
]


@pytest.mark.parametrize("prog,cmd,args,want", CASES,
                         ids=[f"{p}:{i}" for i, (p, *_) in enumerate(CASES)])
def test_usage_error_is_one_line(prog, cmd, args, want, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cmd, args, prog_name=prog)
    line = one_line_error(res, want, code=2)
    assert line.endswith(f"(see '{prog} --help')")
    assert not list(tmp_path.iterdir())  # nothing was created


def test_usage_error_from_the_installed_script(tmp_path):
    """As a user sees it: the real process, stderr only, no usage block."""
    p = subprocess.run([sys.executable, "-c", "from hrlf.train.cli import train_main; "
                        "train_main(prog_name='hrlf-train')", "--out", str(tmp_path / "r"),
                        "--threads", "0"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "hrlf-train ERROR Invalid value for '--threads': 0 is not in the range x>=1. "
        "(see 'hrlf-train --help')"]
