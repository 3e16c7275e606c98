"""Incremental runs: adding a 10,000-row batch to a lake that already holds N rows, against ingesting
that batch alone into an empty lake.

Each size gets its own scratch environment: N example events are ingested and their features built
(not timed), then the newest 10,000 events (later than the lake's, as a daily batch is) are added
and timed through ingest and the feature step. The batch alone is timed the same way in a fresh
environment. Target (#20): the added batch within 1.5x of the batch alone, flat as the lake grows.
Training reads all the history it trains on by design and is not part of this figure.

    python -m bench.incremental [--sizes 1000000 5000000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import report, scratch_environment
from models.threads import thread_budget

TARGET_RATIO = 1.5


def _events(rows: int, seed: int = 7) -> pd.DataFrame:
    from mlops.settings import load_settings
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())  # no environment needed
    events = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=rows, seed=seed))
    return events.sort_values(usecase.dataset.event_time, kind="stable").reset_index(drop=True)


def _add(source: Path) -> tuple[float, str]:
    """Seconds to ingest `source` and bring the features up to date, and the feature step's mode."""
    from pipelines.training import steps

    ctx = steps.open_environment("local")
    started = time.perf_counter()
    steps.ingest_step(ctx, source)
    mode = steps.feature_step(ctx).mode
    return time.perf_counter() - started, mode


def _alone(batch: pd.DataFrame, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        with scratch_environment() as root:
            source = root / "batch.parquet"
            batch.to_parquet(source, index=False)
            samples.append(_add(source)[0])
    return statistics.median(samples)


def _added_to_lake(history: pd.DataFrame, batch: pd.DataFrame) -> tuple[float, str]:
    with scratch_environment() as root:
        lake = root / "history.parquet"
        history.to_parquet(lake, index=False)
        _add(lake)  # the lake as it stands before the batch (not timed)
        source = root / "batch.parquet"
        batch.to_parquet(source, index=False)
        return _add(source)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="Runs of the batch alone (median).")
    args = parser.parse_args(argv)

    results: dict[int, dict[str, Any]] = {}
    with scratch_environment():
        pass  # configures the runtime (threads) once, before the first torch or numpy work
    for size in args.sizes:
        events = _events(size + args.batch)
        history, batch = events.iloc[:size], events.iloc[size:]
        # Side by side, in one run: the batch alone just before and just after the added batch.
        before = _alone(batch, args.repeats)
        added, mode = _added_to_lake(history, batch)
        after = _alone(batch, args.repeats)
        alone = statistics.median([before, after])
        results[size] = {"added_s": added, "alone_s": alone, "ratio": added / alone, "feature_mode": mode}

    ratios = [r["ratio"] for r in results.values()]
    payload = {
        "batch_rows": args.batch,
        "threads": thread_budget().describe(),
        "sizes": results,
        "within_target": all(r <= TARGET_RATIO for r in ratios),
    }
    rows = [
        (
            f"{args.batch:,} rows added to {size:,}",
            f"{r['added_s']:.1f} s vs {r['alone_s']:.1f} s alone = {r['ratio']:.2f}x (features {r['feature_mode']})",
        )
        for size, r in results.items()
    ]
    rows.append(
        (
            "target",
            f"<= {TARGET_RATIO}x, flat as the lake grows -> {'met' if payload['within_target'] else 'MISSED'}",
        )
    )
    rows.append(("threads", payload["threads"]))
    report("incremental", rows, payload)
    return payload


if __name__ == "__main__":
    main()
