"""Validation cost: the ingest gate vs the same checks in plain pandas, on 1,000,000 rows.

The gate evaluates the Great Expectations suite exactly in one vectorised pass and renders GE's
validation page; Great Expectations' own pandas engine on the same suite is measured beside it.

python -m bench.validation_cost [--rows 1000000]
"""

from __future__ import annotations

import argparse

import pandas as pd

from bench.common import best_of, report, scratch_environment
from pipelines.usecase import DatasetSpec


def pandas_checks(frame: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """The suite's checks written by hand in pandas: what GE's convenience costs is measured against this."""
    failed = []
    stats = spec.statistics
    if not stats.min_rows <= len(frame) <= (stats.max_rows or len(frame)):
        failed.append("row_count")
    for name, column in spec.columns.items():
        if name not in frame.columns:
            failed.append(f"{name}: missing")
            continue
        values = frame[name]
        if not column.nullable and values.isna().any():
            failed.append(f"{name}: nulls")
        if column.type in ("int", "float") and not pd.api.types.is_numeric_dtype(values):
            failed.append(f"{name}: type")
        if column.min is not None and (values < column.min).any():
            failed.append(f"{name}: below min")
        if column.max is not None and (values > column.max).any():
            failed.append(f"{name}: above max")
        if column.allowed and not values.dropna().isin(list(column.allowed)).all():
            failed.append(f"{name}: not in set")
    if frame.duplicated(list(spec.primary_key)).any():
        failed.append("primary key not unique")
    for name, (low, high) in stats.mean_between.items():
        if not low <= frame[name].mean() <= high:
            failed.append(f"{name}: mean")
    return failed


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from mlops.settings import load_settings
    from models.threads import configure_threads
    from pipelines.datagen.churn import ChurnDataConfig, generate_churn_events
    from pipelines.platform import connect
    from pipelines.usecase import load_usecase
    from pipelines.validation.reference import great_expectations_results
    from pipelines.validation.runner import validate_batch
    from pipelines.validation.suite import expectations_for

    usecase = load_usecase(load_settings("local").pipeline.usecase_path())
    frame = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=args.rows, seed=7))
    with scratch_environment():
        from mlops.bootstrap import local_contract

        store = connect(local_contract(load_settings("local"))).artifacts
        validate_batch(frame.head(5_000), usecase.dataset, "warm-up", store)
        gate_time, _ = best_of(args.repeats, lambda: validate_batch(frame, usecase.dataset, "bench", store))
        passed = validate_batch(frame, usecase.dataset, "check", store).success
    assert passed and not pandas_checks(frame, usecase.dataset), "the data should pass every check"
    pandas_time, _ = best_of(args.repeats, lambda: pandas_checks(frame, usecase.dataset))
    suite = expectations_for(usecase.dataset)
    great_expectations_results(frame.head(5_000), suite)
    engine_time, _ = best_of(args.repeats, lambda: great_expectations_results(frame, suite))
    result = {
        "rows": args.rows,
        "gate_s": gate_time,
        "great_expectations_engine_s": engine_time,
        "pandas_s": pandas_time,
        "ratio": gate_time / pandas_time,
        "engine_ratio": engine_time / pandas_time,
    }
    report(
        "validation_cost",
        [
            ("rows", f"{args.rows:,}"),
            ("threads", configure_threads().describe()),
            ("expectations", str(len(expectations_for(usecase.dataset)))),
            ("gate: exact suite pass + GE validation page", f"{gate_time:.2f} s"),
            ("Great Expectations' pandas engine, same suite (no docs)", f"{engine_time:.2f} s"),
            ("same checks in plain pandas", f"{pandas_time:.2f} s"),
            ("gate / pandas (goal <= 3x)", f"{result['ratio']:.1f}x"),
            ("GE engine / pandas", f"{result['engine_ratio']:.1f}x"),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
