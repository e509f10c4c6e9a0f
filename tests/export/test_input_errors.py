"""hrlf-export on a RUN_DIR or --triton that is not what it should be: one line, exit 1."""
from __future__ import annotations

import shutil

from click.testing import CliRunner

from hrlf.export.cli import main
from tests.conftest import one_line_error as _one_line_error




def test_run_dir_that_is_a_file_or_has_folders_for_files(tmp_path, run_dir):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_error(CliRunner().invoke(main, [str(afile), "--out", str(tmp_path / "m")]),
                    "afile: is a file, not a folder")  # was click's usage text, exit 2
    spec_dir = tmp_path / "r1"
    (spec_dir / "spec.json").mkdir(parents=True)
    _one_line_error(CliRunner().invoke(main, [str(spec_dir), "--out", str(tmp_path / "m")]),
                    "spec.json: is a folder, not a file")
    pt_dir = tmp_path / "r2"
    (pt_dir / "student.pt").mkdir(parents=True)
    shutil.copy(run_dir / "spec.json", pt_dir / "spec.json")
    _one_line_error(CliRunner().invoke(main, [str(pt_dir), "--out", str(tmp_path / "m")]),
                    "student.pt: is a folder, not a checkpoint file")
    assert not (tmp_path / "m").exists()


def test_triton_repo_that_is_a_file_fails_before_the_export(tmp_path, run_dir):
    afile = tmp_path / "repo"
    afile.write_text("x")
    res = CliRunner().invoke(main, [str(run_dir), "--out", str(tmp_path / "m"), "--triton",
                                    str(afile)])
    _one_line_error(res, "--triton", "is not a folder")
    assert "parity" not in res.output  # checked before the slow part
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
