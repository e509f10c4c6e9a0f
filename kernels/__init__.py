"""Window packing: the numpy reference (CPU path) and a fused CUDA kernel (GPU path)."""
from .pack import pack_segments, pack_windows, resolve_device
from .pack_ref import pack_segments_numpy

__all__ = ["pack_segments", "pack_segments_numpy", "pack_windows", "resolve_device"]
