"""hrlf-run's start (hrlf.runtime.startup): the collector pauses and comes back, numpy's
BLAS starts with one thread unless the user chose, and nothing of it outlives the command."""
import gc
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hrlf.runtime.cli import main
from hrlf.runtime.startup import BLAS_THREAD_VARS, quick_start


@pytest.fixture
def collector_restored():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if was else gc.disable()


def test_collector_pauses_then_resumes_with_startup_frozen(collector_restored):
    gc.enable()
    with quick_start() as ready:
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # tracked objects made during the start
        ready()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
        ready()  # twice is harmless
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_an_error_before_ready_still_restores(collector_restored):
    gc.enable()
    with pytest.raises(RuntimeError):
        with quick_start():
            raise RuntimeError("the model would not open")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_callers_own_setting_and_freeze_are_kept(collector_restored):
    gc.disable()
    gc.freeze()  # e.g. a pre-fork server froze its objects
    frozen = gc.get_freeze_count()
    with quick_start() as ready:
        ready()
        assert not gc.isenabled()  # was off: stays off
    assert not gc.isenabled() and gc.get_freeze_count() >= frozen


def test_cli_leaves_the_collector_as_it_found_it(collector_restored):
    gc.enable()
    r = CliRunner().invoke(main, ["--pace", "fast", "--duration", "3", "--stats-every", "0"])
    assert r.exit_code == 0, r.output
    assert gc.isenabled() and gc.get_freeze_count() == 0
    r = CliRunner().invoke(main, ["no/such/model", "--pace", "fast"])
    assert r.exit_code == 1
    assert gc.isenabled() and gc.get_freeze_count() == 0


PROBE = """
import json, os
%s
from threadpoolctl import threadpool_info
print(json.dumps({"threads": [i["num_threads"] for i in threadpool_info()
                              if i["internal_api"] == "openblas"],
                  "env": {k: os.environ.get(k) for k in %r}}))
"""
STARTUP = "from hrlf.runtime.startup import import_numpy_single_blas; import_numpy_single_blas()"


def probe(imports=STARTUP, **env):
    """OpenBLAS's thread count and the BLAS variables after ``imports``, in a fresh process
    whose environment has only the BLAS variables given."""
    pytest.importorskip("threadpoolctl")
    base = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARS}
    out = subprocess.run([sys.executable, "-c", PROBE % (imports, BLAS_THREAD_VARS)],
                         env={**base, **env}, check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if not got["threads"]:
        pytest.skip("this numpy has no OpenBLAS")
    return got


def test_numpy_imports_with_one_blas_thread_and_the_environment_is_untouched():
    got = probe()
    assert got["threads"] == [1]
    assert got["env"] == {k: None for k in BLAS_THREAD_VARS}  # children inherit nothing


def test_a_users_thread_count_wins():
    got = probe(OPENBLAS_NUM_THREADS="2")
    assert got["threads"] == probe("import numpy", OPENBLAS_NUM_THREADS="2")["threads"]
    assert got["env"]["OPENBLAS_NUM_THREADS"] == "2"


def test_a_failed_numpy_import_restores_the_collector(collector_restored, monkeypatch):
    import hrlf.runtime.startup as startup

    def broken():
        raise ImportError("numpy: broken install")

    monkeypatch.setattr(startup, "import_numpy_single_blas", broken)
    gc.enable()
    with pytest.raises(ImportError):
        with quick_start():
            pass
    assert gc.isenabled() and gc.get_freeze_count() == 0
