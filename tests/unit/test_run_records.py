"""Runs recognise their earlier work by its snapshot's properties, also once retention expired it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from pipelines.adapters.iceberg_lake import IcebergLake
from pipelines.inference.job import INPUT_SNAPSHOT, INPUT_TABLE, MODEL_VERSION, existing_predictions


def test_a_prediction_run_is_found_after_its_snapshot_expired(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )
    lake = IcebergLake(
        catalog,
        {"history.expire.max-snapshot-age-ms": "0", "history.expire.min-snapshots-to-keep": "1"},
        expire_at_once=1,
    )

    def identity(version: int) -> dict[str, str]:
        return {MODEL_VERSION: str(version), INPUT_TABLE: "curated.events", INPUT_SNAPSHOT: "42"}

    runs = [lake.append("predictions.m", pa.table({"score": [0.1 * v]}), identity(v)) for v in (1, 2, 3)]
    assert [s.snapshot_id for s in lake.snapshots("predictions.m")] == [runs[-1].snapshot_id]
    found = existing_predictions(lake, "predictions.m", identity(1))
    assert found is not None and found.snapshot_id == runs[0].snapshot_id and found.expired
    assert existing_predictions(lake, "predictions.m", identity(4)) is None
