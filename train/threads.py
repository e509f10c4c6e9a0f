"""CPU thread counts for training that do not oversubscribe a shared machine.

PyTorch starts one OpenMP thread per core. Every parallel region then waits for all of
them, so when another process holds a core the region waits for a descheduled thread:
on this project's 2-core machine `hrlf-train --epochs 3` took 164 s with the default 2
threads next to one busy process and 9.9 s with one thread. So the count is chosen from
the CPUs this process may use and what other processes use of them:

    threads = clamp(floor(cpus - others + 0.25), 1, cpus)

where ``cpus`` is the size of ``os.sched_getaffinity`` (capped by a cgroup CPU quota) and
``others`` the CPUs busy with other work: the busy time of those CPUs (psutil) minus
this process's own CPU time, over a 0.3 s sample at start and then over every
epoch (:class:`Tuner`), so a competitor that starts or stops mid-run changes the count
(the 1-minute load average, which lags by a minute, is the fallback off Linux). An
explicit count wins and stays fixed, in this order: ``--threads``, ``$HRLF_THREADS``,
``$OMP_NUM_THREADS`` (what torchrun sets per worker). Inter-op threads are 1: the
training loop runs one op at a time.

Standard library only at import: :func:`choose` runs before numpy and torch are imported,
so the ``*_NUM_THREADS`` variables it sets also size numpy's BLAS pool; where numpy came
first, :func:`apply` resizes the loaded pools with threadpoolctl.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Mapping

from ..errors import InputError
from ..runtime.cpus import load_average, usable_cpus

ENV = "HRLF_THREADS"
_POOL_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads, and why.

    Attributes:
        threads: intra-op threads (torch, OpenMP, MKL, BLAS).
        interop: inter-op threads.
        source: ``--threads``, ``HRLF_THREADS``, ``OMP_NUM_THREADS`` or ``auto``.
        cpus: CPUs this process may run on.
        others: CPUs busy with other processes when chosen (None if unknown).
    """

    threads: int
    interop: int
    source: str
    cpus: int
    others: float | None

    def describe(self) -> str:
        """One line for stderr."""
        if self.source != "auto":
            why = f"from {self.source}"
        elif self.others is None:
            why = f"auto: {self.cpus} CPUs"
        else:
            why = f"auto: {self.cpus} CPUs, {self.others:.1f} busy with other processes"
        return (f"threads: {self.threads} intra-op, {self.interop} inter-op ({why}); "
                f"override with --threads N or {ENV}")

    def to_dict(self) -> dict:
        return {"threads": self.threads, "interop": self.interop, "source": self.source,
                "cpus": self.cpus, "others_busy_cpus": self.others}


def _parse(value: str, source: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{source}={value!r}: not a thread count; use an integer >= 1")
    return n


def choose(requested: int | None = None, env: Mapping[str, str] | None = None,
           cpus: int | None = None, others: float | None = None) -> ThreadChoice:
    """Pick the thread counts (see the module docstring).

    Args:
        requested: ``--threads`` (None: not given).
        env: environment (default ``os.environ``).
        cpus, others: for tests; measured when None.

    Raises:
        InputError: ``requested`` or ``$HRLF_THREADS`` is not an integer >= 1.
    """
    env = os.environ if env is None else env
    cpus = usable_cpus() if cpus is None else cpus
    if requested is not None:
        return ThreadChoice(_parse(str(requested), "--threads"), 1, "--threads", cpus, None)
    for var in (ENV, "OMP_NUM_THREADS"):
        if env.get(var, "").strip():
            return ThreadChoice(_parse(env[var].strip(), var), 1, var, cpus, None)
    if others is None:
        others = CpuSampler().sample(0.3)
    return ThreadChoice(auto_threads(cpus, others), 1, "auto", cpus, others)


def auto_threads(cpus: int, others: float | None) -> int:
    """``clamp(floor(cpus - others + 0.25), 1, cpus)``; all CPUs when ``others`` is unknown.

    It rounds down unless a CPU is at least 3/4 free: a thread too many costs far more (a
    parallel region waits for a descheduled thread) than a thread too few.
    """
    if others is None:
        return cpus
    return max(1, min(cpus, int(math.floor(cpus - others + 0.25))))


class CpuSampler:
    """CPU time other processes used on this process's CPUs between two calls (psutil:
    the busy time of those CPUs minus this process's own)."""

    def __init__(self):
        try:
            self.cpu_ids = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpu_ids = None
        self._last = self._snapshot()

    def _snapshot(self):
        busy = None
        try:
            import psutil

            per_cpu = psutil.cpu_times(percpu=True)
            ids = range(len(per_cpu)) if self.cpu_ids is None else self.cpu_ids
            busy = sum(_busy(per_cpu[i]) for i in ids if i < len(per_cpu))
        except (ImportError, OSError, RuntimeError):  # no psutil, or no per-CPU times here
            pass
        return time.monotonic(), time.process_time(), busy

    def sample(self, wait_s: float = 0.0) -> float | None:
        """CPUs busy with other work since the last call (None where unknown).

        Args:
            wait_s: sleep this long first (for a fresh sample).
        """
        if wait_s > 0:
            self._last = self._snapshot()
            time.sleep(wait_s)
        now = self._snapshot()
        (t0, own0, busy0), (t1, own1, busy1) = self._last, now
        self._last = now
        if busy0 is None or busy1 is None or t1 - t0 < 0.05:
            return load_average()
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


def _busy(t) -> float:
    """Seconds a CPU was busy: everything but idle and iowait (psutil's cpu_times)."""
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


# What :func:`apply` chose for this process, and a cap on the automatic count (small data:
# one thread is faster, see ``hrlf.train.regime.threads``).
_current: dict = {"choice": None, "cap": None}


def applied() -> ThreadChoice | None:
    """The choice :func:`apply` made in this process (None: nobody chose)."""
    return _current["choice"]


def cap_auto(n: int | None) -> None:
    """Never let the automatic count (now or when re-tuned) exceed ``n`` (None: no cap)."""
    _current["cap"] = n


class Tuner:
    """Re-chooses the auto thread count after each epoch from the CPU use of others."""

    def __init__(self, choice: ThreadChoice, log=None):
        self.choice, self.log = choice, log
        self.sampler = CpuSampler()
        self.history = [choice.threads]

    def update(self, *_args) -> int:
        """Measure since the last call and apply a new count if it changed; returns it."""
        others = self.sampler.sample()
        n = auto_threads(self.choice.cpus, others)
        if _current["cap"] is not None:
            n = min(n, _current["cap"])
        if n != self.history[-1]:
            import torch

            torch.set_num_threads(n)
            if self.log is not None:
                self.log(f"threads: {self.history[-1]} -> {n} ({others:.1f} of "
                         f"{self.choice.cpus} CPUs busy with other processes)")
            self.history.append(n)
        return n


def apply(choice: ThreadChoice, set_env: bool = True) -> None:
    """Set torch's thread counts (and, before numpy/torch load, the pools' variables).

    Call it before the first torch op: inter-op threads cannot change after that.
    """
    _current["choice"] = choice
    if set_env and not {"numpy", "torch"} & set(sys.modules):  # only then do they count
        for var in _POOL_VARS:
            os.environ[var] = str(choice.threads)
    elif "numpy" in sys.modules:  # the BLAS/OpenMP pools exist already: resize them
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=choice.threads)
    import torch

    torch.set_num_threads(choice.threads)
    try:
        torch.set_num_interop_threads(choice.interop)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass
