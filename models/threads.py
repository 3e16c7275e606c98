"""How many threads torch and BLAS may use: the CPUs this process can actually get.

`os.cpu_count()` reports the machine, not what a container's cgroup quota or the process's CPU
affinity allows, and not what other work is already using. Oversubscribed intra-op threads spin
against each other and against that work: a measured 20x collapse of training throughput on a busy
2-core machine. So the budget is the smallest of affinity and cgroup quota, less the CPUs other
processes keep busy (load average), divided among the workers that run at once, and at least 1.
`MLOPS_TORCH_THREADS` overrides it.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "MLOPS_TORCH_THREADS"
WORKERS_ENV = "MLOPS_CONCURRENT_WORKERS"
BLAS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class ThreadSettingError(ValueError):
    """$MLOPS_TORCH_THREADS is not a whole number >= 1."""


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (v2 `cpu.max`, or v1 cfs quota/period); None when unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_file, period_file = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if quota_file.exists() and period_file.exists():
            quota_us = int(quota_file.read_text())
            return None if quota_us <= 0 else quota_us / int(period_file.read_text())
    except (OSError, ValueError):
        return None
    return None


def affinity_cpus() -> int:
    """CPUs the scheduler lets this process run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def usable_cpus(affinity: int, quota: float | None) -> float:
    """The CPUs a process may use: the smaller of its affinity and its cgroup quota (None: no quota)."""
    return min(float(affinity), quota if quota is not None else math.inf)


@dataclass(frozen=True)
class ThreadBudget:
    threads: int
    affinity: int
    quota: float | None
    busy_elsewhere: float
    workers: int
    source: str

    def describe(self) -> str:
        quota = "none" if self.quota is None else f"{self.quota:g}"
        return (
            f"{self.threads} thread(s) ({self.source}: affinity {self.affinity}, cgroup quota {quota}, "
            f"busy elsewhere {self.busy_elsewhere:.1f}, {self.workers} worker(s))"
        )


def thread_budget(workers: int | None = None, load: float | None = None) -> ThreadBudget:
    """The threads one worker may use, when `workers` run at once (default: $MLOPS_CONCURRENT_WORKERS or 1)."""
    affinity, quota = affinity_cpus(), cgroup_cpu_limit()
    workers = max(1, workers or int(os.environ.get(WORKERS_ENV, "1") or 1))
    override = os.environ.get(THREADS_ENV, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ThreadSettingError(f"{THREADS_ENV}: expected a whole number >= 1, got {override!r}")
        return ThreadBudget(int(override), affinity, quota, 0.0, workers, THREADS_ENV)
    usable = usable_cpus(affinity, quota)
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = max(0.0, min(load, usable) - 0.5)  # half a CPU of noise is not someone else's work
    free = max(1, math.floor(usable - busy + 0.5))
    return ThreadBudget(max(1, free // workers), affinity, quota, busy, workers, "measured")


_configured: ThreadBudget | None = None


def configure_threads(workers: int | None = None) -> ThreadBudget:
    """Apply the budget to torch (intra-op; one inter-op thread) once per process; returns it."""
    global _configured
    if _configured is not None:
        return _configured
    import torch

    budget = thread_budget(workers)
    torch.set_num_threads(budget.threads)
    with contextlib.suppress(RuntimeError):  # already set, or inter-op work already ran here
        torch.set_num_interop_threads(1)
    _configured = budget
    return budget


def blas_environment(budget: ThreadBudget) -> dict[str, str]:
    """Environment for child processes, so their BLAS and OpenMP pools start at the budget too."""
    return {name: str(budget.threads) for name in BLAS_ENV}
