"""The point-in-time join of batch inference, streamed through DuckDB's ASOF join.

Both sides are copied from their record-batch streams into DuckDB tables first (DuckDB plans an
ASOF join over a stream of unknown size as a nested loop: 106 s against 0.3 s for 200,000 rows);
past its memory limit DuckDB spills them to `workdir`, so memory stays bounded however large the
snapshot (an in-memory database with a spill directory loads 1.7x faster than an on-disk one). The answer is exactly
`pipelines.features.compute.point_in_time_join`'s: each row gets its entity's latest feature row at
or before its time, and none older than the view's TTL (tests/usecases/test_batch_inference.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.features.compute import FEATURE_TIME
from pipelines.features.sql import quote_identifier as q

if TYPE_CHECKING:
    import pyarrow as pa


def as_of_batches(
    spine: pa.RecordBatchReader,
    features: pa.RecordBatchReader,
    entity_key: str,
    timestamp: str,
    ttl_days: int,
    workdir: Path,
    memory_limit: str = "1GB",
    batch_rows: int = 100_000,
) -> Iterator[pa.RecordBatch]:
    """Each spine row with its entity's feature values as of its `timestamp`, in batches of at most
    `batch_rows`; feature columns the spine already has are left out (the spine's win)."""
    import duckdb

    from models.threads import thread_budget

    workdir.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit,
            "temp_directory": str(workdir / "spill"),
            "threads": thread_budget().threads,
            "preserve_insertion_order": False,
        },
    )
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("spine_stream", spine)
        connection.execute("CREATE TABLE spine AS SELECT * FROM spine_stream")
        connection.register("feature_stream", features)
        connection.execute("CREATE TABLE features AS SELECT * FROM feature_stream")
        spine_columns = [row[0] for row in connection.execute("DESCRIBE spine").fetchall()]
        values = [
            row[0]
            for row in connection.execute("DESCRIBE features").fetchall()
            if row[0] not in spine_columns and row[0] != FEATURE_TIME
        ]
        fresh = f"f.{q(FEATURE_TIME)} >= s.{q(timestamp)} - INTERVAL {int(ttl_days)} DAY"
        selected = [f"s.{q(c)}" for c in spine_columns] + [
            f"CASE WHEN {fresh} THEN f.{q(c)} END AS {q(c)}" for c in values
        ]
        sql = (
            f"SELECT {', '.join(selected)} FROM spine AS s ASOF LEFT JOIN features AS f "
            f"ON s.{q(entity_key)} = f.{q(entity_key)} AND s.{q(timestamp)} >= f.{q(FEATURE_TIME)}"
        )
        reader = connection.sql(sql).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        connection.close()
