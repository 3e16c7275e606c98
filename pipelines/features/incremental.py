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
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.features.compute import compute_window_features, view_columns, window_sources
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
    """Feature rows for the events `snapshot_id` of `curated` added after `since_snapshot_id`.

    The touched entities' earlier events are read as of `since_snapshot_id` (curated is append-only,
    so they are every event but the new ones) and only in the columns their windows and lags read:
    a feature row is returned for new events only, so the columns read for it alone (`latest`, and
    the primary key unless lags order ties by it) come from the new events."""
    dataset, view = usecase.dataset, usecase.features
    added = lake.appended_since(curated, since_snapshot_id, snapshot_id, source_columns(usecase))
    if added is None:
        return Increment(None, reason=f"{curated} was rewritten since snapshot {since_snapshot_id}")
    if not len(added):
        return Increment(None, reason="no new events")
    new = added.to_pandas()
    touched = tuple(v for v in pc.unique(added.column(dataset.entity_key)).to_pylist() if v is not None)
    lookback = (
        {} if view.lags else {dataset.event_time: _earliest(new, dataset.event_time, view.windows_days)}
    )
    earlier = lake.read(
        curated,
        columns=history_columns(usecase),
        snapshot_id=since_snapshot_id,
        where=RowFilter(any_of={dataset.entity_key: touched}, at_least=lookback),
    )
    since = new.groupby(dataset.entity_key)[dataset.event_time].min()
    late = _late_entities(earlier.column(dataset.entity_key), earlier.column(dataset.event_time), since)
    if len(late):
        return Increment(
            None,
            reason=f"{len(late)} entities (e.g. {late[0]!r}) got events at or before their latest known one",
        )
    events = pa.concat_tables([earlier, added], promote_options="permissive").to_pandas()
    rows = compute_window_features(events, usecase, since=since)
    return Increment(rows, new_events=len(new), history_rows=len(events))


def _late_entities(entities: pa.ChunkedArray, times: pa.ChunkedArray, since: pd.Series) -> list[object]:
    """The entities with an earlier event at or after their first new one. Matched by Arrow's hash
    lookup: a pandas `map` of 510,000 entity values took 0.15 s."""
    import numpy as np

    position = pc.index_in(entities, value_set=pa.array(since.index.tolist(), entities.type))
    position = position.fill_null(-1).to_numpy(zero_copy_only=False)
    never = np.iinfo(np.int64).max  # for rows of no new entity, and entities whose new times are missing
    starts = since.to_numpy(dtype="datetime64[ns]").view(np.int64)
    starts = np.append(np.where(starts == np.iinfo(np.int64).min, never, starts), never)
    instants = times.to_pandas().to_numpy(dtype="datetime64[ns]").view(np.int64)
    counted = np.bincount(position[instants >= starts[position]], minlength=len(since))[: len(since)]
    return list(since.index[np.flatnonzero(counted)])


def history_columns(usecase: UseCase) -> list[str]:
    """The curated columns an earlier event contributes to a later event's features: the entity,
    the time and what windows and lags read (the primary key too when there are lags, because it
    orders events at one instant and a lag reads the last of them)."""
    dataset = usecase.dataset
    keys = list(dataset.primary_key) if usecase.features.lags else []
    return list(dict.fromkeys([*keys, dataset.entity_key, dataset.event_time, *window_sources(usecase)]))


def source_columns(usecase: UseCase) -> list[str]:
    """The curated columns the feature view reads (keys, time and its sources), nothing else."""
    return list(dict.fromkeys([*usecase.dataset.primary_key, *view_columns(usecase)]))


def _earliest(new: pd.DataFrame, event_time: str, windows_days: Sequence[int]) -> pd.Timestamp:
    """The oldest instant a new event's windows reach back to (windows are (t - days, t])."""
    return new[event_time].min() - pd.Timedelta(days=max(windows_days, default=0))
