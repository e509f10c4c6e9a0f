"""hrlf: robust incomplete multimodal sentiment analysis (HRLF, NeurIPS 2024).

Subpackages: ``hrlf.runtime`` (torch-free spec, protocol, metrics and streaming runtime),
``hrlf.train`` (PyTorch training and evaluation), ``hrlf.export`` (ONNX / FP16 / TensorRT)
and ``hrlf.kernels`` (window packing: numpy reference and CUDA kernel).
"""

__version__ = "0.1.0"
