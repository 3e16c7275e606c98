"""The embedded query engine: DuckDB over the lake snapshot, out of core when needed.

DuckDB runs the window queries in parallel on the CPUs the thread budget gives and spills to disk
past its memory limit, so a feature query over more rows than fit in memory still completes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.ports import LakePort

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 100_000


class DuckDBQueryEngine:
    """QueryEnginePort in-process: the snapshot is read from the lake and queried by DuckDB."""

    dialect = "duckdb"

    def __init__(
        self, lake: LakePort, memory_limit: str = "1GB", spill_directory: Path | None = None
    ) -> None:
        self.lake, self.memory_limit = lake, memory_limit
        self.spill_directory = spill_directory or Path(tempfile.gettempdir()) / "mlops-duckdb-spill"

    def query(self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int) -> pa.Table:
        return self.stream(sql, source, table, columns, snapshot_id).read_all()

    def stream(
        self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int
    ) -> pa.RecordBatchReader:
        import duckdb
        import pyarrow as pa

        from models.threads import thread_budget

        # The snapshot streams in file by file and is copied into DuckDB's own storage, which spills
        # past the memory limit: the whole table is never held as Arrow in this process.
        events = self.lake.scan(table, columns=list(columns), snapshot_id=snapshot_id)
        self.spill_directory.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(
            config={
                "memory_limit": self.memory_limit,
                "temp_directory": str(self.spill_directory),
                "threads": thread_budget().threads,  # the CPUs free here, as torch gets
                "preserve_insertion_order": True,
            }
        )
        try:
            connection.register("snapshot_stream", events)
            relation = '"' + source.replace('"', '""') + '"'
            connection.execute(f"CREATE TABLE {relation} AS SELECT * FROM snapshot_stream")
            connection.unregister("snapshot_stream")
            result = connection.sql(sql).to_arrow_reader(BATCH_ROWS)
        except BaseException:
            connection.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from result
            finally:
                connection.close()

        return pa.RecordBatchReader.from_batches(result.schema, batches())
