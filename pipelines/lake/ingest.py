"""Ingest: validate a batch, then land it in raw (append, with lineage) and curated (deduplicated).

A rejected batch goes to quarantine with its validation report, and neither raw nor curated
changes. Ingesting a batch that already landed changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import BatchRejected
from pipelines.faults import fault_point
from pipelines.lake.batches import Batch, BatchUnreadable, batch_id_of, conform, read_batch
from pipelines.platform import Platform
from pipelines.ports import RowFilter
from pipelines.usecase import DatasetSpec
from pipelines.validation.runner import ValidationOutcome, validate_batch

log = logging.getLogger(__name__)
__all__ = ["BatchRejected", "IngestResult", "curated_table", "ingest_file", "raw_table"]
BATCH_PROPERTY = "mlops.batch-id"


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
    platform: Platform,
    spec: DatasetSpec,
    batch_id: str,
    source: Path,
    content: bytes,
    summary: dict[str, object],
) -> str:
    prefix = f"{spec.name}/{batch_id}"
    platform.quarantine.put_bytes(f"{prefix}/{source.name}", content)
    platform.quarantine.put_bytes(
        f"{prefix}/rejection.json", json.dumps(summary, indent=2, default=str).encode()
    )
    return platform.quarantine.uri(prefix)


def _reject(
    platform: Platform,
    spec: DatasetSpec,
    batch_id: str,
    source: Path,
    content: bytes,
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
    where = _quarantine(platform, spec, batch_id, source, content, summary)
    lines = "\n".join(f"  - {reason}" for reason in reasons)
    message = f"batch {source.name} ({batch_id}) rejected; quarantined at {where}\n{lines}"
    if report_uri:
        message += f"\n  report: {report_uri}"
    return BatchRejected(message, where, report_uri)


def _landed_in(platform: Platform, table: str, batch_id: str) -> bool:
    return any(s.properties.get(BATCH_PROPERTY) == batch_id for s in platform.lake.snapshots(table))


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


def validate(platform: Platform, spec: DatasetSpec, path: Path) -> tuple[Batch, ValidationOutcome]:
    """Read and validate a batch; raise BatchRejected (after quarantining it) when it fails."""
    content = path.read_bytes() if path.exists() else b""
    batch_id = batch_id_of(content)
    try:
        batch = read_batch(path, spec)
    except BatchUnreadable as exc:
        raise _reject(platform, spec, batch_id, path, content, [str(exc)], "") from exc
    outcome = validate_batch(batch.frame, spec, batch.batch_id, platform.artifacts)
    if not outcome.success:
        reasons = [failure.describe() for failure in outcome.failures]
        raise _reject(platform, spec, batch.batch_id, path, content, reasons, outcome.report_uri)
    return batch, outcome


def ingest_file(platform: Platform, spec: DatasetSpec, path: Path) -> IngestResult:
    """Validate `path` and land it in the lake; idempotent per batch content, and recoverable.

    Raw is committed first, curated second. A run killed between the two commits left the batch in
    raw only: the next run of the same batch finds its raw snapshot, skips validation and the raw
    append, and completes curated. Readers of curated never see part of a batch (one commit).
    """
    if not path.exists():
        raise FileNotFoundError(f"batch file not found: {path}")
    batch_id = batch_id_of(path.read_bytes())
    in_raw = _landed_in(platform, raw_table(spec), batch_id)
    if in_raw and _landed_in(platform, curated_table(spec), batch_id):
        return _nothing_to_do(platform, spec, path, batch_id)

    if in_raw:
        # Validated and landed in raw by an earlier run that stopped before curated.
        batch, report_uri = read_batch(path, spec), ""
        log.info("batch %s (%s) is in raw but not in curated: completing curated", path.name, batch_id)
    else:
        batch, outcome = validate(platform, spec, path)
        report_uri = outcome.report_uri
    typed = conform(batch.frame, spec)
    properties = {
        BATCH_PROPERTY: batch.batch_id,
        "mlops.source": path.name,
        "mlops.ingested-at": datetime.now(UTC).isoformat(),
    }
    raw = platform.lake.current_snapshot(raw_table(spec))
    if not in_raw:
        landed = typed.append_column("_batch_id", pa.array([batch.batch_id] * len(typed), pa.string()))
        raw = platform.lake.append(raw_table(spec), landed, properties)
        fault_point("ingest.after-raw")

    fresh = _new_rows(platform, spec, typed)
    curated = platform.lake.current_snapshot(curated_table(spec))
    if len(fresh):
        curated = platform.lake.append(curated_table(spec), fresh, properties)
    elif in_raw:
        return _nothing_to_do(platform, spec, path, batch_id)  # every row was already curated
    log.info(
        "batch %s: %d rows landed in raw, %d new rows in curated", batch.batch_id, len(typed), len(fresh)
    )
    return IngestResult(
        batch_id=batch.batch_id,
        source=str(path),
        rows=len(typed),
        new_curated_rows=len(fresh),
        already_ingested=False,
        raw_snapshot_id=raw.snapshot_id if raw else None,
        curated_snapshot_id=curated.snapshot_id if curated else None,
        report_uri=report_uri,
    )


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
