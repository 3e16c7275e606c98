"""Incremental runs: adding a 10,000-row batch to a lake that already holds N rows, against ingesting
that batch alone into an empty lake.

A lake grows in one of two ways, and both are measured (`--growth`):

- **days**: the business runs at the same pace and the lake gains days. N rows span N / 1,000,000
  years at the example's pace (1 M events a year), ending where the example's year ends, so a
  10,000-row batch covers the same few days and touches the same entities at every size. This is
  the issue's case: a daily batch added to a lake that keeps growing.
- **density**: the same year holds N rows (the example generator scales its customers with N), so a
  10,000-row batch covers fewer hours and touches more distinct entities, each with the same
  history: exact window features must read every touched entity's history within the longest
  window, so this grows with the entities touched until a batch touches as many as it has rows.

Each size gets its own scratch environment: N events are ingested and their features built (not
timed), then the next three (`--timed`) 10,000-row batches (later than the lake's, as daily batches are) are added
one after the other and each is timed through ingest and the feature step. Each batch alone is
timed the same way in a fresh environment, before and after the lake. The ratio compares medians.
Target (#20): the added batch within 1.5x of the batch alone, flat as the lake grows (by days).
Training reads all the history it trains on by design and is not part of this figure.

`--batches-before N` measures what the commits cost instead of the rows: the lake is built from N
earlier batches of the same size, each ingested and its features appended as a daily run would,
then the next batches are timed the same way. The same lake is built twice, side by side: as shipped
(old snapshots expire; each earlier batch counts as a day old) and with no snapshot ever expiring;
with `--fast-appends`, a third time with manifest merging off too (what the lake did before either).

    python -m bench.incremental [--sizes 1000000 5000000] [--growth days density] [--batch 10000]
    python -m bench.incremental --batches-before 200 [--fast-appends]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import report, scratch_environment
from models.threads import thread_budget

TARGET_RATIO = 1.5
EXAMPLE_YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)  # where the example generator's default year ends
ROWS_PER_YEAR = 1_000_000  # the example's pace when the lake grows by days
BATCHES = 3  # timed batches per lake, unless --timed says otherwise


def _events(rows: int, growth: str, seed: int = 7) -> pd.DataFrame:
    """`rows` example events over one year (density) or over as many days as the pace gives (days)."""
    from mlops.settings import load_settings
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.usecase import load_usecase

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())  # no environment needed
    days = 365 if growth == "density" else max(30, round(365 * rows / ROWS_PER_YEAR))
    config = ChurnDataConfig(rows=rows, seed=seed, days=days, start=EXAMPLE_YEAR_END - timedelta(days=days))
    events = generate_churn_events(usecase.dataset, config)
    return events.sort_values(usecase.dataset.event_time, kind="stable").reset_index(drop=True)


def _add(source: Path) -> tuple[float, str]:
    """Seconds to ingest `source` and bring the features up to date, and the feature step's mode."""
    from pipelines.training import steps

    ctx = steps.open_environment("local")
    started = time.perf_counter()
    steps.ingest_step(ctx, source)
    mode = steps.feature_step(ctx).mode
    return time.perf_counter() - started, mode


def _alone(batches: list[pd.DataFrame]) -> list[float]:
    """Each batch ingested into an empty environment of its own."""
    samples = []
    for batch in batches:
        with scratch_environment() as root:
            source = root / "batch.parquet"
            batch.to_parquet(source, index=False)
            samples.append(_add(source)[0])
    return samples


def _added_after(earlier: list[pd.DataFrame], batches: list[pd.DataFrame]) -> tuple[list[float], list[str]]:
    """A lake built from `earlier` batches, one run each (not timed), then each batch added and timed."""
    from pipelines.progress import Progress

    samples, modes = [], []
    progress = Progress(len(earlier), "batches", logging.getLogger(__name__))
    with scratch_environment() as root:
        for number, batch in enumerate([*earlier, *batches]):
            source = root / f"batch-{number}.parquet"
            batch.to_parquet(source, index=False)
            seconds, mode = _add(source)
            source.unlink()
            if number >= len(earlier):
                samples.append(seconds)
                modes.append(mode)
            else:
                progress.advance(1)
    return samples, modes


def _measure_commits(count: int, batch_rows: int, fast_appends: bool, timed: int) -> dict[str, Any]:
    """`count` batches added one by one before the timed ones, against the batches alone."""
    import pipelines.adapters.iceberg_lake as iceberg_lake
    from pipelines.adapters.iceberg_retention import MAX_AGE

    events = _events((count + timed) * batch_rows, "days")
    parts = [
        events.iloc[n * batch_rows : (n + 1) * batch_rows].reset_index(drop=True)
        for n in range(count + timed)
    ]
    earlier, batches = parts[:count], parts[count:]
    alone = _alone(batches)
    results: dict[str, Any] = {}
    shipped, merged = dict(iceberg_lake.RETENTION), dict(iceberg_lake.MERGED_MANIFESTS)
    # The earlier batches stand for earlier days: each is old enough to expire, and the newest
    # `min-snapshots-to-keep` stay, as they do for daily runs (5 days of them are fewer than 10).
    as_days = {**shipped, MAX_AGE: "0"}
    never = {**shipped, MAX_AGE: str(2**62)}
    variants = {"snapshots expire": (merged, as_days), "no expiry": (merged, never)}
    if fast_appends:
        variants["fast appends, no expiry"] = ({"commit.manifest-merge.enabled": "false"}, never)
    for name, (manifests, retention) in variants.items():
        iceberg_lake.MERGED_MANIFESTS, iceberg_lake.RETENTION = manifests, retention
        try:
            added, modes = _added_after(earlier, batches)
        finally:
            iceberg_lake.MERGED_MANIFESTS, iceberg_lake.RETENTION = merged, shipped
        results[name] = {
            "added_s": statistics.median(added),
            "added_samples_s": added,
            "feature_modes": modes,
        }
    alone += _alone(batches)
    for result in results.values():
        result["alone_s"] = statistics.median(alone)
        result["ratio"] = result["added_s"] / result["alone_s"]
    return results


def _measure(size: int, growth: str, batch_rows: int, timed: int) -> dict[str, Any]:
    from mlops.settings import load_settings
    from pipelines.usecase import load_usecase

    dataset = load_usecase(load_settings("local").pipeline.usecase_path()).dataset
    events = _events(size + timed * batch_rows, growth)
    history = events.iloc[:size]
    batches = [
        events.iloc[size + n * batch_rows : size + (n + 1) * batch_rows].reset_index(drop=True)
        for n in range(timed)
    ]
    # Side by side, in one run: the batches alone just before and just after they are added.
    alone = _alone(batches)
    added, modes = _added_after([history], batches)
    alone += _alone(batches)
    first = batches[0]
    return {
        "added_s": statistics.median(added),
        "alone_s": statistics.median(alone),
        "added_samples_s": added,
        "alone_samples_s": alone,
        "ratio": statistics.median(added) / statistics.median(alone),
        "feature_modes": modes,
        "lake_days": (history[dataset.event_time].max() - history[dataset.event_time].min()).days,
        "batch_hours": (first[dataset.event_time].max() - first[dataset.event_time].min()).total_seconds()
        / 3600,
        "batch_entities": int(first[dataset.entity_key].nunique()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--growth", nargs="+", choices=["days", "density"], default=["days", "density"])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batches-before", type=int, default=0, help="Earlier batches, one run each.")
    parser.add_argument("--fast-appends", action="store_true", help="Also build the lake without merging.")
    parser.add_argument("--timed", type=int, default=BATCHES, help="Batches timed per lake (medians).")
    args = parser.parse_args(argv)

    with scratch_environment():
        pass  # configures the runtime (threads) once, before the first torch or numpy work
    if args.batches_before:
        return _report_commits(args.batches_before, args.batch, args.fast_appends, args.timed)
    results = {
        growth: {size: _measure(size, growth, args.batch, args.timed) for size in args.sizes}
        for growth in args.growth
    }

    def within(growth: str) -> bool:
        return all(r["ratio"] <= TARGET_RATIO for r in results[growth].values())

    payload = {
        "batch_rows": args.batch,
        "threads": thread_budget().describe(),
        "growth": results,
        "within_target": {growth: within(growth) for growth in results},
    }
    rows = []
    for growth, sizes in results.items():
        for size, r in sizes.items():
            rows.append(
                (
                    f"{args.batch:,} rows added to {size:,} ({growth})",
                    f"{r['added_s']:.2f} s vs {r['alone_s']:.2f} s alone = {r['ratio']:.2f}x "
                    f"(lake of {r['lake_days']} days; batch of {r['batch_hours']:.0f} h, "
                    f"{r['batch_entities']:,} entities; features {'/'.join(r['feature_modes'])})",
                )
            )
        rows.append(
            (
                f"target ({growth})",
                f"<= {TARGET_RATIO}x at every size -> {'met' if within(growth) else 'MISSED'}",
            )
        )
    rows.append(("threads", payload["threads"]))
    report("incremental", rows, payload)
    return payload


def _report_commits(count: int, batch_rows: int, fast_appends: bool, timed: int) -> dict[str, Any]:
    results = _measure_commits(count, batch_rows, fast_appends, timed)
    payload: dict[str, Any] = {
        "batch_rows": batch_rows,
        "batches_before": count,
        "threads": thread_budget().describe(),
        "lakes": results,
    }
    rows = [
        (
            f"{batch_rows:,} rows added after {count} batches ({name})",
            f"{r['added_s']:.2f} s vs {r['alone_s']:.2f} s alone = {r['ratio']:.2f}x "
            f"(features {'/'.join(r['feature_modes'])})",
        )
        for name, r in results.items()
    ]
    rows.append(("threads", payload["threads"]))
    report("incremental_commits", rows, payload)
    return payload


if __name__ == "__main__":
    main()
