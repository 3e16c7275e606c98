"""Orchestration overhead: the training pipeline's steps as plain calls vs as the Prefect flow.

Both do the same work on the same data, each in a fresh environment (ingest, validation, features,
training, evaluation, registration), alternating, after a warm-up run that pays first-use costs.
Overhead = (flow - plain) / flow, with and without the one-off start of Prefect's ephemeral API
(a long-running Prefect server removes that start).

    python -m bench.orchestration_overhead [--rows 200000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.common import report, scratch_environment


def _plain(source: Path) -> None:
    from pipelines.training import steps

    ctx = steps.open_environment("local")
    steps.ingest_step(ctx, source)
    build = steps.feature_step(ctx)
    prepared = steps.prepare_step(ctx, build)
    result = steps.train_step(ctx, prepared)
    evaluation = steps.evaluate_step(ctx, prepared, result)
    version = steps.register_step(ctx, prepared, result, evaluation)
    steps.publish_metrics_step(ctx, version, evaluation)


def _flow(source: Path) -> None:
    from pipelines.flows.training import training_flow

    training_flow(env="local", source=str(source))


def _start_prefect() -> None:
    """The API as `mlops run` finds it (`mlops.flow_api`: here Prefect's temporary server, started
    once for this process), then a trivial flow with one task: the first use of Prefect's flow and
    task engines, as the plain warm-up pays the steps' first use."""
    from mlops.flow_api import ensure_flow_api

    ensure_flow_api("local")
    from prefect import flow, task

    @task(name="bench-warm-up-task")
    def one() -> int:
        return 1

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return one()

    warm_up()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    from mlops.settings import load_settings
    from models.threads import configure_threads
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())
    samples: dict[str, list[float]] = {"plain": [], "flow": []}
    with scratch_environment() as root:
        source = root / "incoming" / "bench.parquet"
        warm = root / "incoming" / "warm-up.parquet"
        generate_churn_events(usecase.dataset, ChurnDataConfig(rows=args.rows, seed=7)).to_parquet(source)
        generate_churn_events(usecase.dataset, ChurnDataConfig(rows=5_000, seed=1)).to_parquet(warm)
        with scratch_environment():
            _plain(warm)  # imports and first-use costs are paid before anything is timed
        started = time.perf_counter()
        _start_prefect()
        api_start = time.perf_counter() - started
        for _ in range(args.repeats):
            for name, run in (("plain", _plain), ("flow", _flow)):
                with scratch_environment():
                    started = time.perf_counter()
                    run(source)
                    samples[name].append(time.perf_counter() - started)
    timings = {name: statistics.median(values) for name, values in samples.items()}
    timings["api_start"] = api_start
    with_start = timings["flow"] + timings["api_start"]
    overhead = (with_start - timings["plain"]) / with_start
    per_run = (timings["flow"] - timings["plain"]) / timings["flow"]
    result = {
        "rows": args.rows,
        **timings,
        "overhead_share": overhead,
        "overhead_share_with_running_api": per_run,
        "flow_over_plain": with_start / timings["plain"],
    }
    report(
        "orchestration_overhead",
        [
            ("rows", f"{args.rows:,}"),
            ("threads", configure_threads().describe()),
            ("plain function calls", f"{timings['plain']:.1f} s"),
            ("Prefect ephemeral API start (once per process)", f"{timings['api_start']:.1f} s"),
            ("Prefect flow, API already up", f"{timings['flow']:.1f} s"),
            ("flow incl. API start / plain", f"{result['flow_over_plain']:.2f}x"),
            ("orchestration share of wall time, incl. API start", f"{overhead:.1%}"),
            ("orchestration share of wall time, API already up", f"{per_run:.1%}"),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
