"""Uniqueness of a batch's keys, checked out of core: the key columns of every chunk go into a DuckDB
table (which spills to disk past its memory limit), and the repeated keys are found by a GROUP BY.

The results are those `checks.evaluate` gives for `expect_column_values_to_be_unique` and
`expect_compound_columns_to_be_unique` on the whole batch: missing values are not considered (for a
compound key, rows whose key columns are all missing), missing values compare equal to each other,
and the examples are the first repeated rows in batch order.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import pandas as pd

from pipelines.features.as_of import duckdb_session
from pipelines.features.sql import quote_identifier as q
from pipelines.validation.checks import PARTIAL_UNEXPECTED, CheckResult, map_result, mostly_met

ROW = "__row"
MEMORY_LIMIT = "256MB"


class KeyTable:
    """The key columns of a batch's chunks, in batch order, in a spilling DuckDB table."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.rows = 0
        self._workdir = tempfile.TemporaryDirectory(prefix="mlops-keys-")
        from pathlib import Path

        self._session = duckdb_session(Path(self._workdir.name), MEMORY_LIMIT)
        self._connection = self._session.__enter__()
        self._schema: Any = None

    def add(self, frame: pd.DataFrame) -> None:
        """Append a chunk's key columns; raises when they cannot be typed (mixed values)."""
        import pyarrow as pa

        keys = pa.Table.from_pandas(frame[self.columns], preserve_index=False)
        keys = keys.append_column(ROW, pa.array(np.arange(self.rows, self.rows + len(frame), dtype=np.int64)))
        if self._schema is None:
            self._schema = keys.schema
            self._connection.register("chunk", keys)
            self._connection.execute("CREATE TABLE keys AS SELECT * FROM chunk")
        else:
            self._connection.register("chunk", keys.cast(self._schema))
            self._connection.execute("INSERT INTO keys SELECT * FROM chunk")
        self._connection.unregister("chunk")
        self.rows += len(frame)

    def frame(self) -> pd.DataFrame:
        """The keys held so far, as pandas, in batch order."""
        names = ", ".join(q(c) for c in self.columns)
        return (
            self._connection.sql(f"SELECT {names} FROM keys ORDER BY {ROW}").df()
            if self.rows
            else pd.DataFrame(columns=self.columns)
        )

    def unique(self, expectation: Any) -> CheckResult:
        """The expectation's result over every row added."""
        names = [expectation.column] if hasattr(expectation, "column") else list(expectation.column_list)
        missing = [n for n in names if n not in self.columns]
        if missing:
            return CheckResult(False, {}, f"column {missing[0]!r} is not in the batch")
        quoted = [q(n) for n in names]
        considered_where = " OR ".join(f"{n} IS NOT NULL" for n in quoted)
        repeated = (
            f"WITH considered AS (SELECT * FROM keys WHERE {considered_where}), "
            f"repeated AS (SELECT {', '.join(quoted)} FROM considered GROUP BY ALL HAVING count(*) > 1) "
            f"SELECT {', '.join(f'c.{n}' for n in quoted)} FROM considered AS c JOIN repeated AS r ON "
            + " AND ".join(f"c.{n} IS NOT DISTINCT FROM r.{n}" for n in quoted)
        )
        considered = self._scalar(f"SELECT count(*) FROM keys WHERE {considered_where}")
        count = self._scalar(f"SELECT count(*) FROM ({repeated})")
        first = self._connection.sql(f"{repeated} ORDER BY c.{ROW} LIMIT {PARTIAL_UNEXPECTED}").fetchall()
        if len(names) == 1:
            examples = pd.Series([row[0] for row in first], dtype=object)
        else:
            examples = pd.Series([dict(zip(names, row, strict=True)) for row in first], dtype=object)
        success = mostly_met(considered, count, getattr(expectation, "mostly", None))
        return CheckResult(success, map_result(self.rows, considered, examples, count))

    def _scalar(self, sql: str) -> int:
        rows = self._connection.execute(sql).fetchall()
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        self._session.__exit__(None, None, None)
        self._workdir.cleanup()
