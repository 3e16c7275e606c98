"""Batch inference's streamed point-in-time join equals the training set's, and its chunks become
the scorer's arrays faithfully."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.errors import DuplicateFeatureRows
from pipelines.features.as_of import as_of_batches
from pipelines.features.compute import FEATURE_TIME, point_in_time_join
from pipelines.inference.job import feature_arrays
from pipelines.progress import progress_line

TTL_DAYS = 3


def _frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A spine and a feature table over a few entities, with the edges made likely: spine times equal
    to feature times, features exactly TTL old, entities without features, missing values."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    seconds = rng.integers(0, 20 * 86_400, rows)
    features = pd.DataFrame(
        {
            "customer": rng.choice(["a", "b", "c", "d"], rows),
            FEATURE_TIME: start + pd.to_timedelta(seconds, unit="s"),
            "spend_7d": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows)),
            "plan": rng.choice(["basic", "pro", None], rows),
        }
    ).drop_duplicates(["customer", FEATURE_TIME])
    exact = features.sample(rows // 4, random_state=seed)[["customer", FEATURE_TIME]]
    ttl_edge = exact.assign(**{FEATURE_TIME: exact[FEATURE_TIME] + pd.Timedelta(days=TTL_DAYS)})
    random_times = pd.DataFrame(
        {
            "customer": rng.choice(["a", "b", "c", "d", "e"], rows),  # "e" has no features at all
            FEATURE_TIME: start + pd.to_timedelta(rng.integers(0, 25 * 86_400, rows), unit="s"),
        }
    )
    spine = pd.concat([exact, ttl_edge, random_times]).rename(columns={FEATURE_TIME: "event_time"})
    spine = spine.assign(event_id=[f"e{i}" for i in range(len(spine))]).reset_index(drop=True)
    return spine, features.reset_index(drop=True)


def _categories(column: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in column]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_streamed_join_equals_the_training_sets_point_in_time_join(seed: int, tmp_path: Path) -> None:
    spine, features = _frames(3_000, seed)
    expected = point_in_time_join(spine, features, "customer", "event_time", TTL_DAYS)
    batches = list(
        as_of_batches(
            pa.Table.from_pandas(spine, preserve_index=False).to_reader(max_chunksize=700),
            lambda: pa.Table.from_pandas(features, preserve_index=False).to_reader(max_chunksize=500),
            "customer",
            "event_time",
            TTL_DAYS,
            tmp_path,
            memory_limit="256MB",
            batch_rows=1_000,
        )
    )
    assert max(b.num_rows for b in batches) <= 1_000 < sum(b.num_rows for b in batches)
    assert len({b.schema for b in batches}) == 1  # exact and as-of rows alike
    got = pa.Table.from_batches(batches).to_pandas().sort_values("event_id").reset_index(drop=True)
    want = expected.sort_values("event_id").reset_index(drop=True)
    assert list(got.columns) == ["customer", "event_time", "event_id", "spend_7d", "plan"]
    pd.testing.assert_series_equal(got["event_id"], want["event_id"])
    np.testing.assert_array_equal(got["spend_7d"].to_numpy(float), want["spend_7d"].to_numpy(float))
    assert _categories(got["plan"]) == _categories(want["plan"])
    # the edges did occur: exact matches, TTL-old features joined, entities left without features
    assert got["spend_7d"].notna().sum() > len(got) / 3 and got.loc[got.customer == "e", "plan"].isna().all()


def _joined(spine: pd.DataFrame, features: pd.DataFrame, tmp_path: Path, opened: list[int]) -> pd.DataFrame:
    def open_features() -> pa.RecordBatchReader:
        opened.append(1)
        return pa.Table.from_pandas(features, preserve_index=False).to_reader(max_chunksize=300)

    batches = as_of_batches(
        pa.Table.from_pandas(spine, preserve_index=False).to_reader(max_chunksize=400),
        open_features,
        "customer",
        "event_time",
        TTL_DAYS,
        tmp_path,
        memory_limit="256MB",
        batch_rows=500,
    )
    return pa.Table.from_batches(list(batches)).to_pandas()


def test_events_at_their_features_instants_take_the_exact_pass_alone(tmp_path: Path) -> None:
    _, features = _frames(2_000, 3)
    spine = features[["customer", FEATURE_TIME]].rename(columns={FEATURE_TIME: "event_time"})
    spine = spine.assign(event_id=[f"e{i}" for i in range(len(spine))])
    opened: list[int] = []
    got = _joined(spine, features, tmp_path, opened).sort_values(
        "event_id", key=lambda s: s.str[1:].astype(int)
    )
    want = point_in_time_join(spine, features, "customer", "event_time", TTL_DAYS)
    assert len(opened) == 1 and len(got) == len(spine)  # no row needed the as-of pass
    np.testing.assert_array_equal(got["spend_7d"].to_numpy(float), want["spend_7d"].to_numpy(float))
    assert _categories(got["plan"]) == _categories(want["plan"])


def test_two_feature_rows_at_one_instant_are_refused_before_the_last_batch_is_taken(tmp_path: Path) -> None:
    _, features = _frames(1_000, 4)
    doubled = pd.concat([features, features.head(1)])
    spine = features.head(50)[["customer", FEATURE_TIME]].rename(columns={FEATURE_TIME: "event_time"})
    with pytest.raises(
        DuplicateFeatureRows, match=r"51 joined rows for 50 input rows.*\(customer, feature_time\)"
    ):
        _joined(spine, doubled, tmp_path, [])


def test_a_feature_one_second_past_the_ttl_is_not_joined(tmp_path: Path) -> None:
    t0 = pd.Timestamp("2026-03-01", tz="UTC")
    features = pd.DataFrame({"customer": ["a", "b"], FEATURE_TIME: [t0, t0], "spend_7d": [1.0, 2.0]})
    spine = pd.DataFrame(
        {
            "customer": ["a", "b"],
            "event_time": [t0 + pd.Timedelta(days=TTL_DAYS), t0 + pd.Timedelta(days=TTL_DAYS, seconds=1)],
        }
    )
    joined = pa.Table.from_batches(
        list(
            as_of_batches(
                pa.Table.from_pandas(spine).to_reader(),
                lambda: pa.Table.from_pandas(features).to_reader(),
                "customer",
                "event_time",
                TTL_DAYS,
                tmp_path,
            )
        )
    ).to_pandas()
    values = joined.set_index("customer")["spend_7d"]
    assert values["a"] == 1.0 and np.isnan(values["b"])


def test_feature_arrays_turn_missing_numbers_into_nan_and_keep_categories() -> None:
    batch = pa.record_batch(
        {
            "spend": pa.array([1.5, None, 3.0]),
            "active": pa.array([True, False, None]),
            "visits": pa.array([1, 2, 3], pa.int32()),
            "plan": pa.array(["pro", None, "basic"]),
            "region": pa.array([3, None, 1]),
        }
    )
    numeric, categorical = feature_arrays(batch, ["spend", "active", "visits"], ["plan"])
    assert feature_arrays(batch, [], ["region"])[1]["region"].tolist() == ["3", None, "1"]
    np.testing.assert_array_equal(
        numeric, np.array([[1.5, 1.0, 1.0], [np.nan, 0.0, 2.0], [3.0, np.nan, 3.0]])
    )
    assert numeric.dtype == np.float64 and list(categorical) == ["plan"]
    assert categorical["plan"].dtype == object and categorical["plan"].tolist() == ["pro", None, "basic"]


def test_progress_lines_show_a_bar_the_rate_and_the_time_left() -> None:
    line = progress_line(250_000, 1_000_000, 5.0, "rows")
    assert line.startswith("[#####...............]  25% 250,000/1,000,000 rows")
    assert "50,000 rows/s" in line and line.endswith("ETA 15 s")
    assert progress_line(10, 0, 2.0, "rows") == "10 rows · 5 rows/s"
