"""Serve a model repository with the ``tritonserver`` that ``nvidia-pytriton`` ships.

``nvidia-pytriton`` pins ``numpy<2``, so it lives in its own environment (by default
``.triton-env`` in the checkout; ``tools/install_triton_server.sh`` creates it, ``$HRLF_TRITON_ENV``
points elsewhere). This module starts the server binary from that environment on loopback
with the Python backend, the way the tests and ``bench/streams.py`` need it:

* the Python-backend stub for the environment's Python version is copied into a private
  backend folder (the wheel ships one stub per Python version);
* ``LD_LIBRARY_PATH`` starts with that Python's own ``lib/`` (the stub must load the same
  ``libpython`` as the interpreter: a pyenv build fails otherwise) and holds the wheel's
  bundled libraries (``nvidia_pytriton.libs``: libcudart is needed even without a GPU);
* the stub imports numpy and onnxruntime from the environment (``PATH``/``PYTHONPATH``).

Triton has no authentication: every endpoint binds 127.0.0.1 unless ``--address`` names
another interface (then guard it with a firewall or a TLS proxy). Metrics are off unless
``--metrics-port`` is given (then on the same address).

    python -m hrlf.export.triton_server REPO [--model hrlf_python] [--grpc-port 8001]
        [--http-port 8000] [--metrics-port 8002] [--address 127.0.0.1]

SIGTERM and SIGINT (Ctrl-C) are forwarded: the server stops (SIGKILL after 10 s), its temp
folder is removed, and the command exits 0. The server also dies with this process (a
parent-death signal), so a killed wrapper leaves no server listening.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import click

from hrlf.runtime.cli_base import OneLineCommand
from hrlf.runtime.errors import BackendUnavailable

ENV_VAR = "HRLF_TRITON_ENV"
INSTALL_HINT = "create it with: bash tools/install_triton_server.sh (or set $HRLF_TRITON_ENV)"


def default_env() -> str:
    """The server environment: ``$HRLF_TRITON_ENV`` or ``.triton-env`` in the checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get(ENV_VAR) or os.path.join(here, ".triton-env")


def _env_python(env: str) -> tuple[str, str, str]:
    """(python executable, 'X.Y', site-packages) of a virtual environment."""
    py = os.path.join(env, "bin", "python")
    if not os.path.exists(py):
        raise BackendUnavailable(f"tritonserver: no Python environment at {env}; {INSTALL_HINT}")
    out = subprocess.run([py, "-c", "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]);"
                          "print(sys.base_prefix); print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise BackendUnavailable(f"tritonserver: {py} does not run ({out.stderr.strip()[:120]}); "
                                 f"{INSTALL_HINT}")
    version, base, site = out.stdout.split("\n")[:3]
    return py, version, site


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """One ``tritonserver`` process, started and stopped by its owner (loopback by default).

    Args:
        repo: model repository folder.
        models: models to load (explicit model control); others stay unloaded.
        env: the server environment (see :func:`default_env`).
        log_path: where the server's stdout/stderr go (default: a temp file).
        address: the interface every endpoint binds (Triton has no authentication).

    Attributes:
        grpc_url: ``ADDRESS:PORT`` for ``--triton-url``.
    """

    def __init__(self, repo: str, models: tuple[str, ...] = ("hrlf_python",),
                 env: str | None = None, log_path: str | None = None,
                 address: str = "127.0.0.1"):
        self.repo, self.models, self.address = os.path.abspath(repo), tuple(models), address
        self.env = env or default_env()
        py, version, site = _env_python(self.env)
        self.dist = os.path.join(site, "pytriton", "tritonserver")
        binary = os.path.join(self.dist, "bin", "tritonserver")
        if not os.path.isfile(binary):
            raise BackendUnavailable(f"tritonserver: {binary} not found (nvidia-pytriton is not "
                                     f"installed in {self.env}); {INSTALL_HINT}")
        self.binary, self.python, self.version, self.site = binary, py, version, site
        self.work: str | None = None  # the private backend folder (start() makes it)
        self._log_arg, self.log_path = log_path, log_path
        self.proc: subprocess.Popen | None = None
        self.grpc_port = self.http_port = self.metrics_port = 0
        self.grpc_url = ""

    def _backends(self) -> str:
        dst = os.path.join(self.work, "backends")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(os.path.join(self.dist, "backends"), dst)
        stub = os.path.join(self.dist, "python_backend_stubs", self.version,
                            "triton_python_backend_stub")
        shutil.copy(stub, os.path.join(dst, "python", "triton_python_backend_stub"))
        return dst

    def _environ(self) -> dict:
        env = os.environ.copy()
        out = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
                             capture_output=True, text=True, timeout=60)
        libdir = out.stdout.strip()
        libs = os.path.join(self.site, "nvidia_pytriton.libs")
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, libs, env.get("LD_LIBRARY_PATH"))
                                          if p)
        env["PATH"] = os.path.join(self.env, "bin") + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = self.site  # numpy, onnxruntime for the stub
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
        return env

    def command(self, grpc_port: int, http_port: int, metrics_port: int | None) -> list[str]:
        """The tritonserver command line: every endpoint on ``address``."""
        cmd = [self.binary, "--model-repository", self.repo, "--backend-directory",
               self._backends(), "--model-control-mode", "explicit",
               "--grpc-address", self.address, "--grpc-port", str(grpc_port),
               "--http-address", self.address, "--http-port", str(http_port),
               "--metrics-address", self.address, "--log-verbose", "0"]
        if metrics_port:
            cmd += ["--metrics-port", str(metrics_port), "--allow-metrics", "true"]
        else:
            cmd += ["--allow-metrics", "false"]
        return cmd + [f"--load-model={m}" for m in self.models]

    def start(self, timeout_s: float = 120.0, grpc_port: int | None = None,
              http_port: int | None = None, metrics_port: int | None = None) -> "TritonServer":
        """Start the server and wait until the models are ready.

        Args:
            timeout_s: how long to wait for readiness.
            grpc_port, http_port: the ports (default: free ones).
            metrics_port: serve Prometheus metrics there (default: no metrics).

        Raises:
            BackendUnavailable: the server exited or was not ready in ``timeout_s`` (the
                last lines of its log are in the message).
        """
        self.grpc_port, self.http_port = grpc_port or free_port(), http_port or free_port()
        self.metrics_port = metrics_port or 0
        self.work = self.work or tempfile.mkdtemp(prefix="hrlf-triton-")
        self.log_path = self._log_arg or os.path.join(self.work, "server.log")
        cmd = self.command(self.grpc_port, self.http_port, metrics_port)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self._environ(), start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.grpc_url = f"{self.address}:{self.grpc_port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._ready():
                return self
            time.sleep(0.25)
        tail = self.log_tail()
        self.stop()
        raise BackendUnavailable(f"tritonserver: not ready after {timeout_s:.0f} s (log: {tail}); "
                                 "check the repository and the server environment")

    def _ready(self) -> bool:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        try:
            with grpcclient.InferenceServerClient(self.grpc_url) as c:
                return c.is_server_ready(client_timeout=1.0) and all(
                    c.is_model_ready(m, client_timeout=1.0) for m in self.models)
        except InferenceServerException:
            return False

    def log_tail(self, n: int = 3) -> str:
        """The last ``n`` non-empty lines of the server log, joined with ' | '."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [x.strip() for x in f if x.strip()]
        except OSError:
            return "no log"
        return " | ".join(lines[-n:])[-600:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (``sig``, then SIGKILL after 10 s) and remove its temp folder.
        Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        if self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """(In the child, Linux) SIGTERM the server when the process that started it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stop() still cleans up
        pass


class _Stop(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _raise_stop(signum, frame) -> None:
    raise _Stop(signum)


_PORT = click.IntRange(1, 65535)


@click.command(cls=OneLineCommand, tool="triton_server",
               context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nExample:\n  python -m hrlf.export.triton_server models/mosi-triton "
                      "--grpc-port 8001")
@click.argument("repo")
@click.option("--model", "models", multiple=True, default=("hrlf_python",), show_default=True,
              help="Model to load (repeatable).")
@click.option("--grpc-port", type=_PORT, default=8001, show_default=True, help="gRPC port.")
@click.option("--http-port", type=_PORT, default=8000, show_default=True, help="HTTP port.")
@click.option("--metrics-port", type=_PORT, default=None,
              help="Serve Triton's Prometheus metrics on this port [off].")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind (anything else is reachable by others, without "
                   "authentication).")
def main(repo, models, grpc_port, http_port, metrics_port, address) -> None:
    """Serve a model repository (nvidia-pytriton's tritonserver, Python backend) on
    loopback; Triton has no authentication."""
    from hrlf.runtime import logs

    log = logs.tool_log()
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        server = TritonServer(repo, tuple(models), log_path=os.path.abspath("tritonserver.log"),
                              address=address)
        server.start(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port)
        if address not in ("127.0.0.1", "localhost", "::1"):
            log.warning("serving on %s without authentication", address)
        log.info("serving %s at %s (gRPC), port %s (HTTP); log: %s; Ctrl-C or SIGTERM stops",
                 repo, server.grpc_url, server.http_port, server.log_path)
        code = server.proc.wait()
        log.error("tritonserver exited with status %s; log: %s", code, server.log_path)
        raise click.exceptions.Exit(1)
    except _Stop as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop; a second signal waits
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if server is not None:
            server.stop(e.signum)
        log.info("%s: tritonserver stopped", signal.Signals(e.signum).name)
    finally:
        if server is not None:
            server.stop()
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    main(prog_name="python -m hrlf.export.triton_server")
