"""The out-of-core training set (DuckDB) has exactly the rows of the in-memory reference: spine,
label horizon, point-in-time join and time split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pipelines.datagen.examples import generate_example
from pipelines.errors import NoCuratedData
from pipelines.features.compute import FEATURE_TIME, compute_window_features, point_in_time_join
from pipelines.lake.batches import conform
from pipelines.training.dataset import build_spine, labelled_rows, spine_columns, temporal_split
from pipelines.training.training_set import SPLITS, write_splits
from pipelines.usecase import load_usecase
from tests.conftest import PACKAGE_ROOT


def _reference(events: pd.DataFrame, features: pd.DataFrame, usecase, slices) -> dict[str, pd.DataFrame]:
    ds = usecase.dataset
    spine = labelled_rows(build_spine(events, usecase, slices), usecase)
    joined = point_in_time_join(spine, features, ds.entity_key, ds.event_time, usecase.features.ttl_days)
    return temporal_split(joined.drop(columns=FEATURE_TIME), ds.event_time, 0.15, 0.15)


def _streams(events: pd.DataFrame, features: pd.DataFrame, usecase, slices):
    curated = conform(events, usecase.dataset).select(spine_columns(usecase, slices))
    offline = pa.Table.from_pandas(features, preserve_index=False)
    return curated.to_reader(max_chunksize=997), offline.to_reader(max_chunksize=1_013)


@pytest.mark.parametrize("name", ["churn", "store_demand"])
def test_the_out_of_core_splits_equal_the_in_memory_reference(name: str, tmp_path: Path) -> None:
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / f"{name}.yaml")
    ds, slices = usecase.dataset, usecase.slice_columns()
    events = conform(generate_example(usecase, 6_000, 3), ds).to_pandas()
    features = compute_window_features(events, usecase)
    expected = _reference(events, features, usecase, slices)
    files = write_splits(*_streams(events, features, usecase, slices), usecase, 0.15, 0.15, tmp_path, "256MB")

    keys = list(ds.primary_key)
    for split in SPLITS:
        got = pd.read_parquet(files.paths[split])
        want = expected[split]
        assert files.rows[split] == len(want) == len(got)
        assert got[ds.event_time].is_monotonic_increasing  # ordered by time, then key
        assert sorted(got.columns) == sorted(want.columns)
        got = got[list(want.columns)].sort_values(keys).reset_index(drop=True)
        want = want.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)


def test_a_horizon_past_all_the_data_is_one_clear_error(tmp_path: Path) -> None:
    usecase = load_usecase(PACKAGE_ROOT / "usecases" / "store_demand.yaml")
    far = usecase.model_copy(update={"task": usecase.task.model_copy(update={"label_horizon_days": 10_000})})
    events = conform(generate_example(far, 2_000, 1), far.dataset).to_pandas()
    features = compute_window_features(events, far)
    with pytest.raises(NoCuratedData, match="label_horizon_days"):
        write_splits(
            *_streams(events, features, far, far.slice_columns()), far, 0.15, 0.15, tmp_path, "256MB"
        )
