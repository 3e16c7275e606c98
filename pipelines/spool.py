"""Rows parked on local disk between two passes, so memory follows one batch, not all of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq


class Spool:
    """A Parquet file written batch by batch, then read back in batches (once)."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, rows: pa.Table | pa.RecordBatch) -> None:
        """Park `rows` (an empty batch is skipped; the first one sets the schema)."""
        import pyarrow.parquet as pq

        if not rows.num_rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, rows.schema)
        self._writer.write(rows)
        self.rows += rows.num_rows

    def reader(self, batch_rows: int) -> pa.RecordBatchReader:
        """What was written, as a stream of batches of `batch_rows` rows (at least one row was)."""
        import pyarrow as pa

        from pipelines.parquet_files import streaming_parquet

        if self._writer is None:
            raise ValueError("nothing was written to the spool")
        self._writer.close()
        parked = streaming_parquet(self.path)
        return pa.RecordBatchReader.from_batches(
            parked.schema_arrow, parked.iter_batches(batch_size=batch_rows)
        )

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """What was written, `batch_rows` rows at a time (nothing when nothing was written)."""
        import pyarrow as pa

        if self._writer is not None:
            for batch in self.reader(batch_rows):
                yield pa.Table.from_batches([batch])
