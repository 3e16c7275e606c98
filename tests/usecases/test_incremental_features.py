"""Features for what changed: batches appended one after another give, row for row, the offline table
a full recompute gives; a late event or a crash between commits ends in the same table too."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.paths import PACKAGE_ROOT
from pipelines.datagen.examples import generate_example
from pipelines.features.compute import FEATURE_TIME, compute_window_features
from pipelines.lake.ingest import curated_table
from pipelines.training import steps

USECASES = {"churn": 8_000, "store_demand": 6_000}  # no lags / lags (which look back by events)
WINDOW_KINDS = "churn_windows"  # churn with a max and category counts, each over a column nothing else reads


def _usecase_file(name: str, tmp_path: Path) -> Path:
    """A shipped use case, or the churn one with every window kind: the max of `amount` instead of
    its sum, and counts of `plan` values instead of the latest plan (so only those windows read
    either column from earlier events)."""
    if name != WINDOW_KINDS:
        return PACKAGE_ROOT / "usecases" / f"{name}.yaml"
    spec = yaml.safe_load((PACKAGE_ROOT / "usecases" / "churn.yaml").read_text())
    features = spec["features"]
    kept = [a for a in features["aggregations"] if a.get("column") != "amount"]
    features["aggregations"] = [*kept, {"function": "max", "column": "amount"}]
    features["category_counts"] = [{"column": "plan", "values": ["basic", "premium"]}]
    features["latest"] = ["country"]
    path = tmp_path / "churn_windows.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _batches(ctx: Any, rows: int, parts: int = 3) -> list[pd.DataFrame]:
    """Example events cut by time into `parts` batches, each later than the one before."""
    events = generate_example(ctx.usecase, rows, seed=3)
    times = events[ctx.usecase.dataset.event_time]
    cuts = [times.min(), *times.quantile([i / parts for i in range(1, parts)]).tolist(), None]
    return [
        events[(times >= low) & ((times < high) if high is not None else True)]
        for low, high in itertools.pairwise(cuts)
    ]


def _ingest(ctx: Any, frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    steps.ingest_step(ctx, path)
    return steps.feature_step(ctx).mode


def _offline(ctx: Any) -> pd.DataFrame:
    key = ctx.usecase.dataset.entity_key
    frame = ctx.features.read_offline(ctx.usecase.features)
    return frame.sort_values([key, FEATURE_TIME]).reset_index(drop=True)


def _full_recompute(ctx: Any) -> pd.DataFrame:
    """The same table built from all of curated at once, written and read back the same way."""
    curated = ctx.platform.lake.current_snapshot(curated_table(ctx.usecase.dataset))
    events = ctx.platform.lake.read(curated_table(ctx.usecase.dataset)).to_pandas()
    ctx.features.write_offline(
        ctx.usecase.features, compute_window_features(events, ctx.usecase), curated.snapshot_id
    )
    return _offline(ctx)


@pytest.mark.parametrize("name", [*sorted(USECASES), WINDOW_KINDS])
def test_appended_batches_equal_a_full_recompute_row_for_row(
    name: str, use_environment: Callable[..., Path], tmp_path: Path
) -> None:
    use_environment(_usecase_file(name, tmp_path))
    ctx = steps.open_environment("local")
    modes = [
        _ingest(ctx, batch, tmp_path / f"b{i}.parquet")
        for i, batch in enumerate(_batches(ctx, USECASES.get(name, USECASES["churn"])))
    ]
    assert modes == ["computed", "appended", "appended"]
    incremental = _offline(ctx)
    pd.testing.assert_frame_equal(incremental, _full_recompute(ctx))

    key = ctx.usecase.dataset.entity_key
    latest = incremental.drop_duplicates(key, keep="last")
    online = ctx.features.online(ctx.usecase.features, latest[key].astype(str).tolist(), key)
    assert len(online) == len(latest)  # every entity's newest row is online, appended ones included
    assert (
        pd.to_datetime(online[FEATURE_TIME], utc=True).to_numpy() == latest[FEATURE_TIME].to_numpy()
    ).all()


def test_a_late_event_makes_the_step_recompute_and_the_table_stays_exact(
    use_environment: Callable[..., Path], tmp_path: Path
) -> None:
    use_environment(PACKAGE_ROOT / "usecases" / "churn.yaml")
    ctx = steps.open_environment("local")
    first, second, third = _batches(ctx, USECASES["churn"])
    _ingest(ctx, pd.concat([first, second]), tmp_path / "history.parquet")
    dataset = ctx.usecase.dataset
    late = second.tail(1).copy()  # an event of a known entity, older than that entity's newest
    late[dataset.primary_key[0]] = "late-event-1"
    late[dataset.event_time] = first[dataset.event_time].min() + pd.Timedelta(hours=1)
    assert _ingest(ctx, pd.concat([third, late]), tmp_path / "late.parquet") == "computed"
    pd.testing.assert_frame_equal(_offline(ctx), _full_recompute(ctx))


@pytest.mark.parametrize("crash", ["append_offline", "materialize"])
def test_a_crash_at_either_commit_of_an_incremental_run_is_completed_by_the_rerun(
    crash: str, use_environment: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(PACKAGE_ROOT / "usecases" / "churn.yaml")
    ctx = steps.open_environment("local")
    first, second, third = _batches(ctx, USECASES["churn"])
    _ingest(ctx, first, tmp_path / "first.parquet")
    steps.ingest_step(ctx, _written(pd.concat([second, third]), tmp_path / "new.parquet"))
    with monkeypatch.context() as patched:

        def killed(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"killed at {crash}")

        patched.setattr(type(ctx.features), crash, killed)
        with pytest.raises(RuntimeError, match="killed"):
            steps.feature_step(ctx)
    rerun = steps.feature_step(ctx)
    # Killed before the offline commit: the rerun appends. After it: the table is current and reused.
    assert rerun.mode == ("appended" if crash == "append_offline" else "reused")
    pd.testing.assert_frame_equal(_offline(ctx), _full_recompute(ctx))


def _written(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def test_the_query_engine_path_builds_the_same_table(
    use_environment: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """From the configured size (0 here: always) the full build runs on the environment's query
    engine (DuckDB locally); later batches append to its table in-process; both equal a recompute."""
    use_environment(PACKAGE_ROOT / "usecases" / "store_demand.yaml", features={"query_engine_from_rows": 0})
    ctx = steps.open_environment("local")
    batches = _batches(ctx, USECASES["store_demand"], parts=2)
    with caplog.at_level("INFO", logger="pipelines.training.steps"):
        assert _ingest(ctx, batches[0], tmp_path / "b0.parquet") == "computed"
    assert "computed by the duckdb query engine" in caplog.text
    on_engine = _offline(ctx)
    pd.testing.assert_frame_equal(on_engine, _full_recompute(ctx), check_exact=False, rtol=1e-9)
    assert _ingest(ctx, batches[1], tmp_path / "b1.parquet") == "appended"
    pd.testing.assert_frame_equal(_offline(ctx), _full_recompute(ctx), check_exact=False, rtol=1e-9)


def test_a_lag_across_batches_reads_the_last_of_a_tie_by_primary_key(
    use_environment: Callable[..., Path], tmp_path: Path
) -> None:
    """Two reports of one store at one instant: the feature row takes the one with the greater
    primary key, and so does the next batch's lag, whichever of the two a file holds first."""
    use_environment(PACKAGE_ROOT / "usecases" / "store_demand.yaml")
    ctx = steps.open_environment("local")
    dataset = ctx.usecase.dataset
    (key,) = dataset.primary_key
    first, second = _batches(ctx, USECASES["store_demand"], parts=2)
    latest = first.sort_values(dataset.event_time, kind="stable").drop_duplicates(
        dataset.entity_key, keep="last"
    )
    rows = latest.head(2)  # two stores' last reports of the batch: the next batch's lag1 reads them
    twins = rows.copy()
    twins[key] = twins[key] + "-twin"  # greater than the original's key
    twins["units"] = twins["units"] + 1000
    # One store's twin is read before its original, the other's after it.
    tied = pd.concat([twins.iloc[:1], first, twins.iloc[1:]], ignore_index=True)
    assert _ingest(ctx, tied, tmp_path / "first.parquet") == "computed"
    assert _ingest(ctx, second, tmp_path / "second.parquet") == "appended"
    incremental = _offline(ctx)
    pd.testing.assert_frame_equal(incremental, _full_recompute(ctx))
    next_rows = incremental[incremental[FEATURE_TIME] > first[dataset.event_time].max()]
    lagged = next_rows.drop_duplicates(dataset.entity_key).set_index(dataset.entity_key)["units_lag1"]
    assert (lagged[rows[dataset.entity_key]] >= 1000).all()
