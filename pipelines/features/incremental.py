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

from pipelines.features.compute import compute_window_features, view_columns
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
    since = new.groupby(dataset.entity_key)[dataset.event_time].min()
    # The history holds every new event; any other event at or after its entity's first new one is late.
    recent = history.loc[
        history[dataset.event_time] >= history[dataset.entity_key].map(since), dataset.entity_key
    ]
    extra = recent.value_counts().sub(new[dataset.entity_key].value_counts(), fill_value=0)
    late = extra[extra > 0]
    if len(late):
        return Increment(
            None,
            reason=f"{len(late)} entities (e.g. {late.index[0]!r}) got events at or before their latest known one",
        )
    rows = compute_window_features(history, usecase, since=since)
    return Increment(rows, new_events=len(new), history_rows=len(history))


def source_columns(usecase: UseCase) -> list[str]:
    """The curated columns the feature view reads (keys, time and its sources), nothing else."""
    return list(dict.fromkeys([*usecase.dataset.primary_key, *view_columns(usecase)]))


def _earliest(new: pd.DataFrame, event_time: str, windows_days: Sequence[int]) -> pd.Timestamp:
    """The oldest instant a new event's windows reach back to (windows are (t - days, t])."""
    return new[event_time].min() - pd.Timedelta(days=max(windows_days, default=0))
