"""The feature view computed by the environment's query engine: where the data is, out of core."""

from __future__ import annotations

import pandas as pd

from pipelines.features.compute import FEATURE_TIME
from pipelines.features.sql import feature_query
from pipelines.ports import QueryEnginePort, Snapshot
from pipelines.usecase import UseCase


def total_rows(snapshot: Snapshot) -> int:
    """The rows of a table at a snapshot, from the snapshot's summary (no data read)."""
    value = snapshot.properties.get("total-records", "")
    return int(value) if value.isdigit() else 0


def engine_features(engine: QueryEnginePort, usecase: UseCase, table: str, snapshot_id: int) -> pd.DataFrame:
    """Every feature row of `table` at `snapshot_id`, shaped as `compute_window_features` returns them."""
    query = feature_query(usecase, dialect=engine.dialect)
    rows = engine.query(query.sql, query.source, table, query.columns, snapshot_id).to_pandas()
    key = usecase.dataset.entity_key
    rows = rows.sort_values([key, FEATURE_TIME], kind="stable").reset_index(drop=True)
    for name, kind in usecase.value_types().items():
        if kind == "integral":
            rows[name] = rows[name].astype("int64")
    return rows
