"""Window features against a row-by-row reference: ties at one instant in any file order, max windows,
lags, category counts and latest values; and `since`, which returns only the newer rows of the same
computation (what an incremental run appends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.paths import PACKAGE_ROOT
from pipelines.features.compute import FEATURE_TIME, compute_window_features, entity_time_order
from pipelines.usecase import UseCase

WINDOWS = (1, 3)


@pytest.fixture(scope="module")
def usecase() -> UseCase:
    """The churn use case with every kind of feature the view can declare."""
    raw = yaml.safe_load((PACKAGE_ROOT / "usecases" / "churn.yaml").read_text())
    raw["features"].update(
        windows_days=list(WINDOWS),
        aggregations=[
            {"function": "count"},
            {"function": "sum", "column": "amount"},
            {"function": "mean", "column": "session_minutes"},
            {"function": "max", "column": "amount"},
        ],
        category_counts=[{"column": "plan", "values": ["basic", "premium"]}],
        latest=["plan", "amount"],
        lags=[{"column": "session_minutes", "periods": [1, 2], "difference": True}],
    )
    return UseCase.model_validate(raw)


def _events(rows: int, seed: int) -> pd.DataFrame:
    """Few entities and few distinct whole seconds, so that many events share an instant; shuffled,
    so file order says nothing about primary-key order."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "event_id": [f"e{n:05d}" for n in rng.permutation(rows)],
            "customer_id": rng.choice(["a", "b", "c", "d"], rows),
            "event_time": start + pd.to_timedelta(rng.integers(0, 40, rows) * 10_800, unit="s"),
            "session_minutes": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows).round(3)),
            "amount": rng.integers(0, 100, rows).astype(float),
            "support_ticket": rng.integers(0, 2, rows),
            "country": "DE",
            "plan": rng.choice(["basic", "premium", "trial"], rows),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _reference(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (entity, instant), computed the slow and obvious way."""
    rows = []
    for customer, own in events.groupby("customer_id"):
        own = own.sort_values(["event_time", "event_id"])
        instants = sorted(own["event_time"].unique())
        latest_at = [own[own.event_time == t].iloc[-1] for t in instants]  # the greatest event id
        for position, instant in enumerate(instants):
            row: dict[str, object] = {"customer_id": customer, FEATURE_TIME: instant}
            for days in WINDOWS:
                window = own[
                    (own.event_time <= instant) & (own.event_time > instant - pd.Timedelta(days=days))
                ]
                row[f"event_count_{days}d"] = len(window)
                row[f"amount_sum_{days}d"] = window.amount.sum()
                row[f"session_minutes_mean_{days}d"] = window.session_minutes.fillna(0).sum() / len(window)
                row[f"amount_max_{days}d"] = window.amount.max()
                for value in ("basic", "premium"):
                    row[f"plan_{value}_count_{days}d"] = float((window.plan == value).sum())
            row["plan"], row["amount"] = latest_at[position].plan, latest_at[position].amount
            now = latest_at[position].session_minutes
            for period in (1, 2):
                lagged = latest_at[position - period].session_minutes if position >= period else np.nan
                row[f"session_minutes_lag{period}"] = lagged
                row[f"session_minutes_diff{period}"] = now - lagged
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_features_equal_a_row_by_row_reference(usecase: UseCase, seed: int) -> None:
    events = _events(400, seed)
    got = compute_window_features(events, usecase)
    want = _reference(events)
    assert len(got) == len(want) < len(events)  # ties at one instant did occur, and give one row
    assert list(got["customer_id"]) == list(want["customer_id"])  # ordered by entity, then time
    for column in want.columns:
        if column in ("customer_id", "plan", FEATURE_TIME):
            assert list(got[column]) == list(want[column]), column
        else:
            np.testing.assert_allclose(
                got[column].to_numpy(float), want[column].to_numpy(float), err_msg=column
            )


@pytest.mark.parametrize("seed", [1, 2])
def test_since_returns_exactly_the_newer_rows_of_the_whole_computation(usecase: UseCase, seed: int) -> None:
    events = _events(600, seed)
    whole = compute_window_features(events, usecase)
    rng = np.random.default_rng(seed)
    since = pd.Series(
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 40, 3) * 10_800, unit="s"),
        index=["a", "b", "x"],  # "c" and "d" are not wanted at all; "x" has no events
    )
    got = compute_window_features(events, usecase, since=since)
    keep = whole[FEATURE_TIME] >= whole["customer_id"].map(since)
    want = whole[keep].reset_index(drop=True)
    assert 0 < len(got) < len(whole) and set(got["customer_id"]) <= {"a", "b"}
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("entities", [50, 70_000])  # one radix pass of the codes, and two
@pytest.mark.parametrize("arrival", ["shuffled", "in time order"])
def test_rows_are_ordered_exactly_as_a_lexicographic_sort_would(entities: int, arrival: str) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, entities, 200_000).astype(np.int64)
    instants = rng.integers(0, 5_000, 200_000).astype(np.int64)  # many ties at one instant
    if arrival == "in time order":
        instants.sort()
    expected = np.lexsort((instants, codes))
    assert np.array_equal(entity_time_order(codes, instants), expected)
    assert np.array_equal(entity_time_order(codes[:0], instants[:0]), expected[:0])
