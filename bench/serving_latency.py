"""Serving latency: the HTTP endpoint on 127.0.0.1 vs the model's raw forward pass on the same rows.

The endpoint is `mlops serve` in its own process; the load is bounded (a fixed number of requests,
a time cap, loopback only): one-row and 100-row requests over keep-alive connections from one
client, then the one-row load again from `--clients` concurrent clients. The targets: one client's
one-row p99 within 2x the raw forward p99 plus 2 ms, with zero errors; with `--clients` clients, a p99
within 2x the one-client p99. Each load runs `--rounds` times and each figure is the median over the
rounds. The raw forward is the model alone (encoding and forward pass from arrays in memory). Also
the online store's lookup p99, and the server's worker processes and thread setting.

    python -m bench.serving_latency [--requests 2000] [--clients 4] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd

from bench.common import prepared_training_run, report, scratch_environment
from bench.loopback_load import closed_loop
from pipelines.serving.explain import STEPS as EXPLANATION_STEPS
from pipelines.training.launch import free_loopback_port

TIME_CAP_SECONDS = 120


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the endpoint exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"the endpoint at {url} did not come up in {timeout:.0f} s")


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.array(samples_ms)
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def _raw_forward(bundle, frame: pd.DataFrame, repeats: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The model alone: its encoding and forward pass from arrays already in memory (no parsing,
    no validation, no frame), the floor any serving path is held against."""
    numeric = frame[bundle.encoder.numeric].to_numpy(dtype=float)
    categorical = {name: frame[name].tolist() for name in bundle.encoder.categorical}
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        bundle.predict_arrays(numeric, categorical)
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


def _load(
    url: str, bodies: list[bytes], requests: int, clients: int, path: str = "/invocations"
) -> dict[str, float]:
    """`requests` POSTs spread over `clients` keep-alive connections, one request in flight on each,
    from one thread of non-blocking sockets (`bench.loopback_load`): the figures are the server's,
    not the load generator's."""
    address = urlsplit(url)
    load = closed_loop(
        address.hostname or "127.0.0.1", address.port or 80, path, bodies, requests, clients, TIME_CAP_SECONDS
    )
    return {
        **_percentiles(load.latencies_ms),
        "requests": float(len(load.latencies_ms)),
        "errors": float(load.errors),
        "per_second": len(load.latencies_ms) / load.wall_s,
    }


def _median_of(rounds: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Each figure's median over `rounds` runs of `measure`: one stray pause of a shared VM moves a
    single run's p99, not the median of three. Errors are summed, never smoothed."""
    runs = [measure() for _ in range(max(1, rounds))]
    merged = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
    merged["errors"] = float(sum(run["errors"] for run in runs))
    merged["rounds"] = float(len(runs))
    return merged


def _served_by_metrics(url: str) -> float:
    """Successful invocations the server's /metrics reports, summed over its workers."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"{url}/metrics", timeout=10) as response:  # loopback only
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mlops_responses_total"
        and sample.labels.get("route") == "/invocations"
        and sample.labels.get("code") == "200"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rows", type=int, default=60_000, help="Events to train the benchmark model on.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Rounds per load; each figure is the median over rounds."
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Server worker processes (default: serving.workers)."
    )
    args = parser.parse_args(argv)
    from mlops.settings import load_settings

    workers = args.workers or load_settings("local").serving.worker_count()

    from pipelines.deployment.endpoint import EndpointState, ServingVariant, write_state
    from pipelines.deployment.steps import handler_for
    from pipelines.training import steps

    with scratch_environment() as root:
        ctx, prepared = prepared_training_run(root, args.rows)
        result = steps.train_step(ctx, prepared)
        evaluation = steps.evaluate_step(ctx, prepared, result)
        version = steps.register_step(ctx, prepared, result, evaluation)
        handler = handler_for(ctx, version)
        test = pd.read_parquet(root / "artifacts" / prepared.test_key)[handler.bundle.feature_names]

        one_row = [test.iloc[[i]].to_json(orient="records").encode() for i in range(200)]
        hundred = [test.iloc[i : i + 100].to_json(orient="records").encode() for i in range(0, 2_000, 100)]
        raw_one = _raw_forward(handler.bundle, test.iloc[[0]], args.requests)
        raw_hundred = _raw_forward(handler.bundle, test.iloc[:100], max(200, args.requests // 10))

        keys = (
            pd.read_parquet(root / "artifacts" / prepared.test_key)[ctx.usecase.dataset.entity_key]
            .unique()[:500]
            .tolist()
        )
        lookups = []
        for i in range(args.requests):
            started = time.perf_counter()
            ctx.platform.online_store.read(
                ctx.usecase.features.name, [keys[i % len(keys)]], ctx.usecase.dataset.entity_key
            )
            lookups.append((time.perf_counter() - started) * 1000)
        online = _percentiles(lookups)

        # The endpoint runs as `mlops serve` in its own process, as users run it: the load generator
        # must not share its interpreter (and GIL) with the server it measures.
        write_state(
            ctx.platform.artifacts,
            EndpointState(version.model_name, [ServingVariant("v1", version.version, 1.0)]),
        )
        port = free_loopback_port()
        env = {**os.environ, "MLOPS_LOCAL_ROOT": str(root)}
        command = [
            str(Path(sys.executable).parent / "mlops"),
            "serve",
            "--env",
            "local",
            "--port",
            str(port),
            "--capture",
            "0",
            "--workers",
            str(workers),
        ]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, server)
            _load(url, one_row, 100, 1)  # warm-up
            served_one = _median_of(args.rounds, lambda: _load(url, one_row, args.requests, 1))
            served_hundred = _median_of(
                args.rounds, lambda: _load(url, hundred, max(200, args.requests // 10), 1)
            )
            pair = _median_of(args.rounds, lambda: _load(url, one_row, args.requests, 2))
            concurrent = _median_of(args.rounds, lambda: _load(url, one_row, args.requests, args.clients))
            explained = _median_of(
                args.rounds,
                lambda: _load(url, one_row, max(200, args.requests // 5), 1, "/invocations?explain=true"),
            )
            counted = _served_by_metrics(url)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

    from models.threads import thread_budget

    budget = 2 * raw_one["p99_ms"] + 2
    concurrent_budget = 2 * served_one["p99_ms"]
    # Little's law: with `clients` requests always in flight, the mean latency is clients / throughput.
    # The load generator shares this machine's CPUs with the server, so its throughput caps it.
    concurrent_mean_ms = args.clients / concurrent["per_second"] * 1000
    threads = thread_budget(workers).describe()
    payload = {
        "workers": workers,
        "threads_per_worker": threads,
        "clients": args.clients,
        "served_one_row_two_clients": pair,
        "served_one_row_concurrent": concurrent,
        "requests_counted_by_metrics": counted,
        "concurrent_p99_budget_ms": concurrent_budget,
        "concurrent_within_budget": concurrent["p99_ms"] <= concurrent_budget and concurrent["errors"] == 0,
        "concurrent_mean_ms_by_littles_law": concurrent_mean_ms,
        "raw_one_row": raw_one,
        "raw_100_rows": raw_hundred,
        "served_one_row": served_one,
        "served_100_rows": served_hundred,
        "online_lookup": online,
        "served_one_row_explained": explained,
        "one_row_p99_budget_ms": budget,
        "within_budget": served_one["p99_ms"] <= budget and served_one["errors"] == 0,
        "overhead_ratio_one_row_p50": served_one["p50_ms"] / raw_one["p50_ms"],
    }
    report(
        "serving_latency",
        [
            ("raw forward, 1 row (p50 / p99)", f"{raw_one['p50_ms']:.2f} / {raw_one['p99_ms']:.2f} ms"),
            (
                "served, 1 row (p50 / p99)",
                f"{served_one['p50_ms']:.2f} / {served_one['p99_ms']:.2f} ms, {served_one['per_second']:.0f} req/s, {served_one['errors']:.0f} errors",
            ),
            (
                "p99 budget for 1 row (2 x raw p99 + 2 ms)",
                f"{budget:.2f} ms -> {'met' if payload['within_budget'] else 'MISSED'}",
            ),
            (
                "served, 1 row, 2 clients (p50 / p99)",
                f"{pair['p50_ms']:.2f} / {pair['p99_ms']:.2f} ms, {pair['per_second']:.0f} req/s, {pair['errors']:.0f} errors",
            ),
            (
                f"served, 1 row, {args.clients} clients (p50 / p99)",
                f"{concurrent['p50_ms']:.2f} / {concurrent['p99_ms']:.2f} ms, {concurrent['per_second']:.0f} req/s, {concurrent['errors']:.0f} errors",
            ),
            (
                f"p99 budget at {args.clients} clients (2 x the 1-client p99)",
                f"{concurrent_budget:.2f} ms -> {'met' if payload['concurrent_within_budget'] else 'MISSED'} "
                f"(mean latency at this throughput, by Little's law: {args.clients} / "
                f"{concurrent['per_second']:.0f} req/s = {concurrent_mean_ms:.2f} ms)",
            ),
            ("server", f"{workers} worker process(es), each {threads}"),
            ("answered requests counted by the server's /metrics (all workers)", f"{counted:,.0f}"),
            (
                "raw forward, 100 rows (p50 / p99)",
                f"{raw_hundred['p50_ms']:.2f} / {raw_hundred['p99_ms']:.2f} ms",
            ),
            (
                "served, 100 rows (p50 / p99)",
                f"{served_hundred['p50_ms']:.2f} / {served_hundred['p99_ms']:.2f} ms, {served_hundred['per_second'] * 100:.0f} rows/s, {served_hundred['errors']:.0f} errors",
            ),
            ("served / raw, 1 row, p50", f"{payload['overhead_ratio_one_row_p50']:.1f}x"),
            (
                "served, 1 row, explained (p50 / p99)",
                f"{explained['p50_ms']:.2f} / {explained['p99_ms']:.2f} ms ({explained['p99_ms'] / served_one['p99_ms']:.1f}x "
                f"the p99 of an unexplained row; integrated gradients, {EXPLANATION_STEPS} steps), "
                f"{explained['errors']:.0f} errors",
            ),
            ("online feature lookup (p50 / p99)", f"{online['p50_ms']:.2f} / {online['p99_ms']:.2f} ms"),
        ],
        payload,
    )
    return payload


if __name__ == "__main__":
    main()
