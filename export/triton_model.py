"""Triton Python-backend model: runs the exported ``model.onnx`` with onnxruntime.

``hrlf-export --triton REPO`` copies this file to ``REPO/hrlf_python/1/model.py`` beside
``model.onnx``, so the same repository serves on a CPU-only box (Triton's own ONNX Runtime
and TensorRT backends are not on PyPI; the ``tritonserver`` of ``nvidia-pytriton`` has the
Python backend). It runs inside Triton's Python stub, never inside hrlf: it imports only
numpy, onnxruntime and Triton's ``triton_python_backend_utils``.

Identity: ``initialize`` hashes the ``model.onnx`` it loads (sha256) and refuses to load
when that is not the config's ``onnx_sha256`` parameter (a swapped file); every answer
that asks for the output ``onnx_sha256`` carries the hash of the file really loaded, so
the client compares that with its own spec.

Triton's dynamic batcher hands ``execute`` several requests at once; requests whose
tensors have the same shapes (windows of one spec) are stacked and scored in one
onnxruntime call. A request whose tensors are malformed gets an error response of its own;
the other requests of the batch are answered as usual.
"""
import hashlib
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

SCORE = "score"
SHA = "onnx_sha256"


class TritonPythonModel:
    """The interface Triton's Python backend calls."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        with open(path, "rb") as f:  # hash the very bytes onnxruntime gets
            data = f.read()
        self.sha256 = hashlib.sha256(data).hexdigest()
        want = params.get(SHA, "")
        if want and want != self.sha256:
            raise ValueError(f"{path}: sha256 {self.sha256[:12]}... is not the onnx_sha256 "
                             f"{want[:12]}... of config.pbtxt: the file was replaced; "
                             "re-export the repository (hrlf-export --triton REPO)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads", "1") or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        self.inputs = [(i.name, i.shape) for i in self.session.get_inputs()]

    def _feeds(self, request):
        """The request's input arrays, or a message saying what is wrong with them."""
        feeds, batch = {}, None
        for name, shape in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                return None, f"input '{name}' is missing"
            arr = np.asarray(tensor.as_numpy(), np.float32)
            if arr.ndim != len(shape) or (batch is not None and arr.shape[0] != batch):
                return None, f"input '{name}' has shape {arr.shape}; expected {shape}"
            batch = arr.shape[0]
            feeds[name] = arr
        return feeds, None

    def execute(self, requests):
        responses = [None] * len(requests)
        groups = {}  # same shapes -> one onnxruntime call
        for i, request in enumerate(requests):
            feeds, error = self._feeds(request)
            if error is not None:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(error))
                continue
            key = tuple(feeds[n].shape for n, _ in self.inputs)
            groups.setdefault(key, []).append((i, feeds))
        for members in groups.values():
            stacked = {n: np.concatenate([f[n] for _, f in members]) for n, _ in self.inputs}
            try:
                scores = np.asarray(self.session.run([SCORE], stacked)[0], np.float32)
            except Exception as e:  # onnxruntime raises its own types; answer, never die
                for i, _ in members:
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"onnxruntime: {str(e).splitlines()[0]}"))
                continue
            start = 0
            for i, feeds in members:
                n = feeds[self.inputs[0][0]].shape[0]
                out = [pb_utils.Tensor(SCORE, scores[start:start + n].reshape(n))]
                if SHA in requests[i].requested_output_names():
                    out.append(pb_utils.Tensor(SHA, np.array([self.sha256.encode()] * n,
                                                             dtype=np.object_)))
                responses[i] = pb_utils.InferenceResponse(output_tensors=out)
                start += n
        return responses

    def finalize(self):
        self.session = None
