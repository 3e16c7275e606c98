"""Training sets: spine (labelled events) + as-of features, split by time (train < valid < test)."""

from __future__ import annotations

import pandas as pd

from pipelines.errors import NoCuratedData
from pipelines.usecase import UseCase


def build_spine(
    curated: pd.DataFrame, usecase: UseCase, slice_columns: list[str] | tuple[str, ...] = ()
) -> pd.DataFrame:
    """The labelled observations: one per curated event, keyed by entity and event time.

    Slice columns that are not features ride along as of the event, so evaluation can slice by them.
    """
    columns = spine_columns(usecase, slice_columns)
    return curated[columns].sort_values(usecase.dataset.event_time, kind="stable").reset_index(drop=True)


def spine_columns(usecase: UseCase, slice_columns: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The curated columns a spine is made of: keys, event time, label, and slice columns that are
    not features (the only columns of curated a training set reads)."""
    ds = usecase.dataset
    extra = [c for c in slice_columns if c not in usecase.feature_names()]
    return list(dict.fromkeys([*ds.primary_key, ds.entity_key, ds.event_time, ds.label, *extra]))


def labelled_rows(spine: pd.DataFrame, usecase: UseCase) -> pd.DataFrame:
    """The rows whose label is already observable: a label that looks `label_horizon_days` into
    the entity's future is not known for the newest events of the data, which are left out."""
    horizon = usecase.task.label_horizon_days
    if not horizon or spine.empty:
        return spine
    times = spine[usecase.dataset.event_time]
    cutoff = times.max() - pd.Timedelta(days=horizon)
    kept = spine[times <= cutoff].reset_index(drop=True)
    if kept.empty:
        raise NoCuratedData(
            f"no row is older than task.label_horizon_days ({horizon:g} days) before the newest event "
            f"({times.max()}): their labels are not observable yet"
        )
    return kept


def temporal_split(
    frame: pd.DataFrame, timestamp: str, valid_fraction: float, test_fraction: float
) -> dict[str, pd.DataFrame]:
    """Split at time quantiles so that the model is always validated and tested on its future."""
    if frame.empty:
        raise ValueError("cannot split an empty training set")
    times = frame[timestamp]
    valid_start = times.quantile(1 - valid_fraction - test_fraction)
    test_start = times.quantile(1 - test_fraction)
    splits = {
        "train": frame[times < valid_start],
        "valid": frame[(times >= valid_start) & (times < test_start)],
        "test": frame[times >= test_start],
    }
    for name, part in splits.items():
        if part.empty:
            raise ValueError(
                f"the {name} split is empty: the data covers too short a period to split by time"
            )
    return {name: part.reset_index(drop=True) for name, part in splits.items()}
