from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.adapters.local.artifacts import LocalArtifactStore
from pipelines.adapters.local.metrics import SqliteMetrics
from pipelines.ports import MetricDatum


def test_metrics_are_stored_and_filtered_by_dimensions(tmp_path: Path) -> None:
    metrics = SqliteMetrics(tmp_path / "metrics.db", "mlops")
    metrics.put(
        [
            MetricDatum("auc", 0.8, {"model": "a", "environment": "local"}),
            MetricDatum("auc", 0.7, {"model": "b"}),
        ]
    )
    metrics.put([MetricDatum("auc", 0.9, {"model": "a", "environment": "local"})])
    assert [d.value for d in metrics.query("auc", {"model": "a"})] == [0.8, 0.9]
    assert len(list(metrics.query("auc"))) == 3
    assert list(metrics.query("latency")) == []


def test_artifact_store_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    uri = store.put_bytes("runs/a/result.json", b"{}")
    assert uri.startswith("file://") and store.exists("runs/a/result.json")
    store.put_bytes("runs/a/result.json", b'{"v": 2}')
    assert store.get_bytes("runs/a/result.json") == b'{"v": 2}'
    assert [p.name for p in (tmp_path / "artifacts" / "runs" / "a").iterdir()] == ["result.json"]


def test_artifact_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    with pytest.raises(ValueError, match="escapes"):
        store.put_bytes("../outside", b"x")
    with pytest.raises(KeyError, match="not found"):
        store.get_bytes("missing")
