"""A local metrics store in SQLite, the local twin of CloudWatch custom metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipelines.adapters.local.sqlite import connect
from pipelines.ports import MetricDatum

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics (namespace, name, timestamp);
"""


class SqliteMetrics:
    """MetricsPort on SQLite: every datum is kept with its dimensions and timestamp."""

    def __init__(self, database: Path, namespace: str) -> None:
        self.database = database
        self.namespace = namespace
        with connect(database) as conn:
            conn.executescript(_SCHEMA)

    def put(self, data: Sequence[MetricDatum]) -> int:
        now = datetime.now(UTC)
        rows = [
            (
                self.namespace,
                d.name,
                json.dumps(d.dimensions, sort_keys=True),
                float(d.value),
                d.unit,
                (d.timestamp or now).isoformat(),
            )
            for d in data
        ]
        with connect(self.database) as conn:
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def query(self, name: str, dimensions: dict[str, str] | None = None) -> Iterator[MetricDatum]:
        """Data points of `name` in time order whose dimensions include `dimensions`."""
        wanted = dimensions or {}
        with connect(self.database) as conn:
            rows = conn.execute(
                "SELECT * FROM metrics WHERE namespace = ? AND name = ? ORDER BY timestamp",
                (self.namespace, name),
            ).fetchall()
        for row in rows:
            dims = json.loads(row["dimensions"])
            if all(dims.get(k) == v for k, v in wanted.items()):
                yield MetricDatum(
                    name=row["name"],
                    value=row["value"],
                    dimensions=dims,
                    unit=row["unit"],
                    timestamp=datetime.fromisoformat(row["timestamp"]),
                )
