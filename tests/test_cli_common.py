"""What every hrlf command shares: --version, one log format (text or JSON lines), and one
exit-code table (runtime/cli_base.py, README's *Exit status*)."""
import json
import pathlib
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hrlf import __version__
from hrlf.export.cli import main as export_main
from hrlf.export.triton_server import main as triton_server_main
from hrlf.runtime.capture.realmedia import main as realmedia_main
from hrlf.runtime.cli import main as run_main
from hrlf.runtime.cli_base import EXIT
from hrlf.train.cli import eval_main, train_main
from hrlf.train.heads import main as heads_main
from hrlf.train.reproduce_cli import main as reproduce_main
from tests.conftest import is_error_line

COMMANDS = [("hrlf-train", train_main), ("hrlf-eval", eval_main), ("hrlf-export", export_main),
            ("hrlf-run", run_main), ("reproduce", reproduce_main), ("realmedia", realmedia_main),
            ("heads", heads_main), ("triton_server", triton_server_main)]
JSON_KEYS = {"time", "level", "tool", "logger", "message"}


@pytest.mark.parametrize("tool,cmd", COMMANDS, ids=[t for t, _ in COMMANDS])
def test_version_and_usage_errors_in_both_formats(tool, cmd, monkeypatch):
    res = CliRunner().invoke(cmd, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"{tool} {__version__}\n"
    res = CliRunner().invoke(cmd, ["--no-such-option"], prog_name=tool)
    assert res.exit_code == 2 and is_error_line(res.stderr.strip(), tool), res.output
    for args, env in ((["--log-format", "json", "--no-such-option"], {}),
                      (["--no-such-option"], {"HRLF_LOG_FORMAT": "json"})):
        res = CliRunner().invoke(cmd, args, prog_name=tool, env=env)
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1, res.output
        rec = json.loads(lines[0])
        assert JSON_KEYS <= set(rec) and rec["level"] == "ERROR" and rec["tool"] == tool
        assert "No such option '--no-such-option'" in rec["message"] and rec["exit_code"] == 2


def test_hrlf_run_logs_json_lines_a_collector_can_read():
    res = CliRunner().invoke(run_main, ["--pace", "fast", "--duration", "4", "--stats-every",
                                        "0", "--log-format", "json"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in res.stderr.splitlines()]
    assert recs and all(JSON_KEYS <= set(r) and r["tool"] == "hrlf-run" for r in recs)
    summary = [r for r in recs if r["message"] == "summary"]
    assert len(summary) == 1 and summary[0]["summary"]["accounting_ok"]
    stats = [r for r in recs if "stats" in r]
    assert stats and stats[0]["message"].startswith("segments 3 ")


def test_user_error_bug_and_interrupt_have_their_own_status(monkeypatch, tmp_path):
    res = CliRunner().invoke(run_main, [str(tmp_path / "nope")])
    assert res.exit_code == EXIT["user_error"] == 1 and is_error_line(res.stderr, "hrlf-run")

    from hrlf.runtime import api

    def bug(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(api, "open_runner", bug)
    res = CliRunner().invoke(run_main, [], prog_name="hrlf-run")
    assert res.exit_code == EXIT["internal_error"] == 70
    assert res.stderr.startswith("hrlf-run ERROR internal error (ZeroDivisionError: division by "
                                 "zero); this is a bug") and "Traceback" in res.stderr

    monkeypatch.setattr(api, "open_runner", lambda *a, **k: _Aborted())
    res = CliRunner().invoke(run_main, [])
    assert res.exit_code == EXIT["sigint"] == 130
    assert "interrupted during the final flush" in res.stderr


class _Aborted:
    """A runner whose flush a third signal aborted (Runner.run keeps the summary and sets
    ``aborted``)."""

    stop_signal = None
    flushing = False
    aborted = True

    def run(self):
        return {}


def test_readme_exit_status_table_is_the_codes_table():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Exit status"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    codes = {int(m) for m in re.findall(r"^\| (\d+)(?: / \d+)? \|", section, re.M)}
    codes |= {int(m) for m in re.findall(r"^\| \d+ / (\d+) \|", section, re.M)}
    assert codes == set(EXIT.values())


def test_python_m_entry_points_name_themselves():
    for mod, tool in (("hrlf.train.reproduce", "reproduce"),
                      ("hrlf.runtime.capture.realmedia", "realmedia")):
        p = subprocess.run([sys.executable, "-m", mod, "--version"], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0 and p.stdout == f"{tool} {__version__}\n", p.stderr


def test_library_logs_of_a_hub_use_the_one_format(capsys):
    """An embedding service that calls logs.setup gets the Hub's and Session's own records
    (loggers under ``hrlf.runtime``) in the same JSON lines as the tools'."""
    import numpy as np

    from hrlf.runtime import logs
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session_config import SessionConfig

    logs.setup("call-center", "json")

    def broken(r):
        raise ValueError("the CRM is down")

    with Hub.load("demo", config=HubConfig(stream=SessionConfig(live=False))) as hub:
        s = hub.add_stream("call-1", on_result=broken)
        for m, hz in (("text", 4), ("audio", 20), ("vision", 10)):
            ts = np.arange(0, 4, 1 / hz)
            s.push_many(m, ts, np.zeros((len(ts), hub.spec.dim(m)), np.float32))
        hub.advance()
    recs = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    hit = [r for r in recs if "on_result raised ValueError: the CRM is down" in r["message"]]
    assert hit and JSON_KEYS <= set(hit[0]), recs
    assert hit[0]["tool"] == "call-center" and hit[0]["logger"] == "hrlf.runtime.session"
    assert hit[0]["level"] == "WARNING"
