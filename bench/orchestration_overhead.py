"""Orchestration overhead: the training pipeline's steps as plain calls vs as the Prefect flow.

Both runs do the same work on the same data in fresh environments (ingest, validation, features,
training, evaluation, registration). Overhead = (flow - plain) / flow. The flow's figure includes
starting Prefect's ephemeral API, which a long-running Prefect server removes.

    python -m bench.orchestration_overhead [--rows 200000]
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args(argv)

    from mlops.settings import load_settings
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())
    timings = {}
    with scratch_environment() as root:
        source = root / "incoming" / "bench.parquet"
        generate_churn_events(usecase.dataset, ChurnDataConfig(rows=args.rows, seed=7)).to_parquet(source)
        for name, run in (("plain", _plain), ("flow", _flow)):
            with scratch_environment():
                started = time.perf_counter()
                run(source)
                timings[name] = time.perf_counter() - started
    overhead = (timings["flow"] - timings["plain"]) / timings["flow"]
    result = {
        "rows": args.rows,
        **timings,
        "overhead_share": overhead,
        "flow_over_plain": timings["flow"] / timings["plain"],
    }
    report(
        "orchestration_overhead",
        [
            ("rows", f"{args.rows:,}"),
            ("plain function calls", f"{timings['plain']:.1f} s"),
            ("Prefect flow (incl. ephemeral API start)", f"{timings['flow']:.1f} s"),
            ("flow / plain", f"{result['flow_over_plain']:.2f}x"),
            ("orchestration share of flow wall time", f"{overhead:.1%}"),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
