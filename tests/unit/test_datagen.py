from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from pipelines.datagen.churn import ChurnDataConfig, Drift, generate_churn_events


@pytest.mark.parametrize("rows", [1_000, 12_345])
def test_exact_row_count_and_schema(usecase, rows: int) -> None:
    events = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=rows, seed=1))
    assert len(events) == rows
    assert list(events.columns) == list(usecase.dataset.columns)
    assert events["event_id"].is_unique
    assert isinstance(events["event_time"].dtype, pd.DatetimeTZDtype)


def test_same_seed_same_data_other_seed_other_data(usecase) -> None:
    a = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=5_000, seed=3))
    b = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=5_000, seed=3))
    c = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=5_000, seed=4))
    pd.testing.assert_frame_equal(a, b)
    assert not a["customer_id"].isin(c["customer_id"]).any()


def test_size_limits_are_enforced(usecase) -> None:
    with pytest.raises(ValueError, match="between 1,000 and 10,000,000"):
        generate_churn_events(usecase.dataset, ChurnDataConfig(rows=999))


def test_values_respect_the_spec(usecase, small_events: pd.DataFrame) -> None:
    spec = usecase.dataset
    for name, column in spec.columns.items():
        if column.allowed:
            assert set(small_events[name].astype(str)) <= {str(v) for v in column.allowed}, name
        if column.min is not None:
            assert small_events[name].min() >= column.min, name
        if column.max is not None:
            assert small_events[name].max() <= column.max, name
    assert small_events["country"].nunique() >= 50


def test_label_is_a_future_horizon(small_events: pd.DataFrame) -> None:
    """Within a customer, once the 30-day churn window starts every later event is inside it."""
    for _, events in small_events.sort_values("event_time").groupby("customer_id"):
        labels = events["churned_30d"].to_numpy()
        if labels.any():
            first = int(np.argmax(labels))
            assert labels[first:].all()
            span = events["event_time"].iloc[-1] - events["event_time"].iloc[first]
            assert span <= pd.Timedelta(days=30)


def test_churn_depends_on_the_signals(small_events: pd.DataFrame) -> None:
    by_plan = small_events.groupby("plan")["churned_30d"].mean()
    assert by_plan["basic"] > by_plan["premium"]
    assert (
        small_events.loc[small_events.support_ticket == 1, "churned_30d"].mean()
        > small_events["churned_30d"].mean()
    )


def test_numeric_drift_shifts_only_after_its_start(usecase) -> None:
    start = datetime(2025, 7, 1, tzinfo=UTC)
    base = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=20_000, seed=5))
    drifted = generate_churn_events(
        usecase.dataset, ChurnDataConfig(rows=20_000, seed=5, drift=Drift("session_minutes", start, 2.0))
    )
    after = base["event_time"] >= start
    pd.testing.assert_series_equal(
        base.loc[~after, "session_minutes"], drifted.loc[~after, "session_minutes"]
    )
    ratio = drifted.loc[after, "session_minutes"].mean() / base.loc[after, "session_minutes"].mean()
    assert 1.9 < ratio < 2.1


def test_categorical_drift_moves_rows(usecase) -> None:
    start = datetime(2025, 7, 1, tzinfo=UTC)
    drifted = generate_churn_events(
        usecase.dataset, ChurnDataConfig(rows=20_000, seed=5, drift=Drift("country", start, 0.5))
    )
    tail = set(usecase.dataset.categorical_vocabulary("country")[-3:])
    after = drifted["event_time"] >= start
    assert drifted.loc[after, "country"].isin(tail).mean() > 0.4
    assert drifted.loc[~after, "country"].isin(tail).mean() < 0.1


def test_faults_break_what_they_say(usecase) -> None:
    cfg = ChurnDataConfig(
        rows=2_000,
        seed=2,
        faults=("null_keys", "out_of_range", "wrong_types", "duplicates"),
        fault_fraction=0.01,
    )
    broken = generate_churn_events(usecase.dataset, cfg)
    assert broken["customer_id"].isna().sum() == 20
    assert (broken["session_minutes"] < 0).sum() >= 20
    assert (broken["amount"] == "n/a").sum() >= 20
    assert broken["event_id"].duplicated().sum() == 20


def test_the_generator_varies_its_countries_on_request(usecase) -> None:
    allowed = usecase.dataset.categorical_vocabulary("country")
    default = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=20_000, seed=5))
    assert set(default["country"]) <= set(allowed[:60])  # the default data is what it always was
    many = generate_churn_events(usecase.dataset, ChurnDataConfig(rows=400_000, seed=11, countries=200))
    assert set(many["country"]) == set(allowed[:200])
    with pytest.raises(ValueError, match=f"countries must be between 1 and {len(allowed)}"):
        generate_churn_events(usecase.dataset, ChurnDataConfig(rows=2_000, countries=0))
