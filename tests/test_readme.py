"""README's test command is what .ci/run runs, and its install command names real things."""
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    cmd = [x for x in ci.splitlines() if x.startswith("python3 -m venv")]
    assert len(cmd) == 1
    assert cmd[0] in readme.splitlines()


def test_readme_quickstart_has_two_commands():
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    commands = [x for x in block.group(1).splitlines() if x and not x.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("hrlf-run") and "pytest" in commands[1]
