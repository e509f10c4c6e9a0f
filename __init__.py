"""hrlf: robust incomplete multimodal sentiment analysis (HRLF, NeurIPS 2024).

Subpackages: ``hrlf.runtime`` (torch-free spec, protocol, metrics and streaming runtime),
``hrlf.train`` (PyTorch training and evaluation), ``hrlf.export`` (ONNX / FP16 / TensorRT)
and ``hrlf.kernels`` (window packing: numpy reference and CUDA kernel).

One call streams a source through a model::

    import hrlf

    for r in hrlf.stream("models/mine", "file:call.wav"):   # or hrlf.stream("demo", "demo")
        print(r.t_start, r.score, r.label, r.absent)
"""

from .version import __version__

__all__ = ["__version__", "stream"]


def __getattr__(name: str):
    """``hrlf.stream`` (the one-call API), imported on first use: ``import hrlf`` stays
    light."""
    if name == "stream":
        from .runtime.api import stream

        return stream
    raise AttributeError(f"module 'hrlf' has no attribute '{name}'")
