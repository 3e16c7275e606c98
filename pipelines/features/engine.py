"""The feature view computed by the environment's query engine: where the data is, out of core.

The rows stream as Arrow batches from the engine to the offline table's files: at ten million rows
the whole feature table would hold about a gigabyte, and a pandas copy as much again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.features.sql import feature_query
from pipelines.ports import QueryEnginePort, Snapshot
from pipelines.usecase import UseCase

if TYPE_CHECKING:
    import pyarrow as pa


def total_rows(snapshot: Snapshot) -> int:
    """The rows of a table at a snapshot, from the snapshot's summary (no data read)."""
    value = snapshot.properties.get("total-records", "")
    return int(value) if value.isdigit() else 0


def engine_feature_batches(
    engine: QueryEnginePort, usecase: UseCase, table: str, snapshot_id: int
) -> pa.RecordBatchReader:
    """Every feature row of `table` at `snapshot_id`, typed as `compute_window_features` types them
    (counts as 64-bit integers), streamed as the engine delivers them: in no particular order."""
    import pyarrow as pa

    query = feature_query(usecase, dialect=engine.dialect)
    rows = engine.stream(query.sql, query.source, table, query.columns, snapshot_id)
    integral = [name for name, kind in usecase.value_types().items() if kind == "integral"]
    schema = rows.schema
    for name in integral:
        index = schema.get_field_index(name)
        schema = schema.set(index, schema.field(index).with_type(pa.int64()))
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in rows))
