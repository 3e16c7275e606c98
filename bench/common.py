"""Helpers shared by the benchmarks: a scratch local environment, timing, result printing."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops.runtime import configure_runtime

RESULTS = Path(__file__).resolve().parent / "results"
RESULT_SUFFIX = "MLOPS_BENCH_RESULT_SUFFIX"


@contextmanager
def scratch_environment() -> Iterator[Path]:
    """A fresh local environment root, removed afterwards."""
    configure_runtime()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as root:
        previous = os.environ.get("MLOPS_LOCAL_ROOT")
        os.environ["MLOPS_LOCAL_ROOT"] = root
        try:
            from mlops.bootstrap import bring_up_local
            from mlops.settings import load_settings

            bring_up_local(load_settings("local"))
            yield Path(root)
        finally:
            if previous is None:
                os.environ.pop("MLOPS_LOCAL_ROOT", None)
            else:
                os.environ["MLOPS_LOCAL_ROOT"] = previous


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, list[float]]:
    """Median wall time of `repeats` calls (and all samples)."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples


def report(name: str, rows: list[tuple[str, str]], payload: dict[str, Any]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"\n== {name} ==")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
    RESULTS.mkdir(exist_ok=True)
    suffix = os.environ.get(RESULT_SUFFIX, "")  # "-busy" under bench.under_load, kept apart
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(payload, indent=2, default=str))


def prepared_training_run(root: Path, rows: int) -> tuple[Any, Any]:
    """In a scratch environment: `rows` generated events ingested, features built, a run prepared."""
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.training import steps

    ctx = steps.open_environment("local")
    source = root / "incoming" / "bench.parquet"
    generate_churn_events(ctx.usecase.dataset, ChurnDataConfig(rows=rows, seed=7)).to_parquet(source)
    steps.ingest_step(ctx, source)
    return ctx, steps.prepare_step(ctx, steps.feature_step(ctx))


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


@contextmanager
def cpu_load(settle_seconds: float = 20.0, limit_seconds: float = 1800.0) -> Iterator[int]:
    """One spinning process per CPU this process may use, while the block runs (each also stops by
    itself after `limit_seconds`); waits `settle_seconds` first, so the load average shows the work,
    as it would on a busy machine. Yields the number of spinning processes."""
    import multiprocessing

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    stop_at = time.time() + limit_seconds
    burners = [multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(cpus)]
    for burner in burners:
        burner.start()
    try:
        time.sleep(settle_seconds)
        yield cpus
    finally:
        for burner in burners:
            burner.terminate()
            burner.join()


def resident_mb() -> float:
    """This process's resident memory now, in MB (what it holds between steps; Linux only, else 0)."""
    try:
        with Path("/proc/self/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_json(module: str, *args: str, stderr_through: bool = False) -> dict[str, Any]:
    """Run `python -m module args` in a fresh process (its memory is its own) and return the JSON
    object it prints last; with `stderr_through`, what it reports on stderr shows as it runs."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        stdout=subprocess.PIPE,
        stderr=None if stderr_through else subprocess.PIPE,
        text=True,
    )
    payload: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return payload
