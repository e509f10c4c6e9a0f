"""Triton client backend: windows are packed here and scored by a Triton server over gRPC.

Many client processes (each with its own sessions, buffers and accounting) share one
server; the server's dynamic batcher merges their requests. The model is a folder of the
repository that ``hrlf-export --triton REPO`` wrote (``hrlf_python`` serves on a CPU box,
``hrlf_onnx``/``hrlf_trt`` on servers with those backends).

Identity: ``hrlf_python`` hashes the ``model.onnx`` it loaded and returns that sha256 as
the output ``onnx_sha256``; this client asks for it with every call and refuses answers
from any other model than the one its ``spec.json`` describes (``ArtifactError``), at
start-up and after every reconnect (a server restarted on a swapped repository). Models
without that output (Triton's own ONNX Runtime / TensorRT backends) are checked against
the ``onnx_sha256`` parameter of their config, and the client says it trusts the config.

Failure policy: at start-up an absent server or model is one line (``BackendUnavailable``,
with the server's reason for a model that failed to load). While streaming, a call that
fails because the connection broke (``UNAVAILABLE``) or timed out (``DEADLINE_EXCEEDED``,
e.g. a frozen server) is retried on a fresh channel with backoff until ``timeout_s`` is
spent; then it raises ``BackendUnavailable`` and the session counts the windows as
``backend_error`` and goes on (backend_guard.py).

Concurrency: a hub runs several calls at once (``concurrent_runs``); each thread gets its
own gRPC client (the Python client is not documented as thread-safe: one per thread is
what Triton's maintainers recommend), so that while one request is on the wire or in
the server's queue, the next batch is already being sent, and the server's dynamic
batcher sees them together. Reconnects replace only the calling thread's client.

Exposure: Triton has no authentication. Serve on loopback (``python -m
hrlf.export.triton_server REPO`` does; a plain ``tritonserver`` needs ``--grpc-address
127.0.0.1 --http-address 127.0.0.1 --metrics-address 127.0.0.1``) unless a firewall or a
TLS proxy guards it.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from hrlf.runtime.errors import ArtifactError, BackendUnavailable, InputError, import_optional
from hrlf.runtime.spec import MODALITIES, SCORE, ModelSpec, input_names

log = logging.getLogger("hrlf.runtime")

DEFAULT_URL = "127.0.0.1:8001"
DEFAULT_MODEL = "hrlf_python"
SHA_PARAM = SHA_OUTPUT = "onnx_sha256"
INSTALL = "pip install 'hrlf[triton]'"
SERVE_HINT = ("python -m hrlf.export.triton_server REPO (or tritonserver --model-repository "
              "REPO --grpc-address 127.0.0.1 --http-address 127.0.0.1 --metrics-address "
              "127.0.0.1)")
RETRIED = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def parse_model(text: str) -> tuple[str, str]:
    """``NAME`` or ``NAME:VERSION`` -> (name, version); version '' means the latest."""
    name, _, version = str(text).partition(":")
    if not name or (version and not version.isdigit()):
        raise InputError(f"--triton-model {text}: expected NAME or NAME:VERSION (e.g. "
                         f"{DEFAULT_MODEL}:1)")
    return name, version


class TritonBackend:
    """Scores packed windows on a Triton server (tritonclient, gRPC); thread-safe.

    Args:
        model_dir: MODEL_DIR whose ``spec.json`` the server's model must match.
        spec: its spec.
        url: ``host:port`` of the server's gRPC endpoint.
        model: ``NAME`` or ``NAME:VERSION`` in the server's repository.
        timeout_s: the deadline of one call, retries and reconnects included.
        max_batch: the largest batch sent in one request (capped by the model's
            ``max_batch_size``).
    """

    #: calls may run on several threads at once (one client per thread)
    concurrent_runs = True

    def __init__(self, model_dir: str, spec: ModelSpec, url: str = DEFAULT_URL,
                 model: str = DEFAULT_MODEL, timeout_s: float = 5.0, max_batch: int = 64):
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        if not timeout_s > 0:
            raise InputError(f"triton timeout {timeout_s}: must be > 0 seconds")
        self._grpc, self._error = grpcclient, InferenceServerException
        self.url, self.timeout_s = url, float(timeout_s)
        self.model, self.version = parse_model(model)
        self.spec, self.model_dir = spec, model_dir
        self.want_sha = spec.artifacts.get("model.onnx", "")
        self._local = threading.local()  # this thread's client
        self._clients: list = []  # every client opened (closed by close())
        self._lock = threading.Lock()
        self.reconnects = 0
        self.client = None
        self.client = self._connect()
        self._adopt(self.client)
        cfg = self._config()
        self.reports_sha = SHA_OUTPUT in [o.get("name") for o in cfg.get("output", [])]
        self.max_batch = max(1, min(int(max_batch), int(cfg.get("max_batch_size", 0) or 1)))
        self.input_names = input_names()
        self.name = f"triton-{self.model}"
        try:
            if self.reports_sha:  # what the server really loaded, not what a config says
                self.run(_probe_feeds(spec))
            else:
                self._check_config_sha(cfg)
        except BaseException:
            self.close()
            raise

    def _check_config_sha(self, cfg: dict) -> None:
        got = cfg.get("parameters", {}).get(SHA_PARAM, {}).get("string_value")
        if self.want_sha and got != self.want_sha:
            raise self._mismatch(got)
        log.info("triton model '%s' does not report the sha256 it loaded (no %s output); "
                 "trusting its config.pbtxt", self.model, SHA_OUTPUT)

    def _mismatch(self, got) -> ArtifactError:
        return ArtifactError(f"triton model '{self.model}' at {self.url}: serves ONNX "
                             f"{(got or 'unknown')[:12]}… but {self.model_dir}/spec.json is "
                             f"for {self.want_sha[:12]}…; serve the repository exported with "
                             "this model (hrlf-export --triton REPO)")

    def _connect(self):
        """A client for ``url`` whose server and model are ready, else one clear line."""
        try:
            client = self._grpc.InferenceServerClient(self.url)
            live = client.is_server_live(client_timeout=self.timeout_s)
        except (self._error, ValueError) as e:
            raise BackendUnavailable(f"triton: no server at {self.url} ({_first(e)}); start "
                                     f"one: {SERVE_HINT}; or pass --triton-url") from None
        if not live:
            raise BackendUnavailable(f"triton: the server at {self.url} is not live; check "
                                     "its log")
        try:
            ready = client.is_model_ready(self.model, self.version, client_timeout=self.timeout_s)
        except self._error as e:
            ready, why = False, _first(e)
        else:
            why = self._load_failure(client) or "not loaded"
        if not ready:
            raise BackendUnavailable(f"triton: model '{self.model}' (version "
                                     f"{self.version or 'latest'}) is not ready at {self.url} "
                                     f"({why}); load it (--load-model {self.model}) or pass "
                                     "--triton-model NAME[:VERSION]")
        return client

    def _load_failure(self, client) -> str:
        """The server's reason why the model is not loaded ('' when it has none)."""
        try:
            index = client.get_model_repository_index(as_json=True,
                                                      client_timeout=self.timeout_s)
        except self._error:
            return ""
        for m in index.get("models", []):
            if m.get("name") == self.model and m.get("reason"):
                reason = str(m["reason"]).split("\n\nAt:")[0]  # not the stub's traceback
                return " ".join(reason.split())[:300]
        return ""

    def _config(self) -> dict:
        try:
            out = self.client.get_model_config(self.model, self.version, as_json=True,
                                               client_timeout=self.timeout_s)
        except self._error as e:
            raise BackendUnavailable(f"triton: cannot read the config of '{self.model}' at "
                                     f"{self.url} ({_first(e)}); check the server") from None
        return out.get("config", out)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        n = len(feeds[self.input_names[0]])
        if n > self.max_batch:  # the server refuses batches above max_batch_size
            return np.concatenate([self.run({k: v[i:i + self.max_batch] for k, v in feeds.items()})
                                   for i in range(0, n, self.max_batch)])
        inputs = []
        for name in self.input_names:
            arr = np.ascontiguousarray(feeds[name], np.float32)
            inp = self._grpc.InferInput(name, list(arr.shape), "FP32")
            inp.set_data_from_numpy(arr)
            inputs.append(inp)
        wanted = [SCORE] + ([SHA_OUTPUT] if self.reports_sha else [])
        res = self._infer(inputs, [self._grpc.InferRequestedOutput(o) for o in wanted])
        if self.reports_sha:
            shas = {bytes(x).decode(errors="replace") for x in res.as_numpy(SHA_OUTPUT).reshape(-1)}
            if shas != {self.want_sha} and self.want_sha:
                raise self._mismatch(",".join(sorted(shas)))
        return np.asarray(res.as_numpy(SCORE), np.float32).reshape(-1)

    def _adopt(self, client) -> None:
        """Make ``client`` this thread's client (and remember it for close())."""
        self._local.client = client
        with self._lock:
            self._clients.append(client)

    def _client(self):
        """This thread's client (the first call on a thread opens one)."""
        client = getattr(self._local, "client", None)
        if client is None:
            if self.client is None:
                raise BackendUnavailable(f"triton: the client of {self.url} is closed")
            client = self._grpc.InferenceServerClient(self.url)
            self._adopt(client)
        return client

    def _infer(self, inputs, outputs):
        """One inference, retried on a fresh channel (broken or timed out) until the
        deadline; then BackendUnavailable."""
        deadline, delay = time.monotonic() + self.timeout_s, 0.05
        while True:
            left = deadline - time.monotonic()
            try:
                return self._client().infer(self.model, inputs, model_version=self.version,
                                            outputs=outputs, client_timeout=max(left, 0.05))
            except self._error as e:
                status = str(e.status() or "")
                if not any(s in status for s in RETRIED) \
                        or time.monotonic() + delay >= deadline:
                    raise BackendUnavailable(f"triton: inference on '{self.model}' at "
                                             f"{self.url} failed ({_first(e)}); check the "
                                             "server") from None
            time.sleep(delay)
            delay = min(2 * delay, 1.0)
            self._reopen()

    def _reopen(self) -> None:
        """A fresh client for this thread (the others keep theirs)."""
        old = getattr(self._local, "client", None)
        if old is not None:
            with self._lock:
                if old in self._clients:
                    self._clients.remove(old)
            try:
                old.close()
            except Exception:  # a broken channel may fail to close; it is replaced anyway
                pass
        client = self._grpc.InferenceServerClient(self.url)
        if old is self.client:
            self.client = client
        self._adopt(client)
        with self._lock:
            self.reconnects += 1

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
            self.client = None
        for c in clients:
            try:
                c.close()
            except Exception:  # closing a broken channel: nothing left to release
                pass


def _probe_feeds(spec: ModelSpec) -> dict[str, np.ndarray]:
    """One all-absent window (every mask 0): the model's cheapest valid input."""
    feeds = {}
    for m in MODALITIES:
        t = spec.frames(m)
        feeds[m] = np.zeros((1, t, spec.dim(m)), np.float32)
        feeds[f"{m}_mask"] = np.zeros((1, t), np.float32)
    feeds["modality_mask"] = np.zeros((1, len(MODALITIES)), np.float32)
    return feeds


def _first(e: BaseException) -> str:
    msg = e.message() if hasattr(e, "message") and callable(e.message) else str(e)
    return (str(msg).strip().splitlines() or [type(e).__name__])[0][:160]


def open_backend(model_dir: str, spec: ModelSpec, **opts) -> TritonBackend:
    import_optional("tritonclient.grpc", "triton: tritonclient[grpc]", INSTALL)
    kw = {k: v for k, v in opts.items() if k in ("max_batch", "timeout_s") and v is not None}
    if opts.get("triton_url"):
        kw["url"] = opts["triton_url"]
    if opts.get("triton_model"):
        kw["model"] = opts["triton_model"]
    if opts.get("triton_timeout"):
        kw["timeout_s"] = opts["triton_timeout"]
    return TritonBackend(model_dir, spec, **kw)
