"""Error lines that name the real fix: the closest source URI, a backend's usual names, the
option to change, the package to install."""
import sys

import pytest
from click.testing import CliRunner

from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.cli import main
from hrlf.errors import InputError, suggest
from hrlf.runtime.sources import open_source
from hrlf.runtime.spec import ModelSpec
from tests.conftest import one_line_error


@pytest.mark.parametrize("uri,hint", [("cam0", "camera0"), ("camra2", "camera2"),
                                      ("replya:x.npz", "replay:x.npz"),
                                      ("fil:/a/b.mp4", "file:/a/b.mp4"), ("dmo", "demo")])
def test_unknown_source_suggests_a_uri(uri, hint):
    with pytest.raises(InputError, match=f"unknown kind \\(did you mean '{hint}'\\?\\)"):
        open_source(uri, ModelSpec.load(demo_model_dir()))


def test_backend_names_people_use():
    res = CliRunner().invoke(main, ["--backend", "onnx"], prog_name="hrlf-run")
    one_line_error(res, "'onnx' is not one of", "(did you mean 'ort'?)", code=2)
    assert suggest("onnxruntime", ["ort"], {"onnxruntime": "ort"}) == " (did you mean 'ort'?)"
    assert suggest("tensorrt", ["trt", "torch"], {"tensorrt": "trt"}) == " (did you mean 'trt'?)"


def test_mic_on_a_runtime_only_install_names_the_extra(monkeypatch):
    pytest.importorskip("hrlf.runtime.capture.sources")
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as without hrlf[capture]
    from hrlf.runtime.capture.sources import import_sounddevice

    with pytest.raises(InputError) as e:
        import_sounddevice("mic")
    assert str(e.value).endswith("; pip install 'hrlf[capture]'") and "apt-get" not in str(e.value)


def test_pack_device_cuda_names_the_option():
    from hrlf.kernels import cuda_pack

    if cuda_pack.unavailable_reason() is None:
        pytest.skip("CUDA packing runs here; this covers machines without a GPU")
    res = CliRunner().invoke(main, ["--pack-device", "cuda", "--pace", "fast", "--duration",
                                    "2"])
    line = one_line_error(res, "CUDA packing: ")
    assert "--pack-device cpu" in line
