"""The point-in-time join in DuckDB, out of core: batch inference and training sets both use it.

Both sides are copied from their record-batch streams into DuckDB tables first (DuckDB plans an
ASOF join over a stream of unknown size as a nested loop: 106 s against 0.3 s for 200,000 rows);
past its memory limit DuckDB spills them to the work directory, so memory stays bounded however
large the snapshot (an in-memory database with a spill directory loads 1.7x faster than an on-disk
one). The answer is exactly `pipelines.features.compute.point_in_time_join`'s: each row gets its
entity's latest feature row at or before its time, and none older than the view's TTL
(tests/unit/test_batch_inference_join.py, tests/unit/test_training_set.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.features.compute import FEATURE_TIME
from pipelines.features.sql import quote_identifier as q

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@contextmanager
def duckdb_session(workdir: Path, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB on this process's thread budget that spills to `workdir` past `memory_limit`."""
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
        yield connection
    finally:
        connection.close()


def load_stream(connection: duckdb.DuckDBPyConnection, table: str, stream: pa.RecordBatchReader) -> list[str]:
    """Copy a record-batch stream into the DuckDB table `table`; returns its column names."""
    view = f"{table}_stream"
    connection.register(view, stream)
    connection.execute(f"CREATE TABLE {q(table)} AS SELECT * FROM {q(view)}")
    connection.unregister(view)
    return [row[0] for row in connection.execute(f"DESCRIBE {q(table)}").fetchall()]


def as_of_select(
    spine: str,
    spine_columns: list[str],
    features: str,
    feature_columns: list[str],
    entity_key: str,
    timestamp: str,
    ttl_days: int,
) -> str:
    """The SELECT of every `spine` row with its entity's `features` values as of its `timestamp`;
    feature columns the spine already has are left out (the spine's win), as is the feature time."""
    values = [c for c in feature_columns if c not in spine_columns and c != FEATURE_TIME]
    fresh = f"f.{q(FEATURE_TIME)} >= s.{q(timestamp)} - INTERVAL {int(ttl_days)} DAY"
    selected = [f"s.{q(c)}" for c in spine_columns] + [
        f"CASE WHEN {fresh} THEN f.{q(c)} END AS {q(c)}" for c in values
    ]
    return (
        f"SELECT {', '.join(selected)} FROM {q(spine)} AS s ASOF LEFT JOIN {q(features)} AS f "
        f"ON s.{q(entity_key)} = f.{q(entity_key)} AND s.{q(timestamp)} >= f.{q(FEATURE_TIME)}"
    )


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
    `batch_rows`."""
    with duckdb_session(workdir, memory_limit) as connection:
        spine_columns = load_stream(connection, "spine", spine)
        feature_columns = load_stream(connection, "features", features)
        sql = as_of_select(
            "spine", spine_columns, "features", feature_columns, entity_key, timestamp, ttl_days
        )
        yield from connection.sql(sql).to_arrow_reader(batch_rows)
