"""The query engine on AWS: Athena (engine v3, Trino SQL) reading the lake's Iceberg tables in place.

The query's source relation is bound to the Glue table at the requested snapshot (Iceberg time
travel, `FOR VERSION AS OF`), so the result is exactly that snapshot's whatever is committed while it
runs. Results are unloaded as Parquet under a fresh prefix of the workgroup's results bucket and read
back; the rows come from Athena's workers, not from this process's memory.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.adapters.aws.lake import glue_identifier

if TYPE_CHECKING:
    import pyarrow as pa

_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class QueryFailed(RuntimeError):
    """Athena ended a query without results (the message carries Athena's reason)."""


def _quoted(identifier: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))


def bind_source(sql: str, source: str, relation: str, columns: Sequence[str], snapshot_id: int) -> str:
    """`sql` with its `source` relation defined as `columns` of `relation` at `snapshot_id`."""
    selected = ", ".join(_quoted(c) for c in columns)
    definition = f"{_quoted(source)} AS (\n  SELECT {selected}\n  FROM {_quoted(relation)} FOR VERSION AS OF {int(snapshot_id)}\n)"
    head = sql.lstrip()
    if head[:5].upper() == "WITH ":
        return f"WITH {definition},\n{head[5:]}"
    return f"WITH {definition}\n{head}"


def unload_statement(select: str, location: str) -> str:
    """Athena's UNLOAD of a SELECT to Parquet files under `location` (which must be empty)."""
    return f"UNLOAD (\n{select}\n) TO '{location}' WITH (format = 'PARQUET', compression = 'SNAPPY')"


class AthenaQueryEngine:
    """QueryEnginePort on Athena: one query per call, polled to its end, results read from S3."""

    dialect = "trino"

    def __init__(
        self,
        athena: Any,
        s3: Any,
        workgroup: str,
        database: str,
        results_location: str,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 3_600.0,
    ) -> None:
        self.athena, self.s3 = athena, s3
        self.workgroup, self.database = workgroup, database
        self.results_location = results_location.rstrip("/")
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds

    def statement(
        self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int
    ) -> tuple[str, str]:
        """The UNLOAD statement this engine sends for a query, and where its results land."""
        location = f"{self.results_location}/unload/{uuid.uuid4().hex}/"
        relation = glue_identifier(self.database, table)
        select = bind_source(sql, source, relation, columns, snapshot_id)
        return unload_statement(select, location), location

    def query(self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int) -> pa.Table:
        return self.stream(sql, source, table, columns, snapshot_id).read_all()

    def stream(
        self, sql: str, source: str, table: str, columns: Sequence[str], snapshot_id: int
    ) -> pa.RecordBatchReader:
        statement, location = self.statement(sql, source, table, columns, snapshot_id)
        started = self.athena.start_query_execution(
            QueryString=statement,
            WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database, "Catalog": "AwsDataCatalog"},
        )
        execution_id = started["QueryExecutionId"]
        self._wait(execution_id)
        return self._read_results(location)

    def _wait(self, execution_id: str) -> None:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
                "Status"
            ]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in _DONE:
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                    "ErrorMessage", ""
                )
                raise QueryFailed(
                    f"Athena query {execution_id} {state.lower()}: {reason or 'no reason given'}"
                )
            if time.monotonic() > deadline:
                self.athena.stop_query_execution(QueryExecutionId=execution_id)
                raise QueryFailed(
                    f"Athena query {execution_id} still {state.lower()} after {self.timeout_seconds:.0f} s: stopped"
                )
            time.sleep(self.poll_seconds)

    def _read_results(self, location: str) -> pa.RecordBatchReader:
        """The unloaded result files, read one at a time as the reader is consumed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        keys = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item.get("Size", 1)
        ]
        if not keys:
            raise QueryFailed(f"Athena reported success but wrote no result files under {location}")

        def part(key: str) -> pa.Table:
            return pq.read_table(io.BytesIO(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))

        first = part(keys[0])
        schema = first.schema

        def batches() -> Iterator[pa.RecordBatch]:
            yield from first.to_batches()
            for key in keys[1:]:
                yield from part(key).cast(schema).to_batches()

        return pa.RecordBatchReader.from_batches(schema, batches())
