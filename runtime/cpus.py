"""How many CPUs this process may use: its affinity mask, capped by a cgroup CPU quota.

``os.cpu_count()`` counts the machine's CPUs, not the ones a container or ``taskset``
leaves to this process. :func:`usable_cpus` reads what the process may run on
(``os.sched_getaffinity``) and the CPU bandwidth its cgroup allows (cgroup v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``): a container limited to
1.5 CPUs on a 64-core host gets 2, not 64. :func:`load_average` is what the rest of the
machine is doing (a shared box), for the record.
"""
from __future__ import annotations

import math
import os

CGROUP = "/sys/fs/cgroup"


def _quota_v2(root: str) -> float | None:
    try:
        with open(os.path.join(root, "cpu.max")) as f:
            quota, period = (f.read().split() + ["100000"])[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _quota_v1(root: str) -> float | None:
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as f:
            quota = int(f.read().strip())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as f:
            period = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_quota(root: str = CGROUP) -> float | None:
    """CPUs' worth of time the cgroup allows per period (e.g. 1.5), or None: no limit."""
    q = _quota_v2(root)
    return q if q is not None else _quota_v1(root)


def usable_cpus(root: str = CGROUP) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (>= 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
