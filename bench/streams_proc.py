"""What a benchmark run used and what else the machine did meanwhile (Linux /proc):
resident memory, CPU seconds of a process family, busy CPU seconds of the whole machine,
and the load average. Shared by bench/streams.py and bench/hub_faults.py."""
from __future__ import annotations

import os


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stat(pid: int) -> list:
    return _stat_path(f"/proc/{pid}/stat")


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the server and its Python-backend stub)."""
    kids: dict = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def proc_cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process and its descendants (from /proc)."""
    total = 0
    for p in family(pid):
        try:
            f = _stat(p)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process and its descendants, summed (MB)."""
    total = 0.0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(x.split()[1]) for x in f if x.startswith("VmHWM:")), 0) / 1024
        except OSError:
            pass
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all CPUs: not idle, not iowait)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loadavg() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def thread_cpu_s() -> dict:
    """CPU seconds of this process's Python threads, summed by name (digits and dashes at
    the end stripped: ``hrlf-hub-infer-1`` and ``-2`` count together)."""
    import threading

    out: dict = {}
    tick = os.sysconf("SC_CLK_TCK")
    for th in threading.enumerate():
        try:
            f = _stat_path(f"/proc/self/task/{th.native_id}/stat")
        except (OSError, IndexError, TypeError):
            continue
        name = th.name.rstrip("0123456789-") or th.name
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / tick
    return out


def _stat_path(path: str) -> list:
    with open(path) as f:
        return f.read().rsplit(")", 1)[1].split()
