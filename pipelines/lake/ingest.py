"""Ingest: validate a batch, then land it in raw (append, with lineage) and curated (deduplicated).

A rejected batch goes to quarantine with its validation report, and neither raw nor curated
changes. Ingesting a batch that already landed changes nothing.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import BatchRejected
from pipelines.faults import fault_point
from pipelines.lake.batches import BatchUnreadable, batch_id_of, batch_id_of_file, conform, read_chunks
from pipelines.platform import Platform
from pipelines.ports import RowFilter
from pipelines.spool import Spool
from pipelines.usecase import DatasetSpec
from pipelines.validation.chunked import ChunkedChecks
from pipelines.validation.runner import ValidationOutcome, report_outcome
from pipelines.validation.suite import expectations_for

log = logging.getLogger(__name__)
__all__ = ["BatchRejected", "IngestResult", "curated_table", "ingest_file", "raw_table"]
BATCH_PROPERTY = "mlops.batch-id"
CHUNK_ROWS = 500_000  # rows of a batch file in memory at once


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    source: str
    rows: int
    new_curated_rows: int
    already_ingested: bool
    raw_snapshot_id: int | None
    curated_snapshot_id: int | None
    report_uri: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def raw_table(spec: DatasetSpec) -> str:
    return f"raw.{spec.name}"


def curated_table(spec: DatasetSpec) -> str:
    return f"curated.{spec.name}"


def _quarantine(
    platform: Platform, spec: DatasetSpec, batch_id: str, source: Path, summary: dict[str, object]
) -> str:
    prefix = f"{spec.name}/{batch_id}"
    if source.exists():
        platform.quarantine.put_file(f"{prefix}/{source.name}", source)
    else:
        platform.quarantine.put_bytes(f"{prefix}/{source.name}", b"")
    platform.quarantine.put_bytes(
        f"{prefix}/rejection.json", json.dumps(summary, indent=2, default=str).encode()
    )
    return platform.quarantine.uri(prefix)


def _reject(
    platform: Platform,
    spec: DatasetSpec,
    batch_id: str,
    source: Path,
    reasons: list[str],
    report_uri: str,
) -> BatchRejected:
    summary = {
        "batch_id": batch_id,
        "source": str(source),
        "rejected_at": datetime.now(UTC),
        "reasons": reasons,
        "report": report_uri,
    }
    where = _quarantine(platform, spec, batch_id, source, summary)
    lines = "\n".join(f"  - {reason}" for reason in reasons)
    message = f"batch {source.name} ({batch_id}) rejected; quarantined at {where}\n{lines}"
    if report_uri:
        message += f"\n  report: {report_uri}"
    return BatchRejected(message, where, report_uri)


def _landed_in(platform: Platform, table: str, batch_id: str) -> bool:
    return any(s.properties.get(BATCH_PROPERTY) == batch_id for s in platform.lake.history(table))


def _new_rows(platform: Platform, spec: DatasetSpec, typed: pa.Table) -> pa.Table:
    """Rows whose primary key the curated table does not hold yet.

    Only curated rows whose key values occur in the batch are read (a lookup pushed down to the
    table format), not the whole key column: the cost follows the batch, not the lake.
    """
    if platform.lake.current_snapshot(curated_table(spec)) is None or not len(typed):
        return typed
    keys = list(spec.primary_key)
    # Text and whole-number key columns are looked up by value; the exact match below covers the rest.
    exact = [k for k in keys if spec.columns[k].type in ("string", "category", "int")]
    lookup = RowFilter(
        any_of={k: tuple(v for v in pc.unique(typed.column(k)).to_pylist() if v is not None) for k in exact}
    )
    existing = platform.lake.read(curated_table(spec), columns=keys, where=lookup)
    if not len(existing):
        return typed
    if len(keys) == 1:
        mask = pc.is_in(typed.column(keys[0]), value_set=existing.column(keys[0]))
        return typed.filter(pc.invert(mask))
    joined = typed.join(
        existing.append_column("_seen", pa.array([True] * len(existing))), keys=keys, join_type="left outer"
    )
    return (
        joined.filter(pc.is_null(joined.column("_seen"))).drop_columns(["_seen"]).select(typed.column_names)
    )


def validate(
    platform: Platform, spec: DatasetSpec, path: Path, chunk_rows: int | None = CHUNK_ROWS
) -> ValidationOutcome:
    """Validate a batch file chunk by chunk; raise BatchRejected (after quarantining it) when it fails."""
    batch_id = batch_id_of_file(path) if path.exists() else batch_id_of(b"")
    checks = ChunkedChecks(expectations_for(spec))
    try:
        for frame in read_chunks(path, spec, chunk_rows):
            checks.add(frame)
    except BatchUnreadable as exc:
        raise _reject(platform, spec, batch_id, path, [str(exc)], "") from exc
    outcome = report_outcome(spec, batch_id, checks.expectations, checks.results(), platform.artifacts)
    if not outcome.success:
        reasons = [failure.describe() for failure in outcome.failures]
        raise _reject(platform, spec, batch_id, path, reasons, outcome.report_uri)
    return outcome


def ingest_file(
    platform: Platform, spec: DatasetSpec, path: Path, chunk_rows: int | None = CHUNK_ROWS
) -> IngestResult:
    """Validate `path` and land it in the lake; idempotent per batch content, and recoverable.

    The file is read `chunk_rows` rows at a time (Parquet; CSV whole), so memory follows the chunk,
    not the file: once to validate, once to land. Raw is committed first, curated second, each in one
    commit. A run killed between the two commits left the batch in raw only: the next run of the same
    batch finds its raw snapshot, skips validation and the raw append, and completes curated. Readers
    of curated never see part of a batch.
    """
    if not path.exists():
        raise FileNotFoundError(f"batch file not found: {path}")
    batch_id = batch_id_of_file(path)
    in_raw = _landed_in(platform, raw_table(spec), batch_id)
    if in_raw and _landed_in(platform, curated_table(spec), batch_id):
        return _nothing_to_do(platform, spec, path, batch_id)

    if in_raw:
        # Validated and landed in raw by an earlier run that stopped before curated.
        report_uri = ""
        log.info("batch %s (%s) is in raw but not in curated: completing curated", path.name, batch_id)
    else:
        report_uri = validate(platform, spec, path, chunk_rows).report_uri
    properties = {
        BATCH_PROPERTY: batch_id,
        "mlops.source": path.name,
        "mlops.ingested-at": datetime.now(UTC).isoformat(),
    }
    raw = platform.lake.current_snapshot(raw_table(spec))
    with tempfile.TemporaryDirectory(prefix="mlops-ingest-") as workdir:
        fresh = Spool(Path(workdir) / "curated.parquet")
        landed = _Counted()

        def raw_rows() -> Iterator[pa.Table]:
            """Each chunk typed for the lake; its rows curated lacks go to the spool on the way."""
            for frame in read_chunks(path, spec, chunk_rows):
                typed = conform(frame, spec)
                landed.rows += len(typed)
                fresh.write(_new_rows(platform, spec, typed))
                yield typed.append_column("_batch_id", pa.array([batch_id] * len(typed), pa.string()))

        if in_raw:
            for _ in raw_rows():
                pass
        else:
            raw = platform.lake.append_batches(raw_table(spec), raw_rows(), properties)
            fault_point("ingest.after-raw")
        curated = platform.lake.current_snapshot(curated_table(spec))
        if fresh.rows:
            curated = platform.lake.append_batches(
                curated_table(spec), fresh.batches(chunk_rows or fresh.rows), properties
            )
        elif in_raw:
            return _nothing_to_do(platform, spec, path, batch_id)  # every row was already curated
    log.info("batch %s: %d rows landed in raw, %d new rows in curated", batch_id, landed.rows, fresh.rows)
    return IngestResult(
        batch_id=batch_id,
        source=str(path),
        rows=landed.rows,
        new_curated_rows=fresh.rows,
        already_ingested=False,
        raw_snapshot_id=raw.snapshot_id if raw else None,
        curated_snapshot_id=curated.snapshot_id if curated else None,
        report_uri=report_uri,
    )


@dataclass
class _Counted:
    rows: int = 0


def _nothing_to_do(platform: Platform, spec: DatasetSpec, path: Path, batch_id: str) -> IngestResult:
    log.info("batch %s (%s) already ingested; nothing to do", path.name, batch_id)
    raw = platform.lake.current_snapshot(raw_table(spec))
    curated = platform.lake.current_snapshot(curated_table(spec))
    return IngestResult(
        batch_id=batch_id,
        source=str(path),
        rows=0,
        new_curated_rows=0,
        already_ingested=True,
        raw_snapshot_id=raw.snapshot_id if raw else None,
        curated_snapshot_id=curated.snapshot_id if curated else None,
        report_uri="",
    )
