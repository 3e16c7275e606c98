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

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """What was written, `batch_rows` rows at a time (nothing when nothing was written)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is not None:
            self._writer.close()
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch])
