"""pack.cu compiles (nvcc here and in CI, NVRTC where libnvrtc exists) and agrees with its
host mirror in cuda_pack.py. None of this needs a GPU."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from hrlf.errors import BackendUnavailable

from hrlf.kernels import cuda_driver, cuda_pack

ARCHS = ("sm_87", "sm_90")  # Jetson Orin, Hopper


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.access(p, os.X_OK)), None)


NVCC = _nvcc()


def _nvrtc_reason() -> str | None:
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        return "cuda-python is not installed"
    try:
        nvrtc.nvrtcVersion()
    except RuntimeError:
        return f"libnvrtc is not installed ({cuda_driver.NVRTC_FIX})"
    return None


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH nor in /usr/local/cuda/bin")
@pytest.mark.parametrize("arch", ARCHS)
def test_nvcc_compiles_pack_cu(tmp_path, arch):
    # -c runs the host pass too, so the offsetof static_asserts are checked here
    out = tmp_path / f"pack_{arch}.o"
    proc = subprocess.run([NVCC, "-std=c++17", "-c", f"-arch={arch}", "-Werror", "all-warnings",
                           str(cuda_driver.SOURCE_PATH), "-o", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 0


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH nor in /usr/local/cuda/bin")
def test_nvcc_ptx_has_both_entry_points_and_no_fma_in_slot_math(tmp_path):
    ptx = tmp_path / "pack.ptx"
    subprocess.run([NVCC, "-std=c++17", "--ptx", "-arch=sm_90", str(cuda_driver.SOURCE_PATH),
                    "-o", str(ptx)], check=True, capture_output=True, timeout=240)
    text = ptx.read_text()
    for k in cuda_driver.KERNELS:
        assert re.search(rf"\.entry {k}\(", text), k  # extern "C": unmangled names
    assert "fma.rn.f64" not in text  # slot = floor((t - t0) * rate + eps) rounded per op
    assert ".local" not in text  # the argument block is not copied per thread


def test_nvrtc_compiles_the_same_file():
    assert cuda_driver.kernel_source() == cuda_driver.SOURCE_PATH.read_text()
    assert cuda_driver.SOURCE_PATH.name == "pack.cu"
    assert cuda_driver.SOURCE_PATH.parent == __import__("pathlib").Path(cuda_pack.__file__).parent
    reason = _nvrtc_reason()
    if reason:
        pytest.skip(reason)
    for cc in (87, 90):
        image, kind = cuda_driver.nvrtc_compile(cc)
        assert kind == "cubin" and image[:4] == b"\x7fELF"
    try:  # PTX (an arch newer than this NVRTC): cuda.core asks the driver for its version
        ptx = cuda_driver.compile_source(cuda_driver.kernel_source(), "compute_90", "ptx")
    except BackendUnavailable as e:
        assert "driver" in str(e).lower()  # no CUDA driver here: said so, in one line
        return
    for k in cuda_driver.KERNELS:
        assert f".entry {k}(" in ptx.decode(), k  # the same entry points nvcc's PTX has


def test_an_nvrtc_compile_error_is_one_line():
    reason = _nvrtc_reason()
    if reason:
        pytest.skip(reason)
    broken = cuda_driver.kernel_source().replace("extern \"C\"", "extern \"C\" int x = ;", 1)
    with pytest.raises(cuda_driver.CudaCallError) as e:
        cuda_driver.compile_source(broken, "sm_90", "cubin")
    msg = str(e.value)
    assert "\n" not in msg and "pack.cu: NVRTC compile failed" in msg and "error" in msg


def test_host_mirror_matches_the_c_structs():
    src = cuda_driver.kernel_source()
    sizes = dict(re.findall(r"static_assert\(sizeof\((\w+)\) == (\d+)", src))
    offs = re.findall(r"__builtin_offsetof\((\w+), (\w+)\) == (\d+)", src)
    dtypes = {"HrlfModality": cuda_pack.MOD_DTYPE, "HrlfPackArgs": cuda_pack.ARGS_DTYPE}
    assert set(sizes) == set(dtypes) and len(offs) >= 5
    for name, size in sizes.items():
        assert dtypes[name].itemsize == int(size), name
    for name, fld, off in offs:
        assert dtypes[name].fields[fld][1] == int(off), (name, fld)
    # every C field has a mirror field of the same name, in the same order
    body = re.search(r"struct HrlfModality \{(.*?)\};", src, re.S).group(1)
    c_fields = re.findall(r"(\w+);", re.sub(r"//.*", "", body))
    assert c_fields == list(cuda_pack.MOD_DTYPE.names)


def test_launch_constants_come_from_the_source():
    assert cuda_pack.WARPS_PER_BLOCK == cuda_driver.source_define("HRLF_WARPS_PER_BLOCK") == 8
    assert cuda_pack.MAX_MODALITIES == 4
    with pytest.raises(AssertionError):
        cuda_driver.source_define("HRLF_NO_SUCH_DEFINE")
