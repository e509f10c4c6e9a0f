"""Inference backends, one file each, behind the protocol in :mod:`.base`."""

#: names users try for a backend -> the backend's name here (for "did you mean" hints)
BACKEND_ALIASES = {"onnx": "ort", "onnxruntime": "ort", "onnx-runtime": "ort",
                   "tensorrt": "trt", "pytorch": "torch", "ov": "openvino"}
