"""Window features, point-in-time joins and the online store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.features.compute import FEATURE_TIME, compute_window_features, point_in_time_join
from pipelines.features.store import FeatureStore
from pipelines.platform import Platform
from pipelines.usecase import UseCase


def _events(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "session_minutes", "support_ticket"])
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    frame["amount"] = 1.0
    frame["country"] = "DE"
    frame["plan"] = "basic"
    return frame


def _brute_force(
    events: pd.DataFrame, customer: str, at: pd.Timestamp, days: int, column: str | None
) -> float:
    own = events[
        (events.customer_id == customer)
        & (events.event_time <= at)
        & (events.event_time > at - pd.Timedelta(days=days))
    ]
    return float(len(own)) if column is None else float(own[column].sum())


def test_window_aggregates_match_brute_force(usecase, small_events: pd.DataFrame) -> None:
    sample = small_events[small_events.customer_id.isin(small_events.customer_id.unique()[:40])]
    features = compute_window_features(sample, usecase)
    rng = np.random.default_rng(0)
    for index in rng.choice(len(features), size=60, replace=False):
        row = features.iloc[index]
        for window in usecase.features.windows_days:
            for agg in usecase.features.aggregations:
                expected = _brute_force(sample, row.customer_id, row[FEATURE_TIME], window, agg.column)
                assert row[agg.feature_name(window)] == pytest.approx(expected), (
                    agg.feature_name(window),
                    index,
                )


def test_ties_at_the_same_instant_are_all_included(usecase) -> None:
    events = _events([("a", "2025-01-01T10:00", 5.0, 0), ("a", "2025-01-01T10:00", 7.0, 1)])
    features = compute_window_features(events, usecase)
    assert len(features) == 1
    assert features.iloc[0]["event_count_7d"] == 2
    assert features.iloc[0]["session_minutes_sum_7d"] == 12.0


def test_point_in_time_join_never_leaks_future_values(usecase) -> None:
    """A naive join (latest features per customer) leaks the future; the as-of join does not."""
    events = _events(
        [
            ("a", "2025-01-01", 10.0, 0),
            ("a", "2025-01-05", 10.0, 0),
            ("a", "2025-01-20", 10.0, 1),  # after the label time below: must not be seen
            ("a", "2025-01-21", 10.0, 1),
            ("b", "2025-01-02", 3.0, 0),
        ]
    )
    features = compute_window_features(events, usecase)
    spine = pd.DataFrame(
        {"customer_id": ["a", "b"], "event_time": pd.to_datetime(["2025-01-06", "2025-01-06"], utc=True)}
    )

    naive = spine.merge(
        features.sort_values(FEATURE_TIME).drop_duplicates("customer_id", keep="last"), on="customer_id"
    )
    assert (
        naive.loc[naive.customer_id == "a", "support_ticket_sum_30d"].item() == 2
    )  # the leak we guard against

    joined = point_in_time_join(spine, features, "customer_id", "event_time", ttl_days=90)
    a = joined[joined.customer_id == "a"].iloc[0]
    assert a["event_count_30d"] == 2 and a["support_ticket_sum_30d"] == 0
    assert a[FEATURE_TIME] <= spine.event_time[0]
    assert joined[joined.customer_id == "b"].iloc[0]["session_minutes_sum_7d"] == 3.0


def test_point_in_time_join_keeps_spine_order_and_respects_ttl(usecase) -> None:
    events = _events([("a", "2025-01-01", 1.0, 0), ("a", "2025-06-01", 1.0, 0)])
    features = compute_window_features(events, usecase)
    spine = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "event_time": pd.to_datetime(["2025-06-02", "2025-03-15", "2024-12-31"], utc=True),
        }
    )
    joined = point_in_time_join(spine, features, "customer_id", "event_time", ttl_days=30)
    assert list(joined.event_time) == list(spine.event_time)
    assert joined.loc[0, "event_count_7d"] == 1  # the June event
    assert pd.isna(joined.loc[1, "event_count_7d"])  # January's row is older than the TTL
    assert pd.isna(joined.loc[2, "event_count_7d"])  # nothing before the first event


def test_offline_store_versions_and_online_lookup(
    platform: Platform, usecase, small_events: pd.DataFrame
) -> None:
    store = FeatureStore(platform.lake, platform.online_store, "features")
    features = compute_window_features(small_events, usecase)
    snap = store.write_offline(usecase.features, features, source_snapshot_id=123)
    assert store.current_for(usecase.features, 123) == snap
    assert store.current_for(usecase.features, 124) is None
    assert len(store.read_offline(usecase.features, snap.snapshot_id)) == len(features)

    assert store.materialize(usecase.features, features, "customer_id") == small_events.customer_id.nunique()
    keys = [*list(small_events.customer_id.unique()[:5]), "unknown-customer"]
    online = store.online(usecase.features, keys, "customer_id")
    assert list(online.customer_id) == keys[:5]
    latest = features.sort_values(FEATURE_TIME).groupby("customer_id").tail(1).set_index("customer_id")
    for _, row in online.iterrows():
        assert row["event_count_90d"] == latest.loc[row.customer_id, "event_count_90d"]
        assert row["country"] == latest.loc[row.customer_id, "country"]


def test_online_store_never_goes_back_in_time(platform: Platform) -> None:
    store = platform.online_store
    newer = pd.DataFrame({"k": ["a"], "feature_time": [pd.Timestamp("2025-02-01", tz="UTC")], "x": [2.0]})
    older = pd.DataFrame({"k": ["a"], "feature_time": [pd.Timestamp("2025-01-01", tz="UTC")], "x": [1.0]})
    store.write("v", newer, "k")
    store.write("v", older, "k")
    assert store.read("v", ["a"], "k").iloc[0]["x"] == 2.0


def test_latest_rows_of_a_stream_in_any_order_are_the_materialized_ones(
    small_events: pd.DataFrame, usecase: UseCase
) -> None:
    import pyarrow as pa

    from pipelines.features.store import LatestRows

    features = compute_window_features(small_events, usecase)
    shuffled = pa.Table.from_pandas(features.sample(frac=1.0, random_state=4), preserve_index=False)
    latest = LatestRows("customer_id")
    passed = [latest.add(batch) for batch in shuffled.to_batches(max_chunksize=333)]
    assert sum(b.num_rows for b in passed) == latest.rows == len(features)
    got = latest.table(shuffled.schema).to_pandas().set_index("customer_id")
    want = features.sort_values(FEATURE_TIME).groupby("customer_id").tail(1).set_index("customer_id")
    assert len(got) == small_events.customer_id.nunique()
    pd.testing.assert_frame_equal(got.sort_index(), want[got.columns].sort_index(), check_dtype=False)
