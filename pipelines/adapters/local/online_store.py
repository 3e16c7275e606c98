"""Online feature store in SQLite: one row per (view, entity) with the latest feature values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.adapters.local.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL,
    entity TEXT NOT NULL,
    feature_time TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (view, entity)
)
"""


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _json_values(column: pd.Series) -> list[object]:
    """A column's values as JSON takes them: numbers as Python numbers, timestamps as ISO text."""
    if column.dtype.kind in "fiub":
        return list(column.to_numpy().tolist())
    return [_jsonable(value) for value in column.tolist()]


class SqliteOnlineStore:
    """OnlineStorePort on a SQLite file; a newer feature_time wins, an older one never overwrites."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with connect(path) as conn:
            conn.execute(_SCHEMA)

    def write(self, view: str, rows: pd.DataFrame, entity_key: str) -> int:
        # Column by column: the payloads of 8,000 rows took 0.6 s built row by row from records.
        names = [c for c in rows.columns if c not in (entity_key, "feature_time")]
        columns = [_json_values(rows[name]) for name in names]
        values = zip(*columns, strict=True) if columns else iter([()] * len(rows))
        records = [
            (
                view,
                str(entity),
                pd.Timestamp(moment).isoformat(),
                json.dumps(dict(zip(names, row, strict=True))),
            )
            for entity, moment, row in zip(
                rows[entity_key].tolist(), rows["feature_time"], values, strict=True
            )
        ]
        with connect(self.path) as conn:
            conn.executemany(
                """INSERT INTO online_features (view, entity, feature_time, payload) VALUES (?, ?, ?, ?)
                   ON CONFLICT(view, entity) DO UPDATE SET feature_time = excluded.feature_time,
                   payload = excluded.payload WHERE excluded.feature_time >= online_features.feature_time""",
                records,
            )
        return len(records)

    def read(self, view: str, keys: Sequence[str], entity_key: str) -> pd.DataFrame:
        """Rows in the order of `keys`; unknown keys are absent (the caller decides what that means)."""
        found: dict[str, dict[str, object]] = {}
        with connect(self.path) as conn:
            for start in range(0, len(keys), 500):
                chunk = [str(k) for k in keys[start : start + 500]]
                marks = ",".join("?" * len(chunk))
                cursor = conn.execute(
                    f"SELECT entity, feature_time, payload FROM online_features WHERE view = ? AND entity IN ({marks})",
                    [view, *chunk],
                )
                for record in cursor:
                    values = json.loads(record["payload"])
                    found[record["entity"]] = {
                        entity_key: record["entity"],
                        "feature_time": pd.Timestamp(record["feature_time"]),
                        **values,
                    }
        return pd.DataFrame([found[str(k)] for k in keys if str(k) in found])
