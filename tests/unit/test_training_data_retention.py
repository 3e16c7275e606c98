"""Registering a version keeps the snapshots of every registered version's training data readable."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from pipelines.adapters.iceberg_lake import IcebergLake
from pipelines.platform import Platform
from pipelines.ports import ModelCandidate
from pipelines.training.steps import retain_training_data


def _register(platform: Platform, run_key: str, tables: dict[str, int], **lineage: Any) -> Any:
    bundle = Path(platform.contract.artifacts.model_dump()["root"]).parent / "bundles" / run_key
    bundle.mkdir(parents=True)
    (bundle / "weights.pt").write_bytes(run_key.encode())
    return platform.registry.register(
        ModelCandidate("m", run_key, bundle.as_uri(), {"auc": 0.8}, {}, {"tables": tables, **lineage})
    )


def test_every_registered_version_gets_its_training_snapshots_kept(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    lake = platform.lake
    assert isinstance(lake, IcebergLake)
    lake.table_properties.update(
        {"history.expire.max-snapshot-age-ms": "0", "history.expire.min-snapshots-to-keep": "1"}
    )
    lake.expire_at_once = 1
    first = lake.append("curated.events", pa.table({"id": ["a"]}), {})
    second = lake.append("curated.events", pa.table({"id": ["b"]}), {})  # `first` expires here
    assert lake.snapshots("curated.events") == [second]
    old = _register(platform, "r1", {"curated.events": first.snapshot_id})  # before tags existed
    promoted = _register(platform, "r2", {"curated.events": 999}, promoted_from="dev")
    new = _register(platform, "r3", {"curated.events": second.snapshot_id})
    ctx = SimpleNamespace(platform=platform)

    with caplog.at_level(logging.DEBUG, logger="pipelines.training.steps"):
        retain_training_data(ctx, new)  # type: ignore[arg-type]
    refs = lake.catalog.load_table("curated.events").metadata.refs
    assert refs[f"model/m/v{new.version}"].snapshot_id == second.snapshot_id
    assert f"model/m/v{old.version}" not in refs  # expired before it could be kept: said, not kept
    assert f"model/m/v{promoted.version}" not in refs  # another lake's snapshot: not looked for
    assert [r.levelno for r in caplog.records if f"v{old.version}:" in r.getMessage()] == [logging.DEBUG]

    lake.append("curated.events", pa.table({"id": ["c"]}), {})  # would expire `second`, but it is kept
    assert lake.read("curated.events", snapshot_id=second.snapshot_id).num_rows == 2
