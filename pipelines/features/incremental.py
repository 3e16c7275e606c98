"""Features for what changed: the feature rows of newly curated events, appended to the offline table.

Curated is append-only, so the events committed since the offline table's source snapshot are the
data files added since. A new event changes no older feature row when it is later than every event
its entity already had: then the new rows are computed from the touched entities' history within
the longest window (all their history when the view has lags, which look back a number of events,
not days) and appended. Otherwise (an event at or before its entity's latest known instant, or a
curated table that was rewritten) the caller recomputes everything: the result is exact either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow.compute as pc

from pipelines.features.compute import FEATURE_TIME, compute_window_features
from pipelines.ports import LakePort, RowFilter
from pipelines.usecase import UseCase


@dataclass(frozen=True)
class Increment:
    """The feature rows of the new events, or why they cannot simply be appended."""

    rows: pd.DataFrame | None
    new_events: int = 0
    history_rows: int = 0
    reason: str = ""


def incremental_features(
    lake: LakePort, usecase: UseCase, curated: str, since_snapshot_id: int, snapshot_id: int
) -> Increment:
    """Feature rows for the events `snapshot_id` of `curated` added after `since_snapshot_id`."""
    dataset, view = usecase.dataset, usecase.features
    columns = source_columns(usecase)
    added = lake.appended_since(curated, since_snapshot_id, snapshot_id, columns)
    if added is None:
        return Increment(None, reason=f"{curated} was rewritten since snapshot {since_snapshot_id}")
    if not len(added):
        return Increment(None, reason="no new events")
    new = added.to_pandas()
    touched = tuple(v for v in pc.unique(added.column(dataset.entity_key)).to_pylist() if v is not None)
    lookback = (
        {} if view.lags else {dataset.event_time: _earliest(new, dataset.event_time, view.windows_days)}
    )
    history = lake.read(
        curated,
        columns=columns,
        snapshot_id=snapshot_id,
        where=RowFilter(any_of={dataset.entity_key: touched}, at_least=lookback),
    ).to_pandas()
    first_new = new.groupby(dataset.entity_key)[dataset.event_time].min()
    is_new = history.set_index(list(dataset.primary_key)).index.isin(
        new.set_index(list(dataset.primary_key)).index
    )
    known_last = history[~is_new].groupby(dataset.entity_key)[dataset.event_time].max()
    late = known_last.reindex(first_new.index) >= first_new
    if late.any():
        entity = late[late].index[0]
        return Increment(
            None,
            reason=f"{int(late.sum())} entities (e.g. {entity!r}) got events at or before their latest known one",
        )
    features = compute_window_features(history, usecase)
    starts = features[dataset.entity_key].map(first_new)
    rows = features[features[FEATURE_TIME] >= starts].reset_index(drop=True)
    return Increment(rows, new_events=len(new), history_rows=len(history))


def source_columns(usecase: UseCase) -> list[str]:
    """The curated columns the feature view reads (keys, time and its sources), nothing else."""
    dataset, view = usecase.dataset, usecase.features
    sources = [a.column for a in view.aggregations if a.column]
    sources += (
        [c.column for c in view.category_counts] + list(view.latest) + [lag.column for lag in view.lags]
    )
    return list(dict.fromkeys([*dataset.primary_key, dataset.entity_key, dataset.event_time, *sources]))


def _earliest(new: pd.DataFrame, event_time: str, windows_days: Sequence[int]) -> pd.Timestamp:
    """The oldest instant a new event's windows reach back to (windows are (t - days, t])."""
    return new[event_time].min() - pd.Timedelta(days=max(windows_days, default=0))
